//! ttl (ipt_ttl.c) and hl (ip6t_hl.c) matches; only `--ttl-eq` can be negated.

use crate::packet::Packet;

pub fn hl(pkt: &Packet<'_>, op: &str, value: u8, neg: bool) -> bool {
    match op {
        "eq" => (pkt.ttl == value) != neg,
        "gt" => pkt.ttl > value,
        _ => pkt.ttl < value,
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testpkt;

    #[test]
    fn comparisons() {
        let data = testpkt::udp4([10, 0, 0, 5], [10, 0, 0, 2], 1, 2);
        let pkt = testpkt::decode(&data); // ttl 64
        assert!(super::hl(&pkt, "eq", 64, false));
        assert!(super::hl(&pkt, "eq", 1, true));
        assert!(super::hl(&pkt, "gt", 63, false));
        assert!(!super::hl(&pkt, "lt", 64, false));
    }
}
