//! `statewall conns`: one line per connection, as Zeek's conn.log gives,
//! from the connection log the table keeps (conntrack/history.rs).
//!
//! Two parts. `log_packet` is the machine's share of the bookkeeping, run
//! after each packet that belonged to a logged connection: its verdict and,
//! for the first packet dropped, the deciding rule and the reason in words
//! (spelt out once per connection, never per packet). The writers print a
//! record as an aligned text line, a jsonl object (the README's schema) or
//! a tab-separated row under `TSV_HEADER`.
//!
//! A live connection's counters are read from the table's accounting when
//! the line is written; a finished one's were kept in its record when the
//! entry was destroyed.

use crate::conntrack::acct::Counters;
use crate::conntrack::conn::{ConnId, Tuple, STATUS_NAMES};
use crate::conntrack::display::userspace_l4_name;
use crate::conntrack::history::{ConnRecord, FirstDrop};
use crate::conntrack::{proto_sctp, proto_tcp};
use crate::engine::{Firewall, PacketRecord, ReasonStyle};
use crate::output::addr::{push_address, push_endpoint, push_u64};
use crate::output::escape::push_escaped;
use crate::output::json::{push_f64, push_str};
use crate::output::record::{colored, push_rule_json, verdict_color};
use crate::output::Sink;
use crate::packet::{
    PROTO_GRE, PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP, PROTO_UDPLITE,
};
use crate::verdict::Verdict;

/// `format!` into a `Sink`. Lines are written once per connection, not per
/// packet, so a temporary string costs nothing that matters (`sink_write!`
/// holds 48 bytes at most, too few for these fields).
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {
        $crate::output::Sink::text($out, &format!($($arg)*))
    };
}

/// The three shapes of the log; text with or without terminal colours
/// (drops in red, as `replay` shows them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnFormat {
    Text { color: bool },
    Jsonl,
    Tsv,
}

impl ConnFormat {
    pub fn from_name(name: &str) -> Option<ConnFormat> {
        match name {
            "text" => Some(ConnFormat::Text { color: false }),
            "jsonl" => Some(ConnFormat::Jsonl),
            "tsv" => Some(ConnFormat::Tsv),
            _ => None,
        }
    }
}

/// The first line of the tsv form (newline included).
pub const TSV_HEADER: &str = "conn\tts\tlast_ts\tduration\tproto\torig_src\torig_sport\t\
orig_dst\torig_dport\treply_src\treply_sport\treply_dst\treply_dport\ticmp_id\t\
orig_packets\torig_bytes\treply_packets\treply_bytes\tstate\thistory\tstatus\tverdicts\t\
drop_index\tdrop_verdict\tdrop_table\tdrop_chain\tdrop_rule\tdrop_reason\thelper\tmaster\t\
master_helper\tend\tend_ts\n";

/// After a packet that belonged to the entry in `id`: count its verdict in
/// the entry's record; keep the first drop with its rule and reason.
pub(crate) fn log_packet(fw: &mut Firewall, id: ConnId, rec: &PacketRecord) {
    let now = fw.now();
    let dropped = matches!(rec.verdict, Verdict::Drop | Verdict::Reject);
    let first_drop = match fw.table_mut().log_packet(id, now, rec.verdict) {
        Some(record) if dropped && record.first_drop.is_none() => record.id,
        _ => return,
    };
    let drop = FirstDrop {
        index: rec.index,
        verdict: rec.verdict,
        rule: rec.rule,
        reason: fw.reason(rec),
        line_reason: fw.styled_reason(rec, ReasonStyle::Line),
    };
    if let Some(record) = fw
        .table_mut()
        .history_mut()
        .and_then(|log| log.record_mut(first_drop))
    {
        record.first_drop = Some(Box::new(drop));
    }
}

/// The record's counters: the table's for a live entry, the record's own
/// once the entry is gone.
fn counters_of(fw: &Firewall, record: &ConnRecord) -> Counters {
    match record.end {
        None => fw.table().counters(record.slot).unwrap_or_default(),
        Some(_) => record.counters,
    }
}

fn state_name(proto: u8, state: u8) -> &'static str {
    let names: &[&'static str] = match proto {
        PROTO_TCP => &proto_tcp::STATE_NAMES,
        PROTO_SCTP => &proto_sctp::STATE_NAMES,
        _ => &[],
    };
    names.get(usize::from(state)).copied().unwrap_or("")
}

/// The latest protocol state (None for protocols without states).
pub(crate) fn final_state(record: &ConnRecord) -> Option<&'static str> {
    Some(state_name(record.proto, record.states.current()?))
}

/// Seconds between the first and the latest packet, to the microsecond the
/// capture's times carry (the subtraction of two epoch times in binary
/// floating point leaves digits below that).
fn duration(record: &ConnRecord) -> f64 {
    ((record.last_ts - record.first_ts) * 1e6).round() / 1e6
}

fn has_ports(proto: u8) -> bool {
    matches!(proto, PROTO_TCP | PROTO_UDP | PROTO_UDPLITE | PROTO_SCTP)
}

fn is_icmp(proto: u8) -> bool {
    matches!(proto, PROTO_ICMP | PROTO_ICMPV6)
}

/// `SYN_SENT>SYN_RECV>ESTABLISHED`, `>…` when more changes happened.
fn push_history<S: Sink + ?Sized>(out: &mut S, record: &ConnRecord) {
    for (i, state) in record.states.states().enumerate() {
        if i > 0 {
            out.ch('>');
        }
        out.text(state_name(record.proto, state));
    }
    if record.states.overflowed {
        out.text(">…");
    }
}

/// The status names, joined by commas (nothing when none is set).
fn push_status<S: Sink + ?Sized>(out: &mut S, status: u32) {
    let mut first = true;
    for (bit, name) in STATUS_NAMES {
        if status & bit != 0 {
            if !first {
                out.ch(',');
            }
            first = false;
            out.text(name);
        }
    }
}

fn verdicts_of(record: &ConnRecord) -> impl Iterator<Item = (Verdict, u32)> + '_ {
    Verdict::ALL
        .into_iter()
        .map(|v| (v, record.verdict_count(v)))
        .filter(|&(_, n)| n > 0)
}

pub(crate) fn proto_label(proto: u8) -> &'static str {
    userspace_l4_name(proto)
}

// -- text ---------------------------------------------------------------------------

/// One direction as conntrack names its parts: `a:p > b:q`, or for ICMP
/// `a > b type=8 code=0 id=7`, for GRE `a > b srckey=0x1 dstkey=0x2`.
fn push_flow<S: Sink + ?Sized>(out: &mut S, family: u8, proto: u8, tuple: &Tuple) {
    let (src, dst, sport, dport) = (tuple.src, tuple.dst, tuple.sport, tuple.dport);
    if has_ports(proto) {
        push_endpoint(out, family, src, sport);
        out.text(" > ");
        push_endpoint(out, family, dst, dport);
        return;
    }
    push_address(out, family, src);
    out.text(" > ");
    push_address(out, family, dst);
    if is_icmp(proto) {
        put!(
            out,
            " type={} code={} id={}",
            dport >> 8,
            dport & 0xFF,
            sport
        );
    } else if proto == PROTO_GRE {
        put!(out, " srckey={sport:#x} dstkey={dport:#x}");
    }
}

/// Append the text line of `record`; times are seconds since `origin`
/// (the capture's first packet).
pub fn write_text<S: Sink + ?Sized>(
    out: &mut S,
    fw: &Firewall,
    record: &ConnRecord,
    origin: f64,
    color: bool,
) {
    let [orig, reply] = counters_of(fw, record);
    put!(
        out,
        "conn {:<6} {:>12.6} {:>12.6}s  {:<7} ",
        record.id,
        record.first_ts - origin,
        duration(record),
        proto_label(record.proto)
    );
    let mut flow = String::with_capacity(96);
    push_flow(&mut flow, record.family, record.proto, &record.orig);
    put!(out, "{flow:<45}");
    out.text(" | reply ");
    push_flow(out, record.family, record.proto, &record.reply);
    put!(
        out,
        " | orig {} pkts/{} B, reply {} pkts/{} B | ",
        orig.packets,
        orig.bytes,
        reply.packets,
        reply.bytes
    );
    if !record.states.is_empty() {
        push_history(out, record);
        out.ch(' ');
    }
    out.ch('[');
    push_status(out, record.status);
    out.text("] | ");
    for (i, (verdict, count)) in verdicts_of(record).enumerate() {
        if i > 0 {
            out.text(", ");
        }
        let shade = verdict_color(verdict).filter(|_| color);
        colored(out, shade, |out| out.text(verdict.name()));
        out.ch(' ');
        push_u64(out, u64::from(count));
    }
    match record.end {
        Some(end) => put!(out, " | ended at {:.6}: {}", end.ts - origin, end.cause),
        None => out.text(" | live"),
    }
    if let Some(kind) = record.helper {
        out.text(" | helper ");
        out.text(kind.name());
    }
    if let Some((master, helper)) = record.master {
        put!(out, " | related to conn {master}");
        if let Some(kind) = helper {
            put!(out, " ({})", kind.name());
        }
    }
    if let Some(drop) = &record.first_drop {
        put!(out, " | first drop: #{} ", drop.index + 1);
        let shade = verdict_color(drop.verdict).filter(|_| color);
        colored(out, shade, |out| out.text(drop.verdict.name()));
        if let Some(rule) = drop.rule {
            out.text(" by ");
            fw.write_rule(out, rule);
        }
        out.text(": ");
        out.text(&drop.line_reason);
    }
    out.ch('\n');
}

// -- jsonl --------------------------------------------------------------------------

fn push_json_tuple<S: Sink + ?Sized>(out: &mut S, family: u8, proto: u8, tuple: &Tuple) {
    out.text("{\"src\":\"");
    push_address(out, family, tuple.src);
    out.text("\",\"dst\":\"");
    push_address(out, family, tuple.dst);
    out.ch('"');
    let (sport, dport) = (tuple.sport, tuple.dport);
    if has_ports(proto) {
        put!(out, ",\"sport\":{sport},\"dport\":{dport}");
    } else if is_icmp(proto) {
        put!(
            out,
            ",\"type\":{},\"code\":{},\"id\":{sport}",
            dport >> 8,
            dport & 0xFF
        );
    } else if proto == PROTO_GRE {
        put!(out, ",\"srckey\":{sport},\"dstkey\":{dport}");
    }
    out.ch('}');
}

fn push_json_opt_str<S: Sink + ?Sized>(out: &mut S, text: Option<&str>) {
    match text {
        Some(text) => push_str(out, text),
        None => out.text("null"),
    }
}

/// Append the jsonl line of `record` (the README lists the fields).
pub fn write_jsonl<S: Sink + ?Sized>(out: &mut S, fw: &Firewall, record: &ConnRecord) {
    let [orig, reply] = counters_of(fw, record);
    out.text("{\"conn\":");
    push_u64(out, u64::from(record.id));
    out.text(",\"ts\":");
    push_f64(out, record.first_ts);
    out.text(",\"last_ts\":");
    push_f64(out, record.last_ts);
    out.text(",\"duration\":");
    push_f64(out, duration(record));
    put!(
        out,
        ",\"family\":{},\"proto\":{},\"proto_name\":\"{}\",\"zone\":{},\"orig\":",
        record.family,
        record.proto,
        proto_label(record.proto),
        record.zone
    );
    push_json_tuple(out, record.family, record.proto, &record.orig);
    out.text(",\"reply\":");
    push_json_tuple(out, record.family, record.proto, &record.reply);
    put!(
        out,
        ",\"orig_packets\":{},\"orig_bytes\":{},\"reply_packets\":{},\"reply_bytes\":{}",
        orig.packets,
        orig.bytes,
        reply.packets,
        reply.bytes
    );
    out.text(",\"state\":");
    push_json_opt_str(out, final_state(record));
    out.text(",\"history\":[");
    for (i, state) in record.states.states().enumerate() {
        if i > 0 {
            out.ch(',');
        }
        push_str(out, state_name(record.proto, state));
    }
    out.text("],\"history_truncated\":");
    out.text(if record.states.overflowed {
        "true"
    } else {
        "false"
    });
    out.text(",\"status\":[");
    for (i, (_, name)) in STATUS_NAMES
        .iter()
        .filter(|(bit, _)| record.status & bit != 0)
        .enumerate()
    {
        if i > 0 {
            out.ch(',');
        }
        push_str(out, name);
    }
    out.text("],\"verdicts\":{");
    for (i, (verdict, count)) in verdicts_of(record).enumerate() {
        if i > 0 {
            out.ch(',');
        }
        put!(out, "\"{}\":{count}", verdict.name());
    }
    out.text("},\"first_drop\":");
    match &record.first_drop {
        Some(drop) => {
            out.text("{\"index\":");
            push_u64(out, drop.index);
            put!(out, ",\"verdict\":\"{}\",\"rule\":", drop.verdict.name());
            push_rule_json(out, fw, drop.rule);
            out.text(",\"reason\":");
            push_str(out, &drop.reason);
            out.ch('}');
        }
        None => out.text("null"),
    }
    out.text(",\"helper\":");
    push_json_opt_str(out, record.helper.map(|h| h.name()));
    out.text(",\"master\":");
    match record.master {
        Some((id, _)) => push_u64(out, u64::from(id)),
        None => out.text("null"),
    }
    out.text(",\"master_helper\":");
    push_json_opt_str(out, record.master.and_then(|(_, h)| h).map(|h| h.name()));
    out.text(",\"end\":");
    push_json_opt_str(out, record.end.map(|e| e.cause));
    out.text(",\"end_ts\":");
    match record.end {
        Some(end) => push_f64(out, end.ts),
        None => out.text("null"),
    }
    out.text("}\n");
}

// -- tsv ----------------------------------------------------------------------------

/// A field's text with tabs, newlines and other control characters escaped,
/// `-` when empty (Zeek's unset field).
fn tsv_field<S: Sink + ?Sized>(out: &mut S, text: &str) {
    if text.is_empty() {
        out.ch('-');
    } else {
        push_escaped(out, text);
    }
}

/// `src sport dst dport`, tab-separated, with a leading tab. The port
/// columns hold ports; for ICMP the type and code (where Zeek's conn.log
/// puts them); for GRE the keys in hex as conntrack prints them; `-`
/// otherwise.
fn write_tsv_tuple<S: Sink + ?Sized>(out: &mut S, family: u8, proto: u8, tuple: &Tuple) {
    let (sport, dport) = (tuple.sport, tuple.dport);
    out.ch('\t');
    push_address(out, family, tuple.src);
    out.ch('\t');
    if has_ports(proto) {
        push_u64(out, u64::from(sport));
    } else if is_icmp(proto) {
        push_u64(out, u64::from(dport >> 8));
    } else if proto == PROTO_GRE {
        put!(out, "{sport:#x}");
    } else {
        out.ch('-');
    }
    out.ch('\t');
    push_address(out, family, tuple.dst);
    out.ch('\t');
    if has_ports(proto) {
        push_u64(out, u64::from(dport));
    } else if is_icmp(proto) {
        push_u64(out, u64::from(dport & 0xFF));
    } else if proto == PROTO_GRE {
        put!(out, "{dport:#x}");
    } else {
        out.ch('-');
    }
}

/// Append the tsv row of `record` (columns as `TSV_HEADER`).
pub fn write_tsv<S: Sink + ?Sized>(out: &mut S, fw: &Firewall, record: &ConnRecord) {
    let [orig, reply] = counters_of(fw, record);
    put!(
        out,
        "{}\t{:.6}\t{:.6}\t{:.6}\t{}",
        record.id,
        record.first_ts,
        record.last_ts,
        duration(record),
        proto_label(record.proto)
    );
    write_tsv_tuple(out, record.family, record.proto, &record.orig);
    write_tsv_tuple(out, record.family, record.proto, &record.reply);
    out.ch('\t');
    if is_icmp(record.proto) {
        push_u64(out, u64::from(record.orig.sport));
    } else {
        out.ch('-');
    }
    put!(
        out,
        "\t{}\t{}\t{}\t{}\t",
        orig.packets,
        orig.bytes,
        reply.packets,
        reply.bytes
    );
    tsv_field(out, final_state(record).unwrap_or(""));
    out.ch('\t');
    let mut text = String::new();
    push_history(&mut text, record);
    tsv_field(out, &text);
    out.ch('\t');
    text.clear();
    push_status(&mut text, record.status);
    tsv_field(out, &text);
    out.ch('\t');
    text.clear();
    for (i, (verdict, count)) in verdicts_of(record).enumerate() {
        if i > 0 {
            text.push(',');
        }
        put!(&mut text, "{}:{count}", verdict.name());
    }
    tsv_field(out, &text);
    match &record.first_drop {
        Some(drop) => {
            put!(out, "\t{}\t{}\t", drop.index, drop.verdict.name());
            match drop.rule {
                Some(rule) => {
                    let (table, chain) = fw.rules().names(rule.family, rule.table, rule.chain);
                    tsv_field(out, table);
                    out.ch('\t');
                    tsv_field(out, chain);
                    put!(out, "\t{}", rule.number);
                }
                None => out.text("-\t-\t-"),
            }
            out.ch('\t');
            tsv_field(out, &drop.reason);
        }
        None => out.text("\t-\t-\t-\t-\t-\t-"),
    }
    out.ch('\t');
    tsv_field(out, record.helper.map_or("", |h| h.name()));
    match record.master {
        Some((id, helper)) => {
            put!(out, "\t{id}\t");
            tsv_field(out, helper.map_or("", |h| h.name()));
        }
        None => out.text("\t-\t-"),
    }
    match record.end {
        Some(end) => {
            out.ch('\t');
            tsv_field(out, end.cause);
            put!(out, "\t{:.6}", end.ts);
        }
        None => out.text("\t-\t-"),
    }
    out.ch('\n');
}

/// Append the line of `record` in `format`.
pub fn write_record<S: Sink + ?Sized>(
    out: &mut S,
    fw: &Firewall,
    record: &ConnRecord,
    format: ConnFormat,
    origin: f64,
) {
    match format {
        ConnFormat::Text { color } => write_text(out, fw, record, origin, color),
        ConnFormat::Jsonl => write_jsonl(out, fw, record),
        ConnFormat::Tsv => write_tsv(out, fw, record),
    }
}
