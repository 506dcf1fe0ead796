//! The printers byte for byte: /proc/net/nf_conntrack, `conntrack -L` and
//! `conntrack -E` lines for entries built here, the expected lines written out
//! in full; and the events of UDP, GRE and generic flows as the table reports
//! them.

use crate::config::Sysctls;
use crate::conntrack::conn::{Conn, HelperKind, ProtoData, Tuple, IPS_ASSURED, IPS_SEEN_REPLY};
use crate::conntrack::core::ConntrackTable;
use crate::conntrack::display::{conntrack_line, event_body, format_address, proc_line};
use crate::conntrack::events::EventKind;
use crate::conntrack::testkit::*;

fn udp_conn() -> Conn {
    let (c, s) = (v4("192.0.2.1"), v4("198.51.100.7"));
    let mut conn = Conn::new(
        4,
        17,
        0,
        Tuple::new(c, s, 40000, 53),
        Tuple::new(s, c, 53, 40000),
        0.0,
    );
    conn.status |= IPS_SEEN_REPLY;
    conn.expires = 30.5;
    conn
}

#[test]
fn udp_lines() {
    let conn = udp_conn();
    assert_eq!(
        proc_line(&conn, 10.5),
        "ipv4     2 udp      17 20 src=192.0.2.1 dst=198.51.100.7 sport=40000 dport=53 \
         src=198.51.100.7 dst=192.0.2.1 sport=53 dport=40000 mark=0 zone=0 use=2"
    );
    assert_eq!(
        conntrack_line(&conn, 10.5),
        "udp      17 20 src=192.0.2.1 dst=198.51.100.7 sport=40000 dport=53 \
         src=198.51.100.7 dst=192.0.2.1 sport=53 dport=40000 mark=0 use=1"
    );
    assert_eq!(
        event_body(&conn, Some(20), true, true),
        "udp      17 20 src=192.0.2.1 dst=198.51.100.7 sport=40000 dport=53 \
         src=198.51.100.7 dst=192.0.2.1 sport=53 dport=40000"
    );
}

#[test]
fn ipv6_lines_expand_for_proc_and_compress_for_conntrack_tools() {
    let (a, b) = (v6("fd99:1::1"), v6("2001:db8::ffff:0:1"));
    let mut conn = Conn::new(
        6,
        17,
        3,
        Tuple::new(a, b, 5, 6),
        Tuple::new(b, a, 6, 5),
        0.0,
    );
    conn.expires = 100.0;
    conn.mark = 7;
    conn.helper = Some(HelperKind::Tftp);
    conn.status |= IPS_ASSURED | IPS_SEEN_REPLY;
    assert_eq!(
        proc_line(&conn, 0.2),
        "ipv6     10 udp      17 99 src=fd99:0001:0000:0000:0000:0000:0000:0001 \
         dst=2001:0db8:0000:0000:0000:ffff:0000:0001 sport=5 dport=6 \
         src=2001:0db8:0000:0000:0000:ffff:0000:0001 dst=fd99:0001:0000:0000:0000:0000:0000:0001 \
         sport=6 dport=5 [ASSURED] mark=7 zone=3 use=2"
    );
    assert_eq!(
        conntrack_line(&conn, 0.2),
        "udp      17 99 src=fd99:1::1 dst=2001:db8::ffff:0:1 sport=5 dport=6 \
         src=2001:db8::ffff:0:1 dst=fd99:1::1 sport=6 dport=5 [ASSURED] mark=7 zone=3 \
         helper=tftp use=1"
    );
    assert_eq!(
        event_body(&conn, None, true, true),
        "udp      17 src=fd99:1::1 dst=2001:db8::ffff:0:1 sport=5 dport=6 \
         src=2001:db8::ffff:0:1 dst=fd99:1::1 sport=6 dport=5 [ASSURED] mark=7 zone=3 helper=tftp"
    );
    assert_eq!(
        event_body(&conn, Some(5), true, false),
        "udp      17 5 src=fd99:1::1 dst=2001:db8::ffff:0:1 sport=5 dport=6 \
         src=2001:db8::ffff:0:1 dst=fd99:1::1 sport=6 dport=5 [ASSURED] mark=7 zone=3"
    );
}

#[test]
fn gre_icmp_and_generic_lines() {
    let mut gre = Conn::new(
        4,
        47,
        0,
        Tuple::new(1, 2, 0, 7),
        Tuple::new(2, 1, 7, 0),
        0.0,
    );
    gre.expires = 29.9;
    assert_eq!(
        proc_line(&gre, 0.0),
        "ipv4     2 gre      47 29 timeout=30, stream_timeout=180 src=0.0.0.1 dst=0.0.0.2 \
         srckey=0x0 dstkey=0x7 [UNREPLIED] src=0.0.0.2 dst=0.0.0.1 srckey=0x7 dstkey=0x0 \
         mark=0 zone=0 use=2"
    );
    gre.proto_data = ProtoData::Gre {
        timeout: 600,
        stream_timeout: 18000,
    };
    assert_eq!(
        proc_line(&gre, 0.0),
        "ipv4     2 gre      47 29 timeout=600, stream_timeout=18000 src=0.0.0.1 dst=0.0.0.2 \
         srckey=0x0 dstkey=0x7 [UNREPLIED] src=0.0.0.2 dst=0.0.0.1 srckey=0x7 dstkey=0x0 \
         mark=0 zone=0 use=2"
    );
    assert_eq!(
        conntrack_line(&gre, 0.0),
        "gre      47 29 src=0.0.0.1 dst=0.0.0.2 srckey=0x0 dstkey=0x7 [UNREPLIED] \
         src=0.0.0.2 dst=0.0.0.1 srckey=0x7 dstkey=0x0 mark=0 use=1"
    );
    let mut icmp = Conn::new(
        4,
        1,
        0,
        Tuple::new(1, 2, 77, 8 << 8),
        Tuple::new(2, 1, 77, 0),
        0.0,
    );
    icmp.expires = 30.0;
    assert_eq!(
        proc_line(&icmp, 1.0),
        "ipv4     2 icmp     1 29 src=0.0.0.1 dst=0.0.0.2 type=8 code=0 id=77 [UNREPLIED] \
         src=0.0.0.2 dst=0.0.0.1 type=0 code=0 id=77 mark=0 zone=0 use=2"
    );
    assert_eq!(
        conntrack_line(&icmp, 1.0),
        "icmp     1 29 src=0.0.0.1 dst=0.0.0.2 type=8 code=0 id=77 [UNREPLIED] \
         src=0.0.0.2 dst=0.0.0.1 type=0 code=0 id=77 mark=0 use=1"
    );
    let mut dccp = Conn::new(
        4,
        33,
        0,
        Tuple::new(1, 2, 0, 0),
        Tuple::new(2, 1, 0, 0),
        0.0,
    );
    dccp.expires = 600.0;
    assert_eq!(
        proc_line(&dccp, 1.0),
        "ipv4     2 unknown  33 599 src=0.0.0.1 dst=0.0.0.2 [UNREPLIED] src=0.0.0.2 \
         dst=0.0.0.1 mark=0 zone=0 use=2"
    );
    assert_eq!(
        conntrack_line(&dccp, 1.0),
        "dccp     33 599 src=0.0.0.1 dst=0.0.0.2 sport=0 dport=0 [UNREPLIED] src=0.0.0.2 \
         dst=0.0.0.1 sport=0 dport=0 mark=0 use=1"
    );
    assert_eq!(
        event_body(&dccp, Some(599), true, true),
        "dccp     33 599 src=0.0.0.1 dst=0.0.0.2 sport=0 dport=0 [UNREPLIED] src=0.0.0.2 \
         dst=0.0.0.1 sport=0 dport=0"
    );
    // An expired entry shows 0 seconds, never a negative time.
    assert!(proc_line(&dccp, 1000.0).starts_with("ipv4     2 unknown  33 0 src="));
}

#[test]
fn ipv6_addresses_as_inet_ntop_and_pi6_print_them() {
    let cases = [
        ("::", "::", "0000:0000:0000:0000:0000:0000:0000:0000"),
        ("::1", "::1", "0000:0000:0000:0000:0000:0000:0000:0001"),
        ("1::", "1::", "0001:0000:0000:0000:0000:0000:0000:0000"),
        (
            "::ffff:1.2.3.4",
            "::ffff:1.2.3.4",
            "0000:0000:0000:0000:0000:ffff:0102:0304",
        ),
        (
            "::1.2.3.4",
            "::1.2.3.4",
            "0000:0000:0000:0000:0000:0000:0102:0304",
        ),
        (
            "1:0:0:2:0:0:0:3",
            "1:0:0:2::3",
            "0001:0000:0000:0002:0000:0000:0000:0003",
        ),
        (
            "1:0:2:0:3:0:4:0",
            "1:0:2:0:3:0:4:0",
            "0001:0000:0002:0000:0003:0000:0004:0000",
        ),
        (
            "fe80::1:0:0:1",
            "fe80::1:0:0:1",
            "fe80:0000:0000:0000:0001:0000:0000:0001",
        ),
        (
            "2001:db8:0:0:1:0:0:1",
            "2001:db8::1:0:0:1",
            "2001:0db8:0000:0000:0001:0000:0000:0001",
        ),
        (
            "::ffff:0:1.2.3.4",
            "::ffff:0:102:304",
            "0000:0000:0000:0000:ffff:0000:0102:0304",
        ),
        (
            "0:0:0:0:0:1:0:0",
            "::1:0:0",
            "0000:0000:0000:0000:0000:0001:0000:0000",
        ),
        (
            "::0.0.1.0",
            "::100",
            "0000:0000:0000:0000:0000:0000:0000:0100",
        ),
    ];
    for (text, compressed, expanded) in cases {
        assert_eq!(format_address(6, v6(text), false), compressed, "{text}");
        assert_eq!(format_address(6, v6(text), true), expanded, "{text}");
    }
    assert_eq!(format_address(4, v4("10.0.255.1"), true), "10.0.255.1");
}

const T0: f64 = 1_700_000_000.0;
const CLIENT: u128 = 0x0A63_0101;
const SERVER: u128 = 0x0A63_0201;

/// The whole event stream of UDP, GRE and generic flows, from NEW to their
/// timeouts' DESTROY.
#[test]
fn events_of_udp_gre_and_generic_flows() {
    let mut table = ConntrackTable::with_events(Sysctls::default());
    let c6 = v6("fd99:1::1");
    let s6 = v6("fd99:2::1");
    step(&mut table, &udp(CLIENT, SERVER, 5000, 53), T0);
    step(&mut table, &udp(CLIENT, SERVER, 5000, 53), T0 + 1.0);
    step(&mut table, &udp(SERVER, CLIENT, 53, 5000), T0 + 1.5);
    step(&mut table, &udp(CLIENT, SERVER, 5000, 53), T0 + 2.5);
    step(&mut table, &udp(CLIENT, SERVER, 5000, 53), T0 + 3.0);
    step(
        &mut table,
        &udp_with(6, c6, s6, 7, 8, b"hello", None, Sum::Good),
        T0 + 4.0,
    );
    step(&mut table, &gre_v0(CLIENT, SERVER), T0 + 5.0);
    step(&mut table, &gre_v0(SERVER, CLIENT), T0 + 5.5);
    step(&mut table, &gre_v0(CLIENT, SERVER), T0 + 6.0);
    step(
        &mut table,
        &ip_packet(4, CLIENT, SERVER, 99, b"x", 0, 0, 0),
        T0 + 7.0,
    );
    step(&mut table, &udp(CLIENT, SERVER, 6000, 53), T0 + 1000.0);
    let got: Vec<(f64, &str, String)> = table
        .take_events()
        .iter()
        .map(|e| (e.ts - T0, e.cause, e.line(false)))
        .collect();
    let expected: Vec<(f64, &str, &str)> = vec![
        (0.0, "", "    [NEW] udp      17 30 src=10.99.1.1 dst=10.99.2.1 sport=5000 dport=53 [UNREPLIED] src=10.99.2.1 dst=10.99.1.1 sport=53 dport=5000"),
        (1.5, "", " [UPDATE] udp      17 30 src=10.99.1.1 dst=10.99.2.1 sport=5000 dport=53 src=10.99.2.1 dst=10.99.1.1 sport=53 dport=5000"),
        (2.5, "", " [UPDATE] udp      17 120 src=10.99.1.1 dst=10.99.2.1 sport=5000 dport=53 src=10.99.2.1 dst=10.99.1.1 sport=53 dport=5000 [ASSURED]"),
        (4.0, "", "    [NEW] udp      17 30 src=fd99:1::1 dst=fd99:2::1 sport=7 dport=8 [UNREPLIED] src=fd99:2::1 dst=fd99:1::1 sport=8 dport=7"),
        (5.0, "", "    [NEW] gre      47 30 src=10.99.1.1 dst=10.99.2.1 srckey=0x0 dstkey=0x0 [UNREPLIED] src=10.99.2.1 dst=10.99.1.1 srckey=0x0 dstkey=0x0"),
        (5.5, "", " [UPDATE] gre      47 30 src=10.99.1.1 dst=10.99.2.1 srckey=0x0 dstkey=0x0 src=10.99.2.1 dst=10.99.1.1 srckey=0x0 dstkey=0x0"),
        (6.0, "", " [UPDATE] gre      47 180 src=10.99.1.1 dst=10.99.2.1 srckey=0x0 dstkey=0x0 src=10.99.2.1 dst=10.99.1.1 srckey=0x0 dstkey=0x0 [ASSURED]"),
        (7.0, "", "    [NEW] unknown  99 600 src=10.99.1.1 dst=10.99.2.1 [UNREPLIED] src=10.99.2.1 dst=10.99.1.1"),
        (34.0, "timeout", "[DESTROY] udp      17 src=fd99:1::1 dst=fd99:2::1 sport=7 dport=8 [UNREPLIED] src=fd99:2::1 dst=fd99:1::1 sport=8 dport=7"),
        (123.0, "timeout", "[DESTROY] udp      17 src=10.99.1.1 dst=10.99.2.1 sport=5000 dport=53 src=10.99.2.1 dst=10.99.1.1 sport=53 dport=5000 [ASSURED]"),
        (186.0, "timeout", "[DESTROY] gre      47 src=10.99.1.1 dst=10.99.2.1 srckey=0x0 dstkey=0x0 src=10.99.2.1 dst=10.99.1.1 srckey=0x0 dstkey=0x0 [ASSURED]"),
        (607.0, "timeout", "[DESTROY] unknown  99 src=10.99.1.1 dst=10.99.2.1 [UNREPLIED] src=10.99.2.1 dst=10.99.1.1"),
        (1000.0, "", "    [NEW] udp      17 30 src=10.99.1.1 dst=10.99.2.1 sport=6000 dport=53 [UNREPLIED] src=10.99.2.1 dst=10.99.1.1 sport=53 dport=6000"),
    ];
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for ((ts, cause, line), (ets, ecause, eline)) in got.iter().zip(&expected) {
        assert!(approx(*ts, *ets), "{ts} != {ets}: {line}");
        assert_eq!((*cause, line.as_str()), (*ecause, *eline));
    }
    assert_eq!(table.stats, Default::default());
}

#[test]
fn expiry_destroy_has_no_timeout_and_the_time_of_expiry() {
    let mut table = ConntrackTable::with_events(Sysctls::default());
    let (c, s) = (v4("10.99.1.1"), v4("10.99.2.1"));
    step(&mut table, &udp(c, s, 5555, 53), T0);
    step(&mut table, &udp(c, s, 5555, 53), T0 + 100.0);
    let events = table.take_events();
    let kinds: Vec<(EventKind, f64)> = events.iter().map(|e| (e.kind, e.ts)).collect();
    assert_eq!(
        kinds,
        [
            (EventKind::New, T0),
            (EventKind::Destroy, T0 + 30.0),
            (EventKind::New, T0 + 100.0)
        ]
    );
    assert_eq!(
        events[1].line(false),
        "[DESTROY] udp      17 src=10.99.1.1 dst=10.99.2.1 sport=5555 dport=53 [UNREPLIED] \
         src=10.99.2.1 dst=10.99.1.1 sport=53 dport=5555"
    );
}

#[test]
fn timestamps_prefix_as_conntrack_minus_o_timestamp() {
    let mut table = ConntrackTable::with_events(Sysctls::default());
    step(&mut table, &udp(CLIENT, SERVER, 5555, 53), T0 + 0.25);
    let events = table.take_events();
    assert!(events[0]
        .line(true)
        .starts_with("[1700000000.250000]\t    [NEW] udp      17 30 "));
}

#[test]
fn events_need_to_be_enabled_to_be_recorded() {
    let mut table = ConntrackTable::new(Sysctls::default());
    let result = step(&mut table, &udp(CLIENT, SERVER, 5555, 53), T0);
    assert!(table.take_events().is_empty());
    // Nothing is cached on the entry either.
    assert_eq!(table.conn(id(&result)).unwrap().events, 0);
}
