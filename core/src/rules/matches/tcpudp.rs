//! tcp and udp matches (xt_tcpudp.c: tcp_mt, udp_mt).
//!
//! Ports are inclusive ranges, each with its own `!`; a non-first fragment
//! never matches. `--tcp-option` walks the options as tcp_find_option does.

use crate::packet::Packet;
use crate::rules::matches::no_l4;
use crate::rules::model::PortRange;

fn in_range(port: u16, r: &PortRange) -> bool {
    (r.low <= port && port <= r.high) != r.neg
}

pub fn ports(pkt: &Packet<'_>, sport: &PortRange, dport: &PortRange) -> bool {
    if no_l4(pkt) {
        return false;
    }
    in_range(pkt.sport, sport) && in_range(pkt.dport, dport)
}

/// Whether the TCP header carries an option of `kind`.
pub fn has_option(pkt: &Packet<'_>, kind: u8) -> bool {
    let data = pkt.data;
    let off = pkt.l4_off;
    let Some(&doff) = data.get(off + 12) else {
        return false;
    };
    let end = data.len().min(off + usize::from(doff >> 4) * 4);
    let mut i = off + 20;
    while i < end {
        let Some(&k) = data.get(i) else { break };
        if k == 0 {
            break;
        }
        if k == 1 {
            i += 1;
            continue;
        }
        let len = match data.get(i + 1) {
            Some(&len) if i + 1 < end && len >= 2 => usize::from(len),
            _ => break,
        };
        if k == kind {
            return true;
        }
        i += len;
    }
    false
}

pub fn tcp(
    pkt: &Packet<'_>,
    sport: &PortRange,
    dport: &PortRange,
    (mask, cmp, neg): (u8, u8, bool),
    option: Option<u8>,
    option_neg: bool,
) -> bool {
    if !ports(pkt, sport, dport) {
        return false;
    }
    if ((pkt.tcp_flags & mask) == cmp) == neg {
        return false;
    }
    match option {
        Some(kind) => has_option(pkt, kind) != option_neg,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testpkt;

    #[test]
    fn ports_and_flags() {
        let data = testpkt::tcp4(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            40000,
            22,
            0x02,
            &[2, 4, 5, 180],
        );
        let pkt = testpkt::decode(&data);
        let any = PortRange::default();
        let ssh = PortRange {
            low: 22,
            high: 22,
            neg: false,
        };
        let not_ssh = PortRange {
            low: 22,
            high: 22,
            neg: true,
        };
        assert!(ports(&pkt, &any, &ssh));
        assert!(!ports(&pkt, &any, &not_ssh));
        // --syn
        assert!(tcp(&pkt, &any, &ssh, (0x17, 0x02, false), None, false));
        assert!(!tcp(&pkt, &any, &ssh, (0x17, 0x02, true), None, false));
        assert!(tcp(&pkt, &any, &any, (0, 0, false), Some(2), false));
        assert!(!tcp(&pkt, &any, &any, (0, 0, false), Some(3), false));
        assert!(tcp(&pkt, &any, &any, (0, 0, false), Some(3), true));
    }
}
