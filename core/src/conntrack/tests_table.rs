//! The table under load and over time: nf_conntrack_max, early drop, GC,
//! expiry, events, stats and memory, all on UDP entries (unreplied flows are
//! unassured, streams are ASSURED); the TCP and ICMP trackers have tests of
//! their own.

use std::collections::HashSet;

use crate::config::Sysctls;
use crate::conntrack::conn::{
    Conn, ConnId, Tuple, CT_ESTABLISHED, CT_ESTABLISHED_REPLY, CT_INVALID, CT_NEW, IPS_ASSURED,
    IPS_EXPECTED, ORIGINAL, REPLY,
};
use crate::conntrack::core::{tuple_hash, ConntrackTable, CtResult};
use crate::conntrack::early_drop::{
    bucket_of, CAUSE_EARLY_DROP, CAUSE_GC_EARLY_DROP, CAUSE_TIMEOUT,
};
use crate::conntrack::events::{ConntrackEvent, EventKind, EventLog};
use crate::conntrack::l4proto::{ConnLookup, ConnView, ExpectHooks, NoExpectations};
use crate::conntrack::stats::{conntrack_s_line, proc_stat_lines, ExpectCounters};
use crate::conntrack::testkit::*;

const T0: f64 = 1_700_000_000.0;

fn client() -> u128 {
    v4("10.0.0.1")
}
fn server() -> u128 {
    v4("10.0.1.1")
}
fn flooder() -> u128 {
    v4("10.9.9.9")
}

fn knobs(pairs: &[(&str, u64)]) -> Sysctls {
    let mut cfg = Sysctls::default();
    for &(name, value) in pairs {
        cfg.set(name, value).unwrap();
    }
    cfg
}

/// Query, answer, and a packet more than 2 s later: an ASSURED UDP stream.
fn stream(sport: u16, at: f64) -> Vec<(f64, TestPacket)> {
    vec![
        (at, udp(client(), server(), sport, 53)),
        (at + 0.001, udp(server(), client(), 53, sport)),
        (at + 2.5, udp(client(), server(), sport, 53)),
    ]
}

fn assured_pair(at: f64) -> Vec<(f64, TestPacket)> {
    let mut packets = stream(1000, at);
    packets.extend(stream(1001, at + 0.01));
    packets.sort_by(|a, b| a.0.total_cmp(&b.0));
    packets
}

fn probe(sport: u16, at: f64) -> (f64, TestPacket) {
    (at, udp(flooder(), server(), sport, 80))
}

struct Replay {
    table: ConntrackTable,
    results: Vec<CtResult>,
    events: Vec<ConntrackEvent>,
}

fn replay(packets: &[(f64, TestPacket)], cfg: Sysctls) -> Replay {
    let mut table = ConntrackTable::with_events(cfg);
    let mut results = Vec::new();
    let mut events = Vec::new();
    for (ts, pkt) in packets {
        results.push(step(&mut table, pkt, *ts));
        events.extend(table.drain_events());
    }
    Replay {
        table,
        results,
        events,
    }
}

fn live_count(table: &ConntrackTable) -> usize {
    table.count()
}

#[test]
fn flood_evicts_only_unassured_entries() {
    let mut packets = assured_pair(T0);
    for i in 0..40u16 {
        packets.push(probe(2000 + i, T0 + 3.0 + f64::from(i) * 0.01));
    }
    let run = replay(
        &packets,
        knobs(&[("nf_conntrack_max", 4), ("nf_conntrack_buckets", 4)]),
    );
    for result in &run.results[6..] {
        assert_eq!(result.ctinfo, CT_NEW);
        assert!(!result.drop);
    }
    assert!(live_count(&run.table) <= 4);
    let assured = run
        .table
        .iter()
        .filter(|(_, c)| c.status & IPS_ASSURED != 0)
        .count();
    assert_eq!(assured, 2);
    let evicted: Vec<&ConntrackEvent> = run
        .events
        .iter()
        .filter(|e| e.cause == CAUSE_EARLY_DROP)
        .collect();
    assert!(!evicted.is_empty());
    assert!(evicted
        .iter()
        .all(|e| e.body.contains("sport=20") && !e.body.contains("[ASSURED]")));
    assert_eq!(run.table.stats.early_drop, evicted.len() as u64);
    assert_eq!(run.table.stats.drop, 0);
}

#[test]
fn eviction_destroy_event_keeps_its_timeout_column() {
    let mut packets = assured_pair(T0);
    for i in 0..8u16 {
        packets.push(probe(2000 + i, T0 + 3.0 + f64::from(i) * 0.01));
    }
    let run = replay(
        &packets,
        knobs(&[("nf_conntrack_max", 3), ("nf_conntrack_buckets", 1)]),
    );
    let evicted: Vec<&ConntrackEvent> = run
        .events
        .iter()
        .filter(|e| e.cause == CAUSE_EARLY_DROP)
        .collect();
    assert_eq!(evicted.len(), 7);
    for event in evicted {
        assert!(
            event
                .line(false)
                .starts_with("[DESTROY] udp      17 29 src=10.9.9.9 "),
            "{}",
            event.line(false)
        );
    }
}

#[test]
fn full_table_of_assured_entries_drops_the_new_connection() {
    let mut packets = assured_pair(T0);
    packets.push(probe(3000, T0 + 5.0));
    let run = replay(&packets, knobs(&[("nf_conntrack_max", 2)]));
    let last = run.results.last().unwrap();
    assert!(last.drop);
    assert_eq!(last.ctinfo, CT_INVALID);
    assert_eq!(
        last.reason,
        "conntrack table full, no entry could be evicted (nf_conntrack_max=2)"
    );
    assert_eq!(last.conn, None);
    assert_eq!(run.table.count(), 2);
    assert_eq!((run.table.stats.drop, run.table.stats.early_drop), (1, 0));
    assert!(!run.events.iter().any(|e| e.ts == T0 + 5.0)); // no entry, so no event
    assert_eq!(run.table.gc_early_drop_at(), Some(T0 + 6.0));
}

#[test]
fn existing_connections_still_pass_when_the_table_is_full() {
    let mut packets = assured_pair(T0);
    packets.push(probe(3000, T0 + 5.0));
    packets.push((T0 + 6.0, udp(client(), server(), 1000, 53)));
    let run = replay(&packets, knobs(&[("nf_conntrack_max", 2)]));
    let last = run.results.last().unwrap();
    assert_eq!(last.ctinfo, CT_ESTABLISHED);
    assert!(!last.drop);
}

#[test]
fn an_invalid_packet_also_needs_room_when_the_table_is_full() {
    let bad = udp_with(4, flooder(), server(), 3000, 80, b"x", None, Sum::Bad);
    let mut packets = assured_pair(T0);
    packets.push((T0 + 5.0, bad));
    let full = replay(&packets, knobs(&[("nf_conntrack_max", 2)]));
    assert!(full.results.last().unwrap().drop);
    assert_eq!(full.table.stats.drop, 1);
    let roomy = replay(&packets, knobs(&[("nf_conntrack_max", 3)]));
    let last = roomy.results.last().unwrap();
    assert_eq!(last.ctinfo, CT_INVALID);
    assert!(!last.drop);
    assert_eq!(roomy.table.stats.invalid, 1);
}

#[test]
fn unlimited_table_when_max_is_zero() {
    let packets: Vec<_> = (0..20u16)
        .map(|i| probe(2000 + i, T0 + 1.0 + f64::from(i) * 0.01))
        .collect();
    let run = replay(&packets, knobs(&[("nf_conntrack_max", 0)]));
    assert_eq!(run.table.count(), 20);
    assert_eq!(run.table.stats.early_drop, 0);
}

/// Ports whose tuple's eight chains hold no entry of `table` (so early
/// drop cannot find anything and the packet is dropped).
fn ports_out_of_range(table: &ConntrackTable, from: u16, wanted: usize) -> Vec<u16> {
    let size = 262_144u32;
    let mut taken = HashSet::new();
    for (_, conn) in table.iter() {
        for tuple in [&conn.orig, &conn.reply] {
            taken.insert(bucket_of(
                tuple_hash(conn.family, conn.proto, conn.zone, tuple),
                size,
            ));
        }
    }
    (from..u16::MAX)
        .filter(|&port| {
            let tuple = Tuple::new(flooder(), server(), port, 80);
            let start = bucket_of(tuple_hash(4, 17, 0, &tuple), size);
            (0..8).all(|step| !taken.contains(&((start + step) % size)))
        })
        .take(wanted)
        .collect()
}

#[test]
fn gc_early_drop_mode_after_a_table_full_drop() {
    // 96 ASSURED streams and 4 unreplied flows fill nf_conntrack_max=100.
    let mut packets = Vec::new();
    for i in 0..96u16 {
        packets.extend(stream(10000 + i, T0 + f64::from(i) * 0.01));
    }
    for i in 0..4u16 {
        packets.push((
            T0 + 3.5 + f64::from(i) * 0.01,
            udp(client(), server(), 20000 + i, 53),
        ));
    }
    packets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut run = replay(&packets, knobs(&[("nf_conntrack_max", 100)]));
    assert_eq!(run.table.count(), 100);
    let ports = ports_out_of_range(&run.table, 3000, 2);
    let tail = [
        probe(ports[0], T0 + 10.0),
        probe(ports[1], T0 + 10.5),
        probe(5999, T0 + 12.0),
    ];
    let mut hooks = NoExpectations;
    let mut drops = Vec::new();
    for (ts, pkt) in &tail {
        let mut result = run
            .table
            .classify(&pkt.packet(0, *ts), *ts, true, 0, &mut hooks);
        drops.push(result.drop);
        if result.drop {
            run.table.discard(&mut result);
        } else {
            run.table.confirm(&mut result, *ts, &mut hooks);
        }
        run.events.extend(run.table.take_events());
    }
    assert_eq!(drops, [true, true, false]);
    let kills: Vec<&ConntrackEvent> = run
        .events
        .iter()
        .filter(|e| e.cause == CAUSE_GC_EARLY_DROP)
        .collect();
    assert_eq!(kills.len(), 4);
    assert!(kills.iter().all(|e| e.body.contains("[UNREPLIED]")));
    assert!(kills.iter().all(|e| e.ts == T0 + 11.0)); // its earliest run, 1 s after the drop
    assert_eq!((run.table.stats.drop, run.table.stats.early_drop), (2, 0));
    assert_eq!(run.table.count(), 97);
    let assured = run
        .table
        .iter()
        .filter(|(_, c)| c.status & IPS_ASSURED != 0)
        .count();
    assert_eq!(assured, 96);
}

#[test]
fn gc_early_drop_never_runs_below_100_entries() {
    // nf_conntrack_max / 100 * 95 in integers is 0 below 100: the mode does nothing.
    let mut packets = assured_pair(T0);
    packets.push(probe(3000, T0 + 5.0));
    packets.push(probe(3001, T0 + 20.0));
    let run = replay(&packets, knobs(&[("nf_conntrack_max", 2)]));
    let n = run.results.len();
    assert!(run.results[n - 2].drop && run.results[n - 1].drop);
    assert!(!run.events.iter().any(|e| e.cause == CAUSE_GC_EARLY_DROP));
}

// --- the bucket walk itself ------------------------------------------------------------

/// A table of `ports` UDP entries (unlimited), chains built over `buckets`.
fn chained_table(buckets: u64, ports: std::ops::Range<u16>) -> ConntrackTable {
    let mut table = ConntrackTable::with_events(knobs(&[
        ("nf_conntrack_max", 0),
        ("nf_conntrack_buckets", buckets),
    ]));
    for port in ports {
        step(&mut table, &udp(1, 2, port, 53), 0.0);
    }
    table.take_events();
    table
}

#[test]
fn early_drop_deletes_every_candidate_of_the_first_chain_with_any() {
    let size = 64u32;
    let mut table = chained_table(u64::from(size), 1000..1400);
    let ids: Vec<ConnId> = table.iter().map(|(id, _)| id).collect();
    for id in ids {
        let conn = table.conn_mut(id).unwrap();
        conn.expires = 1e12;
        if conn.orig.sport % 3 == 0 {
            conn.status |= IPS_ASSURED;
        }
    }
    table.build_buckets();
    let new_hash = tuple_hash(4, 17, 0, &Tuple::new(1, 2, 5000, 53));
    let start = bucket_of(new_hash, size);
    let index = table.bucket_index().unwrap();
    let mut chain = Vec::new();
    let mut expected = HashSet::new();
    for step in 0..8 {
        index.snapshot((start + step) % size, &mut chain);
        expected = chain
            .iter()
            .filter(|&&slot| table.conn(ConnId(slot)).unwrap().status & IPS_ASSURED == 0)
            .copied()
            .collect();
        if !expected.is_empty() {
            break;
        }
    }
    let mut hooks = NoExpectations;
    assert_eq!(
        table.early_drop(new_hash, 10.0, &mut hooks),
        expected.len() as u64
    );
    let gone: HashSet<u32> = table
        .take_events()
        .iter()
        .map(|e| {
            assert_eq!(e.cause, CAUSE_EARLY_DROP);
            e.conn_id
        })
        .collect();
    assert_eq!(gone.len(), expected.len());
    for slot in expected {
        assert!(!table.is_live(ConnId(slot)));
    }
}

#[test]
fn early_drop_reaps_expired_entries_without_counting_them() {
    let mut table = chained_table(1, 0..100);
    let ids: Vec<ConnId> = table.iter().map(|(id, _)| id).collect();
    for id in ids {
        let conn = table.conn_mut(id).unwrap();
        conn.status |= IPS_ASSURED;
        conn.expires = 5.0;
    }
    table.build_buckets();
    let mut hooks = NoExpectations;
    let hash = tuple_hash(4, 17, 0, &Tuple::new(1, 2, 9, 53));
    assert_eq!(table.early_drop(hash, 10.0, &mut hooks), 0);
    let causes: Vec<&str> = table.take_events().iter().map(|e| e.cause).collect();
    assert_eq!(causes, vec![CAUSE_TIMEOUT; 100]);
    assert_eq!(table.count(), 0);
}

#[test]
fn bucket_hash_is_deterministic_and_in_range() {
    let hashes: Vec<u64> = (0..500u16)
        .map(|p| tuple_hash(4, 17, 0, &Tuple::new(1, 2, p, 53)))
        .collect();
    let again: Vec<u64> = (0..500u16)
        .map(|p| tuple_hash(4, 17, 0, &Tuple::new(1, 2, p, 53)))
        .collect();
    assert_eq!(hashes, again);
    assert!(hashes.iter().all(|&h| bucket_of(h, 7) < 7));
    let used: HashSet<u32> = hashes.iter().map(|&h| bucket_of(h, 16)).collect();
    assert_eq!(used.len(), 16);
}

// --- timeouts over long captures -------------------------------------------------------

#[test]
fn entries_expire_by_the_capture_clock_across_long_idle_gaps() {
    let (c, s) = (client(), server());
    let gap = 3.0 * 24.0 * 3600.0;
    let packets = [
        (T0, udp(c, s, 5000, 53)),
        (T0 + 0.1, udp(s, c, 53, 5000)),
        (T0 + 29.0, udp(c, s, 5000, 53)),
        (T0 + 29.0 + 121.0, udp(c, s, 5000, 53)),
        (T0 + gap, udp(c, s, 5000, 53)),
    ];
    let run = replay(&packets, Sysctls::default());
    let ctinfos: Vec<u8> = run.results.iter().map(|r| r.ctinfo).collect();
    assert_eq!(
        ctinfos,
        [CT_NEW, CT_ESTABLISHED_REPLY, CT_ESTABLISHED, CT_NEW, CT_NEW]
    );
    let destroys: Vec<&ConntrackEvent> = run
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Destroy)
        .collect();
    // Refreshed to 120 s (udp_timeout_stream) at T0+29, expired at T0+149, not before.
    let times: Vec<f64> = destroys.iter().map(|e| e.ts).collect();
    assert_eq!(times, [T0 + 29.0 + 120.0, T0 + 150.0 + 30.0]);
    assert!(destroys.iter().all(|e| e.cause == "timeout"));
    assert_eq!(
        destroys[0].line(false),
        "[DESTROY] udp      17 src=10.0.0.1 dst=10.0.1.1 sport=5000 dport=53 \
         src=10.0.1.1 dst=10.0.0.1 sport=53 dport=5000 [ASSURED]"
    );
}

#[test]
fn a_deadline_moved_earlier_is_honoured() {
    let (c, s) = (client(), server());
    let mut table = ConntrackTable::with_events(Sysctls::default());
    for (ts, pkt) in stream(4000, 0.0) {
        step(&mut table, &pkt, ts);
    }
    // Assured at 2.5: due at 122.5. A packet after the knob went down to 5 s
    // moves the deadline earlier, to 15.
    table.cfg.nf_conntrack_udp_timeout_stream = 5;
    step(&mut table, &udp(c, s, 4000, 53), 10.0);
    table.take_events();
    let mut hooks = NoExpectations;
    assert_eq!(table.gc(14.9, &mut hooks), 0);
    assert_eq!(table.gc(100.0, &mut hooks), 1);
    let events = table.take_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].ts, 15.0);
}

#[test]
fn a_clock_jump_is_one_step() {
    let mut table = ConntrackTable::with_events(Sysctls::default());
    for port in 0..50u16 {
        step(&mut table, &udp(1, 2, port, 53), f64::from(port) * 0.1);
    }
    table.take_events();
    // From t=0..49 to t=1.7e9: every entry reaped at its own expiry, in order.
    let late = udp(1, 2, 60000, 53);
    step(&mut table, &late, 1.7e9);
    let events = table.take_events();
    let times: Vec<f64> = events
        .iter()
        .filter(|e| e.kind == EventKind::Destroy)
        .map(|e| e.ts)
        .collect();
    let expected: Vec<f64> = (0..50).map(|p| f64::from(p) * 0.1 + 30.0).collect();
    assert_eq!(times, expected);
    assert_eq!(table.count(), 1);
    assert_eq!(table.timer_entries(), 1);
}

#[test]
fn expired_entries_free_their_room_without_early_drop() {
    let mut packets: Vec<_> = (0..2u16)
        .map(|i| (T0, udp(client(), server(), 5000 + i, 53)))
        .collect();
    packets.push((T0 + 31.0, udp(client(), server(), 6000, 53)));
    let run = replay(&packets, knobs(&[("nf_conntrack_max", 2)]));
    let last = run.results.last().unwrap();
    assert_eq!(last.ctinfo, CT_NEW);
    assert!(!last.drop);
    assert_eq!(run.table.stats.early_drop, 0);
    assert_eq!(run.table.count(), 1);
}

#[test]
fn table_at_any_instant() {
    for (at, expected) in [(0.05, 1), (29.9, 1), (30.5, 0), (100.0, 1), (131.0, 0)] {
        let packets = [
            (T0, udp(client(), server(), 5000, 53)),
            (T0 + 100.0, udp(client(), server(), 5001, 53)),
        ];
        let mut table = ConntrackTable::new(Sysctls::default());
        for (ts, pkt) in packets.iter().filter(|(ts, _)| *ts <= T0 + at) {
            step(&mut table, pkt, *ts);
        }
        assert_eq!(table.live(T0 + at).len(), expected, "at {at}");
    }
}

// --- confirmation, discard, lookups, expectations ---------------------------------------

#[test]
fn a_dropped_first_packet_leaves_no_entry_and_no_event() {
    let mut table = ConntrackTable::with_events(Sysctls::default());
    let mut hooks = NoExpectations;
    let pkt = udp(client(), server(), 5003, 53);
    let mut result = table.classify(&pkt.packet(0, T0), T0, true, 0, &mut hooks);
    assert!(result.unconfirmed);
    let id = result.conn.unwrap();
    table.discard(&mut result);
    assert!(!result.unconfirmed);
    // Still readable until the next packet, never in the table.
    assert!(table.conn(id).is_some());
    assert_eq!(table.count(), 0);
    assert!(table.take_events().is_empty());
    let again = table.classify(&pkt.packet(1, T0 + 1.0), T0 + 1.0, true, 0, &mut hooks);
    assert_eq!(again.ctinfo, CT_NEW);
    assert_eq!(again.conn, Some(id)); // the slot was reused
    assert_eq!(table.slab_len(), 1);
}

#[test]
fn lookups_find_both_directions_and_reap_expired_entries() {
    let mut table = ConntrackTable::with_events(Sysctls::default());
    let result = step(&mut table, &udp(client(), server(), 7000, 53), 0.0);
    let id = result.conn.unwrap();
    let mut hooks = NoExpectations;
    let orig = Tuple::new(client(), server(), 7000, 53);
    let reply = Tuple::new(server(), client(), 53, 7000);
    {
        let mut view = table.lookup_view(1.0, &mut hooks);
        assert_eq!(view.lookup(4, 17, &orig, 0), Some((id, ORIGINAL)));
        assert_eq!(view.lookup(4, 17, &reply, 0), Some((id, REPLY)));
        assert_eq!(view.lookup(4, 17, &orig, 1), None); // another zone
        assert_eq!(view.lookup(6, 17, &orig, 0), None);
        assert_eq!(view.conn(id).orig, orig);
    }
    table.take_events();
    let mut view = table.lookup_view(31.0, &mut hooks);
    assert_eq!(view.lookup(4, 17, &orig, 0), None);
    let events = table.take_events();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].ts, events[0].cause), (30.0, CAUSE_TIMEOUT));
    assert_eq!(table.count(), 0);
}

#[test]
fn a_tuple_equal_to_its_reply_is_original() {
    let mut table = ConntrackTable::new(Sysctls::default());
    let a = v4("10.1.1.1");
    let first = step(&mut table, &udp(a, a, 53, 53), 0.0);
    let again = step(&mut table, &udp(a, a, 53, 53), 1.0);
    assert_eq!(again.conn, first.conn);
    assert_eq!(again.ctinfo, CT_NEW);
    let mut hooks = NoExpectations;
    assert_eq!(table.gc(100.0, &mut hooks), 1);
    assert_eq!(table.count(), 0);
    assert!(table.index_bytes() > 0);
}

/// An expectation table stand-in: expects one tuple, records deaths and
/// announces them in the shared event log.
struct Expecting {
    master: Option<ConnId>,
    dport: u16,
    died: Vec<(ConnId, f64)>,
}

impl ExpectHooks for Expecting {
    fn match_new(
        &mut self,
        _id: ConnId,
        conn: &Conn,
        _packet_index: u64,
        _now: f64,
        masters: &dyn ConnView,
        _events: &mut EventLog,
    ) -> Option<ConnId> {
        let master = self.master?;
        if conn.orig.dport != self.dport || masters.get_conn(master).is_none() {
            return None;
        }
        self.master.take()
    }

    fn master_destroyed(&mut self, master: ConnId, now: f64, events: &mut EventLog) {
        self.died.push((master, now));
        events.push(ConntrackEvent::of_expectation(
            EventKind::Destroy,
            0,
            now,
            format!("expectations of #{} gone", master.0),
        ));
    }
}

#[test]
fn expected_entries_are_related_and_masters_report_their_death() {
    let mut table = ConntrackTable::with_events(Sysctls::default());
    let (c, s) = (client(), server());
    let mut hooks = Expecting {
        master: None,
        dport: 2000,
        died: Vec::new(),
    };
    let pkt = udp(c, s, 1234, 69);
    let mut result = table.classify(&pkt.packet(0, 0.0), 0.0, true, 0, &mut hooks);
    table.confirm(&mut result, 0.0, &mut hooks);
    let master = result.conn.unwrap();
    table.conn_mut(master).unwrap().mark = 9;
    hooks.master = Some(master);
    let child_pkt = udp(s, c, 4321, 2000);
    let mut child = table.classify(&child_pkt.packet(1, 1.0), 1.0, true, 0, &mut hooks);
    assert_eq!(child.ctinfo, crate::conntrack::conn::CT_RELATED);
    table.confirm(&mut child, 1.0, &mut hooks);
    let conn = table.conn(child.conn.unwrap()).unwrap();
    assert_eq!(conn.master, Some(master));
    assert_ne!(conn.status & IPS_EXPECTED, 0);
    assert_eq!(conn.mark, 9);
    let events = table.take_events();
    assert_eq!(events[1].kind, EventKind::New);
    assert_eq!(
        events[1].line(false),
        "    [NEW] udp      17 30 src=10.0.1.1 dst=10.0.0.1 sport=4321 dport=2000 [UNREPLIED] \
         src=10.0.0.1 dst=10.0.1.1 sport=2000 dport=4321 mark=9"
    );
    table.gc(100.0, &mut hooks);
    assert_eq!(hooks.died[0], (master, 30.0));
    let events = table.take_events();
    // `destroy` tells the expectation table before it reports the entry's
    // DESTROY, so the expectation's event comes first.
    assert!(events[0].expectation);
    assert_eq!(events[1].kind, EventKind::Destroy);
    assert_eq!(events[1].conn_id, 1);
}

// --- stats ------------------------------------------------------------------------------

#[test]
fn counters_follow_the_kernel_semantics() {
    let (c, s) = (client(), server());
    let mut short = udp(c, s, 1, 2);
    short.data.truncate(24);
    let packets = [
        (T0, udp(c, s, 5000, 53)),
        (
            T0 + 0.001,
            udp_with(4, c, s, 5001, 53, b"q", None, Sum::Bad),
        ), // invalid
        (T0 + 0.002, short), // invalid
        (T0 + 0.003, udp(s, c, 53, 5000)),
    ];
    let run = replay(&packets, Sysctls::default());
    let st = run.table.stats;
    assert_eq!(
        (
            st.found,
            st.insert,
            st.invalid,
            st.error,
            st.drop,
            st.early_drop,
            st.search_restart
        ),
        (0, 0, 2, 0, 0, 0, 0)
    );
    assert_eq!(
        conntrack_s_line(&st, 0),
        "cpu=0   \tfound=0 invalid=2 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 \
         search_restart=0 clash_resolve=0 chaintoolong=0 "
    );
    let [_, row] = proc_stat_lines(&st, &ExpectCounters::default(), run.table.count() as u64);
    assert!(row.starts_with("00000001  00000000 00000000 00000000 00000002 "));
}

#[test]
fn one_chain_flood_counts_early_drops() {
    // One chain: the 3rd flow evicts both others, the 4th fits, the 5th evicts two again.
    let packets: Vec<_> = (0..5u16)
        .map(|i| (T0 + f64::from(i), udp(client(), server(), 7000 + i, 53)))
        .collect();
    let run = replay(
        &packets,
        knobs(&[("nf_conntrack_max", 2), ("nf_conntrack_buckets", 1)]),
    );
    assert_eq!(run.table.stats.early_drop, 4);
    assert!(conntrack_s_line(&run.table.stats, 0).contains("early_drop=4 "));
}

// --- memory -----------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
struct Footprint {
    timers: usize,
    slab_len: usize,
    slab_capacity: usize,
    index_bytes: usize,
    heap_bytes: usize,
}

fn footprint(table: &ConntrackTable) -> Footprint {
    Footprint {
        timers: table.timer_entries(),
        slab_len: table.slab_len(),
        slab_capacity: table.slab_capacity(),
        index_bytes: table.index_bytes(),
        heap_bytes: table.heap_bytes(),
    }
}

/// A flood of new UDP flows at 3,000,000 packets/s from ever-new sources.
fn flood(table: &mut ConntrackTable, from: u32, to: u32, rate: f64) {
    let mut hooks = NoExpectations;
    for i in from..to {
        let pkt = udp(
            u128::from(0x0B00_0000 + i),
            server(),
            (i % 60000) as u16 + 1,
            80,
        );
        let now = f64::from(i) / rate;
        let mut result = table.classify(&pkt.packet(u64::from(i), now), now, true, 0, &mut hooks);
        if result.drop {
            table.discard(&mut result);
        } else {
            table.confirm(&mut result, now, &mut hooks);
        }
    }
}

#[test]
fn memory_is_bounded_under_a_long_flood() {
    for buckets in [1024, 262_144] {
        let cfg = knobs(&[
            ("nf_conntrack_max", 1000),
            ("nf_conntrack_buckets", buckets),
        ]);
        let mut table = ConntrackTable::new(cfg);
        flood(&mut table, 0, 20_000, 3e6);
        let once = footprint(&table);
        assert!(once.timers <= 1000 && once.slab_len <= 1002, "{once:?}");
        flood(&mut table, 20_000, 40_000, 3e6);
        assert_eq!(footprint(&table), once);
    }
}

#[test]
fn memory_is_bounded_when_a_flood_outlives_the_timeout() {
    // 100 packets/s for 20 minutes: entries expire and are replaced all along.
    let cfg = knobs(&[("nf_conntrack_max", 1000)]);
    let mut table = ConntrackTable::new(cfg);
    flood(&mut table, 0, 60_000, 100.0);
    let once = footprint(&table);
    flood(&mut table, 60_000, 120_000, 100.0);
    assert_eq!(footprint(&table), once);
    assert!(once.timers <= 1000);
    assert_eq!(table.unconfirmed_entries(), 0);
}

#[test]
fn a_refreshed_flow_keeps_one_timer() {
    let mut table = ConntrackTable::new(Sysctls::default());
    let (c, s) = (client(), server());
    for (ts, pkt) in stream(4000, 0.0) {
        step(&mut table, &pkt, ts);
    }
    let query = udp(c, s, 4000, 53);
    for i in 0..10_000 {
        step(&mut table, &query, 3.0 + f64::from(i) * 0.5);
    }
    assert_eq!(table.timer_entries(), 1);
    assert_eq!(table.slab_len(), 1);
}

#[test]
fn per_connection_memory() {
    use std::mem::size_of;
    let conn = size_of::<Conn>();
    let slot = size_of::<Option<Conn>>();
    let cfg = knobs(&[
        ("nf_conntrack_max", 100_000),
        ("nf_conntrack_buckets", 65_536),
    ]);
    let mut table = ConntrackTable::new(cfg);
    flood(&mut table, 0, 100_000, 3e6);
    // Fill the chains too (the table has been full once).
    flood(&mut table, 100_000, 100_010, 3e6);
    let per_entry = table.heap_bytes() as f64 / table.count() as f64;
    println!(
        "size_of::<Conn>() = {conn}, Option<Conn> = {slot}, entries = {}, \
         table bytes per entry (all structures, incl. growth slack) = {per_entry:.1}",
        table.count()
    );
    assert_eq!(slot, conn, "a free slot costs no tag");
    assert!(per_entry <= 256.0, "{per_entry}");
}

#[test]
fn malformed_packets_and_stray_fragments_are_invalid() {
    use crate::packet::{DecodeError, FragmentInfo, Layer};
    let mut table = ConntrackTable::new(Sysctls::default());
    let mut hooks = NoExpectations;
    let bytes = udp(client(), server(), 1, 2);
    let mut pkt = bytes.packet(0, 0.0);
    pkt.error = Some(Box::new(DecodeError::new(Layer::Udp, 20, "short header")));
    let result = table.classify(&pkt, 0.0, true, 0, &mut hooks);
    assert_eq!(result.ctinfo, CT_INVALID);
    assert_eq!(result.reason, "malformed: udp at byte 20: short header");
    assert_eq!(result.direction(), None);
    let mut later = bytes.packet(1, 0.0);
    later.fragment = Some(FragmentInfo {
        ident: 1,
        offset: 8,
        more: false,
        next_proto: 17,
        unfrag_len: 20,
    });
    let result = table.classify(&later, 0.0, true, 0, &mut hooks);
    assert_eq!(
        result.reason,
        "a non-first fragment reached conntrack unreassembled"
    );
    assert_eq!(table.stats.invalid, 2);
    assert_eq!(table.count(), 0);
    let ok = step(&mut table, &bytes, 0.0);
    assert_eq!(ok.direction(), Some(ORIGINAL));
    let back = step(&mut table, &udp(server(), client(), 2, 1), 0.1);
    assert_eq!(back.direction(), Some(REPLY));
}

#[test]
fn connlimit_counts_only_live_confirmed_entries() {
    use crate::rules::matches::connlimit::{ConnAlive, ConnKey};
    let cfg = knobs(&[("nf_conntrack_udp_timeout", 30)]);
    let run = replay(&[probe(1000, T0)], cfg);
    let (_, conn) = run.table.iter().next().expect("one entry");
    let key = ConnKey::of(conn);
    assert!(run.table.alive(&key, T0 + 1.0));
    assert!(
        !run.table.alive(&key, T0 + 30.0),
        "expired entries no longer count"
    );
    let mut other = key;
    other.orig.sport = 999;
    assert!(
        !run.table.alive(&other, T0 + 1.0),
        "an unknown tuple does not count"
    );
    let mut reply = key;
    reply.orig = conn.reply;
    assert!(
        run.table.alive(&reply, T0 + 1.0),
        "a lookup finds the entry by either of its tuples"
    );
}
