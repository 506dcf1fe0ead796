//! sctp match (xt_sctp.c): ports and the chunk types the packet carries.
//! A chunk header cut short, or of length 0, drops the packet (hotdrop).

use crate::packet::Packet;
use crate::rules::matches::no_l4;
use crate::rules::model::PortRange;

pub fn ports(pkt: &Packet<'_>, sport: &PortRange, dport: &PortRange) -> bool {
    if no_l4(pkt) {
        return false;
    }
    let inside = |p: u16, r: &PortRange| (r.low <= p && p <= r.high) != r.neg;
    inside(pkt.sport, sport) && inside(pkt.dport, dport)
}

/// `kind` is "all", "any" or "only"; `flags` holds (chunk, mask, value).
/// Err carries the hotdrop reason.
pub fn chunks(
    pkt: &Packet<'_>,
    kind: &str,
    types: &[u8],
    flags: &[(u8, u8, u8)],
) -> Result<bool, &'static str> {
    let data = pkt.data;
    let end = data.len().min(pkt.ip_len as usize);
    let mut wanted = [false; 256];
    for &t in types {
        wanted[usize::from(t)] = true;
    }
    let mut missing = if kind == "all" { wanted } else { [false; 256] };
    let mut at = pkt.l4_off + 12;
    loop {
        let header = if at + 4 > end {
            None
        } else {
            data.get(at..at + 4)
        };
        let Some(h) = header.filter(|h| h[2] != 0 || h[3] != 0) else {
            return Err("SCTP chunk header truncated or of length 0");
        };
        let (chunk, chunk_flags) = (h[0], h[1]);
        let (mask, value) = flags
            .iter()
            .find(|f| f.0 == chunk)
            .map_or((0, 0), |f| (f.1, f.2));
        let ok = chunk_flags & mask == value;
        if wanted[usize::from(chunk)] {
            match kind {
                "any" if ok => return Ok(true),
                "all" if ok => missing[usize::from(chunk)] = false,
                "only" if !ok => return Ok(false),
                _ => {}
            }
        } else if kind == "only" {
            return Ok(false);
        }
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        at += (len + 3) & !3;
        if at >= end {
            break;
        }
    }
    Ok(if kind == "all" {
        !missing.iter().any(|&m| m)
    } else {
        kind == "only"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sctp_packet(chunks: &[u8]) -> Vec<u8> {
        let mut d = vec![
            0x45, 0, 0, 0, 0, 1, 0, 0, 64, 132, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        d.extend_from_slice(&[0x13, 0x88, 0x13, 0x89, 0, 0, 0, 1, 0, 0, 0, 0]);
        d.extend_from_slice(chunks);
        let len = d.len() as u16;
        d[2..4].copy_from_slice(&len.to_be_bytes());
        d
    }

    fn packet(data: &[u8]) -> Packet<'_> {
        let mut p = Packet::new(0, 0.0, data, 4);
        p.proto = 132;
        p.l4_off = 20;
        p.ip_len = data.len() as u32;
        p.sport = 5000;
        p.dport = 5001;
        p
    }

    #[test]
    fn chunk_kinds_flags_and_hotdrop() {
        // INIT (type 1, 20 bytes) then DATA (type 0, flags 0x03, 17 bytes, padded to 20)
        let mut body = vec![1, 0, 0, 20];
        body.extend_from_slice(&[0; 16]);
        body.extend_from_slice(&[0, 3, 0, 17]);
        body.extend_from_slice(&[0; 16]);
        let data = sctp_packet(&body);
        let pkt = packet(&data);
        assert_eq!(chunks(&pkt, "any", &[0], &[]), Ok(true));
        assert_eq!(chunks(&pkt, "all", &[0, 1], &[]), Ok(true));
        assert_eq!(chunks(&pkt, "all", &[0, 1, 2], &[]), Ok(false));
        assert_eq!(chunks(&pkt, "only", &[1], &[]), Ok(false));
        assert_eq!(chunks(&pkt, "any", &[0], &[(0, 0x02, 0x00)]), Ok(false));
        let bad = sctp_packet(&[1, 0, 0, 0]);
        let pkt = packet(&bad);
        assert!(chunks(&pkt, "any", &[1], &[]).is_err());
        let any = PortRange::default();
        assert!(ports(
            &pkt,
            &any,
            &PortRange {
                low: 5001,
                high: 5001,
                neg: false
            }
        ));
    }
}
