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
