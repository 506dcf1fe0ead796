//! The defragmenter's behaviours one by one, on fragments built here: the
//! same behaviours tests/test_defrag.py checks through a whole firewall
//! (which also has the shared capture traces and the live-kernel check).

use super::*;
use crate::defrag::truesize;

fn ipv4(o: impl FnOnce(&mut V4)) -> V4 {
    let mut v = V4::default();
    o(&mut v);
    v
}

fn l4_checksum_ok6(segment: &[u8], proto: u8) -> bool {
    csum(&[pseudo6(segment.len(), proto), segment.to_vec()].concat()) == 0
}

// -- IPv4 -------------------------------------------------------------------

#[test]
fn two_fragments_reassemble_to_the_original_message() {
    let msg = echo4(100, 32);
    let mut feed = Feed::new();
    let first = feed.push(&frag4(&msg[..16], 0x1C46, 0, true));
    assert_eq!(first.kind(), "queued");
    assert_eq!(
        first.reason(),
        "queued for reassembly (fragment 1 of datagram id 0x1c46 from 192.0.2.1)"
    );
    let done = whole(feed.push_at(&frag4(&msg[16..], 0x1C46, 16, false), 0.5, None));
    assert_eq!(
        done.reason,
        "reassembled datagram id 0x1c46 from 192.0.2.1 from fragments #1, #2 (52 bytes)"
    );
    let mut pkt = decode(&done.datagram, 0, 0.0);
    done.stamp(&mut pkt);
    assert!(pkt.error.is_none() && pkt.fragment.is_none() && pkt.data[20..] == msg[..]);
    assert_eq!(
        (pkt.index, pkt.ts, pkt.ip_len, pkt.icmp_id),
        (2, 0.5, 52, 100)
    );
    assert_eq!((feed.defrag.pending(), feed.defrag.memory(4)), (0, 0));
}

#[test]
fn out_of_order_fragments() {
    let msg = echo4(101, 40);
    let kinds = Feed::new().run(&[
        frag4(&msg[24..], 9, 24, false),
        frag4(&msg[8..24], 9, 8, true),
        frag4(&msg[..8], 9, 0, true),
    ]);
    assert_eq!(kinds, ["queued", "queued", "complete"]);
}

#[test]
fn header_comes_from_the_first_fragment() {
    let msg = echo4(102, 32);
    let options = vec![0x94, 0x04, 0x00, 0x00]; // router alert
    let mut feed = Feed::new();
    feed.push(&frag4_with(&msg[16..], 7, 16, false, &ipv4(|v| v.ttl = 9)));
    let first = ipv4(|v| {
        v.ttl = 200;
        v.options = options.clone();
    });
    let done = whole(feed.push(&frag4_with(&msg[..16], 7, 0, true, &first)));
    let pkt = decode(&done.datagram, 0, 0.0);
    assert!(pkt.error.is_none(), "checksum and length rewritten");
    assert_eq!((pkt.ttl, pkt.ip_id, pkt.l4_off), (200, 7, 24));
    assert_eq!(&pkt.data[20..24], &options[..]);
    assert_eq!(&pkt.data[24..], &msg[..]);
    assert_eq!(&pkt.data[6..8], &[0, 0]); // no DF, no MF, offset 0
}

#[test]
fn df_kept_only_when_the_largest_fragment_had_it() {
    let msg = echo4(103, 40);
    let df = ipv4(|v| v.df = true);
    let big_df = Feed::new().run(&[
        frag4_with(&msg[..32], 1, 0, true, &df),
        frag4(&msg[32..], 1, 32, false),
    ]);
    let mut feed = Feed::new();
    feed.push(&frag4_with(&msg[..32], 1, 0, true, &df));
    let with_df = whole(feed.push(&frag4(&msg[32..], 1, 32, false)));
    let mut feed = Feed::new();
    feed.push(&frag4(&msg[..32], 1, 0, true));
    let without = whole(feed.push(&frag4_with(&msg[32..], 1, 32, false, &df)));
    assert_eq!(big_df.last(), Some(&"complete"));
    assert!(with_df.datagram[6] & 0x40 != 0 && without.datagram[6] & 0x40 == 0);
}

#[test]
fn overlap_discards_the_whole_datagram() {
    let msg = echo4(104, 32);
    let mut feed = Feed::new();
    feed.push(&frag4(&msg[..16], 2, 0, true));
    let res = feed.push(&frag4(&msg[8..24], 2, 8, true));
    assert_eq!(res.kind(), "dropped");
    assert_eq!(
        res.reason(),
        "dropped: fragment [8, 24) overlaps queued data; discarding queued fragments #1"
    );
    assert_eq!(feed.push(&frag4(&msg[16..], 2, 16, false)).kind(), "queued"); // a fresh queue
}

#[test]
fn exact_duplicate_is_dropped_and_the_queue_lives_on() {
    let msg = echo4(105, 32);
    let mut feed = Feed::new();
    feed.push(&frag4(&msg[..16], 3, 0, true));
    let dup = feed.push(&frag4(&msg[..16], 3, 0, true));
    assert_eq!(
        dup.reason(),
        "dropped: duplicate fragment [0, 16) of datagram id 0x3 from 192.0.2.1; \
         the queue keeps the first copy"
    );
    assert_eq!(
        feed.push(&frag4(&msg[16..], 3, 16, false)).kind(),
        "complete"
    );
}

#[test]
fn duplicate_inside_a_run_of_appended_fragments() {
    let msg = echo4(106, 32);
    let kinds = Feed::new().run(&[
        frag4(&msg[..8], 4, 0, true),
        frag4(&msg[8..16], 4, 8, true),
        frag4(&msg[..16], 4, 0, true),
        frag4(&msg[16..], 4, 16, false),
    ]);
    assert_eq!(kinds, ["queued", "queued", "dropped", "complete"]);
}

#[test]
fn fragment_spanning_two_separate_runs_is_an_overlap() {
    let msg = echo4(107, 32);
    let kinds = Feed::new().run(&[
        frag4(&msg[16..], 5, 16, false),
        frag4(&msg[8..16], 5, 8, true),
        frag4(&msg[..16], 5, 0, true),
        frag4(&msg[..8], 5, 0, true),
    ]);
    assert_eq!(kinds, ["queued", "queued", "dropped", "queued"]);
}

#[test]
fn ipv4_inconsistent_last_fragment_kills_the_queue() {
    let msg = echo4(108, 32);
    let mut feed = Feed::new();
    feed.push(&frag4(&msg[8..24], 6, 8, true));
    let res = feed.push(&frag4(&msg[8..16], 6, 8, false));
    assert_eq!(
        res.reason(),
        "dropped: last fragment ends at 16 but the datagram is known to be 24 bytes; \
         discarding queued fragments #1"
    );
    let kinds = feed.run(&[
        frag4(&msg[..8], 6, 0, true),
        frag4(&msg[24..], 6, 24, false),
    ]);
    assert_eq!(kinds, ["queued", "queued"]);
}

#[test]
fn ipv4_empty_fragment_kills_the_queue() {
    let msg = echo4(109, 32);
    let mut feed = Feed::new();
    feed.push(&frag4(&msg[..16], 8, 0, true));
    let res = feed.push(&frag4(&[], 8, 16, true));
    assert_eq!(
        res.reason(),
        "dropped: empty fragment at offset 16; discarding queued fragments #1"
    );
    assert_eq!(feed.push(&frag4(&msg[16..], 8, 16, false)).kind(), "queued");
}

#[test]
fn ipv4_more_fragments_length_is_cut_to_a_multiple_of_8() {
    let msg = echo4(110, 32);
    let mut feed = Feed::new();
    assert_eq!(feed.push(&frag4(&msg[..13], 10, 0, true)).kind(), "queued");
    let done = whole(feed.push(&frag4(&msg[8..], 10, 8, false)));
    assert_eq!(&done.datagram[20..], &msg[..]);
}

#[test]
fn ipfrag_max_dist_restarts_a_stale_queue() {
    let mut last = None;
    for (between, expect) in [(63, "complete"), (64, "queued")] {
        let msg = echo4(111, 32);
        let mut feed = Feed::new();
        feed.push(&frag4(&msg[..16], 11, 0, true));
        for i in 0..between {
            feed.push(&frag4(&[0; 8], 1000 + i, 0, true));
        }
        let res = feed.push(&frag4(&msg[16..], 11, 16, false));
        assert_eq!(res.kind(), expect, "{between}");
        last = Some(res);
    }
    let res = last.unwrap();
    assert_eq!(
        res.reason(),
        "queued for reassembly after an ipfrag_max_dist restart that discarded #1 \
         (fragment 1 of datagram id 0xb from 192.0.2.1)"
    );
}

#[test]
fn ipfrag_max_dist_counts_per_source_and_zero_disables() {
    let msg = echo4(112, 32);
    let other = [192, 0, 2, 99];
    let cases = [
        (Sysctls::default(), other),
        (
            Sysctls {
                ipfrag_max_dist: 0,
                ..Sysctls::default()
            },
            SRC4,
        ),
    ];
    for (cfg, src) in cases {
        let mut feed = Feed::with(cfg);
        feed.push(&frag4(&msg[..16], 12, 0, true));
        for i in 0..100 {
            feed.push(&frag4_with(
                &[0; 8],
                2000 + i,
                0,
                true,
                &ipv4(|v| v.src = src),
            ));
        }
        assert_eq!(
            feed.push(&frag4(&msg[16..], 12, 16, false)).kind(),
            "complete"
        );
    }
}

#[test]
fn queues_are_keyed_by_protocol() {
    let msg = echo4(113, 32);
    let kinds = Feed::new().run(&[
        frag4(&msg[..16], 13, 0, true),
        frag4_with(&msg[16..], 13, 16, false, &ipv4(|v| v.proto = 17)),
    ]);
    assert_eq!(kinds, ["queued", "queued"]);
}

#[test]
fn ecn_not_ect_mixed_with_ect_is_dropped() {
    let msg = echo4(114, 32);
    let mut feed = Feed::new();
    feed.push(&frag4(&msg[..16], 14, 0, true));
    let res = feed.push(&frag4_with(&msg[16..], 14, 16, false, &ipv4(|v| v.tos = 2)));
    assert_eq!(
        res.reason(),
        "dropped: datagram id 0xe from 192.0.2.1 mixes ECN-capable and not-ECT parts"
    );
    assert_eq!(feed.defrag.memory(4), 0);
    let mut feed = Feed::new();
    feed.push(&frag4_with(&msg[..16], 15, 0, true, &ipv4(|v| v.tos = 2)));
    let done = whole(feed.push(&frag4_with(&msg[16..], 15, 16, false, &ipv4(|v| v.tos = 3))));
    assert_eq!(decode(&done.datagram, 0, 0.0).tos, 3); // CE wins
}

#[test]
fn oversize_reassembly_is_refused() {
    let mut feed = Feed::new();
    assert_eq!(
        feed.push(&frag4(&vec![0; 65000], 17, 0, true)).kind(),
        "queued"
    );
    let res = feed.push(&frag4(&[0; 1000], 17, 65000, false));
    assert_eq!(res.kind(), "dropped");
    assert_eq!(
        res.reason(),
        "dropped: datagram id 0x11 from 192.0.2.1 would be 66020 bytes (over 65535)"
    );
}

#[test]
fn ipv4_timeout_runs_from_the_first_fragment() {
    let msg = echo4(115, 48);
    let mut feed = Feed::new();
    feed.push_at(&frag4(&msg[..16], 18, 0, true), 100.0, None);
    let mid = feed.push_at(&frag4(&msg[16..32], 18, 16, true), 129.0, None);
    assert_eq!(mid.kind(), "queued");
    let res = feed.push_at(&frag4(&msg[32..], 18, 32, false), 130.0, None);
    assert_eq!(res.expired, [1, 2]);
    assert_eq!(res.kind(), "queued");
}

#[test]
fn ipv6_timeout_is_nf_conntrack_frag6_timeout() {
    let msg = echo6(116, 32);
    let mut feed = Feed::with(Sysctls {
        nf_conntrack_frag6_timeout: 5,
        ..Sysctls::default()
    });
    feed.push_at(&frag6(&msg[..16], 19, 0, true), 0.0, None);
    assert!(feed.defrag.expire(4.9).is_empty());
    assert_eq!(feed.defrag.expire(5.0), [1]);
}

#[test]
fn memory_over_high_thresh_drops_every_fragment() {
    let cfg = Sysctls {
        ipfrag_low_thresh: 1000,
        ipfrag_high_thresh: 3000,
        ..Sysctls::default()
    };
    let msg = echo4(117, 32);
    let mut feed = Feed::with(cfg);
    feed.push(&frag4(&msg[..16], 20, 0, true));
    assert_eq!(feed.defrag.memory(4), 1032); // 200 for the queue, 832 for the skb
    feed.push(&frag4(&[0; 16], 21, 0, true));
    assert_eq!(
        feed.push(&frag4(&msg[16..], 20, 16, false)).kind(),
        "complete"
    );
    feed.push(&frag4(&msg[..16], 22, 0, true));
    feed.push(&frag4(&[0; 16], 23, 0, true));
    assert_eq!(feed.defrag.memory(4), 3096);
    let res = feed.push(&frag4(&msg[16..], 22, 16, false));
    assert_eq!(res.kind(), "dropped");
    assert_eq!(
        res.reason(),
        "dropped: fragment memory 3096 bytes exceeds ipfrag_high_thresh 3000"
    );
}

#[test]
fn truesize_steps_measured_on_veth() {
    for (n, size) in [
        (36, 832),
        (234, 1280),
        (620, 1280),
        (1500, 2304),
        (2520, 4352),
    ] {
        assert_eq!(truesize(n), size, "{n}");
    }
    assert_eq!(truesize(9300), 256 + 16384);
}

#[test]
fn non_fragments_and_broken_headers_pass() {
    let mut feed = Feed::new();
    let plain = feed.push(&frag4(&echo4(1, 16), 30, 0, false));
    assert_eq!((plain.kind(), plain.reason()), ("pass", "not a fragment"));
    let mut bad = frag4(&[0; 16], 31, 0, true);
    bad[10] ^= 1;
    assert_eq!(feed.push(&bad).kind(), "pass");
    // A fragment whose IP header failed still passes, whatever its fragment info.
    let good = frag4(&[0; 16], 32, 0, true);
    let mut pkt = decode(&good, 9, 0.0);
    pkt.error = Some(Box::new(DecodeError::new(Layer::Ipv4, 0, "x")));
    assert_eq!(feed.defrag.push(&pkt, 0.0, 0).kind(), "pass");
    assert_eq!(feed.defrag.pending(), 0);
}

// -- IPv6 -------------------------------------------------------------------

#[test]
fn ipv6_reassembly_removes_the_fragment_header() {
    let msg = echo6(200, 40);
    let mut feed = Feed::new();
    feed.push(&frag6(&msg[16..], 0xCDE0_0817, 16, false));
    let done = whole(feed.push(&frag6(&msg[..16], 0xCDE0_0817, 0, true)));
    assert_eq!(
        done.reason,
        "reassembled datagram id 0xcde00817 from 2001:db8::1 from fragments #1, #2 (80 bytes)"
    );
    let pkt = decode(&done.datagram, 0, 0.0);
    assert!(pkt.data[6] == 58 && pkt.data[40..] == msg[..] && pkt.ip_len == 80);
    assert_eq!((pkt.icmp_type, pkt.icmp_id, pkt.ip_id), (128, 200, 0));
    assert!(l4_checksum_ok6(&pkt.data[40..], 58));
}

#[test]
fn ipv6_extension_header_before_fragment_header_takes_next_header() {
    let msg = echo6(201, 32);
    let dest = V6 {
        before: [&[44u8, 0][..], &[0; 6]].concat(),
        ..V6::default()
    };
    let mut feed = Feed::new();
    feed.push(&frag6_with(&msg[..16], 22, 0, true, &dest));
    let done = whole(feed.push(&frag6_with(&msg[16..], 22, 16, false, &dest)));
    let pkt = decode(&done.datagram, 0, 0.0);
    assert!(pkt.data[6] == 60 && pkt.data[40] == 58 && pkt.data[48..] == msg[..]);
    assert!(pkt.error.is_none() && pkt.l4_off == 48 && pkt.ip_len == 40 + 8 + 32);
}

#[test]
fn ipv6_atomic_fragment_completes_at_once_without_its_header() {
    let msg = echo6(202, 32);
    let done = whole(Feed::new().push(&frag6(&msg, 23, 0, false)));
    let pkt = decode(&done.datagram, 0, 0.0);
    assert!(pkt.data.len() == 72 && pkt.fragment.is_none() && pkt.data[6] == 58);
}

#[test]
fn ipv6_overlap_and_duplicate() {
    let msg = echo6(203, 32);
    let kinds = Feed::new().run(&[
        frag6(&msg[..16], 24, 0, true),
        frag6(&msg[8..24], 24, 8, true),
        frag6(&msg[16..], 24, 16, false),
    ]);
    assert_eq!(kinds, ["queued", "dropped", "queued"]);
    let kinds = Feed::new().run(&[
        frag6(&msg[..16], 25, 0, true),
        frag6(&msg[..16], 25, 0, true),
        frag6(&msg[16..], 25, 16, false),
    ]);
    assert_eq!(kinds, ["queued", "dropped", "complete"]);
}

#[test]
fn ipv6_inconsistent_last_fragment_keeps_the_queue() {
    let msg = echo6(204, 32);
    let mut feed = Feed::new();
    feed.push(&frag6(&msg[8..24], 26, 8, true));
    let res = feed.push(&frag6(&msg[8..16], 26, 8, false));
    assert_eq!(
        res.reason(),
        "dropped: last fragment ends at 16 but the datagram is known to be 24 bytes (queue kept)"
    );
    let kinds = feed.run(&[
        frag6(&msg[..8], 26, 0, true),
        frag6(&msg[24..], 26, 24, false),
    ]);
    assert_eq!(kinds, ["queued", "complete"]);
}

#[test]
fn ipv6_empty_fragment_keeps_the_queue() {
    let msg = echo6(205, 32);
    let mut feed = Feed::new();
    feed.push(&frag6(&msg[..16], 27, 0, true));
    let res = feed.push(&frag6(&[], 27, 16, true));
    assert_eq!(
        res.reason(),
        "dropped: empty fragment at offset 16 (queue kept)"
    );
    assert_eq!(
        feed.push(&frag6(&msg[16..], 27, 16, false)).kind(),
        "complete"
    );
}

#[test]
fn ipv6_more_fragments_not_multiple_of_8_passes_and_kills_the_queue() {
    let msg = echo6(206, 40);
    let mut feed = Feed::new();
    feed.push(&frag6(&msg[..16], 28, 0, true));
    let res = feed.push(&frag6(&msg[16..21], 28, 16, true));
    assert_eq!(res.kind(), "pass");
    assert_eq!(
        res.reason(),
        "fragment with MF set and length 5 not a multiple of 8: passed unreassembled; \
         discarded queued fragments #1"
    );
    assert_eq!(
        feed.push(&frag6(&msg[16..], 28, 16, false)).kind(),
        "queued"
    );
}

#[test]
fn ipv6_first_fragment_without_full_layer4_header_passes() {
    let res = Feed::new().push(&frag6(&echo6(207, 32)[..4], 29, 0, true));
    assert_eq!(res.kind(), "pass");
    assert_eq!(
        res.reason(),
        "first fragment lacks its full layer-4 header: passed unreassembled (RFC 8200 4.5)"
    );
}

#[test]
fn ipv6_fragment_ending_beyond_65535_is_dropped() {
    let res = Feed::new().push(&frag6(&[0; 1000], 30, 65000, false));
    assert_eq!(res.kind(), "dropped");
    assert_eq!(
        res.reason(),
        "dropped: fragment [65000, 66000) ends beyond 65535"
    );
}

#[test]
fn ipv6_queues_are_keyed_by_input_interface() {
    let msg = echo6(208, 32);
    let mut feed = Feed::new();
    feed.push_at(&frag6(&msg[..16], 31, 0, true), 0.0, Some("eth0"));
    let other = feed.push_at(&frag6(&msg[16..], 31, 16, false), 0.0, Some("eth1"));
    assert_eq!(other.kind(), "queued");
    let done = feed.push_at(&frag6(&msg[16..], 31, 16, false), 0.0, Some("eth0"));
    assert_eq!(done.kind(), "complete");
    assert_eq!(whole(done).iface_in.as_deref(), Some("eth0"));
}

#[test]
fn ipv6_addresses_are_written_as_python_ipaddress_writes_them() {
    use crate::defrag::addr_text;
    for (text, want) in [
        ("::ffff:1.2.3.4", "::ffff:102:304"),
        ("::1.2.3.4", "::102:304"),
        ("1:0:0:1:0:0:0:1", "1:0:0:1::1"),
        ("1:0:0:1:0:0:1:1", "1::1:0:0:1:1"),
        ("::", "::"),
        ("0:0:1::", "0:0:1::"),
        ("2001:db8:0:0:1:0:0:0", "2001:db8:0:0:1::"),
        ("1:2:3:4:5:6:7:0", "1:2:3:4:5:6:7:0"),
    ] {
        let value = u128::from(text.parse::<std::net::Ipv6Addr>().unwrap());
        assert_eq!(addr_text(6, value), want, "{text}");
    }
    assert_eq!(addr_text(4, 0xC000_0201), "192.0.2.1");
}

#[test]
fn reassembled_packet_takes_link_details_from_the_first_fragment() {
    let msg = echo4(120, 32);
    let (one, two) = (
        frag4(&msg[..16], 40, 0, true),
        frag4(&msg[16..], 40, 16, false),
    );
    let mut defrag = Defragmenter::new(&Sysctls::default());
    let mut first = decode(&one, 5, 1.0);
    first.link_type = 1;
    first.link_src = Some(&[1, 2, 3, 4, 5, 6]);
    first.pkt_type = crate::packet::PktType::Broadcast;
    first.iface_in = Some(Arc::from("in0"));
    defrag.push(&first, 1.0, 0);
    let mut last = decode(&two, 6, 2.0);
    last.iface_in = Some(Arc::from("in1"));
    let done = whole(defrag.push(&last, 2.0, 0));
    let mut pkt = decode(&done.datagram, 0, 0.0);
    done.stamp(&mut pkt);
    assert_eq!((pkt.index, pkt.ts, pkt.link_type), (6, 2.0, 1));
    assert_eq!(pkt.link_src, Some(&[1, 2, 3, 4, 5, 6][..]));
    assert_eq!(pkt.pkt_type, crate::packet::PktType::Broadcast);
    assert_eq!(pkt.iface_in.as_deref(), Some("in1"));
}

#[test]
fn zones_keep_queues_apart() {
    let msg = echo4(121, 32);
    let (one, two) = (
        frag4(&msg[..16], 41, 0, true),
        frag4(&msg[16..], 41, 16, false),
    );
    let mut defrag = Defragmenter::new(&Sysctls::default());
    defrag.push(&decode(&one, 1, 0.0), 0.0, 1);
    assert_eq!(defrag.push(&decode(&two, 2, 0.0), 0.0, 2).kind(), "queued");
    assert_eq!(
        defrag.push(&decode(&two, 3, 0.0), 0.0, 1).kind(),
        "complete"
    );
}
