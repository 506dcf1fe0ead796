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
//! Each printer has a `write_*` form appending to a caller's buffer, so a
//! listing of many entries reuses one allocation.

use std::fmt::Write;

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

fn write_ipv4(out: &mut String, address: u128) {
    let a = address as u32;
    let _ = write!(
        out,
        "{}.{}.{}.{}",
        a >> 24,
        (a >> 16) & 0xFF,
        (a >> 8) & 0xFF,
        a & 0xFF
    );
}

fn ipv6_words(address: u128) -> [u16; 8] {
    let mut words = [0u16; 8];
    for (i, word) in words.iter_mut().enumerate() {
        *word = (address >> (112 - 16 * i)) as u16;
    }
    words
}

/// %pI6: eight groups of four lowercase hex digits.
fn write_ipv6_expanded(out: &mut String, address: u128) {
    for (i, word) in ipv6_words(address).iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{word:04x}");
    }
}

/// glibc's inet_ntop: the first longest run of two or more zero groups
/// becomes "::", and an IPv4-compatible (::a.b.c.d) or IPv4-mapped
/// (::ffff:a.b.c.d) address ends in a dotted quad.
fn write_ipv6_compressed(out: &mut String, address: u128) {
    let words = ipv6_words(address);
    let (mut best_base, mut best_len) = (usize::MAX, 0usize);
    let (mut cur_base, mut cur_len) = (usize::MAX, 0usize);
    for (i, &word) in words.iter().enumerate() {
        if word == 0 {
            if cur_base == usize::MAX {
                cur_base = i;
                cur_len = 1;
            } else {
                cur_len += 1;
            }
        } else if cur_base != usize::MAX {
            if best_base == usize::MAX || cur_len > best_len {
                best_base = cur_base;
                best_len = cur_len;
            }
            cur_base = usize::MAX;
        }
    }
    if cur_base != usize::MAX && (best_base == usize::MAX || cur_len > best_len) {
        best_base = cur_base;
        best_len = cur_len;
    }
    if best_base != usize::MAX && best_len < 2 {
        best_base = usize::MAX;
    }
    let in_best = |i: usize| best_base != usize::MAX && i >= best_base && i < best_base + best_len;
    let mut i = 0;
    while i < 8 {
        if in_best(i) {
            if i == best_base {
                out.push(':');
            }
            i += 1;
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6 && best_base == 0 && (best_len == 6 || (best_len == 5 && words[5] == 0xFFFF)) {
            write_ipv4(out, address & 0xFFFF_FFFF);
            return;
        }
        let _ = write!(out, "{:x}", words[i]);
        i += 1;
    }
    if best_base != usize::MAX && best_base + best_len == 8 {
        out.push(':');
    }
}

/// An address as the kernel (`expanded`: %pI6) or conntrack-tools
/// (inet_ntop) prints it; IPv4 is a dotted quad either way.
pub fn write_address(out: &mut String, family: u8, address: u128, expanded: bool) {
    if family == 6 {
        if expanded {
            write_ipv6_expanded(out, address);
        } else {
            write_ipv6_compressed(out, address);
        }
    } else {
        write_ipv4(out, address);
    }
}

pub fn format_address(family: u8, address: u128, expanded: bool) -> String {
    let mut out = String::with_capacity(40);
    write_address(&mut out, family, address, expanded);
    out
}

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

fn write_flow(out: &mut String, conn: &Conn, expanded: bool, userspace: bool) {
    write_tuple(out, conn, false, expanded, userspace);
    if conn.status & IPS_SEEN_REPLY == 0 {
        out.push_str("[UNREPLIED] ");
    }
    write_tuple(out, conn, true, expanded, userspace);
    if conn.status & IPS_ASSURED != 0 {
        out.push_str("[ASSURED] ");
    }
}

/// One line of /proc/net/nf_conntrack, appended to `out`.
pub fn write_proc_line(out: &mut String, conn: &Conn, now: f64) {
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
    write_flow(out, conn, true, false);
    let _ = write!(out, "mark={} zone={} use=2", conn.mark, conn.zone);
}

pub fn proc_line(conn: &Conn, now: f64) -> String {
    let mut out = String::with_capacity(200);
    write_proc_line(&mut out, conn, now);
    out
}

fn write_userspace_head(out: &mut String, conn: &Conn) {
    let _ = write!(out, "{:<8} {} ", userspace_l4_name(conn.proto), conn.proto);
}

/// One line of `conntrack -L`, appended to `out`.
pub fn write_conntrack_line(out: &mut String, conn: &Conn, now: f64) {
    write_userspace_head(out, conn);
    let _ = write!(out, "{} ", conn.remaining(now));
    write_state(out, conn);
    write_flow(out, conn, false, true);
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
    let mut out = String::with_capacity(200);
    write_conntrack_line(&mut out, conn, now);
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
    let start = out.len();
    write_userspace_head(out, conn);
    if let Some(timeout) = timeout {
        let _ = write!(out, "{timeout} ");
    }
    if protoinfo {
        write_state(out, conn);
    }
    write_flow(out, conn, false, true);
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
