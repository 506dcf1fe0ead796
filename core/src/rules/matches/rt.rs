//! rt match (ip6t_rt.c): the IPv6 routing header, found by walking the
//! extension headers that may precede it.

use crate::packet::Packet;

/// The routing header's bytes (as long as it says, cut at the datagram's end).
pub fn routing_header<'a>(pkt: &Packet<'a>) -> Option<&'a [u8]> {
    let data = pkt.data;
    let mut next = data.get(6).copied().unwrap_or(59);
    let mut at = 40usize;
    while matches!(next, 0 | 43 | 60 | 51 | 44) && at + 8 <= data.len() {
        let len_byte = usize::from(*data.get(at + 1)?);
        if next == 43 {
            let end = data.len().min(at + (len_byte + 1) * 8);
            return data.get(at..end);
        }
        let size = match next {
            44 => {
                let off = u16::from_be_bytes([*data.get(at + 2)?, *data.get(at + 3)?]);
                if off & 0xFFF8 != 0 {
                    return None;
                }
                8
            }
            51 => (len_byte + 2) * 4,
            _ => (len_byte + 1) * 8,
        };
        next = *data.get(at)?;
        at += size;
    }
    None
}

#[derive(Clone, Copy, Debug)]
pub struct Params<'r> {
    pub rt_type: Option<(u8, bool)>,
    pub segs: (u64, u64, bool),
    pub len: Option<(u64, bool)>,
    pub reserved: bool,
    pub addrs: &'r [u128],
    pub strict: bool,
}

pub fn rt(pkt: &Packet<'_>, p: Params<'_>) -> bool {
    let Some(h) = routing_header(pkt) else {
        return false;
    };
    if h.len() < 8 {
        return false;
    }
    let segs_left = u64::from(h[3]);
    if (p.segs.0 <= segs_left && segs_left <= p.segs.1) == p.segs.2 {
        return false;
    }
    if let Some((size, neg)) = p.len {
        if (h.len() as u64 == size) == neg {
            return false;
        }
    }
    if let Some((kind, neg)) = p.rt_type {
        if (h[2] == kind) == neg {
            return false;
        }
    }
    if p.reserved && h[4..8] != [0, 0, 0, 0] {
        return false;
    }
    if p.addrs.is_empty() {
        return true;
    }
    if h[2] != 0 {
        return false;
    }
    let present = h
        .get(8..)
        .unwrap_or(&[])
        .chunks_exact(16)
        .map(|c| c.iter().fold(0u128, |acc, &b| acc << 8 | u128::from(b)));
    if p.strict {
        return present.eq(p.addrs.iter().copied());
    }
    let mut it = present;
    p.addrs.iter().all(|w| it.any(|a| a == *w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_zero_header_with_addresses() {
        let mut d = vec![0u8; 40];
        d[0] = 0x60;
        d[6] = 43;
        // routing header: next 59, len 4 (two addresses), type 0, segs left 1
        d.extend_from_slice(&[59, 4, 0, 1, 0, 0, 0, 0]);
        d.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        d.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        let pkt = Packet::new(0, 0.0, &d, 6);
        let a1 = 0x2001_0db8_0000_0000_0000_0000_0000_0001u128;
        let a2 = a1 + 1;
        let base = Params {
            rt_type: Some((0, false)),
            segs: (0, 255, false),
            len: None,
            reserved: true,
            addrs: &[],
            strict: true,
        };
        assert!(rt(&pkt, base));
        assert!(!rt(
            &pkt,
            Params {
                rt_type: Some((2, false)),
                ..base
            }
        ));
        assert!(rt(
            &pkt,
            Params {
                len: Some((40, false)),
                ..base
            }
        ));
        assert!(rt(
            &pkt,
            Params {
                addrs: &[a1, a2],
                ..base
            }
        ));
        assert!(!rt(
            &pkt,
            Params {
                addrs: &[a2],
                ..base
            }
        ));
        assert!(rt(
            &pkt,
            Params {
                addrs: &[a2],
                strict: false,
                ..base
            }
        ));
        assert!(!rt(
            &pkt,
            Params {
                segs: (2, 5, false),
                ..base
            }
        ));
    }
}
