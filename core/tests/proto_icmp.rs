//! ICMP and ICMPv6 as Linux 6.18 tracks them. Scenarios run through a small
//! table as a router sees them; unit tests call the error handler with a
//! lookup-only table.

mod common;

use _core::config::Sysctls;
use _core::conntrack::conn::{
    Tuple, CT_ESTABLISHED, CT_ESTABLISHED_REPLY, CT_INVALID, CT_NEW, CT_RELATED, CT_RELATED_REPLY,
    CT_UNTRACKED, IPS_ASSURED, IPS_SEEN_REPLY, REPLY,
};
use _core::conntrack::proto_icmp::{self, error_handler, invert, IcmpErrorOutcome};
use _core::packet::FragmentInfo;
use common::*;
use proptest::prelude::*;

fn cfg() -> Sysctls {
    Sysctls::default()
}

fn handle(
    built: &Built,
    cfg: &Sysctls,
    in_prerouting: bool,
    zone: u16,
    table: &mut MiniTable,
) -> IcmpErrorOutcome {
    error_handler(&built.packet(), cfg, in_prerouting, zone, table)
}

fn is_invalid(outcome: &IcmpErrorOutcome) -> bool {
    matches!(outcome, IcmpErrorOutcome::Invalid(_))
}

fn is_not_an_error(outcome: &IcmpErrorOutcome) -> bool {
    matches!(outcome, IcmpErrorOutcome::NotAnError)
}

fn invalid_reason(outcome: &IcmpErrorOutcome) -> &str {
    match outcome {
        IcmpErrorOutcome::Invalid(reason) => reason,
        other => panic!("not INVALID: {other:?}"),
    }
}

fn udp_flow(table: &mut MiniTable, family: u8) -> (Built, _core::conntrack::conn::ConnId) {
    let (src, dst) = if family == 4 {
        (CLIENT, SERVER)
    } else {
        (CLIENT6, SERVER6)
    };
    let request = udp(src, dst, 1091, 53, family);
    let result = table.step(&request, 0.0);
    assert_eq!(result.ctinfo, CT_NEW);
    let conn = result.conn.expect("entry");
    (request, conn)
}

// -- queries -------------------------------------------------------------------

#[test]
fn echo_request_reply_and_entry_survives_reply() {
    let mut table = MiniTable::new(cfg());
    let first = table.step(&icmp(CLIENT, SERVER, 8, 0, 77), 0.0);
    assert_eq!(first.ctinfo, CT_NEW);
    let conn = first.conn.unwrap();
    assert_eq!(table.get(conn).reply, Tuple::new(SERVER, CLIENT, 77, 0));
    let again = table.step(&icmp(CLIENT, SERVER, 8, 0, 77), 0.5);
    assert_eq!((again.ctinfo, again.conn), (CT_NEW, Some(conn))); // no reply yet: NEW each time
    let reply = table.step(&icmp(SERVER, CLIENT, 0, 0, 77), 0.6);
    assert_eq!(
        (reply.ctinfo, reply.conn),
        (CT_ESTABLISHED_REPLY, Some(conn))
    );
    assert_eq!(
        reply.reason,
        "ICMP query or reply (nf_conntrack_icmp_timeout)"
    );
    assert!(approx(table.get(conn).expires, 30.6)); // not deleted, re-armed
    let later = table.step(&icmp(CLIENT, SERVER, 8, 0, 77), 5.0);
    assert_eq!((later.ctinfo, later.conn), (CT_ESTABLISHED, Some(conn)));
    assert!(approx(table.get(conn).expires, 35.0));
    assert_eq!(table.get(conn).status & IPS_ASSURED, 0);
}

#[test]
fn every_query_pair() {
    for (request_type, reply_type) in [(8, 0), (13, 14), (15, 16), (17, 18)] {
        let mut table = MiniTable::new(cfg());
        let first = table.step(&icmp(CLIENT, SERVER, request_type, 0, 9), 0.0);
        assert_eq!(first.ctinfo, CT_NEW);
        let conn = first.conn.unwrap();
        assert_eq!(table.get(conn).reply.dport >> 8, u16::from(reply_type));
        let reply = table.step(&icmp(SERVER, CLIENT, reply_type, 0, 9), 0.1);
        assert_eq!(
            (reply.ctinfo, reply.conn),
            (CT_ESTABLISHED_REPLY, Some(conn))
        );
    }
}

#[test]
fn reply_without_request_is_invalid() {
    for reply_type in [0, 14, 16, 18] {
        let mut table = MiniTable::new(cfg());
        let result = table.step(&icmp(SERVER, CLIENT, reply_type, 0, 9), 0.0);
        assert_eq!(result.ctinfo, CT_INVALID);
        assert_eq!(table.count(), 0);
    }
    let mut table = MiniTable::new(cfg());
    let result = table.step(&icmp(SERVER, CLIENT, 0, 0, 9), 0.0);
    assert_eq!(
        result.reason,
        "INVALID: ICMP echo reply without a matching request"
    );
}

#[test]
fn reply_with_other_code_does_not_match() {
    let mut table = MiniTable::new(cfg());
    table.step(&icmp(CLIENT, SERVER, 8, 5, 9), 0.0);
    assert_eq!(
        table.step(&icmp(SERVER, CLIENT, 0, 0, 9), 0.1).ctinfo,
        CT_INVALID
    );
    assert_eq!(
        table.step(&icmp(SERVER, CLIENT, 0, 5, 9), 0.2).ctinfo,
        CT_ESTABLISHED_REPLY
    );
}

#[test]
fn types_without_reply_type_are_invalid() {
    for icmp_type in [1, 2, 6, 7, 9, 10] {
        let mut table = MiniTable::new(cfg());
        assert_eq!(
            table
                .step(&icmp(CLIENT, SERVER, icmp_type, 0, 0), 0.0)
                .ctinfo,
            CT_INVALID
        );
        assert_eq!(table.count(), 0);
    }
}

#[test]
fn types_above_18_are_rejected_by_the_error_handler() {
    for icmp_type in [19, 30, 40, 255] {
        let outcome = handle(
            &icmp(CLIENT, SERVER, icmp_type, 0, 0),
            &cfg(),
            true,
            0,
            &mut MiniTable::default(),
        );
        assert!(invalid_reason(&outcome).contains("unknown"));
    }
    let outcome = handle(
        &icmp(CLIENT, SERVER, 19, 0, 0),
        &cfg(),
        true,
        0,
        &mut MiniTable::default(),
    );
    assert_eq!(
        invalid_reason(&outcome),
        "INVALID: ICMP type 19 is unknown (above 18)"
    );
}

#[test]
fn icmp_timeout_follows_sysctl() {
    let mut cfg = cfg();
    cfg.set("nf_conntrack_icmp_timeout", 5).unwrap();
    let mut table = MiniTable::new(cfg);
    let conn = table
        .step(&icmp(CLIENT, SERVER, 8, 0, 1), 1.0)
        .conn
        .unwrap();
    assert!(approx(table.get(conn).expires, 6.0));
}

#[test]
fn query_types_are_not_errors() {
    for icmp_type in [0, 8, 13, 17, 9] {
        let outcome = handle(
            &icmp(CLIENT, SERVER, icmp_type, 0, 0),
            &cfg(),
            true,
            0,
            &mut MiniTable::default(),
        );
        assert!(is_not_an_error(&outcome));
    }
}

#[test]
fn icmp_checksum() {
    let bad = icmp(CLIENT, SERVER, 8, 0, 1).bad_checksum();
    let outcome = handle(&bad, &cfg(), true, 0, &mut MiniTable::default());
    assert_eq!(invalid_reason(&outcome), "INVALID: ICMP checksum bad");
    assert!(is_not_an_error(&handle(
        &bad,
        &cfg(),
        false,
        0,
        &mut MiniTable::default()
    )));
    let mut off = cfg();
    off.set("nf_conntrack_checksum", 0).unwrap();
    assert!(is_not_an_error(&handle(
        &bad,
        &off,
        true,
        0,
        &mut MiniTable::default()
    )));
}

#[test]
fn icmp_short_header_is_invalid() {
    let pkt = icmp(CLIENT, SERVER, 8, 0, 0).truncated(27);
    let outcome = handle(&pkt, &cfg(), true, 0, &mut MiniTable::default());
    assert_eq!(
        invalid_reason(&outcome),
        "INVALID: ICMP short packet (header needs 8 bytes)"
    );
}

#[test]
fn inversion_tables() {
    let t = |dport: u16| Tuple::new(1, 2, 7, dport);
    assert_eq!(invert(4, &t(8 << 8 | 3)), Some(Tuple::new(2, 1, 7, 3)));
    assert_eq!(invert(4, &t(18 << 8)), Some(Tuple::new(2, 1, 7, 17 << 8)));
    assert_eq!(invert(4, &t(3 << 8)), None);
    assert_eq!(invert(6, &t(128 << 8)), Some(Tuple::new(2, 1, 7, 129 << 8)));
    assert_eq!(
        invert(6, &t(140 << 8 | 1)),
        Some(Tuple::new(2, 1, 7, 139 << 8 | 1))
    );
    assert_eq!(invert(6, &t(137 << 8)), None);
}

#[test]
fn icmp_in_ipv6_packet_is_invalid() {
    let mut built = icmp6(CLIENT6, SERVER6, 8, 0, 0);
    built.proto = 1;
    let pkt = built.packet();
    assert_eq!(
        proto_icmp::error(&pkt, &cfg(), true).as_deref(),
        Some("INVALID: ICMP (protocol 1) inside an IPv6 packet is never tracked")
    );
    assert!(is_not_an_error(&handle(
        &built,
        &cfg(),
        true,
        0,
        &mut MiniTable::default()
    )));
    let mut v4 = icmp(CLIENT, SERVER, 128, 0, 0);
    v4.proto = 58;
    assert_eq!(
        proto_icmp::error(&v4.packet(), &cfg(), true).as_deref(),
        Some("INVALID: ICMPv6 (protocol 58) inside an IPv4 packet is never tracked")
    );
}

// -- errors (nf_conntrack_icmpv4_error / nf_conntrack_inet_error) ----------------

#[test]
fn port_unreachable_is_related_reply_and_changes_nothing() {
    let mut table = MiniTable::new(cfg());
    let (request, conn) = udp_flow(&mut table, 4);
    let (expires, status) = (table.get(conn).expires, table.get(conn).status);
    let result = table.step(&icmp_err(4, SERVER, CLIENT, 3, 3, &request, None), 1.0);
    assert_eq!((result.ctinfo, result.conn), (CT_RELATED_REPLY, Some(conn)));
    assert!(
        result.reason.contains("port unreachable") && result.reason.contains("udp 10.99.1.1:1091")
    );
    assert_eq!(
        result.reason,
        "RELATED: ICMP port unreachable about udp 10.99.1.1:1091 → 10.99.2.1:53 (reply direction)"
    );
    assert_eq!(table.get(conn).expires, expires);
    assert_eq!(table.get(conn).status, status);
    assert_eq!(table.get(conn).status & IPS_SEEN_REPLY, 0); // still [UNREPLIED]
}

#[test]
fn every_error_type_relates() {
    for (icmp_type, code) in [(3, 1), (4, 0), (5, 1), (11, 0), (12, 0)] {
        let mut table = MiniTable::new(cfg());
        let (request, conn) = udp_flow(&mut table, 4);
        let result = table.step(
            &icmp_err(4, ROUTER, CLIENT, icmp_type, code, &request, None),
            1.0,
        );
        assert_eq!((result.ctinfo, result.conn), (CT_RELATED_REPLY, Some(conn)));
    }
}

#[test]
fn error_in_original_direction_is_related() {
    let mut table = MiniTable::new(cfg());
    let (_request, conn) = udp_flow(&mut table, 4);
    let answer = udp(SERVER, CLIENT, 53, 1091, 4);
    table.step(&answer, 0.1);
    // The client's side reports the answer as undeliverable, towards the server.
    let result = table.step(&icmp_err(4, CLIENT, SERVER, 3, 3, &answer, None), 0.2);
    assert_eq!((result.ctinfo, result.conn), (CT_RELATED, Some(conn)));
    assert_eq!(
        result.reason,
        "RELATED: ICMP port unreachable about udp 10.99.1.1:1091 → 10.99.2.1:53 (original direction)"
    );
}

#[test]
fn host_unreachable_quoting_echo_request() {
    let mut table = MiniTable::new(cfg());
    let ping = icmp_full(4, CLIENT, SERVER, 8, 0, 42, b"payload!", 64);
    let conn = table.step(&ping, 0.0).conn;
    let result = table.step(&icmp_err(4, ROUTER, CLIENT, 3, 1, &ping, None), 0.5);
    assert_eq!((result.ctinfo, result.conn), (CT_RELATED_REPLY, conn));
    assert_eq!(
        result.reason,
        "RELATED: ICMP host unreachable about icmp 10.99.1.1 → 10.99.2.1 echo request id 42 (reply direction)"
    );
}

#[test]
fn error_quoting_unknown_flow_is_invalid() {
    let mut table = MiniTable::new(cfg());
    let stranger = udp(CLIENT, SERVER, 9999, 53, 4);
    let result = table.step(&icmp_err(4, SERVER, CLIENT, 3, 3, &stranger, None), 0.0);
    assert_eq!(result.ctinfo, CT_INVALID);
    assert!(result.reason.contains("unknown connection"));
    assert_eq!(
        result.reason,
        "INVALID: ICMP port unreachable quoting an unknown connection"
    );
}

#[test]
fn error_quoting_only_ip_header_is_invalid_but_four_bytes_suffice() {
    let mut table = MiniTable::new(cfg());
    let (request, conn) = udp_flow(&mut table, 4);
    let header_only = table.step(&icmp_err(4, SERVER, CLIENT, 3, 3, &request, Some(20)), 0.1);
    assert_eq!(header_only.ctinfo, CT_INVALID);
    assert_eq!(
        header_only.reason,
        "INVALID: ICMP port unreachable quoting only 0 bytes of the udp header (4 needed)"
    );
    let two_bytes = table.step(&icmp_err(4, SERVER, CLIENT, 3, 3, &request, Some(22)), 0.1);
    assert_eq!(two_bytes.ctinfo, CT_INVALID);
    assert!(two_bytes.reason.contains("2 bytes of the udp header"));
    let result = table.step(&icmp_err(4, SERVER, CLIENT, 3, 3, &request, Some(24)), 0.1);
    assert_eq!((result.ctinfo, result.conn), (CT_RELATED_REPLY, Some(conn)));
    let truncated_ip = table.step(&icmp_err(4, SERVER, CLIENT, 3, 3, &request, Some(12)), 0.1);
    assert_eq!(
        truncated_ip.reason,
        "INVALID: ICMP port unreachable quoting a packet too short to identify (ipv4 at byte 0: truncated)"
    );
}

#[test]
fn error_quoting_icmp_needs_eight_bytes() {
    let mut table = MiniTable::new(cfg());
    let ping = icmp(CLIENT, SERVER, 8, 0, 42);
    table.step(&ping, 0.0);
    let short = table.step(&icmp_err(4, ROUTER, CLIENT, 11, 0, &ping, Some(27)), 0.1);
    assert_eq!(short.ctinfo, CT_INVALID);
    assert!(short.reason.contains("7 bytes of the icmp header"));
    assert_eq!(
        short.reason,
        "INVALID: ICMP time exceeded quoting only 7 bytes of the icmp header (8 needed)"
    );
    let whole = table.step(&icmp_err(4, ROUTER, CLIENT, 11, 0, &ping, Some(28)), 0.1);
    assert_eq!(whole.ctinfo, CT_RELATED_REPLY);
}

#[test]
fn error_quoting_an_error_is_invalid() {
    let mut table = MiniTable::new(cfg());
    let (request, _conn) = udp_flow(&mut table, 4);
    let first_error = icmp_err(4, SERVER, CLIENT, 3, 3, &request, None);
    let result = table.step(&icmp_err(4, ROUTER, SERVER, 3, 1, &first_error, None), 0.2);
    assert_eq!(result.ctinfo, CT_INVALID);
    assert_eq!(
        result.reason,
        "INVALID: ICMP host unreachable quoting an ICMP message that has no reply type (an error?)"
    );
}

#[test]
fn error_quoting_non_first_fragment_is_invalid() {
    let mut table = MiniTable::with(vec![udp_conn(CLIENT, SERVER, 4)]);
    let mut fragment = udp(CLIENT, SERVER, 1091, 53, 4);
    fragment.fragment = Some(FragmentInfo {
        ident: 7,
        offset: 1480,
        more: false,
        next_proto: 17,
        unfrag_len: 20,
    });
    let outcome = handle(
        &icmp_err(4, SERVER, CLIENT, 3, 3, &fragment, None),
        &cfg(),
        true,
        0,
        &mut table,
    );
    assert!(invalid_reason(&outcome).contains("fragment"));
    assert_eq!(
        invalid_reason(&outcome),
        "INVALID: ICMP port unreachable quoting a non-first fragment"
    );
}

#[test]
fn error_sent_to_another_host_is_invalid() {
    let mut table = MiniTable::with(vec![udp_conn(CLIENT, SERVER, 4)]);
    let request = udp(CLIENT, SERVER, 1091, 53, 4);
    let outcome = handle(
        &icmp_err(4, SERVER, OTHER, 3, 3, &request, None),
        &cfg(),
        true,
        0,
        &mut table,
    );
    assert_eq!(
        invalid_reason(&outcome),
        "INVALID: ICMP port unreachable sent to 10.99.3.2, not to the quoted packet's source 10.99.1.1"
    );
    assert_eq!(table.conns[0].status, 0);
}

#[test]
fn error_from_any_router_is_related() {
    let mut table = MiniTable::with(vec![udp_conn(CLIENT, SERVER, 4)]);
    let request = udp(CLIENT, SERVER, 1091, 53, 4);
    let outcome = handle(
        &icmp_err(4, OTHER, CLIENT, 11, 0, &request, None),
        &cfg(),
        true,
        0,
        &mut table,
    );
    match outcome {
        IcmpErrorOutcome::Related {
            conn,
            direction,
            reason,
        } => {
            assert_eq!((conn.0, direction), (0, REPLY));
            assert_eq!(
                reason,
                "RELATED: ICMP time exceeded about udp 10.99.1.1:1091 → 10.99.2.1:53 (reply direction)"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn error_checksum_bad_is_invalid() {
    let mut table = MiniTable::with(vec![udp_conn(CLIENT, SERVER, 4)]);
    let pkt = icmp_err(
        4,
        SERVER,
        CLIENT,
        3,
        3,
        &udp(CLIENT, SERVER, 1091, 53, 4),
        None,
    )
    .bad_checksum();
    assert!(is_invalid(&handle(&pkt, &cfg(), true, 0, &mut table)));
}

#[test]
fn error_lookup_uses_the_zone() {
    let mut table = MiniTable::with(vec![udp_conn(CLIENT, SERVER, 4)]);
    let pkt = icmp_err(
        4,
        SERVER,
        CLIENT,
        3,
        3,
        &udp(CLIENT, SERVER, 1091, 53, 4),
        None,
    );
    assert!(matches!(
        handle(&pkt, &cfg(), true, 0, &mut table),
        IcmpErrorOutcome::Related { .. }
    ));
    assert!(is_invalid(&handle(&pkt, &cfg(), true, 5, &mut table)));
}

#[test]
fn error_without_quote_or_quoting_other_family() {
    let mut table = MiniTable::with(vec![udp_conn(CLIENT, SERVER, 4)]);
    let mut bare = icmp_err(
        4,
        SERVER,
        CLIENT,
        3,
        3,
        &udp(CLIENT, SERVER, 1091, 53, 4),
        None,
    );
    bare.inner = None;
    let outcome = handle(&bare, &cfg(), true, 0, &mut table);
    assert_eq!(
        invalid_reason(&outcome),
        "INVALID: ICMP port unreachable without a quoted IP header"
    );
    let mut other = icmp_err(
        4,
        SERVER,
        CLIENT,
        3,
        3,
        &udp(CLIENT, SERVER, 1091, 53, 4),
        None,
    );
    other.inner.as_mut().unwrap().family = 6;
    let outcome = handle(&other, &cfg(), true, 0, &mut table);
    assert_eq!(
        invalid_reason(&outcome),
        "INVALID: ICMP port unreachable quoting an IPv6 header"
    );
    let odd_code = icmp_err(
        4,
        SERVER,
        CLIENT,
        3,
        8,
        &udp(CLIENT, SERVER, 1091, 53, 4),
        None,
    );
    let outcome = handle(&odd_code, &cfg(), true, 0, &mut table);
    assert!(matches!(&outcome, IcmpErrorOutcome::Related { reason, .. }
        if reason.starts_with("RELATED: ICMP destination unreachable (code 8) about")));
}

#[test]
fn reasons_name_every_kind_of_quoted_connection() {
    use _core::conntrack::conn::Conn;
    // Expected texts: statewall's reasons for these packets, in full.
    let gre_conn = Conn::new(
        4,
        47,
        0,
        Tuple::new(CLIENT, SERVER, 0, 0),
        Tuple::new(SERVER, CLIENT, 0, 0),
        0.0,
    );
    let p99_conn = Conn::new(
        4,
        99,
        0,
        Tuple::new(CLIENT, SERVER, 0, 0),
        Tuple::new(SERVER, CLIENT, 0, 0),
        0.0,
    );
    let mut table = MiniTable::with(vec![gre_conn, p99_conn]);
    let mut gre_v0 = vec![0, 0, 0x08, 0x00];
    gre_v0.extend_from_slice(&[0; 20]);
    let gre = ip_packet(4, CLIENT, SERVER, 47, &gre_v0, 64, 0, 0, 0);
    let outcome = handle(
        &icmp_err(4, ROUTER, CLIENT, 3, 1, &gre, None),
        &cfg(),
        true,
        0,
        &mut table,
    );
    assert!(
        matches!(&outcome, IcmpErrorOutcome::Related { reason, .. }
        if reason == "RELATED: ICMP host unreachable about gre 10.99.1.1 → 10.99.2.1 (reply direction)"),
        "{outcome:?}"
    );
    let mut gre_v1 = vec![0x30, 0x81, 0x08, 0x00, 0, 0, 0, 7];
    gre_v1.extend_from_slice(&[0; 8]);
    let gre1 = ip_packet(4, CLIENT, SERVER, 47, &gre_v1, 64, 0, 0, 0);
    let outcome = handle(
        &icmp_err(4, ROUTER, CLIENT, 3, 1, &gre1, None),
        &cfg(),
        true,
        0,
        &mut table,
    );
    assert_eq!(
        invalid_reason(&outcome),
        "INVALID: ICMP host unreachable quoting enhanced GRE that does not carry PPP"
    );
    let p99 = ip_packet(4, CLIENT, SERVER, 99, b"abcdefgh", 64, 0, 0, 0);
    let outcome = handle(
        &icmp_err(4, ROUTER, CLIENT, 3, 2, &p99, None),
        &cfg(),
        true,
        0,
        &mut table,
    );
    assert!(
        matches!(&outcome, IcmpErrorOutcome::Related { reason, .. }
        if reason == "RELATED: ICMP protocol unreachable about protocol 99 10.99.1.1 → 10.99.2.1 (reply direction)"),
        "{outcome:?}"
    );

    let mut table = MiniTable::new(cfg());
    let ping6 = icmp6(CLIENT6, SERVER6, 128, 0, 5);
    table.step(&ping6, 0.0);
    let result = table.step(&icmp_err(6, ROUTER6, CLIENT6, 3, 0, &ping6, None), 1.0);
    assert_eq!(
        result.reason,
        "RELATED: ICMPv6 time exceeded about icmpv6 fd99:1::1 → fd99:2::1 echo request id 5 (reply direction)"
    );
}

// -- ICMPv6 ----------------------------------------------------------------------

#[test]
fn icmpv6_nd_and_mld_are_untracked() {
    for icmp_type in [130, 131, 132, 133, 134, 135, 136, 143, 151, 152] {
        let mut table = MiniTable::new(cfg());
        let result = table.step(
            &icmp_full(6, LINK_LOCAL6, SERVER6, icmp_type, 0, 0, b"", 255),
            0.0,
        );
        assert_eq!(
            (result.ctinfo, result.conn, table.count()),
            (CT_UNTRACKED, None, 0)
        );
        let outcome = handle(
            &icmp6(CLIENT6, SERVER6, icmp_type, 0, 0),
            &cfg(),
            true,
            0,
            &mut MiniTable::default(),
        );
        assert!(matches!(outcome, IcmpErrorOutcome::Untracked(_)));
    }
    let outcome = handle(
        &icmp6(CLIENT6, SERVER6, 135, 0, 0),
        &cfg(),
        true,
        0,
        &mut MiniTable::default(),
    );
    let IcmpErrorOutcome::Untracked(reason) = outcome else {
        panic!()
    };
    assert_eq!(
        reason,
        "UNTRACKED: ICMPv6 neighbour solicitation (neighbour discovery and MLD are never tracked)"
    );
    assert!(matches!(reason, std::borrow::Cow::Borrowed(_)));
}

#[test]
fn icmpv6_queries() {
    for (request_type, reply_type) in [(128, 129), (139, 140)] {
        let mut table = MiniTable::new(cfg());
        let first = table.step(&icmp6(CLIENT6, SERVER6, request_type, 0, 5), 0.0);
        assert_eq!(first.ctinfo, CT_NEW);
        let conn = first.conn.unwrap();
        assert!(approx(table.get(conn).expires, 30.0));
        let reply = table.step(&icmp6(SERVER6, CLIENT6, reply_type, 0, 5), 0.1);
        assert_eq!(
            (reply.ctinfo, reply.conn),
            (CT_ESTABLISHED_REPLY, Some(conn))
        );
        assert_eq!(
            reply.reason,
            "ICMPv6 query or reply (nf_conntrack_icmpv6_timeout)"
        );
        assert!(approx(table.get(conn).expires, 30.1));
    }
}

#[test]
fn icmpv6_replies_and_unknown_informational_types_are_invalid() {
    for icmp_type in [129, 140, 137, 138, 200] {
        let mut table = MiniTable::new(cfg());
        let result = table.step(&icmp6(SERVER6, CLIENT6, icmp_type, 0, 0), 0.0);
        assert_eq!((result.ctinfo, table.count()), (CT_INVALID, 0));
    }
    let mut table = MiniTable::new(cfg());
    assert_eq!(
        table.step(&icmp6(SERVER6, CLIENT6, 129, 0, 0), 0.0).reason,
        "INVALID: ICMPv6 echo reply without a matching request"
    );
    assert_eq!(
        table.step(&icmp6(SERVER6, CLIENT6, 137, 0, 0), 0.0).reason,
        "INVALID: ICMPv6 short redirect"
    );
}

#[test]
fn icmpv6_checksum_failed_is_invalid() {
    let pkt = icmp6(CLIENT6, SERVER6, 128, 0, 0).bad_checksum();
    let outcome = handle(&pkt, &cfg(), true, 0, &mut MiniTable::default());
    assert_eq!(invalid_reason(&outcome), "INVALID: ICMPv6 checksum failed");
    assert!(is_not_an_error(&handle(
        &pkt,
        &cfg(),
        false,
        0,
        &mut MiniTable::default()
    )));
    let good = icmp6(CLIENT6, SERVER6, 128, 0, 0);
    assert!(is_not_an_error(&handle(
        &good,
        &cfg(),
        true,
        0,
        &mut MiniTable::default()
    )));
}

#[test]
fn icmpv6_errors_relate() {
    for (icmp_type, code) in [(2, 0), (1, 4), (3, 0), (4, 1), (100, 0)] {
        let mut table = MiniTable::new(cfg());
        let (request, conn) = udp_flow(&mut table, 6);
        let pkt = icmp_err(6, ROUTER6, CLIENT6, icmp_type, code, &request, None);
        let result = table.step(&pkt, 0.5);
        assert_eq!((result.ctinfo, result.conn), (CT_RELATED_REPLY, Some(conn)));
        assert_eq!(table.get(conn).status & IPS_SEEN_REPLY, 0);
    }
    let mut table = MiniTable::new(cfg());
    let (request, _conn) = udp_flow(&mut table, 6);
    let result = table.step(&icmp_err(6, ROUTER6, CLIENT6, 1, 4, &request, None), 0.5);
    assert_eq!(
        result.reason,
        "RELATED: ICMPv6 port unreachable about udp [fd99:1::1]:1091 → [fd99:2::1]:53 (reply direction)"
    );
    let result = table.step(&icmp_err(6, ROUTER6, CLIENT6, 100, 0, &request, None), 0.5);
    assert!(result
        .reason
        .starts_with("RELATED: ICMPv6 type 100 about udp"));
}

#[test]
fn icmpv6_error_about_unknown_flow_is_invalid() {
    let mut table = MiniTable::new(cfg());
    let stranger = udp(CLIENT6, SERVER6, 4444, 53, 6);
    let result = table.step(&icmp_err(6, ROUTER6, CLIENT6, 1, 4, &stranger, None), 0.0);
    assert_eq!(result.ctinfo, CT_INVALID);
}

#[test]
fn icmpv6_error_to_another_host_is_invalid() {
    let mut table = MiniTable::with(vec![udp_conn(CLIENT6, SERVER6, 6)]);
    let request = udp(CLIENT6, SERVER6, 1091, 53, 6);
    let pkt = icmp_err(6, ROUTER6, ROUTER6 + 1, 2, 0, &request, None);
    let outcome = handle(&pkt, &cfg(), true, 0, &mut table);
    assert_eq!(
        invalid_reason(&outcome),
        "INVALID: ICMPv6 packet too big sent to fd99:2::ff, not to the quoted packet's source fd99:1::1"
    );
}

#[test]
fn icmpv6_redirect_rules() {
    let mut table = MiniTable::with(vec![udp_conn(CLIENT6, SERVER6, 6)]);
    let request = udp(CLIENT6, SERVER6, 1091, 53, 6);
    let good = handle(
        &redirect6(LINK_LOCAL6, CLIENT6, Some(&request), 255, 0, 4, 8),
        &cfg(),
        true,
        0,
        &mut table,
    );
    match good {
        IcmpErrorOutcome::Related {
            conn,
            direction,
            reason,
        } => {
            assert_eq!((conn.0, direction), (0, REPLY));
            assert_eq!(
                reason,
                "RELATED: ICMPv6 redirect about udp [fd99:1::1]:1091 → [fd99:2::1]:53 (reply direction)"
            );
        }
        other => panic!("{other:?}"),
    }
    let from_global = redirect6(ROUTER6, CLIENT6, Some(&request), 255, 0, 4, 8);
    assert_eq!(
        invalid_reason(&handle(&from_global, &cfg(), true, 0, &mut table)),
        "INVALID: ICMPv6 redirect with hop limit other than 255 or a non-link-local source"
    );
    let low_hop_limit = redirect6(LINK_LOCAL6, CLIENT6, Some(&request), 64, 0, 4, 8);
    assert!(is_invalid(&handle(
        &low_hop_limit,
        &cfg(),
        true,
        0,
        &mut table
    )));
    let no_options = redirect6(LINK_LOCAL6, CLIENT6, None, 255, 0, 4, 8);
    assert_eq!(
        invalid_reason(&handle(&no_options, &cfg(), true, 0, &mut table)),
        "INVALID: ICMPv6 redirect without options"
    );
    let zero_length = redirect6(LINK_LOCAL6, CLIENT6, Some(&request), 255, 0, 4, 0);
    assert!(is_invalid(&handle(
        &zero_length,
        &cfg(),
        true,
        0,
        &mut table
    )));
    // Another code or another first option: an ordinary message (type 137 has no pair).
    let other_code = redirect6(ROUTER6, CLIENT6, Some(&request), 255, 1, 4, 8);
    assert!(is_not_an_error(&handle(
        &other_code,
        &cfg(),
        true,
        0,
        &mut table
    )));
    let other_option = redirect6(LINK_LOCAL6, CLIENT6, Some(&request), 255, 0, 1, 8);
    assert!(is_not_an_error(&handle(
        &other_option,
        &cfg(),
        true,
        0,
        &mut table
    )));
    // Link-scope multicast counts as link-local too.
    let multicast = redirect6(0xFF02 << 112 | 1, CLIENT6, Some(&request), 255, 0, 4, 8);
    assert!(matches!(
        handle(&multicast, &cfg(), true, 0, &mut table),
        IcmpErrorOutcome::Related { .. }
    ));
}

#[test]
fn icmpv6_redirect_from_global_address_is_invalid_through_table() {
    let mut table = MiniTable::new(cfg());
    let (request, _conn) = udp_flow(&mut table, 6);
    let result = table.step(
        &redirect6(ROUTER6, CLIENT6, Some(&request), 255, 0, 4, 8),
        0.5,
    );
    assert_eq!(result.ctinfo, CT_INVALID);
}

#[test]
fn icmpv6_quoting_no_next_header_is_invalid() {
    let mut table = MiniTable::with(vec![udp_conn(CLIENT6, SERVER6, 6)]);
    let empty = ip_packet(6, CLIENT6, SERVER6, 59, b"", 64, 0, 0, 0);
    let outcome = handle(
        &icmp_err(6, ROUTER6, CLIENT6, 1, 0, &empty, None),
        &cfg(),
        true,
        0,
        &mut table,
    );
    assert_eq!(
        invalid_reason(&outcome),
        "INVALID: ICMPv6 no route quoting an IPv6 packet without a layer-4 header"
    );
}

// -- the cases tests/test_proto_icmp.py checks against the live kernel ------------
// (the expected ctinfo of each packet is the kernel's, as that test observes it)

#[test]
fn kernel_checked_cases() {
    let req = |port: u16| udp(CLIENT, SERVER, port, 53, 4);
    let req6 = |port: u16| udp(CLIENT6, SERVER6, port, 53, 6);
    let fragment = udp(CLIENT, SERVER, 1105, 53, 4);
    let later_piece = ip_packet(
        4,
        CLIENT,
        SERVER,
        17,
        &fragment.bytes[20..],
        64,
        1105,
        53,
        8,
    );
    let answer = udp(SERVER, CLIENT, 53, 1106, 4);
    let ping = icmp(CLIENT, SERVER, 8, 0, 55);
    let cases: Vec<(&str, Vec<(Built, u8)>)> = vec![
        (
            "quote ip+2",
            vec![
                (req(1101), CT_NEW),
                (
                    icmp_err(4, SERVER, CLIENT, 3, 3, &req(1101), Some(22)),
                    CT_INVALID,
                ),
            ],
        ),
        (
            "quote ip+4",
            vec![
                (req(1102), CT_NEW),
                (
                    icmp_err(4, SERVER, CLIENT, 3, 3, &req(1102), Some(24)),
                    CT_RELATED_REPLY,
                ),
            ],
        ),
        (
            "quote later fragment",
            vec![
                (req(1105), CT_NEW),
                (
                    icmp_err(4, SERVER, CLIENT, 3, 3, &later_piece, None),
                    CT_INVALID,
                ),
            ],
        ),
        (
            "original direction",
            vec![
                (req(1106), CT_NEW),
                (answer.clone(), CT_ESTABLISHED_REPLY),
                (icmp_err(4, CLIENT, SERVER, 3, 3, &answer, None), CT_RELATED),
            ],
        ),
        (
            "ping quoted in 7 bytes",
            vec![
                (ping.clone(), CT_NEW),
                (
                    icmp_err(4, ROUTER, CLIENT, 11, 0, &ping, Some(27)),
                    CT_INVALID,
                ),
            ],
        ),
        (
            "reply code differs",
            vec![
                (icmp(CLIENT, SERVER, 8, 5, 56), CT_NEW),
                (icmp(SERVER, CLIENT, 0, 0, 56), CT_INVALID),
            ],
        ),
        (
            "v6 type 100",
            vec![
                (req6(1201), CT_NEW),
                (
                    icmp_err(6, ROUTER6, CLIENT6, 100, 0, &req6(1201), None),
                    CT_RELATED_REPLY,
                ),
            ],
        ),
        (
            "v6 redirect",
            vec![
                (req6(1203), CT_NEW),
                (
                    redirect6(LINK_LOCAL6, CLIENT6, Some(&req6(1203)), 255, 0, 4, 8),
                    CT_RELATED_REPLY,
                ),
            ],
        ),
        (
            "v6 redirect option 1",
            vec![
                (req6(1204), CT_NEW),
                (
                    redirect6(LINK_LOCAL6, CLIENT6, Some(&req6(1204)), 255, 0, 1, 8),
                    CT_INVALID,
                ),
            ],
        ),
        (
            "v6 redirect code 1",
            vec![
                (req6(1205), CT_NEW),
                (
                    redirect6(LINK_LOCAL6, CLIENT6, Some(&req6(1205)), 255, 1, 4, 8),
                    CT_INVALID,
                ),
            ],
        ),
        (
            "v6 multicast router adv",
            vec![(
                icmp_full(6, LINK_LOCAL6, SERVER6, 151, 0, 0, b"", 1),
                CT_UNTRACKED,
            )],
        ),
        (
            "v6 node information",
            vec![
                (icmp6(CLIENT6, SERVER6, 139, 0, 3), CT_NEW),
                (icmp6(SERVER6, CLIENT6, 140, 0, 3), CT_ESTABLISHED_REPLY),
            ],
        ),
        (
            "v6 error to other host",
            vec![
                (req6(1206), CT_NEW),
                (
                    icmp_err(6, ROUTER6, ROUTER6 + 1, 1, 4, &req6(1206), None),
                    CT_INVALID,
                ),
            ],
        ),
    ];
    let mut table = MiniTable::new(cfg());
    for (name, packets) in cases {
        for (number, (pkt, expected)) in packets.iter().enumerate() {
            let result = table.step(pkt, 0.0);
            assert_eq!(
                result.ctinfo, *expected,
                "{name} #{number}: {}",
                result.reason
            );
        }
    }
}

// -- robustness -----------------------------------------------------------------

fn any_inner() -> impl Strategy<Value = Option<Built>> {
    let fields = (
        prop::collection::vec(any::<u8>(), 0..80),
        prop_oneof![Just(4u8), Just(6u8), any::<u8>()],
        prop_oneof![
            Just(1u8),
            Just(6u8),
            Just(17u8),
            Just(47u8),
            Just(58u8),
            Just(59u8),
            Just(132u8),
            any::<u8>()
        ],
        0usize..100,
        any::<(u16, u16, u32)>(),
        any::<bool>(),
    );
    prop::option::of(fields.prop_map(
        |(bytes, family, proto, l4_off, (sport, dport, frag), error)| Built {
            bytes,
            family,
            proto,
            l4_off,
            sport,
            dport,
            src: CLIENT,
            dst: SERVER,
            fragment: (frag % 3 == 0).then_some(FragmentInfo {
                ident: 1,
                offset: frag % 2000,
                more: false,
                next_proto: proto,
                unfrag_len: 20,
            }),
            error:
                error.then(|| _core::packet::DecodeError::new(_core::packet::Layer::Ipv4, 0, "x")),
            ..Built::default()
        },
    ))
}

proptest! {
    #[test]
    fn random_icmp_messages_never_panic(
        family in prop_oneof![Just(4u8), Just(6u8)],
        icmp_type in any::<u8>(),
        code in any::<u8>(),
        body in prop::collection::vec(any::<u8>(), 0..120),
        cut in 0usize..200,
        l4_shift in 0usize..3,
        src in prop_oneof![Just(LINK_LOCAL6), Just(CLIENT), any::<u128>()],
        ttl in prop_oneof![Just(255u8), any::<u8>()],
        inner in any_inner(),
        zone in 0u16..2,
        prerouting in any::<bool>(),
    ) {
        let mut built = icmp_full(family, src, if family == 4 { CLIENT } else { CLIENT6 }, icmp_type, code, 0, &body, ttl);
        built.bytes.truncate(cut);
        built.l4_off += l4_shift * 50;
        built.inner = inner.map(Box::new);
        let mut table = MiniTable::with(vec![udp_conn(CLIENT, SERVER, 4), udp_conn(CLIENT6, SERVER6, 6)]);
        let pkt = built.packet();
        let _ = error_handler(&pkt, &cfg(), prerouting, zone, &mut table);
        let _ = proto_icmp::error(&pkt, &cfg(), prerouting);
        let mut stepper = MiniTable::new(cfg());
        let _ = stepper.step(&built, 0.0);
    }
}
