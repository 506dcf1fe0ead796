//! ecn match (xt_ecn.c): the IP ECT codepoint and the TCP ECE/CWR bits.

use crate::packet::Packet;

/// `ect`: (codepoint, negated); `tcp`: (flag bit, negated) pairs.
pub fn ecn(pkt: &Packet<'_>, ect: Option<(u8, bool)>, tcp: &[(u8, bool)]) -> bool {
    if let Some((want, neg)) = ect {
        if ((pkt.tos & 3) == want) == neg {
            return false;
        }
    }
    tcp.iter()
        .all(|&(bit, neg)| (pkt.tcp_flags & bit != 0) != neg)
}

#[cfg(test)]
mod tests {
    use crate::rules::testpkt;

    #[test]
    fn bits() {
        let data = testpkt::tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 0x42, &[]);
        let pkt = testpkt::decode(&data);
        assert!(super::ecn(&pkt, Some((0, false)), &[(0x40, false)]));
        assert!(!super::ecn(&pkt, None, &[(0x80, false)]));
        assert!(super::ecn(&pkt, None, &[(0x80, true)]));
    }
}
