//! iprange match (xt_iprange.c: iprange_mt4/6): inclusive address ranges.

use crate::packet::Packet;

pub fn iprange(pkt: &Packet<'_>, src: (u128, u128, bool), dst: (u128, u128, bool)) -> bool {
    ((src.0 <= pkt.src && pkt.src <= src.1) != src.2)
        && ((dst.0 <= pkt.dst && pkt.dst <= dst.1) != dst.2)
}

#[cfg(test)]
mod tests {
    use crate::rules::testpkt;

    #[test]
    fn ranges() {
        let data = testpkt::udp4([10, 0, 0, 5], [10, 0, 0, 2], 1, 2);
        let pkt = testpkt::decode(&data);
        let all = (0, u128::MAX, false);
        assert!(super::iprange(&pkt, (0x0a00_0001, 0x0a00_0009, false), all));
        assert!(!super::iprange(&pkt, (0x0a00_0001, 0x0a00_0009, true), all));
        assert!(!super::iprange(
            &pkt,
            all,
            (0x0a00_0003, 0x0a00_0009, false)
        ));
    }
}
