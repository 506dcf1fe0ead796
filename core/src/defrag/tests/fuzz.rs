//! Random fragment sequences: never a panic, memory always balances, and no
//! reassembled datagram is larger than IP allows.

use proptest::prelude::*;
use proptest::test_runner::Config;

use super::*;
use crate::defrag::MAX_DATAGRAM;
use crate::packet::PktType;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// The table invariants that keep memory bounded.
fn check_tables(defrag: &Defragmenter) {
    assert_eq!(defrag.timers.len(), defrag.queues.len());
    assert!(defrag.peers.len() <= defrag.queues.len());
    let charged: u64 = defrag.queues.values().map(|q| q.mem).sum();
    assert_eq!(charged, defrag.memory(4) + defrag.memory(6));
}

fn check_output(res: &DefragResult, family: u8) {
    assert!(!res.reason().is_empty());
    if let DefragOutcome::Complete(done) = &res.outcome {
        let limit = MAX_DATAGRAM as usize + if family == 4 { 0 } else { 40 };
        assert!(
            done.datagram.len() <= limit,
            "{} bytes",
            done.datagram.len()
        );
    }
}

proptest! {
    #![proptest_config(config(1000))]

    /// test_random_fragments_never_raise_and_memory_balances.
    #[test]
    fn random_fragments_never_panic_and_memory_balances(
        steps in prop::collection::vec(
            (0..2u8, 0..4u32, 0..41u16, 0..49usize, any::<bool>(), 0..4u8), 0..26)
    ) {
        let mut feed = Feed::with(Sysctls { ipfrag_max_dist: 3, ..Sysctls::default() });
        let now = steps.len() as f64;
        for &(family, ident, off8, size, more, tos) in &steps {
            let part: Vec<u8> = (0..size).map(|i| i as u8).collect();
            let res = if family == 0 {
                let o = V4 { tos, ..V4::default() };
                feed.push_at(&frag4_with(&part, ident as u16, off8 * 8, more, &o), now, None)
            } else {
                let o = V6 { tclass: tos, ..V6::default() };
                feed.push_at(&frag6_with(&part, ident, off8 * 8, more, &o), 0.0, None)
            };
            check_output(&res, if family == 0 { 4 } else { 6 });
            check_tables(&feed.defrag);
        }
        feed.defrag.expire(1e9);
        prop_assert_eq!(feed.defrag.pending(), 0);
        prop_assert_eq!((feed.defrag.memory(4), feed.defrag.memory(6)), (0, 0));
        prop_assert!(feed.defrag.timers.is_empty() && feed.defrag.peers.is_empty());
    }
}

/// Any packet at all, however inconsistent its fields are with its bytes.
fn arbitrary_packet() -> impl Strategy<Value = (Vec<u8>, u8, u32, u32, bool, u32, usize, u8, u8)> {
    (
        prop::collection::vec(any::<u8>(), 0..300),
        prop_oneof![Just(4u8), Just(6u8), any::<u8>()],
        0..3u32,
        prop_oneof![
            (0..9000u32).prop_map(|o| o & !7),
            any::<u32>(),
            65000..70000u32
        ],
        any::<bool>(),
        prop_oneof![
            Just(20u32),
            Just(40u32),
            Just(48u32),
            0..400u32,
            any::<u32>()
        ],
        prop_oneof![0..400usize, any::<usize>()],
        any::<u8>(),
        0..4u8,
    )
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn arbitrary_packets_never_panic(
        packets in prop::collection::vec((arbitrary_packet(), -1e3..1e3f64, 0..3u16), 0..40),
        odd_now in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(-0.0), Just(1e18)],
    ) {
        let cfg = Sysctls {
            ipfrag_high_thresh: 20_000,
            nf_conntrack_frag6_high_thresh: 20_000,
            ipfrag_max_dist: 2,
            ..Sysctls::default()
        };
        let mut defrag = Defragmenter::new(&cfg);
        for (n, ((data, family, ident, offset, more, unfrag_len, l4_off, proto, error), now, zone))
            in packets.iter().enumerate()
        {
            let mut pkt = Packet::new(n as u64, *now, data, *family);
            pkt.src = u128::from(n as u8 % 3);
            pkt.proto = *proto;
            pkt.tos = *proto;
            pkt.l4_off = *l4_off;
            pkt.link_src = data.get(..6);
            pkt.pkt_type = PktType::Other(7);
            pkt.fragment = Some(FragmentInfo {
                ident: *ident,
                offset: *offset,
                more: *more,
                next_proto: *proto,
                unfrag_len: *unfrag_len,
            });
            pkt.error = match error {
                1 => Some(Box::new(DecodeError::new(Layer::Ipv6Ext, 0, "x"))),
                2 => Some(Box::new(DecodeError::new(Layer::Udp, 0, "x"))),
                _ => None,
            };
            let now = if n == 20 { odd_now } else { *now };
            let res = defrag.push(&pkt, now, *zone);
            check_output(&res, if *family == 4 { 4 } else { 6 });
            if let DefragOutcome::Complete(done) = &res.outcome {
                let mut out = Packet::new(0, 0.0, &done.datagram, *family);
                done.stamp(&mut out);
            }
            check_tables(&defrag);
        }
        defrag.expire(f64::INFINITY);
        defrag.expire(f64::NAN);
        let _ = defrag.held_bytes();
    }
}

/// One datagram of `len` payload bytes cut into pieces of `sizes` (multiples
/// of 8), fed in `order`, some pieces sent twice.
fn pieces(len: usize, sizes: &[usize]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < len {
        let size = sizes.get(i % sizes.len().max(1)).copied().unwrap_or(1480) * 8;
        let end = (at + size.max(8)).min(len);
        out.push((at, end));
        at = end;
        i += 1;
    }
    out
}

proptest! {
    #![proptest_config(config(150))]

    #[test]
    fn large_datagrams_reassemble_within_65535(
        family in prop_oneof![Just(4u8), Just(6u8)],
        len in prop_oneof![8..3000usize, 60000..70000usize],
        sizes in prop::collection::vec(20..1000usize, 1..8),
        shuffle in any::<u64>(),
        again in prop::collection::vec(any::<prop::sample::Index>(), 0..3),
    ) {
        let payload: Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
        let mut parts = pieces(len, &sizes);
        // A deterministic shuffle from the seed.
        let mut seed = shuffle | 1;
        for i in (1..parts.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            parts.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        for idx in &again {
            let copy = *idx.get(&parts);
            parts.push(copy);
        }
        let mut feed = Feed::new();
        let mut done = None;
        for &(start, end) in &parts {
            let more = end < len;
            let bytes = if family == 4 {
                frag4(&payload[start..end], 77, start as u16, more)
            } else {
                frag6(&payload[start..end], 77, start as u16, more)
            };
            if start > 0xFFF8 {
                continue; // cannot be expressed in a fragment offset
            }
            let res = feed.push(&bytes);
            check_output(&res, family);
            check_tables(&feed.defrag);
            if let DefragOutcome::Complete(d) = res.outcome {
                done = Some(d);
            }
        }
        let head = if family == 4 { 20 } else { 40 };
        let fits = head + len <= if family == 4 { 65535 } else { 65535 + 40 };
        // A whole IPv4 datagram is no fragment at all.
        let whole4 = family == 4 && len <= sizes[0] * 8;
        if let Some(d) = &done {
            prop_assert!(fits && !whole4);
            prop_assert_eq!(&d.datagram[head..], &payload[..]);
        } else {
            prop_assert!(!fits || whole4 || parts.iter().any(|&(s, _)| s > 0xFFF8));
        }
        // A copy sent after completion starts a queue of its own; it times out.
        feed.defrag.expire(1e9);
        prop_assert_eq!(feed.defrag.pending(), 0);
        prop_assert_eq!((feed.defrag.memory(4), feed.defrag.memory(6)), (0, 0));
    }
}
