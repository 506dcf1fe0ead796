//! The report of a partitioned run, from its partitions' tallies: the same
//! `Report` and `LogSummary` a single run's `Tally` and log give.
//!
//! Partitions hold disjoint packets and disjoint connections, and keep
//! their packets' indexes, so counts add up and every order a single run
//! follows is restored from indexes: a count's ties by where each key was
//! first met, the deciding rules' numbers by the first packet each decided,
//! the connections' by the run's numbers (which each partition's tally
//! carries already, `Tally::into_part`). Each partition keeps, up to the
//! caps, what the run may keep of its own (the lowest-numbered connections,
//! the first packets of each transition, the rows of `report_rows`); the
//! caps are applied once here, over all partitions.

use std::collections::{HashMap, HashSet};

use crate::conntrack::history::ConnRecord;
use crate::engine::{Firewall, RuleRef};
use crate::output::conns::write_jsonl;
use crate::output::report::{
    by_proto_state, from_origin, table_changes, table_curve, Counts, ListedConn, LogSummary,
    Report, ReportCaps, Row,
};
use crate::output::report_rows::{long_count, merge_rows, Placed};

/// A deciding rule's share of one partition.
#[derive(Clone, Debug, PartialEq)]
pub struct RulePart {
    pub rule: RuleRef,
    /// The first packet it decided.
    pub first: u64,
    pub packets: u64,
    pub conns_total: usize,
    /// The lowest-numbered connections it decided, up to the cap.
    pub conns: Vec<u32>,
}

/// One partition's tally (`Tally::into_part`), connections numbered as the run numbers them.
#[derive(Clone, Debug, PartialEq)]
pub struct TallyPart {
    pub packets: u64,
    /// The first packet counted: its index and time.
    pub first: Option<(u64, f64)>,
    /// (key, count, index of the first packet counted) in first-met order.
    pub state_verdict: Vec<((i8, u8), u64, u64)>,
    /// By the partition's own rule numbers (rows and `drop_rules` use them).
    pub rules: Vec<RulePart>,
    pub drop_rules: Vec<(i32, u64, u64)>,
    pub drop_reasons: Vec<(String, u64, u64)>,
    pub conns_seen: usize,
    /// The lowest-numbered connections, up to the cap.
    pub listed: Vec<ListedConn>,
    pub outside: (u64, u64),
    /// The connections the run may place, and their packets it may keep.
    pub placed: Vec<Placed<Row>>,
    pub transitions: Vec<TransitionPart>,
}

/// A TCP transition's share: ((from, to), count, first packet, the frames of
/// its first packets up to the cap).
pub type TransitionPart = ((i8, i8), u64, u64, Vec<u64>);

/// The report of all `parts` together.
pub fn merge(parts: Vec<TallyPart>, caps: ReportCaps) -> Report {
    let (rules, decided, numbers) = merge_rules(&parts, caps);
    let first = parts
        .iter()
        .filter_map(|p| p.first)
        .min_by_key(|(index, _)| *index);
    let origin = first.map_or(0.0, |(_, ts)| ts);
    let state_verdict = Counts::merged(parts.iter().flat_map(|p| p.state_verdict.clone()));
    let drop_rules = Counts::merged(parts.iter().zip(&numbers).flat_map(|(p, number)| {
        p.drop_rules
            .iter()
            .map(|&(rule, n, first)| (renumber(number, rule), n, first))
    }));
    let reasons = Counts::merged(parts.iter().flat_map(|p| p.drop_reasons.clone()));
    let drop_reasons: Vec<(String, u64)> = reasons
        .most_common()
        .into_iter()
        .take(caps.reasons)
        .collect();
    let other_reasons = reasons.total() - drop_reasons.iter().map(|(_, n)| n).sum::<u64>();
    let mut listed: Vec<ListedConn> = parts.iter().flat_map(|p| p.listed.clone()).collect();
    listed.sort_unstable_by_key(|c| c.0);
    listed.truncate(caps.connections);
    let transitions = merge_transitions(&parts, caps);
    let packets = parts.iter().map(|p| p.packets).sum();
    let conns_seen = parts.iter().map(|p| p.conns_seen).sum();
    let outside = parts
        .iter()
        .fold((0, 0), |(a, b), p| (a + p.outside.0, b + p.outside.1));
    let placed = parts
        .into_iter()
        .zip(&numbers)
        .map(|(p, number)| {
            p.placed
                .into_iter()
                .map(|mut placed| {
                    for row in &mut placed.rows {
                        row.6 = renumber(number, row.6);
                    }
                    placed
                })
                .collect()
        })
        .collect();
    let (placed, kept) = merge_rows(placed, caps, |row: &Row| row.0);
    let long = long_count(&placed, caps);
    Report {
        caps,
        packets,
        first_ts: first.map(|(_, ts)| ts),
        state_verdict: state_verdict.most_common(),
        rules,
        decided,
        drop_rules: drop_rules.most_common(),
        drop_reasons,
        other_reasons,
        conns_seen,
        listed,
        outside,
        rows: placed
            .into_iter()
            .map(|p| (p.conn, from_origin(p.rows, origin)))
            .collect(),
        kept,
        long,
        transitions,
    }
}

/// A rule number (-1: none) of a partition as the run's.
fn renumber(numbers: &[i32], rule: i32) -> i32 {
    usize::try_from(rule)
        .ok()
        .and_then(|at| numbers.get(at))
        .copied()
        .unwrap_or(-1)
}

type Decided = Vec<(u64, usize, Vec<u32>)>;

/// The deciding rules numbered by the first packet each decided, their
/// shares, and each partition's rule numbers as the run's.
fn merge_rules(parts: &[TallyPart], caps: ReportCaps) -> (Vec<RuleRef>, Decided, Vec<Vec<i32>>) {
    let mut shares: HashMap<RuleRef, RulePart> = HashMap::new();
    for share in parts.iter().flat_map(|p| &p.rules) {
        let sum = shares.entry(share.rule).or_insert_with(|| RulePart {
            conns: Vec::new(),
            conns_total: 0,
            packets: 0,
            ..share.clone()
        });
        sum.first = sum.first.min(share.first);
        sum.packets += share.packets;
        sum.conns_total += share.conns_total;
        sum.conns.extend(&share.conns);
    }
    let mut order: Vec<RulePart> = shares.into_values().collect();
    order.sort_by_key(|r| r.first);
    let number: HashMap<RuleRef, i32> = order
        .iter()
        .enumerate()
        .map(|(at, r)| (r.rule, at as i32))
        .collect();
    let numbers = parts
        .iter()
        .map(|p| p.rules.iter().map(|r| number[&r.rule]).collect())
        .collect();
    let rules = order.iter().map(|r| r.rule).collect();
    let decided = order
        .into_iter()
        .map(|mut r| {
            r.conns.sort_unstable();
            r.conns.truncate(caps.conns_per_rule);
            (r.packets, r.conns_total, r.conns)
        })
        .collect();
    (rules, decided, numbers)
}

fn merge_transitions(parts: &[TallyPart], caps: ReportCaps) -> Vec<(i8, i8, u64, Vec<u64>)> {
    let mut frames: HashMap<(i8, i8), Vec<u64>> = HashMap::new();
    for (key, _, _, part_frames) in parts.iter().flat_map(|p| &p.transitions) {
        frames.entry(*key).or_default().extend(part_frames);
    }
    let counts = Counts::merged(parts.iter().flat_map(|p| {
        p.transitions
            .iter()
            .map(|(key, n, first, _)| (*key, *n, *first))
    }));
    counts
        .most_common()
        .into_iter()
        .map(|((from, to), n)| {
            let mut kept = frames.remove(&(from, to)).unwrap_or_default();
            kept.sort_unstable();
            kept.truncate(caps.frames_per_transition);
            (from, to, n, kept)
        })
        .collect()
}

/// One partition's share of the connection log's summary, numbered as the run numbers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogPart {
    /// The table's size changes (`table_changes`).
    pub changes: Vec<(f64, i64)>,
    /// ((protocol, final state), count, the lowest number with it).
    pub by_proto_state: Vec<((String, String), u64, u64)>,
    pub confirmed: usize,
    pub related: usize,
    /// The jsonl records of the connections the partition lists, by number.
    pub records: Vec<(u32, Vec<u8>)>,
}

/// A partition's `LogPart` from its log's `records`: `listed`, the run's
/// numbers of the connections it lists; `number`, the run's number of each.
pub fn log_part(
    fw: &Firewall,
    records: &[ConnRecord],
    listed: &[u32],
    number: impl Fn(u32) -> u32,
) -> LogPart {
    let wanted: HashSet<u32> = listed.iter().copied().collect();
    let mut written = Vec::new();
    for record in records {
        let id = number(record.id);
        if !wanted.contains(&id) {
            continue;
        }
        let mut record = record.clone();
        record.id = id;
        record.master = record
            .master
            .map(|(master, helper)| (number(master), helper));
        let mut line = Vec::new();
        write_jsonl(&mut line, fw, &record);
        written.push((id, line));
    }
    LogPart {
        changes: table_changes(records),
        by_proto_state: by_proto_state(records, &number).entries(),
        confirmed: records.len(),
        related: records.iter().filter(|r| r.master.is_some()).count(),
        records: written,
    }
}

/// The log's summary from all `parts`, as `report::log_summary` gives it.
pub fn merge_logs(parts: Vec<LogPart>, listed: &[u32], origin: f64, points: usize) -> LogSummary {
    let wanted: HashSet<u32> = listed.iter().copied().collect();
    let mut records: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut changes = Vec::new();
    let (mut confirmed, mut related) = (0, 0);
    let mut counts = Vec::new();
    for part in parts {
        changes.extend(part.changes);
        counts.extend(part.by_proto_state);
        confirmed += part.confirmed;
        related += part.related;
        records.extend(
            part.records
                .into_iter()
                .filter(|(id, _)| wanted.contains(id)),
        );
    }
    records.sort_unstable_by_key(|(id, _)| *id);
    LogSummary {
        table_curve: table_curve(changes, origin, points),
        by_proto_state: Counts::merged(counts).most_common(),
        confirmed,
        related,
        records: records.into_iter().flat_map(|(_, line)| line).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> ReportCaps {
        ReportCaps {
            connections: 2,
            rows_per_connection: 2,
            rows: 10,
            conns_per_rule: 2,
            frames_per_transition: 2,
            reasons: 1,
            table_points: 10,
        }
    }

    fn rule(number: u32) -> RuleRef {
        RuleRef {
            family: 4,
            table: 0,
            chain: 0,
            number,
            line: number,
        }
    }

    fn row(frame: u64, ts: f64, rule: i32) -> Row {
        (frame, ts, 0, 0, 0, 0, rule, String::new(), String::new())
    }

    fn part(first: u64, rules: Vec<RulePart>, placed: Vec<Placed<Row>>) -> TallyPart {
        TallyPart {
            packets: 0,
            first: Some((first, 100.0 + first as f64)),
            state_verdict: Vec::new(),
            rules,
            drop_rules: Vec::new(),
            drop_reasons: Vec::new(),
            conns_seen: 0,
            listed: Vec::new(),
            outside: (0, 0),
            placed,
            transitions: Vec::new(),
        }
    }

    #[test]
    fn rules_are_numbered_by_the_first_packet_they_decided_over_all_partitions() {
        let share = |n, first, conns: Vec<u32>| RulePart {
            rule: rule(n),
            first,
            packets: 2,
            conns_total: conns.len(),
            conns,
        };
        let a = TallyPart {
            drop_rules: vec![(0, 1, 4), (1, 1, 6)],
            ..part(
                3,
                vec![share(7, 3, vec![5, 9]), share(8, 6, vec![6])],
                vec![Placed::new(
                    5,
                    3,
                    2,
                    vec![row(4, 103.0, 0), row(7, 106.0, 1)],
                )],
            )
        };
        let b = TallyPart {
            drop_rules: vec![(0, 1, 2)],
            ..part(
                1,
                vec![share(8, 1, vec![2, 3])],
                vec![Placed::new(2, 1, 1, vec![row(2, 101.0, 0)])],
            )
        };
        let report = merge(vec![a, b], caps());
        assert_eq!(report.rules, vec![rule(8), rule(7)]);
        assert_eq!(report.decided, vec![(4, 3, vec![2, 3]), (2, 2, vec![5, 9])]);
        // Rule 8 (now 0) dropped 2 packets, rule 7 (now 1) one.
        assert_eq!(report.drop_rules, vec![(0, 2), (1, 1)]);
        // Times from the first packet of all (b's, at 101.0); rule numbers the run's.
        assert_eq!(
            report.rows,
            vec![
                (2, vec![row(2, 0.0, 0)]),
                (5, vec![row(4, 2.0, 1), row(7, 5.0, 0)])
            ]
        );
        assert_eq!(report.first_ts, Some(101.0));
    }

    #[test]
    fn merged_counts_break_ties_where_each_key_was_first_met() {
        let counts = Counts::merged([("late", 2, 9), ("early", 1, 1), ("early", 1, 12)]);
        assert_eq!(counts.most_common(), vec![("early", 2), ("late", 2)]);
        assert_eq!(counts.entries(), vec![("early", 2, 1), ("late", 2, 9)]);
    }

    #[test]
    fn logs_merge_their_records_and_changes() {
        let a = LogPart {
            changes: vec![(1.0, 1), (3.0, -1)],
            by_proto_state: vec![(("tcp".into(), "CLOSE".into()), 1, 2)],
            confirmed: 1,
            related: 0,
            records: vec![(2, b"two\n".to_vec())],
        };
        let b = LogPart {
            changes: vec![(2.0, 1)],
            by_proto_state: vec![(("udp".into(), "-".into()), 1, 1)],
            confirmed: 1,
            related: 1,
            records: vec![(1, b"one\n".to_vec()), (7, b"seven\n".to_vec())],
        };
        let log = merge_logs(vec![a, b], &[1, 2], 0.0, 2);
        assert_eq!(log.records, b"one\ntwo\n");
        assert_eq!((log.confirmed, log.related), (2, 1));
        assert_eq!(log.table_curve, vec![(1.0, 1), (2.0, 2), (3.0, 1)]);
        assert_eq!(
            log.by_proto_state,
            vec![
                (("udp".to_string(), "-".to_string()), 1),
                (("tcp".to_string(), "CLOSE".to_string()), 1)
            ]
        );
    }
}
