//! The SCTP tracker (net/netfilter/nf_conntrack_proto_sctp.c).
//!
//! * `error` (sctp_error, do_basic_checks) refuses what cannot be parsed:
//!   short common header, bad CRC32c (at PREROUTING), no chunks, a
//!   zero-length chunk, COOKIE_ECHO/COOKIE_ACK not first,
//!   INIT/INIT_ACK/SHUTDOWN_COMPLETE not alone.
//! * `new` (sctp_new) decides whether the first packet may create an entry
//!   (never with ABORT, SHUTDOWN_COMPLETE or COOKIE_ACK; every chunk must be
//!   valid from state NONE; an INIT must carry verification tag 0) and learns
//!   the first tags.
//! * `packet` (nf_conntrack_sctp_packet) checks verification tags (RFC 9260
//!   8.5) and walks the chunks through `TRANSITIONS` one at a time, as the
//!   kernel does. The timeout is the final state's; entering ESTABLISHED sets
//!   ASSURED.
//!
//! Chunks absent from the table (DATA, SACK, ...) leave the state as it is.
//! Nothing here allocates but the text of an INVALID verdict.

use std::borrow::Cow;

use crate::config::Sysctls;
use crate::conntrack::conn::{Conn, ProtoData, IPS_ASSURED, IPS_CONFIRMED, ORIGINAL};
use crate::conntrack::l4proto::{Action, Outcome};
use crate::packet::Packet;
use crate::reason::Reason;

// States (enum sctp_conntrack).
pub const NONE: u8 = 0;
pub const CLOSED: u8 = 1;
pub const COOKIE_WAIT: u8 = 2;
pub const COOKIE_ECHOED: u8 = 3;
pub const ESTABLISHED: u8 = 4;
pub const SHUTDOWN_SENT: u8 = 5;
pub const SHUTDOWN_RECD: u8 = 6;
pub const SHUTDOWN_ACK_SENT: u8 = 7;
pub const HEARTBEAT_SENT: u8 = 8;
/// A transition that makes the packet INVALID.
pub const IV: u8 = 9;

pub const STATE_NAMES: [&str; 9] = [
    "NONE",
    "CLOSED",
    "COOKIE_WAIT",
    "COOKIE_ECHOED",
    "ESTABLISHED",
    "SHUTDOWN_SENT",
    "SHUTDOWN_RECD",
    "SHUTDOWN_ACK_SENT",
    "HEARTBEAT_SENT",
];

/// "SCTP: <state>", the reason of an accepted packet.
const STATE_REASONS: [&str; 9] = [
    "SCTP: NONE",
    "SCTP: CLOSED",
    "SCTP: COOKIE_WAIT",
    "SCTP: COOKIE_ECHOED",
    "SCTP: ESTABLISHED",
    "SCTP: SHUTDOWN_SENT",
    "SCTP: SHUTDOWN_RECD",
    "SCTP: SHUTDOWN_ACK_SENT",
    "SCTP: HEARTBEAT_SENT",
];

// Chunk types (RFC 9260 3.2).
pub const DATA: u8 = 0;
pub const INIT: u8 = 1;
pub const INIT_ACK: u8 = 2;
pub const SACK: u8 = 3;
pub const HEARTBEAT: u8 = 4;
pub const HEARTBEAT_ACK: u8 = 5;
pub const ABORT: u8 = 6;
pub const SHUTDOWN: u8 = 7;
pub const SHUTDOWN_ACK: u8 = 8;
pub const ERROR: u8 = 9;
pub const COOKIE_ECHO: u8 = 10;
pub const COOKIE_ACK: u8 = 11;
pub const SHUTDOWN_COMPLETE: u8 = 14;
/// ABORT / SHUTDOWN_COMPLETE: "tag reflected".
pub const CHUNK_FLAG_T: u8 = 0x01;

pub const COMMON_HEADER_LEN: usize = 12;
pub const CHUNK_HEADER_LEN: usize = 4;
/// Initiate tag, a_rwnd, streams, initial TSN.
pub const INIT_HEADER_LEN: usize = 16;
pub const SCTP_FLAG_HEARTBEAT_VTAG_FAILED: u8 = 1;

/// Per-entry SCTP data (struct ip_ct_sctp), stored inline in the entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SctpData {
    /// The verification tag expected in each direction.
    pub vtag: [u32; 2],
    /// An INIT was seen from that direction.
    pub init: [bool; 2],
    pub flags: u8,
    /// The direction of the last heartbeat that carried an unknown tag.
    pub last_dir: u8,
}

type Row = Option<[u8; 9]>;

const CL: u8 = CLOSED;
const CW: u8 = COOKIE_WAIT;
const CE: u8 = COOKIE_ECHOED;
const ES: u8 = ESTABLISHED;
const SS: u8 = SHUTDOWN_SENT;
const SR: u8 = SHUTDOWN_RECD;
const SA: u8 = SHUTDOWN_ACK_SENT;
const HS: u8 = HEARTBEAT_SENT;

/// `TRANSITIONS[direction][chunk type]`: the new state for each old state
/// (columns NONE CLOSED COOKIE_WAIT COOKIE_ECHOED ESTABLISHED SHUTDOWN_SENT
/// SHUTDOWN_RECD SHUTDOWN_ACK_SENT HEARTBEAT_SENT); `None` for chunk types
/// that never change the state.
pub const TRANSITIONS: [[Row; 15]; 2] = [
    // ORIGINAL direction (the side that sent the first packet).
    [
        None, // DATA
        // INIT starts an association; it restarts one being shut down
        // (CLOSED) and turns a heartbeat-only secondary path into a handshake.
        Some([CL, CL, CW, CE, ES, CL, CL, SA, CW]),
        // INIT_ACK belongs to the other side; from the initiator it changes nothing.
        Some([CL, CL, CW, CE, ES, SS, SR, SA, CL]),
        None, // SACK
        // HEARTBEAT as first packet tracks a multihomed secondary path.
        Some([HS, CL, CW, CE, ES, SS, SR, SA, HS]),
        // HEARTBEAT_ACK from the initiator changes nothing.
        Some([CL, CL, CW, CE, ES, SS, SR, SA, HS]),
        // ABORT closes whatever there was.
        Some([CL, CL, CL, CL, CL, CL, CL, CL, CL]),
        // SHUTDOWN on an established association starts the close.
        Some([CL, CL, CW, CE, SS, SS, SR, SA, CL]),
        // SHUTDOWN_ACK answers a SHUTDOWN; as a first packet it is an OOTB answer.
        Some([SA, CL, CW, CE, ES, SA, SA, SA, SA]),
        // ERROR is informational here.
        Some([CL, CL, CW, CE, ES, SS, SR, SA, CL]),
        // COOKIE_ECHO, third step of the handshake.
        Some([CL, CL, CE, CE, ES, SS, SR, SA, CL]),
        // COOKIE_ACK from the initiator completes a simultaneous open only.
        Some([CL, CL, CW, ES, ES, SS, SR, SA, CL]),
        None,
        None,
        // SHUTDOWN_COMPLETE ends a close in progress.
        Some([CL, CL, CW, CE, ES, SS, SR, CL, CL]),
    ],
    // REPLY direction: a reply never meets state NONE, nor (but for
    // heartbeats) HEARTBEAT_SENT.
    [
        None, // DATA
        // INIT from the responder: handshake collision, state kept.
        Some([IV, CL, CW, CE, ES, SS, SR, SA, IV]),
        // INIT_ACK answers the INIT: CLOSED becomes COOKIE_WAIT.
        Some([IV, CW, CW, CE, ES, SS, SR, SA, IV]),
        None, // SACK
        // HEARTBEAT from the responder keeps the state.
        Some([IV, CL, CW, CE, ES, SS, SR, SA, HS]),
        // HEARTBEAT_ACK confirms a secondary path: ESTABLISHED.
        Some([IV, CL, CW, CE, ES, SS, SR, SA, ES]),
        // ABORT closes.
        Some([IV, CL, CL, CL, CL, CL, CL, CL, IV]),
        // SHUTDOWN from the responder: SHUTDOWN_RECD.
        Some([IV, CL, CW, CE, SR, SS, SR, SA, IV]),
        // SHUTDOWN_ACK answering the initiator's SHUTDOWN.
        Some([IV, CL, CW, CE, ES, SA, SA, SA, IV]),
        // ERROR in answer to COOKIE_ECHO (stale cookie) closes.
        Some([IV, CL, CW, CL, ES, SS, SR, SA, IV]),
        // COOKIE_ECHO from the responder: simultaneous open.
        Some([IV, CL, CE, CE, ES, SS, SR, SA, IV]),
        // COOKIE_ACK, last step of the handshake: ESTABLISHED.
        Some([IV, CL, CW, ES, ES, SS, SR, SA, IV]),
        None,
        None,
        // SHUTDOWN_COMPLETE ends a close in progress.
        Some([IV, CL, CW, CE, ES, SS, SR, CL, IV]),
    ],
];

fn transition_row(direction: usize, ctype: u8) -> Row {
    TRANSITIONS
        .get(direction)
        .and_then(|rows| rows.get(usize::from(ctype)))
        .copied()
        .flatten()
}

/// Bit of a chunk type in a "types seen" mask; only the types below 32
/// matter to the rules, the others set no bit.
fn type_bit(ctype: u8) -> u32 {
    1u32.checked_shl(u32::from(ctype)).unwrap_or(0)
}

/// Chunks whose presence exempts the packet from the plain vtag check (they
/// carry their own tag rules).
const OWN_TAG_RULES: u32 = 1 << INIT
    | 1 << SHUTDOWN_COMPLETE
    | 1 << COOKIE_ECHO
    | 1 << ABORT
    | 1 << SHUTDOWN_ACK
    | 1 << HEARTBEAT
    | 1 << HEARTBEAT_ACK;
const NEVER_FIRST: u32 = 1 << ABORT | 1 << SHUTDOWN_COMPLETE | 1 << COOKIE_ACK;

// -- CRC32c -------------------------------------------------------------------

const CRC32C_POLY: u32 = 0x82F6_3B78;

/// Slicing-by-8 tables for the reflected Castagnoli polynomial, built at
/// compile time: table 0 is the classic byte table, table k advances a byte
/// that sits k positions further from the end.
const CRC32C_TABLES: [[u32; 256]; 8] = crc32c_tables();

const fn crc32c_tables() -> [[u32; 256]; 8] {
    let mut tables = [[0u32; 256]; 8];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ CRC32C_POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        tables[0][byte] = crc;
        byte += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut byte = 0;
        while byte < 256 {
            let prev = tables[k - 1][byte];
            tables[k][byte] = (prev >> 8) ^ tables[0][(prev & 0xFF) as usize];
            byte += 1;
        }
        k += 1;
    }
    tables
}

/// Feed `data` into a running (pre-inverted) CRC32c state.
fn crc32c_update(mut crc: u32, data: &[u8]) -> u32 {
    let t = &CRC32C_TABLES;
    let mut blocks = data.chunks_exact(8);
    for block in blocks.by_ref() {
        let lo = crc ^ u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        crc = t[7][(lo & 0xFF) as usize]
            ^ t[6][((lo >> 8) & 0xFF) as usize]
            ^ t[5][((lo >> 16) & 0xFF) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][usize::from(block[4])]
            ^ t[2][usize::from(block[5])]
            ^ t[1][usize::from(block[6])]
            ^ t[0][usize::from(block[7])];
    }
    for &byte in blocks.remainder() {
        crc = t[0][((crc ^ u32::from(byte)) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc
}

/// CRC32c (Castagnoli), the SCTP checksum.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_update(0xFFFF_FFFF, data) ^ 0xFFFF_FFFF
}

/// CRC32c over the segment with the checksum field zeroed; the field holds
/// it low byte first.
pub fn checksum_ok(segment: &[u8]) -> bool {
    let (Some(head), Some(field), Some(rest)) =
        (segment.get(..8), segment.get(8..12), segment.get(12..))
    else {
        return false;
    };
    let mut crc = crc32c_update(0xFFFF_FFFF, head);
    crc = crc32c_update(crc, &[0; 4]);
    crc = crc32c_update(crc, rest) ^ 0xFFFF_FFFF;
    u32::from_le_bytes([field[0], field[1], field[2], field[3]]) == crc
}

// -- chunk walk -----------------------------------------------------------------

/// One chunk header as the walk meets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub ctype: u8,
    pub flags: u8,
    /// Offset of the chunk header in the datagram.
    pub pos: usize,
    pub length: u16,
}

/// The chunk headers after the common header, walked as the kernel walks
/// them: stops after a zero-length chunk (which `error` rejects) and where
/// fewer than 4 bytes remain.
#[derive(Clone, Debug)]
pub struct Chunks<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

pub fn chunks(data: &[u8], l4_off: usize) -> Chunks<'_> {
    Chunks {
        data,
        pos: l4_off.saturating_add(COMMON_HEADER_LEN),
        done: false,
    }
}

impl Iterator for Chunks<'_> {
    type Item = Chunk;

    fn next(&mut self) -> Option<Chunk> {
        if self.done {
            return None;
        }
        let end = self.pos.checked_add(CHUNK_HEADER_LEN)?;
        let Some(&[ctype, flags, hi, lo]) = self.data.get(self.pos..end) else {
            self.done = true;
            return None;
        };
        let length = u16::from_be_bytes([hi, lo]);
        let chunk = Chunk {
            ctype,
            flags,
            pos: self.pos,
            length,
        };
        if length == 0 {
            self.done = true;
        } else {
            self.pos = self.pos.saturating_add((usize::from(length) + 3) & !3);
        }
        Some(chunk)
    }
}

/// do_basic_checks: chunk placement rules.
fn basic_checks(data: &[u8], off: usize) -> Option<Reason> {
    let mut alone = false;
    let mut any = false;
    for (index, chunk) in chunks(data, off).enumerate() {
        any = true;
        let ctype = chunk.ctype;
        if matches!(ctype, INIT | INIT_ACK | SHUTDOWN_COMPLETE) {
            alone = true;
        }
        if index != 0 && (alone || matches!(ctype, COOKIE_ACK | COOKIE_ECHO)) {
            return Some(Cow::Owned(format!(
                "INVALID: SCTP chunk {ctype} in position {index} (must be first or alone)"
            )));
        }
        if chunk.length == 0 {
            return Some(Cow::Owned(format!(
                "INVALID: SCTP zero-length chunk (type {ctype})"
            )));
        }
    }
    if !any {
        return Some(Cow::Borrowed("INVALID: SCTP packet without chunks"));
    }
    None
}

/// sctp_error and do_basic_checks: what makes a packet unusable whatever the entry.
pub fn error(pkt: &Packet, cfg: &Sysctls, in_prerouting: bool) -> Option<Reason> {
    let segment = pkt.data.get(pkt.l4_off..).unwrap_or(&[]);
    if segment.len() < COMMON_HEADER_LEN {
        return Some(Cow::Borrowed(
            "INVALID: SCTP short packet (common header needs 12 bytes)",
        ));
    }
    if in_prerouting && cfg.nf_conntrack_checksum != 0 && !checksum_ok(segment) {
        return Some(Cow::Borrowed("INVALID: SCTP bad CRC32c checksum"));
    }
    basic_checks(pkt.data, pkt.l4_off)
}

fn read_u32(data: &[u8], pos: usize) -> Option<u32> {
    let end = pos.checked_add(4)?;
    let bytes = data.get(pos..end)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// The common header's verification tag (0 when the header is short, which
/// `error` has already refused).
fn header_vtag(data: &[u8], off: usize) -> u32 {
    off.checked_add(4)
        .and_then(|pos| read_u32(data, pos))
        .unwrap_or(0)
}

/// The initiate tag of an INIT or INIT_ACK chunk at `pos`, None when truncated.
fn init_tag(data: &[u8], pos: usize) -> Option<u32> {
    let start = pos.checked_add(CHUNK_HEADER_LEN)?;
    if data.len() < start.checked_add(INIT_HEADER_LEN)? {
        return None;
    }
    read_u32(data, start)
}

fn seen_types(data: &[u8], off: usize) -> u32 {
    chunks(data, off).fold(0, |seen, chunk| seen | type_bit(chunk.ctype))
}

/// May this first packet create an entry? Learn the tags it tells (sctp_new).
pub fn new(conn: &mut Conn, pkt: &Packet, _cfg: &Sysctls) -> Result<(), Reason> {
    let (data, off) = (pkt.data, pkt.l4_off);
    if seen_types(data, off) & NEVER_FIRST != 0 {
        return Err(Cow::Borrowed(
            "INVALID: SCTP ABORT, SHUTDOWN_COMPLETE or COOKIE_ACK cannot start a connection",
        ));
    }
    let mut ct = SctpData::default();
    let vtag = header_vtag(data, off);
    for chunk in chunks(data, off) {
        let ctype = chunk.ctype;
        let from_none = transition_row(0, ctype).map(|row| row[usize::from(NONE)]);
        if matches!(from_none, None | Some(NONE) | Some(IV)) {
            return Err(Cow::Owned(format!(
                "INVALID: SCTP chunk {ctype} cannot start a connection"
            )));
        }
        match ctype {
            INIT => {
                if vtag != 0 {
                    return Err(Cow::Borrowed(
                        "INVALID: SCTP INIT with a non-zero verification tag",
                    ));
                }
                let Some(tag) = init_tag(data, chunk.pos) else {
                    return Err(Cow::Borrowed("INVALID: SCTP INIT chunk truncated"));
                };
                ct.vtag[1] = tag;
            }
            HEARTBEAT => ct.vtag[0] = vtag,
            // An out-of-the-blue packet: the answer will carry this tag.
            _ => ct.vtag[1] = vtag,
        }
    }
    conn.proto_data = ProtoData::Sctp(ct);
    conn.proto_state = NONE;
    Ok(())
}

/// What one chunk's verification-tag rule says.
enum TagRule {
    Pass,
    /// Accept the packet but leave the entry's timeout alone.
    Skip,
    Invalid(&'static str),
}

pub fn packet(
    conn: &mut Conn,
    pkt: &Packet,
    direction: u8,
    _ctinfo: u8,
    now: f64,
    cfg: &Sysctls,
) -> Outcome {
    let ProtoData::Sctp(data) = conn.proto_data else {
        return (
            Action::Invalid,
            Cow::Borrowed("INVALID: SCTP entry without SCTP data"),
        );
    };
    // Worked on as a copy, written back whatever the verdict: the kernel
    // keeps what it learnt from the chunks before a bad one.
    let mut ct = data;
    let outcome = walk(conn, &mut ct, pkt, direction, now, cfg);
    conn.proto_data = ProtoData::Sctp(ct);
    outcome
}

fn walk(
    conn: &mut Conn,
    ct: &mut SctpData,
    pkt: &Packet,
    direction: u8,
    now: f64,
    cfg: &Sysctls,
) -> Outcome {
    let (data, off) = (pkt.data, pkt.l4_off);
    let dir = usize::from(direction != ORIGINAL);
    let seen = seen_types(data, off);
    let vtag = header_vtag(data, off);
    if seen & OWN_TAG_RULES == 0 && vtag != ct.vtag[dir] {
        let expected = ct.vtag[dir];
        return (
            Action::Invalid,
            Cow::Owned(format!(
                "INVALID: SCTP verification tag {vtag:#x} (expected {expected:#x})"
            )),
        );
    }
    let mut new_state = NONE;
    let mut ignore = false;
    for chunk in chunks(data, off) {
        let ctype = chunk.ctype;
        match tag_rule(ct, ctype, chunk.flags, vtag, dir, seen, ignore) {
            TagRule::Pass => {}
            TagRule::Skip => {
                ignore = true;
                continue;
            }
            TagRule::Invalid(reason) => return (Action::Invalid, Cow::Borrowed(reason)),
        }
        let old_state = conn.proto_state;
        new_state = match transition_row(dir, ctype) {
            None => old_state,
            Some(row) => row.get(usize::from(old_state)).copied().unwrap_or(IV),
        };
        if new_state == IV {
            let side = if dir == 1 { "reply" } else { "original" };
            return (
                Action::Invalid,
                Cow::Owned(format!(
                    "INVALID: SCTP chunk {ctype} not allowed in {} ({side} direction)",
                    state_text(old_state)
                )),
            );
        }
        if ctype == INIT || ctype == INIT_ACK {
            match learn_init(conn, ct, ctype, data, chunk.pos, dir) {
                TagRule::Pass => {}
                TagRule::Skip => ignore = true,
                TagRule::Invalid(reason) => return (Action::Invalid, Cow::Borrowed(reason)),
            }
        }
        conn.proto_state = new_state;
        if new_state != old_state && new_state == ESTABLISHED {
            conn.status |= IPS_ASSURED;
        }
    }
    if ignore {
        return (
            Action::Accept,
            Cow::Borrowed("SCTP: accepted without refreshing the timeout"),
        );
    }
    conn.refresh_acct(now, timeout(cfg, new_state) as f64);
    let reason = STATE_REASONS
        .get(usize::from(new_state))
        .copied()
        .unwrap_or("SCTP: NONE");
    (Action::Accept, Cow::Borrowed(reason))
}

/// The per-chunk verification-tag rules (RFC 9260 8.5.1).
fn tag_rule(
    ct: &mut SctpData,
    ctype: u8,
    flags: u8,
    vtag: u32,
    dir: usize,
    seen: u32,
    ignore: bool,
) -> TagRule {
    let (own, peer) = (ct.vtag[dir], ct.vtag[1 - dir]);
    match ctype {
        INIT if vtag != 0 => {
            TagRule::Invalid("INVALID: SCTP INIT with a non-zero verification tag")
        }
        ABORT | SHUTDOWN_COMPLETE => {
            let expected = if flags & CHUNK_FLAG_T != 0 { peer } else { own };
            if vtag == expected {
                TagRule::Pass
            } else {
                TagRule::Invalid("INVALID: SCTP ABORT/SHUTDOWN_COMPLETE with a wrong tag")
            }
        }
        COOKIE_ECHO if vtag != own => {
            TagRule::Invalid("INVALID: SCTP COOKIE_ECHO with a wrong verification tag")
        }
        COOKIE_ACK => {
            ct.init = [false, false];
            TagRule::Pass
        }
        HEARTBEAT | HEARTBEAT_ACK => heartbeat_tag(ct, ctype, vtag, dir, seen, ignore),
        _ => TagRule::Pass,
    }
}

/// Heartbeats may reveal that the peers restarted with new tags (port reuse).
fn heartbeat_tag(
    ct: &mut SctpData,
    ctype: u8,
    vtag: u32,
    dir: usize,
    seen: u32,
    ignore: bool,
) -> TagRule {
    if ct.vtag[dir] == 0 {
        ct.vtag[dir] = vtag;
        return TagRule::Pass;
    }
    if vtag == ct.vtag[dir] {
        ct.flags &= !SCTP_FLAG_HEARTBEAT_VTAG_FAILED;
        return TagRule::Pass;
    }
    if seen & type_bit(DATA) != 0 || ignore {
        return TagRule::Invalid("INVALID: SCTP heartbeat with a wrong verification tag");
    }
    if ctype == HEARTBEAT {
        ct.flags |= SCTP_FLAG_HEARTBEAT_VTAG_FAILED;
        ct.last_dir = dir as u8;
        return TagRule::Skip;
    }
    if ct.flags & SCTP_FLAG_HEARTBEAT_VTAG_FAILED == 0 || usize::from(ct.last_dir) == dir {
        return TagRule::Invalid("INVALID: SCTP HEARTBEAT_ACK with a wrong verification tag");
    }
    // The heartbeat with the unknown tag was answered: adopt the new tags.
    ct.flags &= !SCTP_FLAG_HEARTBEAT_VTAG_FAILED;
    ct.vtag[dir] = vtag;
    ct.vtag[1 - dir] = 0;
    TagRule::Pass
}

/// Note the tag an INIT or INIT_ACK announces for the other direction.
fn learn_init(
    conn: &Conn,
    ct: &mut SctpData,
    ctype: u8,
    data: &[u8],
    pos: usize,
    dir: usize,
) -> TagRule {
    let Some(tag) = init_tag(data, pos) else {
        return TagRule::Invalid("INVALID: SCTP INIT/INIT_ACK chunk truncated");
    };
    let other = 1 - dir;
    if ctype == INIT {
        if ct.init[dir] && ct.init[other] {
            ct.init[other] = false;
        }
        ct.init[dir] = true;
        ct.vtag[other] = tag;
        // A retransmitted INIT must not keep a dead entry alive.
        if conn.proto_state == CLOSED && conn.status & IPS_CONFIRMED != 0 {
            return TagRule::Skip;
        }
        return TagRule::Pass;
    }
    let known = ct.vtag[other];
    if !ct.init[other] && known != 0 && known != tag {
        return TagRule::Invalid(
            "INVALID: SCTP INIT_ACK announcing a tag other than the one in use",
        );
    }
    if ct.init[dir] && ct.init[other] && known != tag {
        return TagRule::Invalid(
            "INVALID: SCTP INIT_ACK in an INIT collision with a mismatched tag",
        );
    }
    ct.vtag[other] = tag;
    TagRule::Pass
}

fn timeout(cfg: &Sysctls, state: u8) -> u64 {
    match state {
        ESTABLISHED => cfg.nf_conntrack_sctp_timeout_established,
        CLOSED => cfg.nf_conntrack_sctp_timeout_closed,
        COOKIE_WAIT => cfg.nf_conntrack_sctp_timeout_cookie_wait,
        COOKIE_ECHOED => cfg.nf_conntrack_sctp_timeout_cookie_echoed,
        SHUTDOWN_SENT => cfg.nf_conntrack_sctp_timeout_shutdown_sent,
        SHUTDOWN_RECD => cfg.nf_conntrack_sctp_timeout_shutdown_recd,
        SHUTDOWN_ACK_SENT => cfg.nf_conntrack_sctp_timeout_shutdown_ack_sent,
        HEARTBEAT_SENT => cfg.nf_conntrack_sctp_timeout_heartbeat_sent,
        _ => 0,
    }
}

fn state_text(state: u8) -> &'static str {
    STATE_NAMES
        .get(usize::from(state))
        .copied()
        .unwrap_or("UNKNOWN")
}

pub fn state_name(conn: &Conn) -> &'static str {
    state_text(conn.proto_state)
}

/// Associations being shut down may be evicted even when ASSURED.
pub fn can_early_drop(conn: &Conn) -> bool {
    matches!(
        conn.proto_state,
        SHUTDOWN_SENT | SHUTDOWN_RECD | SHUTDOWN_ACK_SENT
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc32c_bitwise(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = (crc >> 1) ^ (CRC32C_POLY * (crc & 1));
            }
        }
        crc ^ 0xFFFF_FFFF
    }

    #[test]
    fn crc32c_check_value_and_every_length() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        let data: Vec<u8> = (0..100u32)
            .map(|i| (i.wrapping_mul(37) ^ 0x5A) as u8)
            .collect();
        for len in 0..data.len() {
            assert_eq!(crc32c(&data[..len]), crc32c_bitwise(&data[..len]), "{len}");
        }
    }

    #[test]
    fn sctp_data_is_compact() {
        assert_eq!(std::mem::size_of::<SctpData>(), 12);
    }
}
