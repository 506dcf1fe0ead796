//! length match (xt_length.c): the IP total length.

use crate::packet::Packet;

pub fn length(pkt: &Packet<'_>, low: u32, high: u32, neg: bool) -> bool {
    (low <= pkt.ip_len && pkt.ip_len <= high) != neg
}

#[cfg(test)]
mod tests {
    use crate::rules::testpkt;

    #[test]
    fn total_length() {
        let data = testpkt::udp4([10, 0, 0, 5], [10, 0, 0, 2], 1, 2);
        let pkt = testpkt::decode(&data);
        assert!(super::length(&pkt, 28, 28, false));
        assert!(!super::length(&pkt, 0, 27, false));
    }
}
