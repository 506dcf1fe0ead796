//! The connection table as Linux prints it.
//!
//! Three printers, each byte-for-byte with its original so users can diff
//! statewall against a real machine:
//!
//! * `proc_line`: /proc/net/nf_conntrack (nf_conntrack_standalone.c,
//!   ct_seq_show): L3 and L4 names padded to 8, IPv6 fully expanded,
//!   `zone=0` always, `use=2` (the reader's own reference counts).
//! * `conntrack_line`: `conntrack -L` (libnetfilter_conntrack's default
//!   printer): no L3 prefix, compressed IPv6, zone only when non-zero,
//!   `helper=` when attached, `use=1`.
//! * `event_body`: `conntrack -E`, as `conntrack -L` but without `use=`, with
//!   `mark=` only when non-zero, the timeout only when the kernel sends one
//!   and the TCP/SCTP state only when the event reports a state change
//!   (ctnetlink adds the protocol info to NEW/UPDATE messages only for
//!   IPCT_PROTOINFO; DESTROY messages always carry it).
//!
//! With `nf_conntrack_acct=1` all three print each direction's counters,
//! `packets=N bytes=N `, right after that direction's tuple (before
//! `[UNREPLIED]` and `[ASSURED]`); events only in DESTROY messages. The
//! `*_acct` forms take them.
//!
//! Each printer has a `write_*` form appending to a caller's buffer, so a
//! listing of many entries reuses one allocation.

use std::fmt::Write;

use crate::conntrack::acct::{Counter, Counters};
use crate::conntrack::conn::{Conn, IPS_ASSURED, IPS_SEEN_REPLY};
use crate::conntrack::{proto_gre, proto_sctp, proto_tcp};
use crate::packet::{
    PROTO_GRE, PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP, PROTO_UDPLITE,
};

const PROTO_DCCP: u8 = 33;

/// How /proc/net/nf_conntrack names a layer-4 protocol.
pub fn proc_l4_name(proto: u8) -> &'static str {
    match proto {
        PROTO_TCP => "tcp",
        PROTO_UDP => "udp",
        PROTO_UDPLITE => "udplite",
        PROTO_ICMP => "icmp",
        PROTO_ICMPV6 => "icmpv6",
        PROTO_SCTP => "sctp",
        PROTO_GRE => "gre",
        _ => "unknown",
    }
}

/// conntrack-tools names protocols itself; it knows DCCP although the kernel
/// tracks DCCP generically (and then prints zero ports for it).
pub fn userspace_l4_name(proto: u8) -> &'static str {
    if proto == PROTO_DCCP {
        "dccp"
    } else {
        proc_l4_name(proto)
    }
}

/// The protocol state as listings print it ("" for stateless protocols).
pub fn state_name(conn: &Conn) -> &'static str {
    match conn.proto {
        PROTO_TCP => proto_tcp::state_name(conn),
        PROTO_SCTP => proto_sctp::state_name(conn),
        _ => "",
    }
}

pub use crate::output::addr::{format_address_as as format_address, write_address};

/// `src=… dst=… ` plus the protocol's part, each field followed by a space.
pub fn write_tuple(out: &mut String, conn: &Conn, reply: bool, expanded: bool, userspace: bool) {
    let tuple = if reply { &conn.reply } else { &conn.orig };
    out.push_str("src=");
    write_address(out, conn.family, tuple.src, expanded);
    out.push_str(" dst=");
    write_address(out, conn.family, tuple.dst, expanded);
    out.push(' ');
    let (sport, dport) = (tuple.sport, tuple.dport);
    let _ = match conn.proto {
        PROTO_TCP | PROTO_UDP | PROTO_UDPLITE | PROTO_SCTP => {
            write!(out, "sport={sport} dport={dport} ")
        }
        PROTO_ICMP | PROTO_ICMPV6 => {
            write!(out, "type={} code={} id={sport} ", dport >> 8, dport & 0xFF)
        }
        PROTO_GRE => write!(out, "srckey={sport:#x} dstkey={dport:#x} "),
        PROTO_DCCP if userspace => write!(out, "sport=0 dport=0 "),
        _ => Ok(()),
    };
}

fn write_state(out: &mut String, conn: &Conn) {
    let name = state_name(conn);
    if !name.is_empty() {
        out.push_str(name);
        out.push(' ');
    }
}

fn write_counter(out: &mut String, counter: Option<&Counter>) {
    if let Some(c) = counter {
        let _ = write!(out, "packets={} bytes={} ", c.packets, c.bytes);
    }
}

fn write_flow(
    out: &mut String,
    conn: &Conn,
    expanded: bool,
    userspace: bool,
    counters: Option<&Counters>,
) {
    write_tuple(out, conn, false, expanded, userspace);
    write_counter(out, counters.map(|c| &c[0]));
    if conn.status & IPS_SEEN_REPLY == 0 {
        out.push_str("[UNREPLIED] ");
    }
    write_tuple(out, conn, true, expanded, userspace);
    write_counter(out, counters.map(|c| &c[1]));
    if conn.status & IPS_ASSURED != 0 {
        out.push_str("[ASSURED] ");
    }
}

/// One line of /proc/net/nf_conntrack, appended to `out`.
pub fn write_proc_line(out: &mut String, conn: &Conn, now: f64) {
    write_proc_line_acct(out, conn, now, None);
}

/// `write_proc_line` with the entry's counters (nf_conntrack_acct=1).
pub fn write_proc_line_acct(out: &mut String, conn: &Conn, now: f64, counters: Option<&Counters>) {
    let (l3, l3num) = if conn.family == 4 {
        ("ipv4", 2)
    } else {
        ("ipv6", 10)
    };
    let _ = write!(
        out,
        "{l3:<8} {l3num} {:<8} {} {} ",
        proc_l4_name(conn.proto),
        conn.proto,
        conn.remaining(now)
    );
    if conn.proto == PROTO_GRE {
        let (timeout, stream_timeout) = proto_gre::timeouts(conn);
        let _ = write!(out, "timeout={timeout}, stream_timeout={stream_timeout} ");
    } else {
        write_state(out, conn);
    }
    write_flow(out, conn, true, false, counters);
    let _ = write!(out, "mark={} zone={} use=2", conn.mark, conn.zone);
}

pub fn proc_line(conn: &Conn, now: f64) -> String {
    proc_line_acct(conn, now, None)
}

pub fn proc_line_acct(conn: &Conn, now: f64, counters: Option<&Counters>) -> String {
    let mut out = String::with_capacity(200);
    write_proc_line_acct(&mut out, conn, now, counters);
    out
}

fn write_userspace_head(out: &mut String, conn: &Conn) {
    let _ = write!(out, "{:<8} {} ", userspace_l4_name(conn.proto), conn.proto);
}

/// One line of `conntrack -L`, appended to `out`.
pub fn write_conntrack_line(out: &mut String, conn: &Conn, now: f64) {
    write_conntrack_line_acct(out, conn, now, None);
}

/// `write_conntrack_line` with the entry's counters (nf_conntrack_acct=1).
pub fn write_conntrack_line_acct(
    out: &mut String,
    conn: &Conn,
    now: f64,
    counters: Option<&Counters>,
) {
    write_userspace_head(out, conn);
    let _ = write!(out, "{} ", conn.remaining(now));
    write_state(out, conn);
    write_flow(out, conn, false, true, counters);
    let _ = write!(out, "mark={} ", conn.mark);
    if conn.zone != 0 {
        let _ = write!(out, "zone={} ", conn.zone);
    }
    if let Some(helper) = conn.helper {
        let _ = write!(out, "helper={} ", helper.name());
    }
    out.push_str("use=1");
}

pub fn conntrack_line(conn: &Conn, now: f64) -> String {
    conntrack_line_acct(conn, now, None)
}

pub fn conntrack_line_acct(conn: &Conn, now: f64, counters: Option<&Counters>) -> String {
    let mut out = String::with_capacity(200);
    write_conntrack_line_acct(&mut out, conn, now, counters);
    out
}

/// The part of a `conntrack -E` line after the event tag, appended to `out`.
///
/// ctnetlink names the helper in NEW and UPDATE messages only
/// (`helper` false for DESTROY).
pub fn write_event_body(
    out: &mut String,
    conn: &Conn,
    timeout: Option<i64>,
    protoinfo: bool,
    helper: bool,
) {
    write_event_body_acct(out, conn, timeout, protoinfo, helper, None);
}

/// `write_event_body` with counters (a DESTROY message under nf_conntrack_acct=1).
pub fn write_event_body_acct(
    out: &mut String,
    conn: &Conn,
    timeout: Option<i64>,
    protoinfo: bool,
    helper: bool,
    counters: Option<&Counters>,
) {
    let start = out.len();
    write_userspace_head(out, conn);
    if let Some(timeout) = timeout {
        let _ = write!(out, "{timeout} ");
    }
    if protoinfo {
        write_state(out, conn);
    }
    write_flow(out, conn, false, true, counters);
    if conn.mark != 0 {
        let _ = write!(out, "mark={} ", conn.mark);
    }
    if conn.zone != 0 {
        let _ = write!(out, "zone={} ", conn.zone);
    }
    if helper {
        if let Some(kind) = conn.helper {
            let _ = write!(out, "helper={} ", kind.name());
        }
    }
    let kept = out[start..].trim_end_matches(' ').len();
    out.truncate(start + kept);
}

pub fn event_body(conn: &Conn, timeout: Option<i64>, protoinfo: bool, helper: bool) -> String {
    let mut out = String::with_capacity(200);
    write_event_body(&mut out, conn, timeout, protoinfo, helper);
    out
}
