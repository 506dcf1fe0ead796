//! The TFTP and Amanda helpers and the registry.

mod helpers_kit;

use _core::conntrack::conn::{HelperKind, IPS_SEEN_REPLY};
use _core::helpers::amanda::connect_ports;
use _core::helpers::{find_helper, helper_for_port};
use _core::packet::{PROTO_TCP, PROTO_UDP};
use helpers_kit::*;

const RRQ: &[u8] = b"\x00\x01file\x00octet\x00";

// -- TFTP ------------------------------------------------------------------------

#[test]
fn read_and_write_requests_expect_the_server_from_any_port() {
    for (payload, what) in [
        (RRQ, "RRQ (read request)"),
        (b"\x00\x02file\x00octet\x00", "WRQ (write request)"),
    ] {
        let mut b = Machine::default();
        let seen = b.send(&udp(C4, S4, 12346, 69, payload), 1.0);
        assert!(seen.state == "NEW" && seen.accepted);
        assert_eq!(
            seen.reason,
            format!("tftp: {what}, expecting UDP 10.77.0.2:any → 10.77.0.1:12346")
        );
        assert_eq!(
            b.listing(1.5),
            vec!["299 l3proto = 2 proto=17 src=10.77.0.2 dst=10.77.0.1 sport=0 dport=12346 tftp\n"]
        );
    }
}

#[test]
fn other_opcodes_give_nothing() {
    for payload in [
        &b"\x00\x03\x00\x01data"[..],
        b"\x00\x04\x00\x01",
        b"\x00\x05\x00\x01err\x00",
        b"\x00\x09",
        b"\x00",
        b"\x01\x01file",
    ] {
        let mut b = Machine::default();
        let seen = b.send(&udp(C4, S4, 12346, 69, payload), 1.0);
        assert!(b.exp.live(1.0).is_empty());
        assert_eq!(seen.reason, "");
    }
}

#[test]
fn read_transfer_from_a_new_port_is_related_until_the_client_answers() {
    let mut b = Machine::default();
    let data = [&b"\x00\x03\x00\x01"[..], &[b'x'; 512]].concat();
    let request = b.send(&udp(C4, S4, 12345, 69, RRQ), 1.0);
    let first = b.send(&udp(S4, C4, 50000, 12345, &data), 1.1);
    let second = b.send(&udp(S4, C4, 50000, 12345, &data), 1.2);
    let ack = b.send(&udp(C4, S4, 12345, 50000, b"\x00\x04\x00\x01"), 1.3);
    let third = b.send(&udp(S4, C4, 50000, 12345, b"\x00\x03\x00\x02"), 1.4);
    assert_eq!(
        [first.state, second.state, ack.state, third.state],
        ["RELATED", "RELATED", "ESTABLISHED", "ESTABLISHED"]
    );
    let master = request.id.unwrap();
    assert_eq!(b.conn(master).status & IPS_SEEN_REPLY, 0);
    assert_eq!(b.conn(first.id.unwrap()).master, Some(master));
    assert_eq!(
        b.exp.related_reason(first.id.unwrap()).as_deref(),
        Some("RELATED: expected by tftp control 10.77.0.1:12345 → 10.77.0.2:69, RRQ (read request) in packet #1")
    );
}

#[test]
fn tftp_ipv6() {
    let mut b = Machine::default();
    b.send(&udp(C6, S6, 12348, 69, b"\x00\x01f\x00octet\x00"), 1.0);
    let data = b.send(&udp(S6, C6, 40000, 12348, b"\x00\x03\x00\x01"), 2.0);
    assert_eq!(data.state, "RELATED");
    assert_eq!(
        b.exp.related_reason(data.id.unwrap()).as_deref(),
        Some("RELATED: expected by tftp control [fd77::1]:12348 → [fd77::2]:69, RRQ (read request) in packet #1")
    );
}

#[test]
fn repeated_request_replaces_the_expectation() {
    let mut b = Machine::default();
    b.send(&udp(C4, S4, 12346, 69, RRQ), 1.0);
    b.send(&udp(C4, S4, 12346, 69, RRQ), 10.0);
    assert_eq!(
        b.events,
        vec![("NEW", 12346), ("DESTROY", 12346), ("NEW", 12346)]
    );
    let expires: Vec<f64> = b.exp.live(10.0).iter().map(|e| e.expires).collect();
    assert_eq!(expires, vec![310.0]);
}

#[test]
fn master_timing_out_takes_its_expectation_along() {
    let mut b = Machine::default();
    b.send(&udp(C4, S4, 12346, 69, RRQ), 1.0);
    b.expire(40.0);
    assert!(b.exp.live(40.0).is_empty());
    assert!(b.send(&udp(C4, S4, 12346, 69, RRQ), 41.0).accepted);
    assert_eq!(b.exp.live(41.0).len(), 1);
}

// -- Amanda ----------------------------------------------------------------------

fn amanda(b: &mut Machine, reply: &[u8], now: f64) {
    b.send(
        &udp(C4, S4, 850, 10080, b"Amanda 2.6 REQ HANDLE 000\n"),
        1.0,
    );
    b.send(&udp(S4, C4, 10080, 850, reply), now);
}

fn amanda_ports(b: &Machine) -> Vec<u16> {
    let mut ports = b.dports(3.0);
    ports.sort();
    ports
}

#[test]
fn connect_lines() {
    let cases: [(&[u8], &[u16]); 12] = [
        (
            b"Amanda 2.6 REP\nCONNECT DATA 50000 MESG 50001 INDEX 50002\nOPTIONS features=x;\n",
            &[50000, 50001, 50002],
        ),
        (
            b"CONNECT STATE 50010 INDEX 50011 MESG 50012 DATA 50013\n",
            &[50010, 50011, 50012, 50013],
        ),
        (b"CONNECT DATA 0 MESG 50021 INDEX 50022\n", &[]),
        (b"CONNECT DATA 50030 MESG x INDEX 50032\n", &[50030]),
        (b"CONNECT DATA 123456 MESG 99999\n", &[12345, 34463]),
        (b"CONNECT DATA  50090\n", &[]),
        (b"CONNECT DATA -5\n", &[]),
        (b"connect DATA 5\n", &[]),
        (b"CONNECT \nDATA 50070\n", &[]),
        (b"CONNECT DATA 50080 DATA 50081\n", &[50080]),
        (b"xxCONNECT DATA 50060\n", &[50060]),
        (b"CONNECT DATA 50061", &[]),
    ];
    for (reply, expected) in cases {
        let mut b = Machine::default();
        amanda(&mut b, reply, 2.0);
        assert_eq!(amanda_ports(&b), expected, "{reply:?}");
    }
}

#[test]
fn several_announcements_join_their_reasons() {
    let mut b = Machine::default();
    b.send(
        &udp(C4, S4, 850, 10080, b"Amanda 2.6 REQ HANDLE 000\n"),
        1.0,
    );
    let seen = b.send(
        &udp(S4, C4, 10080, 850, b"CONNECT DATA 50000 MESG 50001\n"),
        2.0,
    );
    assert_eq!(
        seen.reason,
        "amanda: CONNECT DATA port, expecting TCP 10.77.0.1:any → 10.77.0.2:50000; \
         amanda: CONNECT MESG port, expecting TCP 10.77.0.1:any → 10.77.0.2:50001"
    );
}

#[test]
fn amanda_expectation_shape_and_related_data_connection() {
    let mut b = Machine::default();
    amanda(&mut b, b"CONNECT DATA 50000\n", 2.0);
    assert_eq!(
        b.listing(2.5),
        vec!["179 l3proto = 2 proto=6 src=10.77.0.1 dst=10.77.0.2 sport=0 dport=50000 amanda\n"]
    );
    assert_eq!(b.send(&syn(C4, S4, 41000, 50000), 3.0).state, "RELATED");
}

#[test]
fn reply_pushes_the_master_timeout_to_300s_and_requests_do_not() {
    let mut b = Machine::default();
    let request = b.send(&udp(C4, S4, 850, 10080, b"Amanda 2.6 REQ\n"), 1.0);
    b.send(&udp(S4, C4, 10080, 850, b""), 2.0);
    let master = request.id.unwrap();
    assert_eq!(b.conn(master).expires, 302.0);
    b.send(&udp(C4, S4, 850, 10080, b"CONNECT DATA 50000\n"), 5.0);
    let udp_timeouts = [
        b.cfg.nf_conntrack_udp_timeout as f64,
        b.cfg.nf_conntrack_udp_timeout_stream as f64,
    ];
    assert!(udp_timeouts.contains(&(b.conn(master).expires - 5.0)));
    assert!(b.exp.live(5.0).is_empty());
}

#[test]
fn fifth_port_evicts_the_oldest() {
    let mut b = Machine::default();
    amanda(
        &mut b,
        b"CONNECT DATA 50001 MESG 50002 INDEX 50003 STATE 50004\n",
        2.0,
    );
    b.send(&udp(S4, C4, 10080, 850, b"CONNECT DATA 50005\n"), 2.5);
    assert_eq!(amanda_ports(&b), vec![50002, 50003, 50004, 50005]);
}

#[test]
fn connect_ports_reads_at_most_five_digits() {
    let ports: Vec<(u16, &str)> = connect_ports(b"DATA 655370")
        .into_iter()
        .map(|p| (p.port, p.keyword))
        .collect();
    assert_eq!(ports, vec![(1, "DATA")]);
}

// -- registry --------------------------------------------------------------------

#[test]
fn helper_lookup_by_name_family_and_protocol() {
    assert!(find_helper("ftp", 6, PROTO_TCP).is_some());
    assert!(find_helper("irc", 6, PROTO_TCP).is_none());
    assert!(find_helper("tftp", 4, PROTO_TCP).is_none());
    assert!(find_helper("nope", 4, PROTO_UDP).is_none());
}

#[test]
fn legacy_assignment_by_port() {
    assert_eq!(helper_for_port(PROTO_TCP, 21, 4), Some(HelperKind::Ftp));
    assert_eq!(helper_for_port(PROTO_TCP, 6667, 6), None);
    assert_eq!(helper_for_port(PROTO_UDP, 69, 6), Some(HelperKind::Tftp));
    assert_eq!(
        helper_for_port(PROTO_UDP, 10080, 4),
        Some(HelperKind::Amanda)
    );
    assert_eq!(helper_for_port(PROTO_TCP, 2121, 4), None);
}
