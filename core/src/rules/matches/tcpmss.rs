//! tcpmss match (xt_tcpmss.c): the MSS option of a TCP header.

use crate::packet::Packet;

/// The first MSS option's value (an option of kind 2 with a 2-byte body).
pub fn mss_option(pkt: &Packet<'_>) -> Option<u16> {
    let data = pkt.data;
    let off = pkt.l4_off;
    let doff = data.get(off + 12)?;
    let end = data.len().min(off + usize::from(doff >> 4) * 4);
    let mut i = off + 20;
    while i < end {
        let kind = *data.get(i)?;
        if kind == 0 {
            break;
        }
        if kind == 1 {
            i += 1;
            continue;
        }
        let len = usize::from(*data.get(i + 1).filter(|_| i + 1 < end)?);
        if len < 2 {
            break;
        }
        if kind == 2 {
            let body = data.get(i + 2..(i + len).min(data.len()))?;
            if let [a, b] = body {
                return Some(u16::from_be_bytes([*a, *b]));
            }
        }
        i += len;
    }
    None
}

pub fn tcpmss(pkt: &Packet<'_>, low: u16, high: u16, neg: bool) -> bool {
    match mss_option(pkt) {
        Some(mss) => (low <= mss && mss <= high) != neg,
        None => neg,
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testpkt;

    #[test]
    fn mss_ranges() {
        let data = testpkt::tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 2, &[1, 1, 2, 4, 5, 180]);
        let pkt = testpkt::decode(&data);
        assert!(super::tcpmss(&pkt, 1400, 1500, false));
        assert!(!super::tcpmss(&pkt, 0, 536, false));
        let data = testpkt::tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 2, &[]);
        let pkt = testpkt::decode(&data);
        assert!(super::tcpmss(&pkt, 0, 65535, true));
    }
}
