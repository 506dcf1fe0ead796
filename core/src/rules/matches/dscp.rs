//! dscp and tos matches (xt_dscp.c: dscp_mt, tos_mt).

use crate::packet::Packet;

pub fn dscp(pkt: &Packet<'_>, code: u8, neg: bool) -> bool {
    ((pkt.tos >> 2) == code) != neg
}

pub fn tos(pkt: &Packet<'_>, value: u8, mask: u8, neg: bool) -> bool {
    ((pkt.tos & mask) == value) != neg
}

#[cfg(test)]
mod tests {
    use crate::rules::testpkt;

    #[test]
    fn codes() {
        let data = testpkt::udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        let mut pkt = testpkt::decode(&data);
        pkt.tos = 46 << 2 | 1;
        assert!(super::dscp(&pkt, 46, false));
        assert!(super::dscp(&pkt, 10, true));
        assert!(super::tos(&pkt, 0xb8, 0xfc, false));
        assert!(!super::tos(&pkt, 0xb8, 0xff, false));
    }
}
