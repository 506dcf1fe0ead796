//! The per-packet lines (`replay` text and jsonl) and the totals printed
//! after them, written straight from a `PacketRecord`.
//!
//! jsonl: one object per packet with the fields of the README's schema, in
//! that order, compact separators, non-ASCII escaped. Text: the packet
//! number, the time since the first packet, the summary, the conntrack
//! state, the verdict with the deciding rule, and the reason.

use std::fmt::Write;

use std::collections::HashMap;

use crate::conntrack::conn::{
    ctstate_name, CT_ESTABLISHED, CT_ESTABLISHED_REPLY, CT_NEW, CT_RELATED, CT_RELATED_REPLY,
    CT_UNTRACKED, STATUS_NAMES,
};
use crate::conntrack::proto_tcp::STATE_NAMES as TCP_STATE_NAMES;
use crate::engine::{Firewall, PacketRecord, ReasonStyle, RuleRef};
use crate::output::addr::{push_address, push_u64};
use crate::output::escape::push_escaped;
use crate::output::json::{push_f64, push_str};
use crate::output::summary::{packet_ports, push_summary};
use crate::output::Sink;
use crate::packet::Packet;
use crate::verdict::Verdict;

/// The jsonl schema's version, the `v` field of every record (README: "The
/// jsonl record"). Raised whenever a field changes meaning or goes.
pub const JSONL_VERSION: u64 = 2;

/// ORIGINAL (0) or REPLY.
pub fn direction_name(dir: u8) -> &'static str {
    if dir == 0 {
        "ORIGINAL"
    } else {
        "REPLY"
    }
}

/// The TCP conntrack state's name.
pub fn tcp_state_name(state: u8) -> &'static str {
    TCP_STATE_NAMES
        .get(usize::from(state))
        .copied()
        .unwrap_or("NONE")
}

/// Append the jsonl line of `rec` (newline included); `pkt` is the captured
/// packet the summary describes.
pub fn write_jsonl<S: Sink + ?Sized>(
    out: &mut S,
    fw: &Firewall,
    rec: &PacketRecord,
    pkt: &Packet<'_>,
) {
    out.text("{\"v\":");
    push_u64(out, JSONL_VERSION);
    out.text(",\"index\":");
    push_u64(out, rec.index);
    out.text(",\"frame\":");
    push_u64(out, rec.index + 1);
    out.text(",\"ts\":");
    push_f64(out, rec.ts);
    out.text(",\"verdict\":\"");
    out.text(rec.verdict.name());
    out.text("\",\"ctstate\":");
    match rec.ctinfo {
        Some(ctinfo) => {
            out.ch('"');
            out.text(ctstate_name(ctinfo));
            out.ch('"');
        }
        None => out.text("null"),
    }
    out.text(",\"ctdir\":");
    match rec.ctdir {
        Some(dir) => {
            out.ch('"');
            out.text(direction_name(dir));
            out.ch('"');
        }
        None => out.text("null"),
    }
    out.text(",\"status\":[");
    let mut first = true;
    for (bit, name) in STATUS_NAMES {
        if rec.status & bit != 0 {
            if !first {
                out.ch(',');
            }
            first = false;
            out.ch('"');
            out.text(name);
            out.ch('"');
        }
    }
    out.text("],\"rule\":");
    push_rule_json(out, fw, rec.rule);
    out.text(",\"reason\":\"");
    fw.write_reason(out, rec, ReasonStyle::Json);
    out.ch('"');
    // A summary holds addresses, numbers and punctuation only: nothing to escape.
    out.text(",\"summary\":\"");
    push_summary(out, pkt);
    out.text("\",\"proto\":");
    push_u64(out, u64::from(rec.proto));
    if pkt.family == 0 {
        out.text(",\"src\":null,\"dst\":null");
    } else {
        out.text(",\"src\":\"");
        push_address(out, pkt.family, pkt.src);
        out.text("\",\"dst\":\"");
        push_address(out, pkt.family, pkt.dst);
        out.ch('"');
    }
    match packet_ports(pkt) {
        Some((sport, dport)) => {
            out.text(",\"sport\":");
            push_u64(out, u64::from(sport));
            out.text(",\"dport\":");
            push_u64(out, u64::from(dport));
        }
        None => out.text(",\"sport\":null,\"dport\":null"),
    }
    out.text(",\"tcp_state\":");
    match rec.tcp_state {
        Some(state) => {
            out.ch('"');
            out.text(tcp_state_name(state));
            out.ch('"');
        }
        None => out.text("null"),
    }
    out.text(",\"conn\":");
    match rec.conn {
        Some(id) => push_u64(out, u64::from(id)),
        None => out.text("null"),
    }
    out.text(",\"notes\":[");
    for (i, note) in rec.notes.iter().enumerate() {
        if i > 0 {
            out.ch(',');
        }
        push_str(out, note);
    }
    out.ch(']');
    crate::output::nat::write_json(out, fw, rec);
    out.text("}\n");
}

/// "1 packet", "2 packets".
fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A deciding rule as jsonl writes it: `{"table","chain","number"}`, or null.
pub fn push_rule_json<S: Sink + ?Sized>(out: &mut S, fw: &Firewall, rule: Option<RuleRef>) {
    match rule {
        Some(rule) => {
            let (table, chain) = fw.rules().names(rule.family, rule.table, rule.chain);
            out.text("{\"table\":");
            push_str(out, table);
            out.text(",\"chain\":");
            push_str(out, chain);
            out.text(",\"number\":");
            push_u64(out, u64::from(rule.number));
            out.ch('}');
        }
        None => out.text("null"),
    }
}

/// `ESTABLISHED/REPLY [SEEN_REPLY,CONFIRMED]`, or `-` without a state.
pub fn push_state<S: Sink + ?Sized>(out: &mut S, rec: &PacketRecord) {
    match rec.ctinfo {
        Some(ctinfo) => out.text(ctstate_name(ctinfo)),
        None => out.ch('-'),
    }
    if let Some(dir) = rec.ctdir {
        out.ch('/');
        out.text(direction_name(dir));
    }
    let mut first = true;
    for (bit, name) in STATUS_NAMES {
        if rec.status & bit != 0 {
            out.text(if first { " [" } else { "," });
            first = false;
            out.text(name);
        }
    }
    if !first {
        out.ch(']');
    }
}

/// How the text lines are written: `explain` adds the deciding rule's text
/// on a line of its own; `color` marks drops and INVALID with terminal
/// colours (the CLI decides: a terminal, `--color`, `NO_COLOR`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextOptions {
    pub explain: bool,
    pub color: bool,
}

const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[1;33m";
const PLAIN: &str = "\x1b[0m";

/// Where the lines under a packet's line start: below its summary.
const INDENT: &str = "                    ";

/// The colour a verdict is shown in, if any: red for what did not get
/// through, yellow for what statewall could not decide.
pub fn verdict_color(verdict: Verdict) -> Option<&'static str> {
    match verdict {
        Verdict::Drop | Verdict::Reject => Some(RED),
        Verdict::Unknown => Some(YELLOW),
        _ => None,
    }
}

/// Append `write` wrapped in `color` (when there is one).
pub fn colored<S: Sink + ?Sized>(out: &mut S, color: Option<&str>, write: impl FnOnce(&mut S)) {
    match color {
        Some(color) => {
            out.text(color);
            write(out);
            out.text(PLAIN);
        }
        None => write(out),
    }
}

/// Append the text of `rec` (newline included): the packet's line, then,
/// indented under it, the deciding rule's text (`opts.explain`) and each
/// note (helpers' expectations, LOG lines, traces); `rel` is the time since
/// the first packet of the output.
pub fn write_text<S: Sink + ?Sized>(
    out: &mut S,
    fw: &Firewall,
    rec: &PacketRecord,
    pkt: &Packet<'_>,
    rel: f64,
    opts: TextOptions,
) {
    crate::sink_write!(out, "#{:<6} {:10.6}  ", rec.index + 1, rel);
    push_summary(out, pkt);
    out.text("  | ");
    let invalid = rec.ctinfo.map(state_key) == Some(STATE_INVALID);
    colored(out, (opts.color && invalid).then_some(RED), |out| {
        push_state(out, rec);
    });
    out.text(" | ");
    let color = verdict_color(rec.verdict).filter(|_| opts.color);
    colored(out, color, |out| out.text(rec.verdict.name()));
    if let Some(rule) = rec.rule {
        out.text(" by ");
        fw.write_rule(out, rule);
    }
    out.text(" | ");
    fw.write_reason(out, rec, ReasonStyle::Line);
    out.ch('\n');
    if let (Some(rule), true) = (rec.rule, opts.explain) {
        out.text(INDENT);
        out.text("rule: ");
        fw.write_rule_text(out, rule);
        out.ch('\n');
    }
    for note in &rec.notes {
        out.text(INDENT);
        out.text("note: ");
        push_escaped(out, note);
        out.ch('\n');
    }
}

/// The names `Totals` counts states under (8: no state).
const STATE_KEYS: [&str; 9] = [
    "ESTABLISHED",
    "RELATED",
    "NEW",
    "UNTRACKED",
    "INVALID",
    "",
    "",
    "",
    "-",
];

const STATE_INVALID: usize = 4;

fn state_key(ctinfo: u8) -> usize {
    match ctinfo {
        CT_ESTABLISHED | CT_ESTABLISHED_REPLY => 0,
        CT_RELATED | CT_RELATED_REPLY => 1,
        CT_NEW => 2,
        CT_UNTRACKED => 3,
        _ => STATE_INVALID,
    }
}

/// Counts by name, reported most common first (ties in first-seen order).
#[derive(Clone, Debug, Default)]
pub struct Tally {
    at: HashMap<Box<str>, usize>,
    counts: Vec<(Box<str>, u64)>,
    /// The packet index each name was first counted at, as `counts`: a
    /// partitioned run's tallies merge back into first-seen order by it.
    first: Vec<u64>,
}

impl Tally {
    /// Count `name` once, for the packet at `index`.
    pub fn add(&mut self, name: &str, index: u64) {
        match self.at.get(name) {
            Some(&i) => self.counts[i].1 += 1,
            None => {
                self.at.insert(name.into(), self.counts.len());
                self.counts.push((name.into(), 1));
                self.first.push(index);
            }
        }
    }

    /// (name, count, first packet index), in first-seen order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, u64, u64)> + '_ {
        self.counts
            .iter()
            .zip(&self.first)
            .map(|((name, n), &first)| (&**name, *n, first))
    }

    /// Add `n` counts of `name`, first seen at `first` (merging tallies,
    /// visited in first-seen order).
    pub fn add_many(&mut self, name: &str, n: u64, first: u64) {
        match self.at.get(name) {
            Some(&i) => {
                self.counts[i].1 += n;
                self.first[i] = self.first[i].min(first);
            }
            None => {
                self.at.insert(name.into(), self.counts.len());
                self.counts.push((name.into(), n));
                self.first.push(first);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// (name, count), most common first.
    pub fn most_common(&self) -> Vec<(&str, u64)> {
        let mut out: Vec<(&str, u64)> = self.counts.iter().map(|(k, n)| (&**k, *n)).collect();
        out.sort_by_key(|entry| std::cmp::Reverse(entry.1));
        out
    }
}

/// The totals printed after a replay: states, verdicts, connections, INVALID reasons.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    pub packets: u64,
    /// IPv6 packets among them (a hint when no IPv6 ruleset is loaded).
    pub ipv6: u64,
    /// Packets by ctinfo (index 8: no state), in first-seen order.
    pub(crate) states: Firsts<9>,
    pub(crate) verdicts: Firsts<6>,
    pub invalid_reasons: Tally,
    pub connections: IdSet,
    /// Connections counted by the partitions of a partitioned run, merged
    /// in by number only (their ids were each partition's own).
    pub merged_connections: u64,
}

/// Counts over a small fixed set of keys, remembering which came first
/// (ties are reported in first-seen order).
#[derive(Clone, Debug)]
pub(crate) struct Firsts<const N: usize> {
    counts: [u64; N],
    order: Vec<usize>,
    /// The packet index each key was first counted at.
    first: [u64; N],
}

impl<const N: usize> Default for Firsts<N> {
    fn default() -> Self {
        Firsts {
            counts: [0; N],
            order: Vec::new(),
            first: [0; N],
        }
    }
}

impl<const N: usize> Firsts<N> {
    fn add(&mut self, key: usize, index: u64) {
        if self.counts[key] == 0 {
            self.order.push(key);
            self.first[key] = index;
        }
        self.counts[key] += 1;
    }

    /// (key, count, first packet index), in first-seen order.
    pub(crate) fn entries(&self) -> Vec<(usize, u64, u64)> {
        self.order
            .iter()
            .map(|&k| (k, self.counts[k], self.first[k]))
            .collect()
    }

    /// The counts of several runs over disjoint packets, `(key, count,
    /// first index)` each; keys out of range are ignored.
    pub(crate) fn merged(entries: impl IntoIterator<Item = (usize, u64, u64)>) -> Self {
        let mut out = Firsts::default();
        for (key, n, first) in entries {
            if key >= N || n == 0 {
                continue;
            }
            out.first[key] = if out.counts[key] == 0 {
                first
            } else {
                out.first[key].min(first)
            };
            out.counts[key] += n;
        }
        out.order = (0..N).filter(|&k| out.counts[k] > 0).collect();
        out.order.sort_by_key(|&k| out.first[k]);
        out
    }

    /// (key, count), most common first.
    fn most_common(&self) -> Vec<(usize, u64)> {
        let mut out: Vec<(usize, u64)> = self.order.iter().map(|&k| (k, self.counts[k])).collect();
        out.sort_by_key(|entry| std::cmp::Reverse(entry.1));
        out
    }
}

/// The connection numbers seen: one bit each (numbers are handed out in
/// order from 1, so the set stays a small fraction of the table's memory).
#[derive(Clone, Debug, Default)]
pub struct IdSet {
    words: Vec<u64>,
    len: usize,
}

impl IdSet {
    pub fn insert(&mut self, id: u32) {
        let (word, bit) = ((id / 64) as usize, id % 64);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let mask = 1u64 << bit;
        if self.words[word] & mask == 0 {
            self.words[word] |= mask;
            self.len += 1;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Totals {
    pub fn add(&mut self, rec: &PacketRecord, fw: &Firewall) {
        self.packets += 1;
        // ctinfo values whose names coincide (ESTABLISHED and its reply) count as one.
        self.states.add(rec.ctinfo.map_or(8, state_key), rec.index);
        self.verdicts.add(rec.verdict as usize, rec.index);
        if let Some(id) = rec.conn {
            self.connections.insert(id);
        }
        if rec.ctinfo.map(state_key) == Some(STATE_INVALID) {
            let reason = fw.reason(rec);
            let head = reason.split("; ").next().unwrap_or("");
            self.invalid_reasons.add(head, rec.index);
        }
    }

    /// The lines, each without its newline.
    /// Packets by ctstate and by verdict, most common first (ties in
    /// first-seen order); "-" counts packets without a state.
    pub fn by_state(&self) -> Vec<(&'static str, u64)> {
        self.states
            .most_common()
            .into_iter()
            .map(|(k, n)| (STATE_KEYS[k], n))
            .collect()
    }

    pub fn by_verdict(&self) -> Vec<(&'static str, u64)> {
        self.verdicts
            .most_common()
            .into_iter()
            .map(|(k, n)| (Verdict::ALL[k].name(), n))
            .collect()
    }

    pub fn lines(&self) -> Vec<String> {
        fn counts(pairs: Vec<(&str, u64)>) -> String {
            let mut text = String::new();
            for (i, (name, n)) in pairs.into_iter().enumerate() {
                if i > 0 {
                    text.push_str(", ");
                }
                let _ = write!(text, "{name} {n}");
            }
            text
        }
        let states = self.by_state();
        let verdicts = self.by_verdict();
        let mut out = vec![
            format!(
                "{}; {} seen",
                counted(self.packets, "packet"),
                counted(self.connection_count(), "connection")
            ),
            format!("states: {}", counts(states)),
            format!("verdicts: {}", counts(verdicts)),
        ];
        if !self.invalid_reasons.is_empty() {
            out.push("INVALID reasons:".to_string());
            for (reason, n) in self.invalid_reasons.most_common() {
                out.push(format!("  {n:6}  {reason}"));
            }
        }
        out
    }
}
