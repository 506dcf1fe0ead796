//! icmp (ip_tables.c: icmp_match) and icmp6 (ip6_tables.c: icmp6_match).
//! IPv4's type 255 ("any") matches every ICMP packet.

use crate::packet::Packet;
use crate::rules::matches::no_l4;

pub fn icmp(pkt: &Packet<'_>, ty: u8, low: u8, high: u8, neg: bool, all: bool) -> bool {
    if no_l4(pkt) {
        return false;
    }
    let hit = all || (pkt.icmp_type == ty && low <= pkt.icmp_code && pkt.icmp_code <= high);
    hit != neg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testpkt;

    #[test]
    fn types_and_codes() {
        let data = testpkt::icmp4([10, 0, 0, 1], [10, 0, 0, 2], 3, 3);
        let pkt = testpkt::decode(&data);
        assert!(icmp(&pkt, 3, 0, 255, false, false));
        assert!(icmp(&pkt, 3, 3, 3, false, false));
        assert!(!icmp(&pkt, 3, 1, 1, false, false));
        assert!(icmp(&pkt, 8, 0, 0, true, false));
        assert!(icmp(&pkt, 255, 0, 255, false, true));
    }
}
