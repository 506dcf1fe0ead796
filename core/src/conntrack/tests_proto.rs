//! UDP, UDP-Lite, generic and GRE tracking as Linux 6.18 does it.

use crate::config::Sysctls;
use crate::conntrack::conn::ProtoData;
use crate::conntrack::conn::{
    Conn, Tuple, CT_ESTABLISHED, CT_ESTABLISHED_REPLY, CT_INVALID, CT_NEW, IPS_ASSURED,
    IPS_SEEN_REPLY,
};
use crate::conntrack::core::ConntrackTable;
use crate::conntrack::l4proto::Action;
use crate::conntrack::proto_gre::{self, gre_keys};
use crate::conntrack::testkit::*;
use crate::conntrack::{proto_generic, proto_udp};

const CLIENT: u128 = 0x0A63_0101; // 10.99.1.1
const SERVER: u128 = 0x0A63_0201; // 10.99.2.1
const CLIENT6: u128 = 0xFD99_0001_0000_0000_0000_0000_0000_0001;
const SERVER6: u128 = 0xFD99_0002_0000_0000_0000_0000_0000_0001;

fn cfg() -> Sysctls {
    Sysctls::default()
}

fn cfg_with(name: &str, value: u64) -> Sysctls {
    let mut cfg = Sysctls::default();
    cfg.set(name, value).unwrap();
    cfg
}

fn status(table: &ConntrackTable, id: crate::conntrack::conn::ConnId) -> u32 {
    table.conn(id).unwrap().status
}

// -- UDP validation (udp_error) ------------------------------------------------

#[test]
fn udp_good_checksum_is_valid() {
    let pkt = udp(CLIENT, SERVER, 1000, 53);
    assert_eq!(
        proto_udp::udp_error(&pkt.packet(0, 0.0), &cfg(), true),
        None
    );
}

#[test]
fn udp_bad_checksum_is_invalid_at_prerouting_only() {
    let pkt = udp_with(4, CLIENT, SERVER, 1000, 53, b"hello", None, Sum::Bad);
    let reason = proto_udp::udp_error(&pkt.packet(0, 0.0), &cfg(), true).unwrap();
    assert_eq!(reason, "INVALID: UDP bad checksum");
    assert!(matches!(reason, std::borrow::Cow::Borrowed(_)));
    // Locally generated packets (LOCAL_OUT) are never checked.
    assert_eq!(
        proto_udp::udp_error(&pkt.packet(0, 0.0), &cfg(), false),
        None
    );
}

#[test]
fn udp_bad_checksum_accepted_when_checksum_sysctl_off() {
    let pkt = udp_with(4, CLIENT, SERVER, 1000, 53, b"hello", None, Sum::Bad);
    let off = cfg_with("nf_conntrack_checksum", 0);
    assert_eq!(proto_udp::udp_error(&pkt.packet(0, 0.0), &off, true), None);
}

#[test]
fn udp_zero_checksum_accepted_without_verification() {
    for (family, src, dst) in [(4, CLIENT, SERVER), (6, CLIENT6, SERVER6)] {
        let pkt = udp_with(family, src, dst, 1000, 53, b"hello", None, Sum::Zero);
        assert_eq!(
            proto_udp::udp_error(&pkt.packet(0, 0.0), &cfg(), true),
            None
        );
    }
}

#[test]
fn udp_ipv6_checksum_verified() {
    let good = udp_with(6, CLIENT6, SERVER6, 1000, 53, b"hello", None, Sum::Good);
    assert_eq!(
        proto_udp::udp_error(&good.packet(0, 0.0), &cfg(), true),
        None
    );
    let bad = udp_with(6, CLIENT6, SERVER6, 1000, 53, b"hello", None, Sum::Bad);
    assert!(proto_udp::udp_error(&bad.packet(0, 0.0), &cfg(), true).is_some());
    // An odd-length payload pads its last word.
    let odd = udp_with(6, CLIENT6, SERVER6, 1000, 53, b"odd", None, Sum::Good);
    assert_eq!(
        proto_udp::udp_error(&odd.packet(0, 0.0), &cfg(), true),
        None
    );
}

#[test]
fn udp_length_field_larger_than_datagram_is_invalid() {
    let pkt = udp_with(4, CLIENT, SERVER, 1000, 53, b"x", Some(100), Sum::Zero);
    let reason = proto_udp::udp_error(&pkt.packet(0, 0.0), &cfg(), true).unwrap();
    assert_eq!(
        reason,
        "INVALID: UDP truncated/malformed packet (length field 100, 9 bytes present)"
    );
}

#[test]
fn udp_length_field_below_header_is_invalid() {
    let pkt = udp_with(4, CLIENT, SERVER, 1000, 53, b"hello", Some(7), Sum::Zero);
    assert!(proto_udp::udp_error(&pkt.packet(0, 0.0), &cfg(), true).is_some());
}

#[test]
fn udp_shorter_length_field_than_datagram_is_accepted() {
    let pkt = udp_with(4, CLIENT, SERVER, 1000, 53, b"abcdef", Some(10), Sum::Zero);
    assert_eq!(
        proto_udp::udp_error(&pkt.packet(0, 0.0), &cfg(), true),
        None
    );
}

#[test]
fn udp_header_shorter_than_eight_bytes_is_invalid() {
    let mut pkt = udp_with(4, CLIENT, SERVER, 1000, 53, b"", None, Sum::Good);
    pkt.data.truncate(26);
    let reason = proto_udp::udp_error(&pkt.packet(0, 0.0), &cfg(), true).unwrap();
    assert_eq!(
        reason,
        "INVALID: UDP short packet (6 bytes, header needs 8)"
    );
    // A header offset past the end is short too, never a panic.
    let mut far = pkt.clone();
    far.l4_off = 1000;
    assert!(proto_udp::udp_error(&far.packet(0, 0.0), &cfg(), true).is_some());
}

// -- UDP timeouts and ASSURED (nf_conntrack_udp_packet) -------------------------

#[test]
fn udp_query_response_stream() {
    let mut table = ConntrackTable::new(cfg());
    let first = step(&mut table, &udp(CLIENT, SERVER, 1091, 53), 0.0);
    assert_eq!(first.ctinfo, CT_NEW);
    assert_eq!(
        first.reason,
        "UDP: no reply seen yet (nf_conntrack_udp_timeout)"
    );
    let conn = id(&first);
    assert_eq!(table.conn(conn).unwrap().remaining(0.5), 29);
    assert_eq!(status(&table, conn) & IPS_SEEN_REPLY, 0);

    let reply = step(&mut table, &udp(SERVER, CLIENT, 53, 1091), 0.1);
    assert_eq!(reply.ctinfo, CT_ESTABLISHED_REPLY);
    assert_eq!(reply.conn, Some(conn));
    assert_eq!(
        reply.reason,
        "UDP: first reply; streams start with the next packet (nf_conntrack_udp_timeout)"
    );
    assert_ne!(status(&table, conn) & IPS_SEEN_REPLY, 0);
    assert_eq!(status(&table, conn) & IPS_ASSURED, 0);
    assert!(approx(expires(&table, conn), 30.1));

    let early = step(&mut table, &udp(CLIENT, SERVER, 1091, 53), 1.5);
    assert_eq!(early.ctinfo, CT_ESTABLISHED);
    assert_eq!(
        early.reason,
        "UDP: replied but not older than 2 s (nf_conntrack_udp_timeout)"
    );
    assert!(approx(expires(&table, conn), 31.5));
    assert_eq!(status(&table, conn) & IPS_ASSURED, 0);

    let late = step(&mut table, &udp(CLIENT, SERVER, 1091, 53), 2.5);
    assert_eq!(late.ctinfo, CT_ESTABLISHED);
    assert_eq!(
        late.reason,
        "UDP: stream, replied and older than 2 s (nf_conntrack_udp_timeout_stream, ASSURED)"
    );
    assert!(approx(expires(&table, conn), 122.5));
    assert_ne!(status(&table, conn) & IPS_ASSURED, 0);
}

#[test]
fn udp_two_second_rule_is_strict_and_counts_from_creation() {
    let mut table = ConntrackTable::new(cfg());
    let conn = id(&step(&mut table, &udp(CLIENT, SERVER, 2000, 53), 10.0));
    step(&mut table, &udp(SERVER, CLIENT, 53, 2000), 10.5);
    step(&mut table, &udp(CLIENT, SERVER, 2000, 53), 12.0); // exactly 2 s: not after
    assert_eq!(status(&table, conn) & IPS_ASSURED, 0);
    assert!(approx(expires(&table, conn), 42.0));
    step(&mut table, &udp(SERVER, CLIENT, 53, 2000), 12.01); // either direction counts
    assert_ne!(status(&table, conn) & IPS_ASSURED, 0);
    assert!(approx(expires(&table, conn), 132.01));
}

#[test]
fn udp_first_reply_after_two_seconds_does_not_assure() {
    let mut table = ConntrackTable::new(cfg());
    let conn = id(&step(&mut table, &udp(CLIENT, SERVER, 3000, 53), 0.0));
    let reply = step(&mut table, &udp(SERVER, CLIENT, 53, 3000), 2.2);
    assert_eq!(reply.ctinfo, CT_ESTABLISHED_REPLY);
    assert_eq!(status(&table, conn) & IPS_ASSURED, 0);
    assert!(approx(expires(&table, conn), 32.2));
    step(&mut table, &udp(CLIENT, SERVER, 3000, 53), 2.3);
    assert_ne!(status(&table, conn) & IPS_ASSURED, 0);
    assert!(approx(expires(&table, conn), 122.3));
}

#[test]
fn udp_unreplied_repeats_stay_new_and_rearm_to_30() {
    let mut table = ConntrackTable::new(cfg());
    let first = step(&mut table, &udp(CLIENT, SERVER, 4000, 53), 0.0);
    let again = step(&mut table, &udp(CLIENT, SERVER, 4000, 53), 1.0);
    assert_eq!(again.ctinfo, CT_NEW);
    assert_eq!(again.conn, first.conn);
    assert!(approx(expires(&table, id(&again)), 31.0));
    let later = step(&mut table, &udp(CLIENT, SERVER, 4000, 53), 25.0);
    assert_eq!(later.ctinfo, CT_NEW);
    assert!(approx(expires(&table, id(&later)), 55.0)); // re-armed, not added up
}

#[test]
fn udp_stream_timeout_follows_sysctl() {
    let mut cfg = cfg_with("nf_conntrack_udp_timeout_stream", 180);
    cfg.nf_conntrack_udp_timeout = 10;
    let mut table = ConntrackTable::new(cfg);
    let conn = id(&step(&mut table, &udp(CLIENT, SERVER, 5000, 53), 0.0));
    assert!(approx(expires(&table, conn), 10.0));
    step(&mut table, &udp(SERVER, CLIENT, 53, 5000), 0.1);
    step(&mut table, &udp(CLIENT, SERVER, 5000, 53), 3.0);
    assert!(approx(expires(&table, conn), 183.0));
}

#[test]
fn udp_bad_checksum_packet_is_invalid_and_leaves_entry_alone() {
    let mut table = ConntrackTable::new(cfg());
    let conn = id(&step(&mut table, &udp(CLIENT, SERVER, 6000, 53), 0.0));
    let bad = udp_with(4, SERVER, CLIENT, 53, 6000, b"hello", None, Sum::Bad);
    let result = step(&mut table, &bad, 1.0);
    assert_eq!(result.ctinfo, CT_INVALID);
    assert_eq!(result.conn, None);
    assert_eq!(result.reason, "INVALID: UDP bad checksum");
    assert_eq!(status(&table, conn) & IPS_SEEN_REPLY, 0);
    assert!(approx(expires(&table, conn), 30.0));
    assert_eq!(table.stats.invalid, 1);
}

#[test]
fn udp_tracker_identity() {
    assert_eq!(proto_udp::UDP_NAME, "udp");
    assert_eq!(proto_udp::UDPLITE_NAME, "udplite");
    assert_eq!(crate::conntrack::core::tracker_name(17), "udp");
    assert_eq!(crate::conntrack::core::tracker_name(136), "udplite");
}

// -- UDP-Lite --------------------------------------------------------------------

fn lite_error(pkt: &TestPacket, cfg: &Sysctls) -> Option<crate::reason::Reason> {
    proto_udp::udplite_error(&pkt.packet(0, 0.0), cfg, true)
}

#[test]
fn udplite_correct_checksum_is_invalid_in_6_18() {
    let pkt = lite(CLIENT, SERVER, 7000, 9000);
    assert_eq!(
        lite_error(&pkt, &cfg()).unwrap(),
        "INVALID: UDP-Lite bad checksum"
    );
    assert_eq!(
        lite_error(&pkt, &cfg_with("nf_conntrack_checksum", 0)),
        None
    );
}

#[test]
fn udplite_ipv4_kernel_accepts_udp_pseudo_header() {
    let pkt = udplite(4, CLIENT, SERVER, 7000, 9000, b"lite", 0, 17, None, true);
    assert_eq!(lite_error(&pkt, &cfg()), None);
}

#[test]
fn udplite_ipv4_quirk_uses_length_modulo_256() {
    let payload = [0u8; 300];
    let total = 8 + payload.len();
    let swapped = udplite(
        4,
        CLIENT,
        SERVER,
        7000,
        9000,
        &payload,
        0,
        (total & 0xFF) as u8,
        Some(17),
        true,
    );
    assert_eq!(lite_error(&swapped, &cfg()), None);
    let plain_udp = udplite(4, CLIENT, SERVER, 7000, 9000, &payload, 0, 17, None, true);
    assert!(lite_error(&plain_udp, &cfg()).is_some());
}

#[test]
fn udplite_ipv6_kernel_accepts_next_header_17_only() {
    let good_for_kernel = udplite(6, CLIENT6, SERVER6, 7000, 9000, b"lite", 0, 17, None, true);
    assert_eq!(lite_error(&good_for_kernel, &cfg()), None);
    let correct = udplite(6, CLIENT6, SERVER6, 7000, 9000, b"lite", 0, 136, None, true);
    assert!(lite_error(&correct, &cfg()).is_some());
}

#[test]
fn udplite_rfc3828_variant_accepts_correct_checksums() {
    let check =
        |pkt: &TestPacket| proto_udp::udplite_error_rfc3828(&pkt.packet(0, 0.0), &cfg(), true);
    assert_eq!(check(&lite(CLIENT, SERVER, 7000, 9000)), None);
    assert_eq!(
        check(&udplite(
            6, CLIENT6, SERVER6, 7000, 9000, b"lite", 0, 136, None, true
        )),
        None
    );
    assert!(check(&udplite(
        4, CLIENT, SERVER, 7000, 9000, b"lite", 0, 17, None, true
    ))
    .is_some());
}

#[test]
fn udplite_partial_coverage_checks_only_covered_bytes() {
    let mut pkt = udplite(
        4,
        CLIENT,
        SERVER,
        7000,
        9000,
        b"abcdefgh",
        8,
        17,
        None,
        true,
    );
    assert_eq!(lite_error(&pkt, &cfg()), None);
    let last = pkt.data.len() - 1;
    pkt.data[last] = b'Z'; // outside the coverage: still fine
    assert_eq!(lite_error(&pkt, &cfg()), None);
}

#[test]
fn udplite_checksum_zero_is_always_invalid() {
    let pkt = udplite(4, CLIENT, SERVER, 7000, 9000, b"lite", 0, 136, None, false);
    for cfg in [cfg(), cfg_with("nf_conntrack_checksum", 0)] {
        assert_eq!(
            lite_error(&pkt, &cfg).unwrap(),
            "INVALID: UDP-Lite checksum missing (UDP-Lite requires one)"
        );
    }
}

#[test]
fn udplite_bad_coverage_is_invalid() {
    for coverage in [1u16, 7, 100] {
        let pkt = udplite(
            4, CLIENT, SERVER, 7000, 9000, b"lite", coverage, 17, None, true,
        );
        let reason = lite_error(&pkt, &cfg_with("nf_conntrack_checksum", 0)).unwrap();
        assert_eq!(
            reason,
            format!("INVALID: UDP-Lite invalid checksum coverage ({coverage}, 12 bytes present)")
        );
    }
}

#[test]
fn udplite_assured_on_packet_after_first_reply() {
    let mut table = ConntrackTable::new(cfg_with("nf_conntrack_checksum", 0));
    let first = step(&mut table, &lite(CLIENT, SERVER, 7000, 9000), 0.0);
    let conn = id(&first);
    assert_eq!(first.ctinfo, CT_NEW);
    assert_eq!(
        first.reason,
        "UDP-Lite: no reply seen yet (nf_conntrack_udp_timeout)"
    );
    assert!(approx(expires(&table, conn), 30.0));
    let reply = step(&mut table, &lite(SERVER, CLIENT, 9000, 7000), 0.1);
    assert_eq!(reply.ctinfo, CT_ESTABLISHED_REPLY);
    assert_eq!(
        reply.reason,
        "UDP-Lite: first reply; ASSURED from the next packet (nf_conntrack_udp_timeout)"
    );
    assert_eq!(status(&table, conn) & IPS_ASSURED, 0);
    assert!(approx(expires(&table, conn), 30.1));
    // No 2-second rule for UDP-Lite: the next packet assures at once.
    let next = step(&mut table, &lite(CLIENT, SERVER, 7000, 9000), 0.2);
    assert_eq!(next.ctinfo, CT_ESTABLISHED);
    assert_eq!(
        next.reason,
        "UDP-Lite: replied (nf_conntrack_udp_timeout_stream, ASSURED)"
    );
    assert_ne!(status(&table, conn) & IPS_ASSURED, 0);
    assert!(approx(expires(&table, conn), 120.2));
}

// -- generic ---------------------------------------------------------------------

const A: u128 = CLIENT;
const B: u128 = SERVER;

fn raw(src: u128, dst: u128, proto: u8, segment: &[u8]) -> TestPacket {
    ip_packet(4, src, dst, proto, segment, 0, 0, 0)
}

#[test]
fn generic_protocol_600_seconds_never_assured() {
    let mut table = ConntrackTable::new(cfg());
    let first = step(&mut table, &raw(A, B, 99, b"anything"), 0.0);
    let conn = id(&first);
    assert_eq!(first.ctinfo, CT_NEW);
    assert_eq!(
        first.reason,
        "generic protocol: tracked by addresses only (nf_conntrack_generic_timeout)"
    );
    assert!(approx(expires(&table, conn), 600.0));
    let reply = step(&mut table, &raw(B, A, 99, b"answer"), 1.0);
    assert_eq!(reply.ctinfo, CT_ESTABLISHED_REPLY);
    assert!(approx(expires(&table, conn), 601.0));
    for now in [5.0, 50.0, 500.0] {
        assert_eq!(
            step(&mut table, &raw(A, B, 99, b"more"), now).ctinfo,
            CT_ESTABLISHED
        );
    }
    assert!(approx(expires(&table, conn), 1100.0));
    assert_eq!(status(&table, conn) & IPS_ASSURED, 0);
}

#[test]
fn esp_security_associations_share_one_entry() {
    let mut table = ConntrackTable::new(cfg());
    let first = step(
        &mut table,
        &raw(A, B, 50, &[0, 0, 0x10, 0x01, 0, 0, 0, 1]),
        0.0,
    );
    let second = step(
        &mut table,
        &raw(A, B, 50, &[0, 0, 0x20, 0x02, 0, 0, 0, 1]),
        0.1,
    );
    assert_eq!(second.conn, first.conn);
    assert_eq!(table.count(), 1);
}

#[test]
fn dccp_is_generic_in_6_18() {
    assert_eq!(crate::conntrack::core::tracker_name(33), "unknown");
    assert_eq!(proto_generic::NAME, "unknown");
    let mut conn = Conn::new(
        4,
        33,
        0,
        Tuple::new(A, B, 0, 0),
        Tuple::new(B, A, 0, 0),
        0.0,
    );
    let pkt = raw(A, B, 33, b"");
    assert_eq!(
        proto_generic::error(&pkt.packet(0, 0.0), &cfg(), true),
        None
    );
    let (action, _) = proto_generic::packet(&mut conn, &pkt.packet(0, 3.0), 0, CT_NEW, 3.0, &cfg());
    assert_eq!(action, Action::Accept);
    assert!(approx(conn.expires, 603.0));
}

#[test]
fn generic_timeout_follows_sysctl() {
    let mut table = ConntrackTable::new(cfg_with("nf_conntrack_generic_timeout", 77));
    let conn = id(&step(&mut table, &raw(A, B, 112, b"vrrp"), 2.0));
    assert!(approx(expires(&table, conn), 79.0));
}

// -- GRE -------------------------------------------------------------------------

#[test]
fn gre_v0_timeouts_and_assured_after_reply() {
    let mut table = ConntrackTable::new(cfg());
    let first = step(&mut table, &gre_v0(A, B), 0.0);
    let conn = id(&first);
    assert_eq!(first.ctinfo, CT_NEW);
    assert_eq!(first.reason, "GRE: no reply seen yet (timeout)");
    assert!(approx(expires(&table, conn), 30.0));
    assert_eq!(proto_gre::timeouts(table.conn(conn).unwrap()), (30, 180));
    let reply = step(&mut table, &gre_v0(B, A), 0.5);
    assert_eq!(reply.ctinfo, CT_ESTABLISHED_REPLY);
    assert!(approx(expires(&table, conn), 30.5));
    assert_eq!(status(&table, conn) & IPS_ASSURED, 0);
    let next = step(&mut table, &gre_v0(A, B), 0.6);
    assert_eq!(next.ctinfo, CT_ESTABLISHED);
    assert_eq!(next.reason, "GRE: replied (stream_timeout, ASSURED)");
    assert!(approx(expires(&table, conn), 180.6));
    assert_ne!(status(&table, conn) & IPS_ASSURED, 0);
}

#[test]
fn gre_v1_keys_from_call_id() {
    let header = [0x30, 0x81, 0x88, 0x0B, 0, 4, 0, 7];
    assert_eq!(gre_keys(&header, 0), Some((0, 7)));
    let mut table = ConntrackTable::new(cfg());
    let conn = id(&step(&mut table, &gre_v1(A, B, 7, 0x880B), 0.0));
    let c = table.conn(conn).unwrap();
    assert_eq!(
        (c.orig.sport, c.orig.dport, c.reply.sport, c.reply.dport),
        (0, 7, 7, 0)
    );
}

#[test]
fn gre_v1_not_ppp_is_invalid() {
    let pkt = gre_v1(A, B, 7, 0x0800);
    let reason = proto_gre::error(&pkt.packet(0, 0.0), &cfg(), true).unwrap();
    assert_eq!(
        reason,
        "INVALID: GRE version 1 carrying protocol 0x0800 (only PPP over enhanced GRE can be tracked)"
    );
    let mut table = ConntrackTable::new(cfg());
    assert_eq!(step(&mut table, &pkt, 0.0).ctinfo, CT_INVALID);
}

#[test]
fn gre_short_headers_give_zero_keys() {
    assert_eq!(gre_keys(&[0x30, 0x81, 0x08, 0x00, 0, 0], 0), Some((0, 0))); // v1, 6 bytes
    assert_eq!(gre_keys(&[0], 0), Some((0, 0)));
    assert_eq!(gre_keys(&[0, 2, 0x08, 0, 0, 0, 0, 9], 0), Some((0, 0))); // version 2
    assert_eq!(gre_keys(&[], 10), Some((0, 0)));
}

#[test]
fn gre_entry_keeps_its_own_timeouts() {
    // The PPTP helper raises the timeouts of its data channel entries.
    let mut conn = Conn::new(
        4,
        47,
        0,
        Tuple::new(A, B, 0, 0),
        Tuple::new(B, A, 0, 0),
        0.0,
    );
    let pkt = gre_v0(A, B);
    assert_eq!(
        proto_gre::new(&mut conn, &pkt.packet(0, 0.0), &cfg()),
        Ok(())
    );
    conn.proto_data = ProtoData::Gre {
        timeout: 600,
        stream_timeout: 18000,
    };
    conn.status |= IPS_SEEN_REPLY;
    proto_gre::packet(
        &mut conn,
        &pkt.packet(0, 1.0),
        0,
        CT_ESTABLISHED,
        1.0,
        &cfg(),
    );
    assert!(approx(conn.expires, 18001.0));
}
