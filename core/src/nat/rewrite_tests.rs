//! The rewrite checked against checksums computed from scratch.

use super::*;
use crate::checksum::{ipv4_header_ok, l4_checksum_ok};
use crate::conntrack::proto_sctp::checksum_ok as sctp_checksum_ok;
use crate::decode::decode_datagram;
use proptest::prelude::*;

const A4: u128 = 0xC000_020A; // 192.0.2.10
const B4: u128 = 0xC633_6407; // 198.51.100.7
const N4: u128 = 0xCB00_7101; // 203.0.113.1
const A6: u128 = (0x2001_0DB8 << 96) | 0x10;
const B6: u128 = (0x2001_0DB8_0000_0002 << 64) | 7;
const N6: u128 = (0x2001_0DB8_0000_0001 << 64) | 1;

fn addr_bytes(family: u8, addr: u128) -> Vec<u8> {
    if family == 4 {
        (addr as u32).to_be_bytes().to_vec()
    } else {
        addr.to_be_bytes().to_vec()
    }
}

/// A layer-4 checksum computed from scratch at `at` (field zeroed first).
fn full_l4(family: u8, src: u128, dst: u128, proto: u8, seg: &mut [u8], at: usize) -> u16 {
    seg[at..at + 2].fill(0);
    let initial = pseudo_header_sum(family, src, dst, proto, seg.len() as u32);
    let sum = internet_checksum(seg, initial);
    seg[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    sum
}

/// An IP datagram around `seg`, with a valid IPv4 header checksum.
fn ip(family: u8, src: u128, dst: u128, proto: u8, seg: &[u8]) -> Vec<u8> {
    let mut out = if family == 4 {
        let mut h = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0];
        h[2..4].copy_from_slice(&((20 + seg.len()) as u16).to_be_bytes());
        h
    } else {
        let mut h = vec![0x60, 0, 0, 0, 0, 0, proto, 64];
        h[4..6].copy_from_slice(&(seg.len() as u16).to_be_bytes());
        h
    };
    out.extend(addr_bytes(family, src));
    out.extend(addr_bytes(family, dst));
    if family == 4 {
        let sum = internet_checksum(&out, 0);
        out[10..12].copy_from_slice(&sum.to_be_bytes());
    }
    out.extend_from_slice(seg);
    out
}

fn tcp(family: u8, src: u128, dst: u128, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut seg = vec![0; 20];
    seg[0..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&dport.to_be_bytes());
    seg[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    seg[12] = 0x50;
    seg[13] = 0x18;
    seg[14..16].copy_from_slice(&[0xFA, 0xF0]);
    seg.extend_from_slice(payload);
    full_l4(family, src, dst, PROTO_TCP, &mut seg, 16);
    ip(family, src, dst, PROTO_TCP, &seg)
}

fn udp(family: u8, src: u128, dst: u128, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut seg = vec![0; 8];
    seg[0..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&dport.to_be_bytes());
    seg[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    seg.extend_from_slice(payload);
    full_l4(family, src, dst, PROTO_UDP, &mut seg, 6);
    ip(family, src, dst, PROTO_UDP, &seg)
}

fn echo(family: u8, src: u128, dst: u128, id: u16, payload: &[u8]) -> Vec<u8> {
    let (proto, itype) = if family == 4 {
        (PROTO_ICMP, 8)
    } else {
        (PROTO_ICMPV6, 128)
    };
    let mut seg = vec![itype, 0, 0, 0, 0, 0, 0, 1];
    seg[4..6].copy_from_slice(&id.to_be_bytes());
    seg.extend_from_slice(payload);
    icmp_checksum(family, src, dst, &mut seg);
    ip(family, src, dst, proto, &seg)
}

fn icmp_checksum(family: u8, src: u128, dst: u128, seg: &mut [u8]) {
    if family == 4 {
        seg[2..4].fill(0);
        let sum = internet_checksum(seg, 0);
        seg[2..4].copy_from_slice(&sum.to_be_bytes());
    } else {
        full_l4(6, src, dst, PROTO_ICMPV6, seg, 2);
    }
}

/// An ICMP(v6) error from `src` to `dst` quoting `quote`.
fn error(family: u8, src: u128, dst: u128, quote: &[u8]) -> Vec<u8> {
    let (proto, itype) = if family == 4 {
        (PROTO_ICMP, 3)
    } else {
        (PROTO_ICMPV6, 1)
    };
    let mut seg = vec![itype, 3, 0, 0, 0, 0, 0, 0];
    seg.extend_from_slice(quote);
    icmp_checksum(family, src, dst, &mut seg);
    ip(family, src, dst, proto, &seg)
}

fn at(src: u128, dst: u128, sport: u16, dport: u16) -> Addressing {
    Addressing {
        src,
        dst,
        sport,
        dport,
    }
}

fn rewrite(bytes: &[u8], leaves: &Addressing, quoted: Option<&Addressing>) -> Packet<'static> {
    let orig = decode_datagram(bytes, 0, 0.0, false);
    assert!(orig.error.is_none(), "{:?}", orig.error);
    let out = rewrite_datagram(&orig, leaves, quoted);
    let out: &'static [u8] = Box::leak(out.into_boxed_slice());
    let pkt = decode_datagram(out, 0, 0.0, false);
    assert!(pkt.error.is_none(), "{:?}", pkt.error);
    pkt
}

/// The layer-4 checksum of a decoded packet verifies and is exactly what a
/// computation from scratch gives.
fn assert_l4_fresh(pkt: &Packet<'_>, at: usize) {
    let seg = &pkt.data[pkt.l4_off..];
    assert!(l4_checksum_ok(pkt.family, pkt.src, pkt.dst, pkt.proto, seg));
    let mut copy = seg.to_vec();
    let fresh = full_l4(pkt.family, pkt.src, pkt.dst, pkt.proto, &mut copy, at);
    assert_eq!(be16(seg, at), fresh);
}

fn assert_header_fresh(pkt: &Packet<'_>) {
    if pkt.family == 4 {
        let header = &pkt.data[..pkt.l4_off];
        assert!(ipv4_header_ok(header));
        let mut copy = header.to_vec();
        copy[10..12].fill(0);
        assert_eq!(be16(header, 10), internet_checksum(&copy, 0));
    }
}

#[test]
fn tcp_source_nat_ipv4_and_ipv6() {
    for (family, a, b, n) in [(4, A4, B4, N4), (6, A6, B6, N6)] {
        let bytes = tcp(family, a, b, 40000, 443, b"hello");
        let pkt = rewrite(&bytes, &at(n, b, 61000, 443), None);
        assert_eq!((pkt.src, pkt.dst, pkt.sport, pkt.dport), (n, b, 61000, 443));
        assert_header_fresh(&pkt);
        assert_l4_fresh(&pkt, 16);
        assert_eq!(pkt.payload(), b"hello");
        assert_eq!(pkt.ttl, 64);
    }
}

#[test]
fn udp_destination_nat_and_checksum_zero() {
    for (family, a, b, n) in [(4, A4, B4, N4), (6, A6, B6, N6)] {
        let bytes = udp(family, b, n, 53, 61000, b"answer");
        let pkt = rewrite(&bytes, &at(b, a, 53, 40000), None);
        assert_eq!((pkt.dst, pkt.dport), (a, 40000));
        assert_header_fresh(&pkt);
        assert_l4_fresh(&pkt, 6);
    }
    let mut bytes = udp(4, A4, B4, 40000, 53, b"query");
    bytes[26..28].fill(0);
    let pkt = rewrite(&bytes, &at(N4, B4, 1024, 53), None);
    assert_eq!(be16(pkt.data, 26), 0, "no checksum stays none");
    assert_eq!(pkt.sport, 1024);
    assert_header_fresh(&pkt);
}

#[test]
fn udp_checksum_that_comes_out_zero_is_sent_as_ffff() {
    // Find a port whose rewrite makes the sum come out as 0.
    let bytes = udp(4, A4, B4, 40000, 53, b"x");
    let orig = decode_datagram(&bytes, 0, 0.0, false);
    let hit = (1..=u16::MAX).find_map(|port| {
        let out = rewrite_datagram(&orig, &at(N4, B4, port, 53), None);
        let mut seg = out[20..].to_vec();
        (full_l4(4, N4, B4, PROTO_UDP, &mut seg, 6) == 0).then_some((port, out))
    });
    let (port, out) = hit.expect("some port sums to zero");
    assert_eq!(be16(&out, 20), port);
    assert_eq!(be16(&out, 26), 0xFFFF);
}

#[test]
fn icmp_echo_id_ipv4_and_ipv6() {
    for (family, a, b, n) in [(4, A4, B4, N4), (6, A6, B6, N6)] {
        let bytes = echo(family, a, b, 0x1234, b"ping");
        let pkt = rewrite(&bytes, &at(n, b, 7, 0x0800), None);
        assert_eq!((pkt.src, pkt.icmp_id), (n, 7));
        assert_header_fresh(&pkt);
        let mut seg = pkt.data[pkt.l4_off..].to_vec();
        let stored = be16(&seg, 2);
        icmp_checksum(family, pkt.src, pkt.dst, &mut seg);
        assert_eq!(stored, be16(&seg, 2));
    }
}

/// How far one checksum is from another, modulo 0xFFFF.
fn distance(a: u16, b: u16) -> u32 {
    (u32::from(a) + 0xFFFF - u32::from(b)) % 0xFFFF
}

#[test]
fn bad_checksums_stay_bad_by_the_same_amount() {
    let good = tcp(4, A4, B4, 40000, 443, b"data");
    let mut bytes = good.clone();
    bytes[36] ^= 0x01; // the TCP checksum
    bytes[10] ^= 0x10; // the header checksum
    let orig = decode_datagram(&bytes, 0, 0.0, true);
    let out = rewrite_datagram(&orig, &at(N4, B4, 61000, 443), None);
    let fresh = tcp(4, N4, B4, 61000, 443, b"data");
    for field in [36, 10] {
        let off_by = distance(be16(&bytes, field), be16(&good, field));
        assert_ne!(off_by, 0);
        assert_eq!(distance(be16(&out, field), be16(&fresh, field)), off_by);
    }
}

#[test]
fn icmp_error_quoting_tcp_and_udp() {
    // A reply's error, as it reaches the translating router: from the
    // far end to the translated address, quoting the translated packet.
    for (family, a, b, n) in [(4, A4, B4, N4), (6, A6, B6, N6)] {
        for proto in [PROTO_TCP, PROTO_UDP] {
            let quoted = if proto == PROTO_TCP {
                tcp(family, n, b, 61000, 443, b"data")
            } else {
                udp(family, n, b, 61000, 53, b"data")
            };
            let dport = if proto == PROTO_TCP { 443 } else { 53 };
            let bytes = error(family, b, n, &quoted);
            let inner_leaves = at(a, b, 40000, dport);
            let pkt = rewrite(&bytes, &at(b, a, 0, 0x0303), Some(&inner_leaves));
            assert_eq!((pkt.src, pkt.dst), (b, a));
            assert_header_fresh(&pkt);
            let seg = pkt.data[pkt.l4_off..].to_vec();
            let mut fresh = seg.clone();
            icmp_checksum(family, b, a, &mut fresh);
            assert_eq!(seg, fresh, "error checksum as computed afresh");
            let inner = pkt.inner.as_deref().expect("quote");
            assert_eq!((inner.src, inner.dst, inner.sport), (a, b, 40000));
            assert_header_fresh(inner);
            // The whole quote is there: its checksums are as fresh.
            assert_l4_fresh(inner, if proto == PROTO_TCP { 16 } else { 6 });
        }
    }
}

#[test]
fn icmp_error_quoting_echo() {
    let quoted = echo(4, N4, B4, 7, b"ping");
    let bytes = error(4, B4, N4, &quoted);
    let pkt = rewrite(
        &bytes,
        &at(B4, A4, 0, 0x0303),
        Some(&at(A4, B4, 0x1234, 0x0800)),
    );
    let inner = pkt.inner.as_deref().expect("quote");
    assert_eq!((inner.src, inner.icmp_id), (A4, 0x1234));
    let mut seg = inner.data[inner.l4_off..].to_vec();
    let stored = be16(&seg, 2);
    icmp_checksum(4, A4, B4, &mut seg);
    assert_eq!(stored, be16(&seg, 2));
}

#[test]
fn truncated_quote_keeps_the_tcp_checksum_and_does_not_panic() {
    let full = tcp(4, N4, B4, 61000, 443, b"");
    // Eight bytes of TCP: ports and sequence number, no checksum field.
    let bytes = error(4, B4, N4, &full[..28]);
    let pkt = rewrite(
        &bytes,
        &at(B4, A4, 0, 0x0303),
        Some(&at(A4, B4, 40000, 443)),
    );
    let inner = pkt.inner.as_deref().expect("quote");
    assert_eq!((inner.src, inner.sport), (A4, 40000));
    assert_header_fresh(inner);
    assert!(pkt.data.len() == 20 + 8 + 28);
    // Shorter than the kernel rewrites: dropped, but never a panic here.
    for cut in 0..full.len() {
        let bytes = error(4, B4, N4, &full[..cut]);
        let orig = decode_datagram(&bytes, 0, 0.0, false);
        let _ = rewrite_datagram(&orig, &at(B4, A4, 0, 0x0303), Some(&at(A4, B4, 1, 2)));
    }
}

#[test]
fn sctp_crc_is_computed_afresh() {
    let mut seg = vec![0u8; 16];
    seg[0..2].copy_from_slice(&5000u16.to_be_bytes());
    seg[2..4].copy_from_slice(&6000u16.to_be_bytes());
    seg[12..16].copy_from_slice(&[1, 0, 0, 4]);
    let bytes = ip(4, A4, B4, PROTO_SCTP, &seg);
    let pkt = rewrite(&bytes, &at(N4, B4, 5001, 6000), None);
    assert_eq!(pkt.sport, 5001);
    assert!(sctp_checksum_ok(&pkt.data[20..]));
    assert_header_fresh(&pkt);
}

proptest! {
    /// Two rewrites in a row (DNAT, then SNAT) leave what one does.
    #[test]
    fn steps_compose(
        sport in any::<u16>(), mid in any::<u16>(), last in any::<u16>(),
        mid_dst in any::<u32>(), last_src in any::<u32>(), payload in proptest::collection::vec(any::<u8>(), 0..40),
        bad in any::<u16>(),
    ) {
        let mut bytes = tcp(4, A4, B4, sport, 80, &payload);
        let check = be16(&bytes, 36) ^ bad;
        bytes[36..38].copy_from_slice(&check.to_be_bytes());
        let orig = decode_datagram(&bytes, 0, 0.0, true);
        let first = at(A4, u128::from(mid_dst), sport, mid);
        let step1 = rewrite_datagram(&orig, &first, None);
        let between = decode_datagram(&step1, 0, 0.0, true);
        let second = at(u128::from(last_src), u128::from(mid_dst), last, mid);
        let step2 = rewrite_datagram(&between, &second, None);
        prop_assert_eq!(step2, rewrite_datagram(&orig, &second, None));
    }

    #[test]
    fn replace_equals_recomputation(
        data in proptest::collection::vec(any::<u8>(), 2..64), at in 0usize..30, new in any::<u16>(),
    ) {
        let at = (at * 2) % (data.len() & !1);
        let mut with = data.clone();
        with.extend([0, 0]);
        let n = with.len();
        let sum = internet_checksum(&with, 0);
        with[n - 2..].copy_from_slice(&sum.to_be_bytes());
        let old = [with[at], with[at + 1]];
        let updated = replace(sum, &old, &new.to_be_bytes());
        with[at..at + 2].copy_from_slice(&new.to_be_bytes());
        with[n - 2..].fill(0);
        prop_assert_eq!(updated, internet_checksum(&with, 0));
    }
}
