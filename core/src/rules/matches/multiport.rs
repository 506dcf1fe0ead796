//! multiport match (xt_multiport.c: multiport_mt, revision 1); `!` inverts the list.

use crate::packet::Packet;
use crate::rules::matches::no_l4;

pub fn multiport(pkt: &Packet<'_>, ranges: &[(u16, u16)], src: bool, dst: bool, neg: bool) -> bool {
    if no_l4(pkt) {
        return false;
    }
    let inside = |p: u16, (lo, hi): (u16, u16)| lo <= p && p <= hi;
    for &r in ranges {
        if (src && inside(pkt.sport, r)) || (dst && inside(pkt.dport, r)) {
            return !neg;
        }
    }
    neg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testpkt;

    #[test]
    fn lists_and_ranges() {
        let data = testpkt::udp4([10, 0, 0, 1], [10, 0, 0, 2], 5000, 53);
        let pkt = testpkt::decode(&data);
        assert!(multiport(&pkt, &[(80, 80), (50, 60)], false, true, false));
        assert!(!multiport(&pkt, &[(80, 80)], false, true, false));
        assert!(multiport(&pkt, &[(80, 80)], false, true, true));
        assert!(multiport(&pkt, &[(5000, 5000)], true, true, false));
        assert!(!multiport(&pkt, &[(5000, 5000)], false, true, false));
    }
}
