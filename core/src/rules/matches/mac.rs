//! mac match (xt_mac.c: mac_mt): the link-layer source address.

use crate::packet::Packet;

pub fn mac(pkt: &Packet<'_>, want: &[u8], neg: bool) -> bool {
    match pkt.link_src {
        None => false,
        Some(src) => (src == want) != neg,
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testpkt;

    #[test]
    fn source_address() {
        let data = testpkt::udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        let mut pkt = testpkt::decode(&data);
        assert!(!super::mac(&pkt, &[1, 2, 3, 4, 5, 6], true));
        pkt.link_src = Some(&[1, 2, 3, 4, 5, 6]);
        assert!(super::mac(&pkt, &[1, 2, 3, 4, 5, 6], false));
        assert!(!super::mac(&pkt, &[1, 2, 3, 4, 5, 7], false));
    }
}
