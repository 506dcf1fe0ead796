//! ICMP and ICMPv6: query trackers and error classification
//! (net/netfilter/nf_conntrack_proto_icmp.c, nf_conntrack_proto_icmpv6.c).
//!
//! Queries (echo, timestamp, information, address mask; ICMPv6 echo and node
//! information) are tracked as a tiny connection whose tuple holds the
//! identifier as "source port" and `type << 8 | code` as "destination port".
//! Inverting maps a request type to its reply type and keeps id and code, so
//! a reply with another code is another tuple. A type without a pair cannot
//! be inverted and never creates an entry; a reply type may be looked up but
//! may not start one. Every accepted packet re-arms the timeout; an entry is
//! never ASSURED.
//!
//! Errors are classified before any lookup (`icmp_error`, `icmpv6_error`):
//! the quoted datagram's tuple is inverted (it travelled the other way) and
//! looked up. A match whose destination is the error's destination makes the
//! error RELATED to that entry, in the direction the match says; anything
//! else is INVALID. The entry itself is left untouched. ICMPv6 neighbour
//! discovery and MLD are UNTRACKED outright.
//!
//! The query functions serve both families: `error`, `new` and `packet` pick
//! the ICMP or ICMPv6 rules by protocol number, `invert` by family.

use std::borrow::Cow;
use std::fmt;

use crate::checksum;
use crate::config::Sysctls;
use crate::conntrack::conn::{Conn, ConnId, Tuple, ORIGINAL};
use crate::conntrack::l4proto::{Action, ConnLookup, Outcome};
use crate::output::addr::write_ipaddress_text;
use crate::packet::{
    Packet, PROTO_GRE, PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP, PROTO_UDPLITE,
};
use crate::reason::Reason;

/// What the error handler made of an ICMP packet (icmp_error / icmpv6_error).
#[derive(Clone, Debug)]
pub enum IcmpErrorOutcome {
    /// A query (echo ...): tracked like any other packet.
    NotAnError,
    /// An error about a tracked connection.
    Related {
        conn: ConnId,
        direction: u8,
        reason: Reason,
    },
    /// An error about an untracked packet.
    Untracked(Reason),
    /// No connection, or a malformed error.
    Invalid(Reason),
}

pub const ICMP_HEADER_LEN: usize = 8;
/// The highest ICMP type the kernel knows.
pub const NR_ICMP_TYPES: u8 = 18;
const IPV6_NO_NEXT_HEADER: u8 = 59;

pub const ICMP_ECHOREPLY: u8 = 0;
pub const ICMP_ECHO: u8 = 8;
pub const ICMPV6_ECHO_REQUEST: u8 = 128;
pub const ICMPV6_ECHO_REPLY: u8 = 129;
pub const ICMPV6_REDIRECT: u8 = 137;

/// A redirect: ICMPv6 header, target and destination addresses, then options.
const REDIRECT_MSG_LEN: usize = 40;
const ND_OPT_REDIRECT_HDR: u8 = 4;

// The GRE fields a quoted enhanced-GRE header is keyed by (gre_pkt_to_tuple).
const GRE_VERSION_PPTP: u8 = 1;
const GRE_PROTO_PPP: u16 = 0x880B;
const PPTP_KEY_HEADER_LEN: usize = 8;

/// The reply type of an ICMP query type.
fn icmp_pair(icmp_type: u8) -> Option<u8> {
    match icmp_type {
        8 => Some(0),
        0 => Some(8),
        13 => Some(14),
        14 => Some(13),
        15 => Some(16),
        16 => Some(15),
        17 => Some(18),
        18 => Some(17),
        _ => None,
    }
}

/// The reply type of an ICMPv6 query type.
fn icmpv6_pair(icmp_type: u8) -> Option<u8> {
    match icmp_type {
        128 => Some(129),
        129 => Some(128),
        139 => Some(140),
        140 => Some(139),
        _ => None,
    }
}

fn is_icmp_request(icmp_type: u8) -> bool {
    matches!(icmp_type, 8 | 13 | 15 | 17)
}

fn is_icmp_error(icmp_type: u8) -> bool {
    matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
}

fn is_icmpv6_request(icmp_type: u8) -> bool {
    matches!(icmp_type, 128 | 139)
}

fn is_port_proto(proto: u8) -> bool {
    matches!(proto, PROTO_TCP | PROTO_UDP | PROTO_UDPLITE | PROTO_SCTP)
}

/// Bytes of the quoted layer-4 header needed to build its tuple (nf_ct_get_tuple).
fn tuple_bytes(proto: u8) -> i64 {
    match proto {
        PROTO_TCP | PROTO_UDP | PROTO_UDPLITE | PROTO_SCTP => 4,
        PROTO_ICMP | PROTO_ICMPV6 => ICMP_HEADER_LEN as i64,
        _ => 0,
    }
}

// -- tuple inversion ------------------------------------------------------------

fn invert_with(pair: fn(u8) -> Option<u8>, tuple: &Tuple) -> Option<Tuple> {
    let reply = pair((tuple.dport >> 8) as u8)?;
    Some(Tuple::new(
        tuple.dst,
        tuple.src,
        tuple.sport,
        u16::from(reply) << 8 | (tuple.dport & 0xFF),
    ))
}

/// The reply tuple of a query, or None for a type without a reply type.
/// Family 4 follows the ICMP pairs, anything else the ICMPv6 pairs.
pub fn invert(family: u8, tuple: &Tuple) -> Option<Tuple> {
    if family == 4 {
        invert_with(icmp_pair, tuple)
    } else {
        invert_with(icmpv6_pair, tuple)
    }
}

/// nf_ct_invert_tuple for any protocol (used on quoted datagrams).
fn invert_any(proto: u8, tuple: &Tuple) -> Option<Tuple> {
    match proto {
        PROTO_ICMP => invert_with(icmp_pair, tuple),
        PROTO_ICMPV6 => invert_with(icmpv6_pair, tuple),
        p if is_port_proto(p) || p == PROTO_GRE => {
            Some(Tuple::new(tuple.dst, tuple.src, tuple.dport, tuple.sport))
        }
        _ => Some(Tuple::new(tuple.dst, tuple.src, 0, 0)),
    }
}

// -- query trackers ---------------------------------------------------------------

/// Validation proper happens in the error handler; here only the family can
/// be wrong for the protocol.
pub fn error(pkt: &Packet, _cfg: &Sysctls, _in_prerouting: bool) -> Option<Reason> {
    match pkt.proto {
        PROTO_ICMP if pkt.family != 4 => Some(Cow::Borrowed(
            "INVALID: ICMP (protocol 1) inside an IPv6 packet is never tracked",
        )),
        PROTO_ICMPV6 if pkt.family != 6 => Some(Cow::Borrowed(
            "INVALID: ICMPv6 (protocol 58) inside an IPv4 packet is never tracked",
        )),
        _ => None,
    }
}

/// Only a request may create an entry (the kernel's `valid_new`).
pub fn new(conn: &mut Conn, _pkt: &Packet, _cfg: &Sysctls) -> Result<(), Reason> {
    let icmp_type = (conn.orig.dport >> 8) as u8;
    if conn.proto == PROTO_ICMP {
        if is_icmp_request(icmp_type) {
            return Ok(());
        }
        Err(Cow::Owned(format!(
            "INVALID: ICMP {} without a matching request",
            icmp_type_name(4, icmp_type)
        )))
    } else {
        if is_icmpv6_request(icmp_type) {
            return Ok(());
        }
        Err(Cow::Owned(format!(
            "INVALID: ICMPv6 {} without a matching request",
            icmp_type_name(6, icmp_type)
        )))
    }
}

pub fn packet(
    conn: &mut Conn,
    _pkt: &Packet,
    _direction: u8,
    _ctinfo: u8,
    now: f64,
    cfg: &Sysctls,
) -> Outcome {
    if conn.proto == PROTO_ICMP {
        conn.refresh_acct(now, cfg.nf_conntrack_icmp_timeout as f64);
        (
            Action::Accept,
            Cow::Borrowed("ICMP query or reply (nf_conntrack_icmp_timeout)"),
        )
    } else {
        conn.refresh_acct(now, cfg.nf_conntrack_icmpv6_timeout as f64);
        (
            Action::Accept,
            Cow::Borrowed("ICMPv6 query or reply (nf_conntrack_icmpv6_timeout)"),
        )
    }
}

// -- error classification -----------------------------------------------------------

fn invalid(reason: impl fmt::Display) -> IcmpErrorOutcome {
    IcmpErrorOutcome::Invalid(Cow::Owned(format!("INVALID: {reason}")))
}

/// The error handler, run before the query path for every ICMP/ICMPv6
/// packet: ICMP rules for protocol 1, ICMPv6 rules otherwise (each checks
/// that the packet is of its own family and protocol).
pub fn error_handler(
    pkt: &Packet,
    cfg: &Sysctls,
    in_prerouting: bool,
    zone: u16,
    table: &mut dyn ConnLookup,
) -> IcmpErrorOutcome {
    if pkt.proto == PROTO_ICMP {
        icmp_error(pkt, cfg, in_prerouting, zone, table)
    } else {
        icmpv6_error(pkt, cfg, in_prerouting, zone, table)
    }
}

/// The ICMP message: what follows the IP header, or nothing.
fn icmp_message<'a>(pkt: &Packet<'a>) -> &'a [u8] {
    pkt.data.get(pkt.l4_off..).unwrap_or(&[])
}

/// nf_conntrack_icmpv4_error: validate, and relate errors to the entry they quote.
fn icmp_error(
    pkt: &Packet,
    cfg: &Sysctls,
    in_prerouting: bool,
    zone: u16,
    table: &mut dyn ConnLookup,
) -> IcmpErrorOutcome {
    if pkt.family != 4 || pkt.proto != PROTO_ICMP {
        return IcmpErrorOutcome::NotAnError;
    }
    let message = icmp_message(pkt);
    if message.len() < ICMP_HEADER_LEN {
        return invalid("ICMP short packet (header needs 8 bytes)");
    }
    if in_prerouting
        && cfg.nf_conntrack_checksum != 0
        && !checksum::verifies(checksum::ones_sum(message))
    {
        return invalid("ICMP checksum bad");
    }
    let icmp_type = pkt.icmp_type;
    if icmp_type > NR_ICMP_TYPES {
        return invalid(format_args!(
            "ICMP type {icmp_type} is unknown (above {NR_ICMP_TYPES})"
        ));
    }
    if !is_icmp_error(icmp_type) {
        return IcmpErrorOutcome::NotAnError;
    }
    let what = format!("ICMP {}", icmp_error_name(4, icmp_type, pkt.icmp_code));
    related(pkt, zone, table, &what)
}

/// nf_conntrack_icmpv6_error: validate, untrack ND/MLD, relate errors and redirects.
fn icmpv6_error(
    pkt: &Packet,
    cfg: &Sysctls,
    in_prerouting: bool,
    zone: u16,
    table: &mut dyn ConnLookup,
) -> IcmpErrorOutcome {
    if pkt.family != 6 || pkt.proto != PROTO_ICMPV6 {
        return IcmpErrorOutcome::NotAnError;
    }
    let message = icmp_message(pkt);
    if message.len() < ICMP_HEADER_LEN {
        return invalid("ICMPv6 short packet (header needs 8 bytes)");
    }
    if in_prerouting
        && cfg.nf_conntrack_checksum != 0
        && !checksum::l4_checksum_ok(6, pkt.src, pkt.dst, PROTO_ICMPV6, message)
    {
        return invalid("ICMPv6 checksum failed");
    }
    let icmp_type = pkt.icmp_type;
    if let Some(reason) = icmpv6_untracked_reason(icmp_type) {
        return IcmpErrorOutcome::Untracked(Cow::Borrowed(reason));
    }
    if icmp_type == ICMPV6_REDIRECT {
        return redirect(pkt, zone, table);
    }
    if icmp_type >= 128 {
        return IcmpErrorOutcome::NotAnError;
    }
    let what = format!("ICMPv6 {}", icmp_error_name(6, icmp_type, pkt.icmp_code));
    related(pkt, zone, table, &what)
}

/// Neighbour discovery and MLD messages, never tracked (fixed text: such
/// messages are frequent on any IPv6 link).
fn icmpv6_untracked_reason(icmp_type: u8) -> Option<&'static str> {
    macro_rules! untracked {
        ($name:literal) => {
            concat!(
                "UNTRACKED: ICMPv6 ",
                $name,
                " (neighbour discovery and MLD are never tracked)"
            )
        };
    }
    Some(match icmp_type {
        130 => untracked!("MLD query"),
        131 => untracked!("MLD report"),
        132 => untracked!("MLD done"),
        133 => untracked!("router solicitation"),
        134 => untracked!("router advertisement"),
        135 => untracked!("neighbour solicitation"),
        136 => untracked!("neighbour advertisement"),
        143 => untracked!("MLDv2 report"),
        151 => untracked!("multicast router advertisement"),
        152 => untracked!("multicast router solicitation"),
        _ => return None,
    })
}

/// nf_conntrack_icmpv6_redirect: only a well-formed redirect quotes a packet.
fn redirect(pkt: &Packet, zone: u16, table: &mut dyn ConnLookup) -> IcmpErrorOutcome {
    let message = icmp_message(pkt);
    if message.len() < REDIRECT_MSG_LEN {
        return invalid("ICMPv6 short redirect");
    }
    if pkt.icmp_code != 0 {
        return IcmpErrorOutcome::NotAnError;
    }
    if pkt.ttl != 255 || !link_local(pkt.src) {
        return invalid("ICMPv6 redirect with hop limit other than 255 or a non-link-local source");
    }
    match (
        message.get(REDIRECT_MSG_LEN),
        message.get(REDIRECT_MSG_LEN + 1),
    ) {
        (Some(&option), Some(&option_len)) if option_len != 0 => {
            if option != ND_OPT_REDIRECT_HDR {
                return IcmpErrorOutcome::NotAnError;
            }
        }
        _ => return invalid("ICMPv6 redirect without options"),
    }
    related(pkt, zone, table, "ICMPv6 redirect")
}

/// What ipv6_addr_type calls link-local: fe80::/10 or link-scope multicast.
fn link_local(addr: u128) -> bool {
    addr >> 118 == 0x3FA || (addr >> 120 == 0xFF && (addr >> 112) & 0x0F == 2)
}

/// nf_conntrack_inet_error: find the entry the quoted datagram belongs to.
fn related(pkt: &Packet, zone: u16, table: &mut dyn ConnLookup, what: &str) -> IcmpErrorOutcome {
    let Some(inner) = pkt.inner.as_deref() else {
        return invalid(format_args!("{what} without a quoted IP header"));
    };
    if let Some(err) = &inner.error {
        return invalid(format_args!(
            "{what} quoting a packet too short to identify ({err})"
        ));
    }
    if inner.family != pkt.family {
        return invalid(format_args!("{what} quoting an IPv{} header", inner.family));
    }
    if matches!(inner.fragment, Some(f) if f.offset != 0) {
        return invalid(format_args!("{what} quoting a non-first fragment"));
    }
    let proto = inner.proto;
    if inner.family == 6 && proto == IPV6_NO_NEXT_HEADER {
        return invalid(format_args!(
            "{what} quoting an IPv6 packet without a layer-4 header"
        ));
    }
    let (sport, dport) = match quoted_ports(inner) {
        Ok(ports) => ports,
        Err(why) => return invalid(format_args!("{what} quoting {why}")),
    };
    let Some(reply) = invert_any(proto, &Tuple::new(inner.src, inner.dst, sport, dport)) else {
        return invalid(format_args!(
            "{what} quoting an ICMP message that has no reply type (an error?)"
        ));
    };
    let Some((id, direction)) = table.lookup(pkt.family, proto, &reply, zone) else {
        return invalid(format_args!("{what} quoting an unknown connection"));
    };
    let conn = table.conn(id);
    let expected_dst = conn.tuple(direction).dst;
    if pkt.dst != expected_dst {
        return invalid(format_args!(
            "{what} sent to {}, not to the quoted packet's source {}",
            addr_text(pkt.family, pkt.dst),
            addr_text(pkt.family, expected_dst)
        ));
    }
    let side = if direction == ORIGINAL {
        "original"
    } else {
        "reply"
    };
    IcmpErrorOutcome::Related {
        conn: id,
        direction,
        reason: Cow::Owned(format!(
            "RELATED: {what} about {} ({side} direction)",
            describe_conn(conn)
        )),
    }
}

/// The quoted datagram's 16-bit tuple parts, or why they cannot be read.
fn quoted_ports(inner: &Packet) -> Result<(u16, u16), String> {
    let proto = inner.proto;
    // Signed: a decoder may place l4_off past a truncated quote.
    let available = inner.data.len() as i64 - inner.l4_off as i64;
    let need = tuple_bytes(proto);
    if available < need {
        return Err(format!(
            "only {available} bytes of the {} header ({need} needed)",
            proto_name(proto)
        ));
    }
    if proto == PROTO_GRE {
        return gre_keys(inner.data, inner.l4_off)
            .ok_or_else(|| "enhanced GRE that does not carry PPP".to_string());
    }
    if need != 0 {
        return Ok((inner.sport, inner.dport));
    }
    Ok((0, 0))
}

/// (source key, destination key) of a GRE header at `off`, as
/// gre_pkt_to_tuple builds them; None for version 1 carrying something other
/// than PPP. Headers too short for a key give keys 0/0.
fn gre_keys(data: &[u8], off: usize) -> Option<(u16, u16)> {
    let header = data.get(off..).unwrap_or(&[]);
    if header.len() < 4 || header[1] & 0x07 != GRE_VERSION_PPTP {
        return Some((0, 0));
    }
    match header.get(..PPTP_KEY_HEADER_LEN) {
        None => Some((0, 0)),
        Some(h) if u16::from_be_bytes([h[2], h[3]]) != GRE_PROTO_PPP => None,
        Some(h) => Some((0, u16::from_be_bytes([h[6], h[7]]))),
    }
}

// -- names for reasons ----------------------------------------------------------------

fn icmp_type_known(icmp_type: u8) -> Option<&'static str> {
    Some(match icmp_type {
        0 => "echo reply",
        3 => "destination unreachable",
        4 => "source quench",
        5 => "redirect",
        8 => "echo request",
        9 => "router advertisement",
        10 => "router solicitation",
        11 => "time exceeded",
        12 => "parameter problem",
        13 => "timestamp request",
        14 => "timestamp reply",
        15 => "information request",
        16 => "information reply",
        17 => "address mask request",
        18 => "address mask reply",
        _ => return None,
    })
}

fn icmpv6_type_known(icmp_type: u8) -> Option<&'static str> {
    Some(match icmp_type {
        1 => "destination unreachable",
        2 => "packet too big",
        3 => "time exceeded",
        4 => "parameter problem",
        128 => "echo request",
        129 => "echo reply",
        130 => "MLD query",
        131 => "MLD report",
        132 => "MLD done",
        133 => "router solicitation",
        134 => "router advertisement",
        135 => "neighbour solicitation",
        136 => "neighbour advertisement",
        137 => "redirect",
        139 => "node information query",
        140 => "node information reply",
        143 => "MLDv2 report",
        151 => "multicast router advertisement",
        152 => "multicast router solicitation",
        _ => return None,
    })
}

fn icmp_unreach_known(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => "network unreachable",
        1 => "host unreachable",
        2 => "protocol unreachable",
        3 => "port unreachable",
        4 => "fragmentation needed",
        5 => "source route failed",
        6 => "network unknown",
        7 => "host unknown",
        9 => "network prohibited",
        10 => "host prohibited",
        11 => "TOS network unreachable",
        12 => "TOS host unreachable",
        13 => "communication prohibited",
        14 => "host precedence violation",
        15 => "precedence cutoff",
        _ => return None,
    })
}

fn icmpv6_unreach_known(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => "no route",
        1 => "administratively prohibited",
        2 => "beyond scope of source address",
        3 => "address unreachable",
        4 => "port unreachable",
        5 => "source address failed policy",
        6 => "reject route",
        _ => return None,
    })
}

/// "echo request", "time exceeded", ... or "type N" (family 4: ICMP, else ICMPv6).
pub fn icmp_type_name(family: u8, icmp_type: u8) -> Cow<'static, str> {
    let known = if family == 4 {
        icmp_type_known(icmp_type)
    } else {
        icmpv6_type_known(icmp_type)
    };
    match known {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(format!("type {icmp_type}")),
    }
}

/// "port unreachable", "time exceeded", ...: the most specific name of an error.
pub fn icmp_error_name(family: u8, icmp_type: u8, code: u8) -> Cow<'static, str> {
    let unreach = match (family, icmp_type) {
        (4, 3) => Some(icmp_unreach_known(code)),
        (6, 1) => Some(icmpv6_unreach_known(code)),
        _ => None,
    };
    match unreach {
        Some(Some(name)) => Cow::Borrowed(name),
        Some(None) => Cow::Owned(format!("destination unreachable (code {code})")),
        None => icmp_type_name(family, icmp_type),
    }
}

/// "tcp", "udp", ... or "protocol N".
pub fn proto_name(proto: u8) -> Cow<'static, str> {
    Cow::Borrowed(match proto {
        PROTO_TCP => "tcp",
        PROTO_UDP => "udp",
        PROTO_UDPLITE => "udplite",
        PROTO_SCTP => "sctp",
        PROTO_ICMP => "icmp",
        PROTO_ICMPV6 => "icmpv6",
        PROTO_GRE => "gre",
        _ => return Cow::Owned(format!("protocol {proto}")),
    })
}

/// An address as Python's `ipaddress` prints it: dotted quad (family 4, the
/// low 32 bits), or lower-case hex groups with the longest run of two or
/// more zero groups (the first on a tie) written `::`.
#[derive(Clone, Copy, Debug)]
pub struct AddrText {
    family: u8,
    addr: u128,
}

pub fn addr_text(family: u8, addr: u128) -> AddrText {
    AddrText { family, addr }
}

impl fmt::Display for AddrText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_ipaddress_text(f, self.family, self.addr)
    }
}

/// `addr:port`, or `[addr]:port` for IPv6.
#[derive(Clone, Copy, Debug)]
pub struct EndpointText {
    addr: AddrText,
    port: u16,
}

pub fn endpoint_text(family: u8, addr: u128, port: u16) -> EndpointText {
    EndpointText {
        addr: addr_text(family, addr),
        port,
    }
}

impl fmt::Display for EndpointText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.addr.family == 4 {
            write!(f, "{}:{}", self.addr, self.port)
        } else {
            write!(f, "[{}]:{}", self.addr, self.port)
        }
    }
}

/// The entry's original tuple in words: 'udp 192.0.2.1:5353 → 198.51.100.7:53'.
pub fn describe_conn(conn: &Conn) -> String {
    let (family, proto, orig) = (conn.family, conn.proto, &conn.orig);
    let name = proto_name(proto);
    if is_port_proto(proto) {
        return format!(
            "{name} {} → {}",
            endpoint_text(family, orig.src, orig.sport),
            endpoint_text(family, orig.dst, orig.dport)
        );
    }
    let flow = format!(
        "{name} {} → {}",
        addr_text(family, orig.src),
        addr_text(family, orig.dst)
    );
    if proto == PROTO_ICMP || proto == PROTO_ICMPV6 {
        let kind = icmp_type_name(
            if proto == PROTO_ICMP { 4 } else { 6 },
            (orig.dport >> 8) as u8,
        );
        return format!("{flow} {kind} id {}", orig.sport);
    }
    flow
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_text_matches_python() {
        // Expected strings from Python 3.11's ipaddress.IPv6Address.
        let cases: [(u128, &str); 9] = [
            (0, "::"),
            (1, "::1"),
            (0xFD99_0001_0000_0000_0000_0000_0000_0001, "fd99:1::1"),
            (0x0001_0000_0000_0002_0000_0000_0000_0003, "1:0:0:2::3"),
            (0x0001_0000_0000_0002_0000_0000_0003_0004, "1::2:0:0:3:4"),
            (0x0000_0000_0000_0000_0000_FFFF_0102_0304, "::ffff:102:304"),
            (0x0001_0000_0001_0000_0001_0000_0001_0000, "1:0:1:0:1:0:1:0"),
            (0x0001_0002_0003_0004_0005_0006_0007_0000, "1:2:3:4:5:6:7:0"),
            (0xFE80_0000_0000_0000_0000_0000_0000_0000, "fe80::"),
        ];
        for (addr, text) in cases {
            assert_eq!(addr_text(6, addr).to_string(), text);
        }
        assert_eq!(addr_text(4, 0x0A63_0101).to_string(), "10.99.1.1");
        assert_eq!(endpoint_text(6, 1, 53).to_string(), "[::1]:53");
        assert_eq!(
            endpoint_text(4, 0x0A63_0101, 53).to_string(),
            "10.99.1.1:53"
        );
    }

    #[test]
    fn gre_keys_follow_the_header() {
        let v1 = [0x30, 0x81, 0x88, 0x0B, 0, 4, 0, 7];
        assert_eq!(gre_keys(&v1, 0), Some((0, 7)));
        let not_ppp = [0x30, 0x81, 0x08, 0x00, 0, 4, 0, 7];
        assert_eq!(gre_keys(&not_ppp, 0), None);
        assert_eq!(gre_keys(&[0x30, 0x81, 0x08, 0x00, 0, 0], 0), Some((0, 0)));
        assert_eq!(gre_keys(&[0], 0), Some((0, 0)));
        assert_eq!(gre_keys(&[0, 2, 8, 0, 0, 0, 0, 9], 0), Some((0, 0)));
        assert_eq!(gre_keys(&v1, 100), Some((0, 0)));
    }
}
