//! Accounting (nf_conntrack_acct): which packets count, and the listings'
//! and events' counters byte for byte.
//!
//! The expected lines were printed by Linux 6.18 for the same datagrams
//! (`conntrack -L`, `/proc/net/nf_conntrack` and `conntrack -E` in a
//! firewall namespace with `net.netfilter.nf_conntrack_acct=1`, fed by
//! statewall's kernel oracle); tests/test_acct_kernel.py repeats that
//! comparison against the live kernel.

use crate::config::Sysctls;
use crate::conntrack::acct::Counter;
use crate::conntrack::core::{ConntrackTable, CtResult};
use crate::conntrack::display::{conntrack_line, conntrack_line_acct, proc_line_acct};
use crate::conntrack::l4proto::NoExpectations;
use crate::conntrack::testkit::{checksum, ip_packet, pseudo, udp_with, v4, Sum, TestPacket};
use crate::decode::decode_datagram;
use crate::packet::{ACK, RST, SYN};

const C: &str = "10.99.1.1";
const S: &str = "10.99.2.1";

fn acct_table(events: bool) -> ConntrackTable {
    let cfg = Sysctls {
        nf_conntrack_acct: 1,
        ..Sysctls::default()
    };
    if events {
        ConntrackTable::with_events(cfg)
    } else {
        ConntrackTable::new(cfg)
    }
}

/// A TCP segment without options or payload (40 bytes in all).
fn tcp(src: &str, dst: &str, sport: u16, dport: u16, flags: u8, seq: u32, ack: u32) -> TestPacket {
    let (s, d) = (v4(src), v4(dst));
    let mut segment = Vec::new();
    segment.extend_from_slice(&sport.to_be_bytes());
    segment.extend_from_slice(&dport.to_be_bytes());
    segment.extend_from_slice(&seq.to_be_bytes());
    segment.extend_from_slice(&ack.to_be_bytes());
    segment.extend_from_slice(&[5 << 4, flags]);
    segment.extend_from_slice(&64240u16.to_be_bytes());
    segment.extend_from_slice(&[0, 0, 0, 0]);
    let sum = checksum(pseudo(4, s, d, 6, 20), &segment);
    segment[16..18].copy_from_slice(&sum.to_be_bytes());
    ip_packet(4, s, d, 6, &segment, sport, dport, 20)
}

fn udp(src: &str, dst: &str, sport: u16, dport: u16, payload: &[u8]) -> TestPacket {
    udp_with(4, v4(src), v4(dst), sport, dport, payload, None, Sum::Good)
}

/// One forwarded packet, decoded from its bytes: conntrack, then confirm.
fn step(table: &mut ConntrackTable, pkt: &TestPacket, now: f64) -> CtResult {
    let mut hooks = NoExpectations;
    let decoded = decode_datagram(&pkt.data, 0, now, false);
    let mut result = table.classify(&decoded, now, true, 0, &mut hooks);
    if result.drop {
        table.discard(&mut result);
    } else {
        table.confirm(&mut result, now, &mut hooks);
    }
    result
}

fn counter(packets: u64, bytes: u64) -> Counter {
    Counter { packets, bytes }
}

/// The packet that makes a replied UDP flow a stream (ASSURED) counts too:
/// the kernel's udp_packet refreshes with accounting before setting the bit.
#[test]
fn the_packet_that_assures_a_udp_stream_is_counted() {
    let mut table = acct_table(false);
    let id = step(&mut table, &udp(C, S, 5000, 53, b"q"), 0.0)
        .conn
        .unwrap();
    step(&mut table, &udp(S, C, 53, 5000, b"a"), 1.0);
    step(&mut table, &udp(C, S, 5000, 53, b"q2"), 2.5);
    step(&mut table, &udp(S, C, 53, 5000, b"a2"), 3.5);
    assert_eq!(table.counters(id), Some([counter(2, 59), counter(2, 59)]));
}

#[test]
fn udp_counts_datagram_lengths_and_both_listings_print_them() {
    let mut table = acct_table(false);
    let query = udp(C, S, 5353, 53, b"q");
    let id = step(&mut table, &query, 0.0).conn.unwrap();
    step(&mut table, &query, 0.1);
    step(&mut table, &udp(S, C, 53, 5353, b"abcdef"), 0.2);
    assert_eq!(table.counters(id), Some([counter(2, 58), counter(1, 34)]));
    let conn = table.conn(id).unwrap();
    let counters = table.listed_counters(id);
    assert_eq!(
        conntrack_line_acct(conn, 1.2, counters.as_ref()),
        "udp      17 29 src=10.99.1.1 dst=10.99.2.1 sport=5353 dport=53 packets=2 bytes=58 \
         src=10.99.2.1 dst=10.99.1.1 sport=53 dport=5353 packets=1 bytes=34 mark=0 use=1"
    );
    assert_eq!(
        proc_line_acct(conn, 1.2, counters.as_ref()),
        "ipv4     2 udp      17 29 src=10.99.1.1 dst=10.99.2.1 sport=5353 dport=53 packets=2 \
         bytes=58 src=10.99.2.1 dst=10.99.1.1 sport=53 dport=5353 packets=1 bytes=34 mark=0 \
         zone=0 use=2"
    );
}

#[test]
fn without_the_sysctl_nothing_counts_and_listings_are_unchanged() {
    let mut table = ConntrackTable::new(Sysctls::default());
    let id = step(&mut table, &udp(C, S, 5353, 53, b"q"), 0.0)
        .conn
        .unwrap();
    assert_eq!(
        (table.counters(id), table.listed_counters(id)),
        (None, None)
    );
    assert!(!conntrack_line(table.conn(id).unwrap(), 0.0).contains("packets="));
}

#[test]
fn the_connection_log_counts_without_changing_the_listings() {
    let mut table = ConntrackTable::new(Sysctls::default());
    table.enable_history();
    let id = step(&mut table, &udp(C, S, 5353, 53, b"q"), 0.0)
        .conn
        .unwrap();
    assert_eq!(table.counters(id), Some([counter(1, 29), counter(0, 0)]));
    assert_eq!(table.listed_counters(id), None);
}

#[test]
fn a_retransmitted_syn_before_any_reply_is_not_counted() {
    let mut table = acct_table(false);
    let id = step(&mut table, &tcp(C, S, 1000, 80, SYN, 100, 0), 0.0)
        .conn
        .unwrap();
    step(&mut table, &tcp(C, S, 1000, 80, SYN, 100, 0), 0.1);
    step(&mut table, &tcp(S, C, 80, 1000, SYN | ACK, 500, 101), 0.2);
    step(&mut table, &tcp(C, S, 1000, 80, ACK, 101, 501), 0.3);
    assert_eq!(table.counters(id), Some([counter(2, 80), counter(1, 40)]));
    let conn = table.conn(id).unwrap();
    assert_eq!(
        conntrack_line_acct(conn, 1.3, table.listed_counters(id).as_ref()),
        "tcp      6 431999 ESTABLISHED src=10.99.1.1 dst=10.99.2.1 sport=1000 dport=80 \
         packets=2 bytes=80 src=10.99.2.1 dst=10.99.1.1 sport=80 dport=1000 packets=1 bytes=40 \
         [ASSURED] mark=0 use=1"
    );
}

#[test]
fn an_rst_that_kills_an_unreplied_entry_is_counted_in_its_destroy_event() {
    let mut table = acct_table(true);
    step(&mut table, &tcp(C, S, 1001, 80, SYN, 100, 0), 0.0);
    step(&mut table, &tcp(S, C, 80, 1001, RST | ACK, 0, 101), 0.1);
    let lines: Vec<String> = table.take_events().iter().map(|e| e.line(false)).collect();
    assert_eq!(
        lines.last().map(String::as_str),
        Some(
            "[DESTROY] tcp      6 119 CLOSE src=10.99.1.1 dst=10.99.2.1 sport=1001 dport=80 \
             packets=1 bytes=40 [UNREPLIED] src=10.99.2.1 dst=10.99.1.1 sport=80 dport=1001 \
             packets=1 bytes=40"
        )
    );
    // NEW and UPDATE messages never carry counters.
    assert!(lines[..lines.len() - 1]
        .iter()
        .all(|line| !line.contains("packets=")));
}

#[test]
fn a_slot_reused_by_a_new_entry_starts_from_zero() {
    let mut table = acct_table(false);
    let first = step(&mut table, &udp(C, S, 1, 2, b"xx"), 0.0).conn.unwrap();
    // Expired (30 s) and reaped; the next entry takes the freed slot.
    step(&mut table, &udp(C, S, 3, 4, b"x"), 100.0);
    let second = step(&mut table, &udp(C, S, 5, 6, b"x"), 100.5)
        .conn
        .unwrap();
    assert_eq!(first, second, "the slot is reused");
    assert_eq!(
        table.counters(second),
        Some([counter(1, 29), counter(0, 0)])
    );
}
