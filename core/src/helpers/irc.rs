//! The IRC helper (nf_conntrack_irc.c: help, parse_dcc), IPv4 only.
//!
//! Only client → server segments (ORIGINAL, ESTABLISHED) are read, each on
//! its own, at most 4095 bytes. After leading blanks the segment must be a
//! `PRIVMSG ` (any case); the first ` :` must be followed by `\1DCC ` and
//! one of `SEND `, `CHAT `, `MOVE `, `TSEND `, `SCHAT ` (an unknown type
//! makes the scan look for a later ` :`). The argument is skipped up to a
//! space, a newline must follow somewhere, then come the address as one
//! decimal number and the port. An address other than the client's, or port
//! 0, is a forged offer: no expectation, packet accepted. At most one offer
//! per segment counts. The expectation is "anyone, any port → client:port",
//! TCP, 300 s, up to 8 per IRC connection.

use crate::conntrack::conn::{Conn, ConnId, CT_ESTABLISHED, REPLY};
use crate::conntrack::expect::{format_address, ExpectPolicy, Expectation};
use crate::helpers::common::{announce, find, HelperEnv, HelperVerdict, NOTHING};
use crate::nat::helper::{expect_and_rewrite, is_translated};
use crate::packet::{Packet, PROTO_TCP};

pub const MAX_SEARCH_SIZE: usize = 4095;
/// Type keyword, its name, the expectation's description.
const DCC_TYPES: [(&[u8], &str, &str); 5] = [
    (b"SEND ", "SEND", "DCC SEND offer"),
    (b"CHAT ", "CHAT", "DCC CHAT offer"),
    (b"MOVE ", "MOVE", "DCC MOVE offer"),
    (b"TSEND ", "TSEND", "DCC TSEND offer"),
    (b"SCHAT ", "SCHAT", "DCC SCHAT offer"),
];
/// Shortest tail the scan needs after a ` :`: ` :\1DCC SENT t AAAAAAAA P\1\n`.
const MIN_TAIL: usize = 26;
/// The argument must end this far before the end: `AAAAAAAA P\1\n`.
const MIN_AFTER_ARG: usize = 12;

/// A DCC offer: its type, description, address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DccOffer {
    pub kind: &'static str,
    pub description: &'static str,
    pub address: u32,
    pub port: u16,
    /// Where `<address> <port>` lies in the payload (start, end).
    pub span: (usize, usize),
}

pub fn irc_help(
    conn: &Conn,
    id: ConnId,
    ctinfo: u8,
    pkt: &Packet<'_>,
    env: &mut HelperEnv<'_>,
) -> HelperVerdict {
    if ctinfo != CT_ESTABLISHED || conn.family != 4 {
        return NOTHING;
    }
    let payload = pkt.payload();
    let data = payload.get(..MAX_SEARCH_SIZE).unwrap_or(payload);
    let Some(offer) = find_dcc(data) else {
        return NOTHING;
    };
    let address = u128::from(offer.address);
    if (address != conn.orig.src && address != conn.reply.dst) || offer.port == 0 {
        return HelperVerdict::new(
            true,
            format!(
                "irc: forged {} for {}:{} (client is {}): no expectation",
                offer.description,
                format_address(4, address, false),
                offer.port,
                format_address(4, conn.orig.src, false)
            ),
        );
    }
    let params = &env.table.params;
    let policy = ExpectPolicy::new(params.irc_max_dcc_channels, params.irc_dcc_timeout);
    let mut exp = Expectation::new(
        conn,
        id,
        "irc",
        PROTO_TCP,
        0,
        0,
        0,
        0,
        conn.reply.dst,
        offer.port,
    );
    exp.packet_index = Some(pkt.index);
    exp.description = offer.description;
    if !is_translated(conn) {
        return announce(env, exp, &policy);
    }
    // The offer must name where the server talks to: the translated client.
    let new_address = conn.reply.dst as u32;
    expect_and_rewrite(
        env,
        exp,
        &policy,
        REPLY,
        offer.span,
        &format!("DCC {}", offer.kind),
        &|port| format!("{new_address} {port}"),
    )
}

/// The first DCC offer the kernel would act on, if any.
pub fn find_dcc(data: &[u8]) -> Option<DccOffer> {
    let end = data.len();
    let scan_end = end.saturating_sub(10);
    let mut pos = 0;
    while pos < scan_end && matches!(data.get(pos), Some(b' ' | b'\r' | b'\n')) {
        pos += 1;
    }
    if pos < scan_end {
        let word = data.get(pos..pos + 8)?;
        if !word.eq_ignore_ascii_case(b"privmsg ") {
            return None;
        }
        pos += 8;
    }
    // A ` :` must start before end - MIN_TAIL.
    let last = (end + 1).saturating_sub(MIN_TAIL);
    loop {
        pos = find(data, b" :", pos, last)? + 2;
        if !data.get(pos..).unwrap_or(&[]).starts_with(b"\x01DCC ") {
            return None;
        }
        pos += 5;
        let rest = data.get(pos..).unwrap_or(&[]);
        for (keyword, kind, description) in DCC_TYPES {
            if rest.starts_with(keyword) {
                let (address, port, span) = parse_dcc(data, pos + keyword.len(), end)?;
                return Some(DccOffer {
                    kind,
                    description,
                    address,
                    port,
                    span,
                });
            }
        }
    }
}

/// parse_dcc: skip the argument, then `<address> <port>` before a newline.
fn parse_dcc(data: &[u8], mut pos: usize, end: usize) -> Option<(u32, u16, (usize, usize))> {
    loop {
        let byte = *data.get(pos)?;
        pos += 1;
        if byte == b' ' {
            break;
        }
        if pos + MIN_AFTER_ARG > end {
            return None;
        }
    }
    find(data, b"\n", pos, end)?;
    let begin = pos;
    let (address, mut pos) = decimal(data, pos);
    while data.get(pos) == Some(&b' ') {
        pos += 1;
    }
    let (port, stop) = decimal(data, pos);
    Some((address as u32, port as u16, (begin, stop)))
}

/// simple_strtoul in base 10: leading digits (none gives 0) and where they stop.
fn decimal(data: &[u8], mut pos: usize) -> (u64, usize) {
    let mut value: u64 = 0;
    while let Some(&byte) = data.get(pos) {
        if !byte.is_ascii_digit() {
            break;
        }
        value = value.wrapping_mul(10).wrapping_add(u64::from(byte - b'0'));
        pos += 1;
    }
    (value, pos)
}
