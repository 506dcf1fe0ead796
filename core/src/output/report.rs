//! `statewall report`'s data, gathered in the replay's own pass.
//!
//! A report of a million packets shows counts of every packet but the
//! details (a connection's packets, a rule's connections, a TCP
//! transition's packets) of a few tens of thousands only. `Tally` counts
//! each packet as it leaves the machine and keeps the details up to
//! `ReportCaps`; the reason and summary texts, the costly part of a
//! packet's record, are spelt out only for the packets kept and, for the
//! drops-by-reason counts, for the packets dropped. `log_summary` reads
//! the connection log once the replay is done: the table's size over time,
//! connections by protocol and final state, and the records of the
//! connections the page lists.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use crate::conntrack::history::ConnRecord;
use crate::engine::{Firewall, PacketRecord, RuleRef};
use crate::output::conns::{final_state, proto_label, write_jsonl};
use crate::output::report_merge::{RulePart, TallyPart};
use crate::output::report_rows::{long_count, Keeper, Placed};
use crate::output::summary::summary;
use crate::packet::{Packet, PROTO_TCP};
use crate::verdict::Verdict;

/// How much detail the report keeps (the counts are never capped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportCaps {
    /// Connections listed, and connections whose packets are kept.
    pub connections: usize,
    pub rows_per_connection: usize,
    pub rows: usize,
    pub conns_per_rule: usize,
    pub frames_per_transition: usize,
    /// Drop reasons named (the rest are summed).
    pub reasons: usize,
    /// Points of the table-size curve.
    pub table_points: usize,
}

/// Counts by key, in the order each key was first met; `most_common` sorts
/// them by count, ties in that order (as Python's `Counter.most_common`).
/// Each key remembers where it was first met (a packet's index, a
/// connection's number), so counts made apart merge in the same order.
#[derive(Debug)]
pub struct Counts<K> {
    at: HashMap<K, usize>,
    items: Vec<(K, u64)>,
    first: Vec<u64>,
}

impl<K> Default for Counts<K> {
    fn default() -> Self {
        Counts {
            at: HashMap::new(),
            items: Vec::new(),
            first: Vec::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> Counts<K> {
    /// Add `n` to `key`'s count, met at `index`; the key's position in
    /// first-met order.
    pub fn add(&mut self, key: K, n: u64, index: u64) -> usize {
        if let Some(&at) = self.at.get(&key) {
            self.items[at].1 += n;
            return at;
        }
        let at = self.items.len();
        self.at.insert(key.clone(), at);
        self.items.push((key, n));
        self.first.push(index);
        at
    }

    /// (key, count, where first met), in first-met order.
    pub fn entries(&self) -> Vec<(K, u64, u64)> {
        self.items
            .iter()
            .zip(&self.first)
            .map(|((key, n), &first)| (key.clone(), *n, first))
            .collect()
    }

    /// The counts of several `entries` together: counts add up, and a key
    /// was first met where any of them first met it.
    pub fn merged(entries: impl IntoIterator<Item = (K, u64, u64)>) -> Self {
        let mut sums: HashMap<K, (u64, u64)> = HashMap::new();
        for (key, n, first) in entries {
            let sum = sums.entry(key).or_insert((0, first));
            sum.0 += n;
            sum.1 = sum.1.min(first);
        }
        let mut sums: Vec<(K, (u64, u64))> = sums.into_iter().collect();
        sums.sort_by_key(|(_, (_, first))| *first);
        let mut out = Counts::default();
        for (key, (n, first)) in sums {
            out.add(key, n, first);
        }
        out
    }

    /// The keys and counts, most common first (positions as `add` gave them
    /// are lost).
    pub fn most_common(&self) -> Vec<(K, u64)> {
        let mut out = self.items.clone();
        out.sort_by_key(|item| std::cmp::Reverse(item.1));
        out
    }

    pub fn total(&self) -> u64 {
        self.items.iter().map(|(_, n)| n).sum()
    }
}

/// The deciding rules met in a run, numbered in order of first appearance
/// (the runs hand rules to Python by these numbers).
#[derive(Debug, Default)]
pub struct RuleIndex {
    ids: HashMap<RuleRef, i32>,
    rules: Vec<RuleRef>,
}

impl RuleIndex {
    /// The number of `rule` (-1: none).
    pub fn id(&mut self, rule: Option<RuleRef>) -> i32 {
        let Some(rule) = rule else { return -1 };
        let next = self.rules.len() as i32;
        *self.ids.entry(rule).or_insert_with(|| {
            self.rules.push(rule);
            next
        })
    }

    /// Every rule met, by number.
    pub fn rules(&self) -> &[RuleRef] {
        &self.rules
    }
}

/// One packet kept for the page: frame number (1-based), seconds from the
/// first packet counted (its timestamp until the tally is finished), ctdir (-1 none), verdict, ctinfo (-1 none), TCP
/// state (-1 none), deciding rule's number in the run (-1 none), reason, summary.
pub type Row = (u64, f64, i8, u8, i8, i8, i32, String, String);

/// What the report counts of one connection (`conn` 0: the packets of none).
#[derive(Debug, Default)]
struct ConnTally {
    packets: u64,
    drops: u64,
    /// The latest TCP state seen (0, TCP's NONE, before the first).
    tcp: i8,
    /// Its place among the connections whose packets are kept (`Keeper`).
    place: Option<usize>,
}

/// A deciding rule's share: the packets it decided, and the connections.
#[derive(Debug, Default)]
struct RuleTally {
    /// The index of the first packet it decided.
    first: u64,
    packets: u64,
    conns: HashSet<u32>,
}

/// The report's counts, packet by packet.
#[derive(Debug)]
pub struct Tally {
    caps: ReportCaps,
    /// The first packet counted: its index and time.
    first: Option<(u64, f64)>,
    packets: u64,
    state_verdict: Counts<(i8, u8)>,
    rules: RuleIndex,
    decided: Vec<RuleTally>,
    drop_rules: Counts<i32>,
    drop_reasons: Counts<String>,
    conns: HashMap<u32, ConnTally>,
    keeper: Keeper<Row>,
    transitions: Counts<(i8, i8)>,
    transition_frames: Vec<Vec<u64>>,
}

/// The connections a report lists: (conn, packets, drops), by number.
pub type ListedConn = (u32, u64, u64);

/// `Tally`'s result.
#[derive(Debug)]
pub struct Report {
    pub caps: ReportCaps,
    /// Packets counted (those the selection admitted).
    pub packets: u64,
    pub first_ts: Option<f64>,
    /// (ctinfo, verdict, packets), most common first.
    pub state_verdict: Vec<((i8, u8), u64)>,
    /// Every deciding rule met, numbered as the rows and counts name them.
    pub rules: Vec<RuleRef>,
    /// Per rule (by number): packets decided, connections decided, the
    /// lowest-numbered of those up to the cap.
    pub decided: Vec<(u64, usize, Vec<u32>)>,
    /// (rule number or -1, drops), most common first.
    pub drop_rules: Vec<(i32, u64)>,
    /// The most common drop reasons up to the cap, and the drops of the others.
    pub drop_reasons: Vec<(String, u64)>,
    pub other_reasons: u64,
    /// Connections seen (conn 0, the packets of none, aside), and the first
    /// listed up to the cap.
    pub conns_seen: usize,
    pub listed: Vec<ListedConn>,
    /// Packets and drops that belonged to no connection.
    pub outside: (u64, u64),
    /// The packets kept, by connection, in order of each one's first packet.
    pub rows: Vec<(u32, Vec<Row>)>,
    pub kept: usize,
    /// Connections whose packets were cut at the per-connection cap.
    pub long: usize,
    /// TCP transitions (from, to, packets, their first frames), most common first.
    pub transitions: Vec<(i8, i8, u64, Vec<u64>)>,
}

fn is_drop(verdict: Verdict) -> bool {
    matches!(verdict, Verdict::Drop | Verdict::Reject)
}

/// Seconds to the microsecond a capture's times carry.
fn micro(seconds: f64) -> f64 {
    (seconds * 1e6).round() / 1e6
}

impl Tally {
    pub fn new(caps: ReportCaps) -> Self {
        Tally::with_keeper(caps, Keeper::single(caps))
    }

    /// One partition's tally of a partitioned run: it keeps the packets the
    /// run may keep (`Keeper::partition`), for `into_part`.
    pub fn for_partition(caps: ReportCaps) -> Self {
        Tally::with_keeper(caps, Keeper::partition(caps))
    }

    fn with_keeper(caps: ReportCaps, keeper: Keeper<Row>) -> Self {
        Tally {
            caps,
            first: None,
            packets: 0,
            state_verdict: Counts::default(),
            rules: RuleIndex::default(),
            decided: Vec::new(),
            drop_rules: Counts::default(),
            drop_reasons: Counts::default(),
            conns: HashMap::new(),
            keeper,
            transitions: Counts::default(),
            transition_frames: Vec::new(),
        }
    }

    /// Count one packet the machine has just processed.
    pub fn push(&mut self, fw: &Firewall, rec: &PacketRecord, pkt: &Packet<'_>) {
        self.first.get_or_insert((rec.index, rec.ts));
        self.packets += 1;
        let ctinfo = rec.ctinfo.map_or(-1, |c| c as i8);
        let verdict = rec.verdict as u8;
        self.state_verdict.add((ctinfo, verdict), 1, rec.index);
        let rule = self.rules.id(rec.rule);
        let id = rec.conn.unwrap_or(0);
        if rule >= 0 {
            let at = rule as usize;
            if at == self.decided.len() {
                self.decided.push(RuleTally {
                    first: rec.index,
                    ..RuleTally::default()
                });
            }
            let decided = &mut self.decided[at];
            decided.packets += 1;
            if id != 0 {
                decided.conns.insert(id);
            }
        }
        let conn = self.conns.entry(id).or_default();
        let seen = conn.packets;
        conn.packets += 1;
        let dropped = is_drop(rec.verdict);
        let mut reason = None;
        if dropped {
            conn.drops += 1;
            self.drop_rules.add(rule, 1, rec.index);
            let text = fw.reason(rec);
            self.drop_reasons.add(text.clone(), 1, rec.index);
            reason = Some(text);
        }
        let tcp = rec.tcp_state.map_or(-1, |s| s as i8);
        if rec.proto == PROTO_TCP && id != 0 && tcp >= 0 && tcp != conn.tcp {
            let at = self.transitions.add((conn.tcp, tcp), 1, rec.index);
            if at == self.transition_frames.len() {
                self.transition_frames.push(Vec::new());
            }
            let frames = &mut self.transition_frames[at];
            if frames.len() < self.caps.frames_per_transition {
                frames.push(rec.index + 1);
            }
            conn.tcp = tcp;
        }
        let Some(rows) = self.keeper.admit(id, &mut conn.place, seen, rec.index) else {
            return;
        };
        rows.push((
            rec.index + 1,
            rec.ts,
            rec.ctdir.map_or(-1, |d| d as i8),
            verdict,
            ctinfo,
            tcp,
            rule,
            reason.unwrap_or_else(|| fw.reason(rec)),
            summary(pkt),
        ));
    }

    pub fn finish(self) -> Report {
        let caps = self.caps;
        let decided = self
            .decided
            .into_iter()
            .map(|rule| {
                let mut conns: Vec<u32> = rule.conns.into_iter().collect();
                let total = conns.len();
                conns.sort_unstable();
                conns.truncate(caps.conns_per_rule);
                (rule.packets, total, conns)
            })
            .collect();
        let reasons = self.drop_reasons.most_common();
        let named: Vec<(String, u64)> = reasons.into_iter().take(caps.reasons).collect();
        let other_reasons = self.drop_reasons.total() - named.iter().map(|(_, n)| n).sum::<u64>();
        let mut ids: Vec<u32> = self.conns.keys().copied().filter(|&c| c != 0).collect();
        ids.sort_unstable();
        let conns_seen = ids.len();
        let listed = ids
            .into_iter()
            .take(caps.connections)
            .map(|id| (id, self.conns[&id].packets, self.conns[&id].drops))
            .collect();
        let outside = self.conns.get(&0).map_or((0, 0), |c| (c.packets, c.drops));
        let (placed, kept) = self.keeper.finish();
        let long = long_count(&placed, caps);
        let origin = self.first.map_or(0.0, |(_, ts)| ts);
        let rows = placed
            .into_iter()
            .map(|p| (p.conn, from_origin(p.rows, origin)))
            .collect();
        let transitions = self
            .transitions
            .most_common()
            .into_iter()
            .map(|((from, to), n)| {
                let at = self.transitions.at[&(from, to)];
                (from, to, n, self.transition_frames[at].clone())
            })
            .collect();
        Report {
            caps,
            packets: self.packets,
            first_ts: self.first.map(|(_, ts)| ts),
            state_verdict: self.state_verdict.most_common(),
            rules: self.rules.rules,
            decided,
            drop_rules: self.drop_rules.most_common(),
            drop_reasons: named,
            other_reasons,
            conns_seen,
            listed,
            outside,
            rows,
            kept,
            long,
            transitions,
        }
    }
}

impl Tally {
    /// A partition's tally as plain values, its connections numbered by
    /// `number` (the run's numbers, from the partition's own) and the rest
    /// kept for `report_merge::merge`: where each count was first met, the
    /// lowest-numbered connections up to the caps, and the packets the run
    /// may keep (times not yet from the run's first packet).
    pub fn into_part(self, number: impl Fn(u32) -> u32) -> TallyPart {
        let caps = self.caps;
        let global = |id: u32| if id == 0 { 0 } else { number(id) };
        let rules = self
            .rules
            .rules
            .into_iter()
            .zip(self.decided)
            .map(|(rule, tally)| {
                let mut conns: Vec<u32> = tally.conns.into_iter().map(global).collect();
                let conns_total = conns.len();
                conns.sort_unstable();
                conns.truncate(caps.conns_per_rule);
                RulePart {
                    rule,
                    first: tally.first,
                    packets: tally.packets,
                    conns_total,
                    conns,
                }
            })
            .collect();
        let mut ids: Vec<u32> = self.conns.keys().copied().filter(|&c| c != 0).collect();
        ids.sort_unstable();
        let listed = ids
            .iter()
            .take(caps.connections)
            .map(|id| (global(*id), self.conns[id].packets, self.conns[id].drops))
            .collect();
        let placed = self
            .keeper
            .finish()
            .0
            .into_iter()
            .map(|p| Placed::new(global(p.conn), p.first, p.packets, p.rows))
            .collect();
        let transitions = self
            .transitions
            .entries()
            .into_iter()
            .zip(self.transition_frames)
            .map(|((key, n, first), frames)| (key, n, first, frames))
            .collect();
        TallyPart {
            packets: self.packets,
            first: self.first,
            state_verdict: self.state_verdict.entries(),
            rules,
            drop_rules: self.drop_rules.entries(),
            drop_reasons: self.drop_reasons.entries(),
            conns_seen: ids.len(),
            listed,
            outside: self.conns.get(&0).map_or((0, 0), |c| (c.packets, c.drops)),
            placed,
            transitions,
        }
    }
}

/// `rows` with their times as seconds from `origin`, to the microsecond.
pub fn from_origin(mut rows: Vec<Row>, origin: f64) -> Vec<Row> {
    for row in &mut rows {
        row.1 = micro(row.1 - origin);
    }
    rows
}

/// What the report shows of the connection log.
#[derive(Debug)]
pub struct LogSummary {
    /// The table's size over time: (seconds from `origin`, the largest size
    /// in the step), at most `table_points` steps.
    pub table_curve: Vec<(f64, u64)>,
    /// (protocol, final state or "-", connections), most common first.
    pub by_proto_state: Vec<((String, String), u64)>,
    /// Entries confirmed, and those expected by a helper.
    pub confirmed: usize,
    pub related: usize,
    /// The jsonl records (`statewall conns`) of the connections asked for.
    pub records: Vec<u8>,
}

/// The log's share of the report: `listed`, the connections whose records
/// the page shows.
pub fn log_summary(
    fw: &Firewall,
    records: &[ConnRecord],
    listed: &[u32],
    origin: f64,
    points: usize,
) -> LogSummary {
    let wanted: HashSet<u32> = listed.iter().copied().collect();
    let mut out = Vec::new();
    for record in records.iter().filter(|r| wanted.contains(&r.id)) {
        write_jsonl(&mut out, fw, record);
    }
    LogSummary {
        table_curve: table_curve(table_changes(records), origin, points),
        by_proto_state: by_proto_state(records, |id| id).most_common(),
        confirmed: records.len(),
        related: records.iter().filter(|r| r.master.is_some()).count(),
        records: out,
    }
}

/// Connections by protocol and final state ("-": none), each key first met
/// at the connection numbered `number(id)`.
pub fn by_proto_state(
    records: &[ConnRecord],
    number: impl Fn(u32) -> u32,
) -> Counts<(String, String)> {
    let mut counts: Counts<(&'static str, &'static str)> = Counts::default();
    for record in records {
        let state = final_state(record).unwrap_or("-");
        counts.add(
            (proto_label(record.proto), state),
            1,
            u64::from(number(record.id)),
        );
    }
    Counts::merged(
        counts
            .entries()
            .into_iter()
            .map(|((proto, state), n, first)| ((proto.to_string(), state.to_string()), n, first)),
    )
}

/// The table's size changes: +1 at each entry's confirmation, -1 at its end.
pub fn table_changes(records: &[ConnRecord]) -> Vec<(f64, i64)> {
    let mut changes: Vec<(f64, i64)> = Vec::with_capacity(records.len() * 2);
    for record in records {
        changes.push((record.first_ts, 1));
        if let Some(end) = record.end {
            changes.push((end.ts, -1));
        }
    }
    changes
}

/// The table's size from its `changes`, the largest in each of at most
/// `points` equal steps between the first change and the last.
pub fn table_curve(mut changes: Vec<(f64, i64)>, origin: f64, points: usize) -> Vec<(f64, u64)> {
    // At one time, ends before confirmations: the size never counts an
    // entry that a later one replaced at the same instant.
    changes.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (Some(first), Some(last)) = (changes.first(), changes.last()) else {
        return Vec::new();
    };
    let (start, end) = (first.0, last.0);
    let step = if end > start {
        (end - start) / points.max(1) as f64
    } else {
        1.0
    };
    let mut curve: Vec<(f64, u64)> = Vec::new();
    let mut size: i64 = 0;
    for (when, change) in changes {
        size += change;
        let slot = micro(start + ((when - start) / step).floor() * step - origin);
        let now = size.max(0) as u64;
        match curve.last_mut() {
            Some(point) if point.0 == slot => point.1 = point.1.max(now),
            _ => curve.push((slot, now)),
        }
    }
    curve
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_common_breaks_ties_in_first_met_order() {
        let mut counts = Counts::default();
        for (index, key) in ["b", "a", "c", "a", "c", "d"].into_iter().enumerate() {
            counts.add(key, 1, index as u64);
        }
        assert_eq!(
            counts.most_common(),
            vec![("a", 2), ("c", 2), ("b", 1), ("d", 1)]
        );
        assert_eq!(counts.total(), 6);
    }

    #[test]
    fn rule_index_numbers_rules_in_order_of_first_appearance() {
        let rule = |number| RuleRef {
            family: 4,
            table: 0,
            chain: 0,
            number,
            line: number,
        };
        let mut index = RuleIndex::default();
        let ids: Vec<i32> = [Some(rule(3)), None, Some(rule(1)), Some(rule(3))]
            .into_iter()
            .map(|r| index.id(r))
            .collect();
        assert_eq!(ids, vec![0, -1, 1, 0]);
        assert_eq!(index.rules(), &[rule(3), rule(1)]);
    }
}
