//! The FTP helper (nf_conntrack_ftp.c: help, find_pattern, try_rfc959,
//! try_rfc1123, try_eprt, try_epsv_response, get_port, find_nl_seq,
//! update_nl_seq).
//!
//! Only ESTABLISHED data segments are read, and only those that start
//! exactly where an earlier segment of the same direction ended with a
//! newline (up to two such sequence numbers are remembered per direction).
//! So the first segment in each direction is never parsed, a command must
//! start its segment, and after a segment without a final newline parsing
//! pauses until one more segment ends in a newline.
//!
//! A parsed segment is matched at offset 0 against `PORT`, `EPRT` (client)
//! or `227 `, `229 ` (server). A recognised keyword whose argument does not
//! parse, or a segment that is a prefix of a keyword, is a "partial" match:
//! the kernel drops the packet (its retransmission will be parsed again).
//! An announced address that differs from the sender's gives no expectation
//! (module parameter `loose=0`) but the packet passes. The expectation is
//! "the peer, any port → announced port on the announcer", TCP, 300 s, one
//! per control connection.

use crate::conntrack::conn::{
    direction_of, Conn, ConnId, CT_ESTABLISHED, CT_ESTABLISHED_REPLY, ORIGINAL,
};
use crate::conntrack::expect::{format_address, ExpectPolicy};
use crate::helpers::common::{
    announce, exact_source, find, py_bytes_repr, sender, HelperEnv, HelperVerdict, NOTHING,
};
use crate::nat::helper::{address_text, expect_and_rewrite, is_translated};
use crate::packet::{Packet, PROTO_TCP};

pub const POLICY: ExpectPolicy = ExpectPolicy::new(1, 300);
const LOW96: u128 = (1 << 96) - 1;
const NL: u8 = b'\n';
const CR: u8 = b'\r';
const COMMA: u8 = b',';
const DOT: u8 = b'.';
const COLON: u8 = b':';

/// The four announcements (enum nf_ct_ftp_type): what a NAT rewrite writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FtpType {
    Port,
    Pasv,
    Eprt,
    Epsv,
}

impl FtpType {
    /// The keyword the reasons name for a rewrite.
    pub fn keyword(self) -> &'static str {
        match self {
            FtpType::Port => "PORT",
            FtpType::Pasv => "227",
            FtpType::Eprt => "EPRT",
            FtpType::Epsv => "229",
        }
    }
}

/// A parsed announcement: address (None: not mentioned, EPSV) and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    pub description: &'static str,
    pub kind: FtpType,
    pub address: Option<u128>,
    pub port: u16,
    /// EPRT |2|: all 128 bits given; PORT/227 give 32 bits.
    pub full_address: bool,
    /// Where the address and port text lies in the payload (start, end).
    pub span: (usize, usize),
}

/// What an argument parser found: the address (if named), the port,
/// whether the address is complete, and the text's span.
struct Argument {
    address: Option<u128>,
    port: u16,
    full_address: bool,
    span: (usize, usize),
}

/// What `parse_command` found at the start of a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// No keyword: ordinary data.
    Nothing,
    /// A keyword with a broken argument, or a keyword's prefix: the kernel drops.
    Partial(String),
    Command(Command),
}

pub fn ftp_help(
    conn: &Conn,
    id: ConnId,
    ctinfo: u8,
    pkt: &Packet<'_>,
    env: &mut HelperEnv<'_>,
) -> HelperVerdict {
    if ctinfo != CT_ESTABLISHED && ctinfo != CT_ESTABLISHED_REPLY {
        return NOTHING;
    }
    let data = pkt.payload();
    let Some(&last) = data.last() else {
        return NOTHING;
    };
    let direction = direction_of(ctinfo);
    let dir = usize::from(direction & 1);
    let next_seq = pkt.seq.wrapping_add(data.len() as u32);
    let ends_nl = last == NL;
    let state = env.table.ftp_state(id);
    if !state.after_nl[dir].contains(pkt.seq) {
        if !state.pickup[dir] {
            if ends_nl {
                state.after_nl[dir].remember(next_seq);
            }
            return NOTHING;
        }
        state.pickup[dir] = false;
    }
    let verdict = match parse_command(data, direction, conn.family) {
        Parsed::Partial(why) => {
            return HelperVerdict::new(false, format!("dropped by the ftp helper: {why}"))
        }
        Parsed::Nothing => NOTHING,
        Parsed::Command(cmd) => expect(conn, id, direction, &cmd, pkt, env),
    };
    if ends_nl {
        env.table.ftp_state(id).after_nl[dir].remember(next_seq);
    }
    verdict
}

fn expect(
    conn: &Conn,
    id: ConnId,
    direction: u8,
    cmd: &Command,
    pkt: &Packet<'_>,
    env: &mut HelperEnv<'_>,
) -> HelperVerdict {
    let own = sender(conn, direction);
    let announced = match cmd.address {
        None => own,
        Some(address) if cmd.full_address || conn.family == 4 => address,
        Some(address) => (address << 96) | (own & LOW96),
    };
    // The peer's view of the sender: the other direction's destination.
    let (mut target, peer) = if direction != ORIGINAL {
        (conn.orig.dst, conn.orig.src)
    } else {
        (conn.reply.dst, conn.reply.src)
    };
    if announced != own {
        if !env.table.params.ftp_loose {
            return HelperVerdict::new(
                true,
                format!(
                    "ftp: {} names {}, not the sender {}: no expectation (loose=0)",
                    cmd.description,
                    format_address(conn.family, announced, false),
                    format_address(conn.family, own, false)
                ),
            );
        }
        target = announced;
    }
    let exp = exact_source(
        conn,
        id,
        "ftp",
        PROTO_TCP,
        peer,
        target,
        cmd.port,
        pkt,
        cmd.description,
    );
    if !is_translated(conn) {
        return announce(env, exp, &POLICY);
    }
    // The data connection comes from wherever this packet goes: it must
    // be told the address the peer sees.
    let new_address = conn.tuple(direction ^ 1).dst;
    let (kind, family) = (cmd.kind, conn.family);
    expect_and_rewrite(
        env,
        exp,
        &POLICY,
        direction ^ 1,
        cmd.span,
        kind.keyword(),
        &|port| nat_text(kind, family, new_address, port),
    )
}

/// nf_nat_ftp_fmt_cmd: the announcement's new argument.
pub fn nat_text(kind: FtpType, family: u8, address: u128, port: u16) -> String {
    match kind {
        FtpType::Port | FtpType::Pasv => {
            // PORT and 227 name 32 bits: an IPv6 address's first four bytes.
            let bytes = if family == 4 {
                (address as u32).to_be_bytes()
            } else {
                ((address >> 96) as u32).to_be_bytes()
            };
            format!(
                "{},{},{},{},{},{}",
                bytes[0],
                bytes[1],
                bytes[2],
                bytes[3],
                port >> 8,
                port & 0xFF
            )
        }
        FtpType::Eprt => {
            let af = if family == 4 { 1 } else { 2 };
            format!("|{af}|{}|{port}|", address_text(family, address))
        }
        FtpType::Epsv => format!("|||{port}|"),
    }
}

// -- the grammars -------------------------------------------------------------

type ArgumentParser = fn(&[u8], usize, u8) -> Option<Argument>;

struct Pattern {
    kind: FtpType,
    keyword: &'static [u8],
    /// The keyword as Python's repr() of its text shows it.
    keyword_repr: &'static str,
    description: &'static str,
    skip: Option<(u8, &'static str)>,
    parser: ArgumentParser,
}

/// Per direction, in the kernel's order.
static SEARCH: [[Pattern; 2]; 2] = [
    [
        Pattern {
            kind: FtpType::Port,
            keyword: b"PORT",
            keyword_repr: "'PORT'",
            description: "PORT command",
            skip: Some((b' ', "' '")),
            parser: port_argument,
        },
        Pattern {
            kind: FtpType::Eprt,
            keyword: b"EPRT",
            keyword_repr: "'EPRT'",
            description: "EPRT command",
            skip: Some((b' ', "' '")),
            parser: eprt_argument,
        },
    ],
    [
        Pattern {
            kind: FtpType::Pasv,
            keyword: b"227 ",
            keyword_repr: "'227 '",
            description: "227 PASV reply",
            skip: None,
            parser: pasv_argument,
        },
        Pattern {
            kind: FtpType::Epsv,
            keyword: b"229 ",
            keyword_repr: "'229 '",
            description: "229 EPSV reply",
            skip: Some((b'(', "'('")),
            parser: epsv_argument,
        },
    ],
];

/// A command at the start of `data` in `direction` (ORIGINAL: client).
pub fn parse_command(data: &[u8], direction: u8, family: u8) -> Parsed {
    let patterns = if direction == ORIGINAL {
        &SEARCH[0]
    } else {
        &SEARCH[1]
    };
    for pattern in patterns {
        match try_pattern(data, pattern, family) {
            Parsed::Nothing => continue,
            found => return found,
        }
    }
    Parsed::Nothing
}

/// find_pattern.
fn try_pattern(data: &[u8], pattern: &Pattern, family: u8) -> Parsed {
    let size = pattern.keyword.len();
    if data.len() <= size {
        let prefix = pattern.keyword.get(..data.len()).unwrap_or(&[]);
        if data.eq_ignore_ascii_case(prefix) {
            return Parsed::Partial(format!(
                "incomplete {} ({} is a prefix of {})",
                pattern.description,
                py_bytes_repr(data),
                pattern.keyword_repr
            ));
        }
        return Parsed::Nothing;
    }
    let head = data.get(..size).unwrap_or(&[]);
    if !head.eq_ignore_ascii_case(pattern.keyword) {
        return Parsed::Nothing;
    }
    let mut start = size;
    if let Some((skip, skip_repr)) = pattern.skip {
        match find(data, &[skip], size, data.len()) {
            Some(found) => start = found + 1,
            None => {
                return Parsed::Partial(format!(
                    "malformed {} (no {} after {})",
                    pattern.description, skip_repr, pattern.keyword_repr
                ))
            }
        }
    }
    match (pattern.parser)(data, start, family) {
        None => Parsed::Partial(format!(
            "malformed {}: {}",
            pattern.description,
            py_bytes_repr(data.get(..60).unwrap_or(data))
        )),
        Some(arg) => Parsed::Command(Command {
            description: pattern.description,
            kind: pattern.kind,
            address: arg.address,
            port: arg.port,
            full_address: arg.full_address,
            span: arg.span,
        }),
    }
}

/// PORT h1,h2,h3,h4,p1,p2 then CR (try_rfc959).
fn port_argument(data: &[u8], start: usize, _family: u8) -> Option<Argument> {
    let (n, end) = numbers::<6>(data, start, COMMA, Some(CR))?;
    Some(host_port(&n, (start, end)))
}

/// 227: the six numbers start at the first digit anywhere (try_rfc1123).
fn pasv_argument(data: &[u8], start: usize, _family: u8) -> Option<Argument> {
    let tail = data.get(start..)?;
    let first = tail.iter().position(u8::is_ascii_digit)?;
    let (n, end) = numbers::<6>(data, start + first, COMMA, None)?;
    Some(host_port(&n, (start + first, end)))
}

fn host_port(n: &[u32; 6], span: (usize, usize)) -> Argument {
    let address = (n[0] << 24) | (n[1] << 16) | (n[2] << 8) | n[3];
    let port = ((n[4] << 8) | n[5]) as u16;
    Argument {
        address: Some(u128::from(address)),
        port,
        full_address: false,
        span,
    }
}

/// EPRT dAFdADDRdPORTd with any printable non-digit d (try_eprt).
fn eprt_argument(data: &[u8], start: usize, family: u8) -> Option<Argument> {
    if data.len().saturating_sub(start) <= 3 {
        return None;
    }
    let delim = *data.get(start)?;
    if !is_delimiter(delim) || *data.get(start + 2)? != delim {
        return None;
    }
    let af = if family == 4 { b'1' } else { b'2' };
    if *data.get(start + 1)? != af {
        return None;
    }
    let (address, end) = if family == 4 {
        let (n, end) = numbers::<4>(data, start + 3, DOT, Some(delim))?;
        let address = (n[0] << 24) | (n[1] << 16) | (n[2] << 8) | n[3];
        (u128::from(address), end)
    } else {
        parse_ipv6(data, start + 3, delim)?
    };
    let (port, after) = delimited_port(data, end + 1, delim)?;
    Some(Argument {
        address: Some(address),
        port,
        full_address: true,
        span: (start, after),
    })
}

/// 229 (dddPORTd): three equal delimiters, then the port (try_epsv_response).
fn epsv_argument(data: &[u8], start: usize, _family: u8) -> Option<Argument> {
    if data.len().saturating_sub(start) <= 3 {
        return None;
    }
    let delim = *data.get(start)?;
    if !is_delimiter(delim) || *data.get(start + 1)? != delim || *data.get(start + 2)? != delim {
        return None;
    }
    let (port, after) = delimited_port(data, start + 3, delim)?;
    Some(Argument {
        address: None,
        port,
        full_address: false,
        span: (start, after),
    })
}

fn is_delimiter(byte: u8) -> bool {
    (33..=126).contains(&byte) && !byte.is_ascii_digit()
}

/// try_number: `N` decimal numbers split by `sep`, then `term` (None: any
/// byte). Accumulators are unsigned 32-bit and wrap; empty numbers are 0.
/// Returns the numbers and the terminator's offset.
pub fn numbers<const N: usize>(
    data: &[u8],
    start: usize,
    sep: u8,
    term: Option<u8>,
) -> Option<([u32; N], usize)> {
    let mut values = [0u32; N];
    let mut index = 0;
    let mut pos = start;
    while index < N {
        let byte = *data.get(pos)?;
        if byte.is_ascii_digit() {
            let value = values.get_mut(index)?;
            *value = value.wrapping_mul(10).wrapping_add(u32::from(byte - b'0'));
        } else if byte == sep {
            index += 1;
        } else if term.is_none_or(|t| byte == t) && index + 1 == N {
            return Some((values, pos));
        } else {
            return None;
        }
        pos += 1;
    }
    None
}

/// get_port: digits up to `delim` into a wrapping 16-bit value that must
/// not be 0; with the offset just past the delimiter.
pub fn delimited_port(data: &[u8], start: usize, delim: u8) -> Option<(u16, usize)> {
    let mut value: u16 = 0;
    for (at, &byte) in data.get(start..)?.iter().enumerate() {
        if byte == delim {
            return if value == 0 {
                None
            } else {
                Some((value, start + at + 1))
            };
        }
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value.wrapping_mul(10).wrapping_add(u16::from(byte - b'0'));
    }
    None
}

// -- IPv6 text as in6_pton reads it ---------------------------------------------

const S_HEX: u32 = 0x01;
/// A single ':' may come.
const S_COLON: u32 = 0x02;
/// The second ':' of '::' may come.
const S_COLON2: u32 = 0x04;
/// A '::' may start here.
const S_GAP: u32 = 0x08;
const S_DOT: u32 = 0x10;
const S_END: u32 = 0x20;
/// No word pending to store.
const S_FRESH: u32 = 0x40;
const S_COLONS: u32 = S_COLON | S_COLON2 | S_GAP;

fn hex_value(byte: u8) -> Option<u32> {
    char::from(byte).to_digit(16)
}

/// in6_pton with a delimiter: the address and the offset where parsing
/// stopped. The delimiter, a NUL byte and the end of data all end the
/// address. A dotted IPv4 tail is accepted where exactly 32 bits remain.
pub fn parse_ipv6(data: &[u8], start: usize, delim: u8) -> Option<(u128, usize)> {
    let mut out = [0u8; 20];
    let mut stored = 0usize;
    let mut gap: Option<usize> = None;
    let mut state = S_GAP | S_HEX | S_FRESH;
    let mut word: u32 = 0;
    let mut tail_start: Option<usize> = None;
    let mut pos = start;
    loop {
        let byte = data.get(pos).copied().unwrap_or(0);
        let ends = byte == delim || byte == 0;
        if ends || byte == COLON {
            if state & (if ends { S_END } else { S_COLONS }) == 0 {
                return None;
            }
            if state & S_FRESH == 0 {
                let slot = out.get_mut(stored..stored + 2)?;
                slot.copy_from_slice(&(word as u16).to_be_bytes());
                stored += 2;
            }
            word = 0;
            if ends {
                break;
            }
            (state, gap) = after_colon(state, gap, stored);
            tail_start = Some(pos + 1);
        } else if byte == DOT {
            let tail_at = tail_start?;
            if state & S_DOT == 0 {
                return None;
            }
            let (octets, end) = parse_ipv4_tail(data, tail_at, delim)?;
            let slot = out.get_mut(stored..stored + 4)?;
            slot.copy_from_slice(&octets);
            stored += 4;
            pos = end;
            break;
        } else {
            let value = hex_value(byte)?;
            if state & S_HEX == 0 {
                return None;
            }
            word = (word << 4) | value;
            state = after_hex(word, gap, stored);
        }
        state = limit(state, gap, stored);
        pos += 1;
    }
    Some((assemble(&out, stored, gap), pos))
}

fn after_colon(state: u32, gap: Option<usize>, stored: usize) -> (u32, Option<usize>) {
    match state & S_COLONS {
        S_COLON2 => {
            let fresh = if stored >= 16 { S_FRESH } else { 0 };
            (S_HEX | S_END | fresh, Some(stored))
        }
        c if c == S_COLON | S_GAP => (S_HEX | S_COLON2, gap),
        S_COLON => (S_HEX, gap),
        S_GAP => (S_COLON2, gap),
        _ => (0, gap),
    }
}

fn after_hex(word: u32, gap: Option<usize>, stored: usize) -> u32 {
    let mut state = S_COLON | S_END;
    if word & 0xF000 == 0 {
        state |= S_HEX;
    }
    if gap.is_none() && stored + 2 < 16 {
        state = (state | S_GAP) & !S_END;
    }
    if stored + 2 >= 16 {
        state &= !(S_COLON | S_GAP);
    }
    state
}

fn limit(mut state: u32, gap: Option<usize>, stored: usize) -> u32 {
    if (gap.is_some() && stored + 4 < 16) || stored + 4 == 16 {
        state |= S_DOT;
    }
    if stored >= 16 {
        state &= !(S_HEX | S_COLONS);
    }
    state
}

/// The 16 bytes, the missing ones inserted at the gap.
fn assemble(out: &[u8; 20], stored: usize, gap: Option<usize>) -> u128 {
    let mut bytes = [0u8; 16];
    let given = out.get(..stored).unwrap_or(&[]);
    match gap {
        Some(gap) if gap <= given.len() => {
            let missing = 16usize.saturating_sub(given.len());
            let mut full: Vec<u8> = Vec::with_capacity(20);
            full.extend_from_slice(given.get(..gap).unwrap_or(&[]));
            full.extend(std::iter::repeat_n(0u8, missing));
            full.extend_from_slice(given.get(gap..).unwrap_or(&[]));
            for (dst, src) in bytes.iter_mut().zip(full.iter()) {
                *dst = *src;
            }
        }
        _ => {
            for (dst, src) in bytes.iter_mut().zip(given.iter()) {
                *dst = *src;
            }
        }
    }
    u128::from_be_bytes(bytes)
}

/// in4_pton: four decimal octets of 1-3 digits each, ending at delim, NUL,
/// ':' or the end.
pub fn parse_ipv4_tail(data: &[u8], start: usize, delim: u8) -> Option<([u8; 4], usize)> {
    let mut octets = [0u8; 4];
    let mut count = 0usize;
    let mut value: u32 = 0;
    let mut digits = 0;
    let mut pos = start;
    loop {
        let byte = data.get(pos).copied().unwrap_or(0);
        let ends = byte == delim || byte == 0 || byte == COLON;
        if ends || byte == DOT {
            if digits == 0 {
                return None;
            }
            *octets.get_mut(count)? = value as u8;
            count += 1;
            value = 0;
            digits = 0;
            if ends {
                return if count == 4 {
                    Some((octets, pos))
                } else {
                    None
                };
            }
        } else if byte.is_ascii_digit() {
            value = value * 10 + u32::from(byte - b'0');
            digits += 1;
            if value > 255 {
                return None;
            }
        } else {
            return None;
        }
        if count >= 4 {
            return None;
        }
        pos += 1;
    }
}
