//! TCP connection tracking: the state machine of nf_conntrack_proto_tcp.c
//! (Linux 6.18): the kernel's decisions, each with a reason (reasons are part
//! of statewall's output, so the tests pin their text byte for byte).
//!
//! Conntrack follows a TCP connection as a middlebox that can miss packets
//! and can be out of sync with the endpoints. Each packet:
//!
//! 1. `error` (tcp_error): header length, checksum (PREROUTING only), flag
//!    combination.
//! 2. `new` (tcp_new, first packet only): a SYN, or with
//!    nf_conntrack_tcp_loose=1 an ACK (mid-stream pickup, tracked liberally
//!    for life), may start an entry.
//! 3. `packet` (nf_conntrack_tcp_packet): the packet's class (SYN, SYN/ACK,
//!    FIN, ACK, RST) and direction select a row of `TRANSITIONS`; the old
//!    state selects the cell: a new state, IG (let it through, change
//!    nothing, remember it) or IV (INVALID). A few cells need more than the
//!    table: reopening a closed connection with a new SYN, resynchronising on
//!    a SYN/ACK that answers an ignored SYN, challenge ACKs, simultaneous open
//!    and the RST sequence rules.
//! 4. The window check (`tcp_window::tcp_in_window`) accepts, ignores or
//!    rejects.
//! 5. On accept: commit the state, pick the timeout, set ASSURED.
//!
//! Signals to the core: `Action::Repeat` asks it to delete the entry and
//! classify the packet again as a new connection (reopen); `IPS_DYING` on
//! the entry asks it to delete the entry after this packet (an RST accepted
//! before any reply).

use std::borrow::Cow;
use std::sync::LazyLock;

use crate::checksum;
use crate::config::Sysctls;
use crate::conntrack::conn::{
    Conn, ProtoData, IPS_ACCT_PENDING, IPS_ASSURED, IPS_DYING, IPS_FIXED_TIMEOUT, IPS_SEEN_REPLY,
    ORIGINAL, REPLY,
};
use crate::conntrack::l4proto::{Action, Outcome};
use crate::conntrack::seqadj::seq_offset;
use crate::conntrack::tcp_window::{
    self as w, before, side, tcp_in_window, TcpData, TcpDirState, WinAction, ACK_SET, CLOSE,
    CLOSE_WAIT, ESTABLISHED, FIN_SET, FIN_WAIT, LAST_ACK, NONE, NONE_SET, RST_SET, SYNACK_SET,
    SYN_RECV, SYN_SENT, SYN_SENT2, SYN_SET, TIME_WAIT,
};
use crate::packet::{Packet, ACK, CWR, ECE, FIN, PSH, RST, SYN, URG};
use crate::reason::Reason;

/// The state names as /proc/net/nf_conntrack prints them.
pub const STATE_NAMES: [&str; 10] = [
    "NONE",
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",
    "SYN_SENT2",
];
pub const CLASS_NAMES: [&str; 6] = ["SYN", "SYN/ACK", "FIN", "ACK", "RST", "NONE"];
const DIRECTION_NAMES: [&str; 2] = ["originator", "responder"];

/// TCP_CONNTRACK_MAX: the packet is INVALID.
pub const IV: u8 = 10;
/// TCP_CONNTRACK_IGNORE: let it through, change nothing, remember it.
pub const IG: u8 = 11;

const SS: u8 = SYN_SENT;
const SR: u8 = SYN_RECV;
const ES: u8 = ESTABLISHED;
const FW: u8 = FIN_WAIT;
const CW: u8 = CLOSE_WAIT;
const LA: u8 = LAST_ACK;
const TW: u8 = TIME_WAIT;
const CL: u8 = CLOSE;
const S2: u8 = SYN_SENT2;

/// tcp_conntracks[direction][class][old state] -> new state, IV or IG.
#[rustfmt::skip]
pub const TRANSITIONS: [[[u8; 10]; 6]; 2] = [
    [ // ORIGINAL: packets from the connection's initiator
        //  NO  SS  SR  ES  FW  CW  LA  TW  CL  S2
        // SYN opens or is retransmitted; later the endpoints may have restarted without
        // us, so pass it and remember it; TW/CL may reopen; S2: late retransmission.
        [SS, SS, IG, IG, IG, IG, IG, SS, SS, S2],
        // SYN/ACK from the initiator only answers the responder's SYN (simultaneous open).
        [IV, IV, SR, IV, IV, IV, IV, IV, IV, SR],
        // FIN needs a SYN/ACK first; then FIN_WAIT, a FIN from both sides -> LAST_ACK.
        [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV],
        // ACK: NO is a mid-stream pickup; none before the SYN/ACK; LA -> TW is the last ACK.
        [ES, IV, ES, ES, CW, CW, TW, TW, CL, IV],
        // RST closes anything that exists (sequence rules in rst_rules).
        [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
        // No SYN/FIN/ACK/RST: unreachable after error(), invalid everywhere.
        [IV, IV, IV, IV, IV, IV, IV, IV, IV, IV],
    ],
    [ // REPLY: packets from the responder
        //  NO  SS  SR  ES  FW  CW  LA  TW  CL  S2
        // SYN: simultaneous open from SS/S2; in TW the port may have become a client
        // (reopen); anywhere else the responder has no business sending a SYN.
        [IV, S2, IV, IV, IV, IV, IV, SS, IV, S2],
        // SYN/ACK answers the SYN; later ones are retransmissions or answer ignored SYNs.
        [IV, SR, IG, IG, IG, IG, IG, IG, IG, SR],
        // FIN needs a SYN/ACK first; same closing progression as the initiator's.
        [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV],
        // ACK in SS/S2 may be a challenge ACK or a half-open peer; SR: answers a late SYN.
        [IV, IG, SR, ES, CW, CW, TW, TW, CL, IG],
        // RST closes anything that exists (sequence rules in rst_rules).
        [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
        // No SYN/FIN/ACK/RST: unreachable after error(), invalid everywhere.
        [IV, IV, IV, IV, IV, IV, IV, IV, IV, IV],
    ],
];

/// Why a (direction, class) cell is IV, for the INVALID reason.
const INVALID_WHY: [[&str; 6]; 2] = [
    [
        "only the first packet can be a SYN from NONE", // never: SYN is valid in every state
        "the originator sends a SYN/ACK only in a simultaneous open",
        "no SYN/ACK seen yet",
        "no SYN/ACK seen yet",
        "an RST cannot start a connection",
        "no SYN, FIN, ACK or RST flag",
    ],
    [
        "the responder may send a SYN only in a simultaneous open or to reopen from TIME_WAIT",
        "no connection to answer",
        "no SYN/ACK seen yet",
        "no connection to acknowledge",
        "an RST cannot start a connection",
        "no SYN, FIN, ACK or RST flag",
    ],
];

/// Why a (direction, class) cell is IG, for the reason of an ignored packet
/// (empty: the generic "out of sync").
const IGNORE_WHY: [[&str; 6]; 2] = [
    [
        "the endpoints may have restarted; remembered to resynchronise on the SYN/ACK",
        "",
        "",
        "",
        "",
        "",
    ],
    [
        "",
        "a retransmission, or the answer to an ignored SYN",
        "",
        "possible challenge ACK or half-open peer",
        "",
        "",
    ],
];

const fn flag_class(flags: u8) -> u8 {
    if flags & RST != 0 {
        RST_SET
    } else if flags & SYN != 0 {
        if flags & ACK != 0 {
            SYNACK_SET
        } else {
            SYN_SET
        }
    } else if flags & FIN != 0 {
        FIN_SET
    } else if flags & ACK != 0 {
        ACK_SET
    } else {
        NONE_SET
    }
}

const fn build_classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut flags = 0;
    while flags < 256 {
        table[flags] = flag_class(flags as u8);
        flags += 1;
    }
    table
}

/// get_conntrack_index for every value of the flags byte.
pub const CLASS_OF_FLAGS: [u8; 256] = build_classes();

/// The packet class of a flags byte.
#[inline]
pub fn class_of(flags: u8) -> u8 {
    CLASS_OF_FLAGS[usize::from(flags)]
}

/// PSH, ECE and CWR may accompany anything.
const SIGNIFICANT: u8 = FIN | SYN | RST | ACK | URG;
const VALID_COMBINATIONS: [u8; 9] = [
    SYN,
    SYN | URG,
    SYN | ACK,
    RST,
    RST | ACK,
    FIN | ACK,
    FIN | ACK | URG,
    ACK,
    ACK | URG,
];

const fn build_valid() -> [bool; 256] {
    let mut table = [false; 256];
    let mut flags = 0;
    while flags < 256 {
        let significant = flags as u8 & SIGNIFICANT;
        let mut i = 0;
        while i < VALID_COMBINATIONS.len() {
            if VALID_COMBINATIONS[i] == significant {
                table[flags] = true;
            }
            i += 1;
        }
        flags += 1;
    }
    table
}

/// tcp_valid_flags for every value of the flags byte.
pub const VALID_FLAGS: [bool; 256] = build_valid();

const FLAG_NAMES: [(u8, &str); 8] = [
    (SYN, "SYN"),
    (FIN, "FIN"),
    (RST, "RST"),
    (ACK, "ACK"),
    (URG, "URG"),
    (PSH, "PSH"),
    (ECE, "ECE"),
    (CWR, "CWR"),
];

/// "SYN+ACK", or "no flags".
pub fn flag_names(flags: u8) -> String {
    let names: Vec<&str> = FLAG_NAMES
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|&(_, name)| name)
        .collect();
    if names.is_empty() {
        "no flags".to_string()
    } else {
        names.join("+")
    }
}

fn state_name_of(state: u8) -> &'static str {
    STATE_NAMES
        .get(usize::from(state))
        .copied()
        .unwrap_or("UNKNOWN")
}

fn class_name_of(index: u8) -> &'static str {
    CLASS_NAMES
        .get(usize::from(index))
        .copied()
        .unwrap_or("NONE")
}

fn move_reason(index: usize, old: usize, new: usize) -> String {
    let (class, from, to) = (CLASS_NAMES[index], STATE_NAMES[old], STATE_NAMES[new]);
    if old == new {
        format!("{class} in {from}: stays {to}")
    } else {
        format!("{class} in {from}: {from} → {to}")
    }
}

/// The reasons of accepted and ignored packets, built once so the common
/// path hands out borrowed text.
struct Reasons {
    /// [class][old][new]
    moves: Vec<String>,
    /// [class][old]: the move to ESTABLISHED that assures the connection.
    assured: Vec<String>,
    /// [old][new]: an RST before any reply.
    dying: Vec<String>,
    /// [new]: a SYN in SYN_SENT before any reply.
    syn_again: Vec<String>,
    /// [direction][class][old]
    ignored: Vec<String>,
}

static REASONS: LazyLock<Reasons> = LazyLock::new(|| {
    let mut moves = Vec::with_capacity(600);
    for index in 0..6 {
        for old in 0..10 {
            for new in 0..10 {
                moves.push(move_reason(index, old, new));
            }
        }
    }
    let mut assured = Vec::with_capacity(60);
    for index in 0..6 {
        for old in 0..10 {
            let base = move_reason(index, old, usize::from(ESTABLISHED));
            assured.push(format!("{base}; connection assured"));
        }
    }
    let mut dying = Vec::with_capacity(100);
    for old in 0..10 {
        for new in 0..10 {
            let base = move_reason(usize::from(RST_SET), old, new);
            dying.push(format!("{base}; RST before any reply: connection deleted"));
        }
    }
    let syn_again = (0..10)
        .map(|new| {
            let base = move_reason(usize::from(SYN_SET), usize::from(SYN_SENT), new);
            format!("{base}; SYN retransmission does not refresh the timeout")
        })
        .collect();
    let mut ignored = Vec::with_capacity(120);
    for whys in IGNORE_WHY {
        for (class, why) in CLASS_NAMES.iter().zip(whys) {
            let why = if why.is_empty() {
                "the firewall may be out of sync"
            } else {
                why
            };
            for state in STATE_NAMES {
                ignored.push(format!("{class} in {state} ignored ({why})"));
            }
        }
    }
    Reasons {
        moves,
        assured,
        dying,
        syn_again,
        ignored,
    }
});

/// A string from one of the tables (indices are always in range: states and
/// classes are checked before any lookup); never panics.
fn table_text(table: &'static [String], at: usize) -> Reason {
    Cow::Borrowed(table.get(at).map_or("", String::as_str))
}

fn move_text(index: u8, old: u8, new: u8) -> Reason {
    let at = usize::from(index) * 100 + usize::from(old) * 10 + usize::from(new);
    table_text(&REASONS.moves, at)
}

// -- tcp_error ----------------------------------------------------------------

/// Header length, checksum and flag validation; `Some` makes the packet INVALID.
pub fn error(pkt: &Packet, cfg: &Sysctls, in_prerouting: bool) -> Option<Reason> {
    let data = pkt.data;
    let l4 = pkt.l4_off;
    let present = data.len() as i64 - l4 as i64;
    if present < 20 {
        return Some(Cow::Owned(format!(
            "truncated TCP header ({present} of 20 bytes present)"
        )));
    }
    let header_len = i64::from(data.get(l4 + 12).map_or(0, |b| b >> 4)) * 4;
    if header_len < 20 {
        return Some(Cow::Owned(format!(
            "bad TCP data offset ({} words, minimum 5)",
            header_len / 4
        )));
    }
    if present < header_len {
        return Some(Cow::Owned(format!(
            "truncated TCP header (data offset says {header_len} bytes, {present} present)"
        )));
    }
    if cfg.nf_conntrack_checksum != 0 && in_prerouting {
        let segment = data.get(l4..).unwrap_or(&[]);
        if !checksum::l4_checksum_ok(
            pkt.family,
            pkt.src,
            pkt.dst,
            crate::packet::PROTO_TCP,
            segment,
        ) {
            return Some(Cow::Borrowed("bad TCP checksum"));
        }
    }
    if !VALID_FLAGS[usize::from(pkt.tcp_flags)] {
        return Some(Cow::Owned(format!(
            "invalid TCP flag combination {}",
            flag_names(pkt.tcp_flags & SIGNIFICANT)
        )));
    }
    None
}

// -- tcp_new ------------------------------------------------------------------

/// May this first packet start a connection? Set up the originator's window.
pub fn new(conn: &mut Conn, pkt: &Packet, cfg: &Sysctls) -> Result<(), Reason> {
    let index = class_of(pkt.tcp_flags);
    let new = TRANSITIONS[0][usize::from(index)][usize::from(NONE)];
    let class = class_name_of(index);
    if new == IV {
        return Err(Cow::Owned(format!(
            "{class} cannot start a connection (only a SYN or an ACK can)"
        )));
    }
    if new != SYN_SENT && cfg.nf_conntrack_tcp_loose == 0 {
        return Err(Cow::Owned(format!(
            "{class} without a SYN cannot start a connection (nf_conntrack_tcp_loose=0)"
        )));
    }
    let mut td = TcpData::default();
    let end = w::segment_end(pkt);
    let window = if pkt.window != 0 {
        u32::from(pkt.window)
    } else {
        1
    };
    let sender = &mut td.seen[0];
    sender.td_end = end;
    sender.td_maxwin = window;
    if new == SYN_SENT {
        sender.td_maxend = end;
        w::parse_options(pkt, sender);
    } else {
        // Picked up mid-stream: the history (scaling, SACK) is unknown, so never
        // judge this connection's windows strictly.
        sender.td_maxend = end.wrapping_add(window);
        td.seen[0].flags = w::SACK_PERM | w::BE_LIBERAL;
        td.seen[1].flags = w::SACK_PERM | w::BE_LIBERAL;
    }
    conn.proto_data = ProtoData::Tcp(td);
    conn.proto_state = NONE;
    Ok(())
}

// -- tcp_packet ---------------------------------------------------------------

// Outcomes of rst_rules, combined as bits.
const RST_KEEP_STATE: u8 = 1;
const RST_SKIP_WINDOW: u8 = 2;
const RST_INVALID: u8 = 4;

/// SYN_SENT2 has no sysctl; the kernel's table gives it SYN_SENT's default.
pub const SYN_SENT2_TIMEOUT: u64 = 120;

/// nf_conntrack_tcp_packet: the table lookup, its special cells, the window check.
///
/// `ctinfo` is part of the trackers' common contract; TCP decides from the
/// direction and the entry's status alone.
pub fn packet(
    conn: &mut Conn,
    pkt: &Packet,
    direction: u8,
    _ctinfo: u8,
    now: f64,
    cfg: &Sysctls,
) -> Outcome {
    let ProtoData::Tcp(stored) = &conn.proto_data else {
        return (
            Action::Invalid,
            Cow::Borrowed("no TCP state on this connection"),
        );
    };
    // Work on a copy (64 bytes) so the entry's other fields stay borrowable;
    // every path writes it back, so the entry ends up as if updated in place.
    let mut td = *stored;
    let outcome = track(conn, &mut td, pkt, direction, now, cfg);
    conn.proto_data = ProtoData::Tcp(td);
    outcome
}

fn track(
    conn: &mut Conn,
    td: &mut TcpData,
    pkt: &Packet,
    direction: u8,
    now: f64,
    cfg: &Sysctls,
) -> Outcome {
    let d = side(direction);
    let dir = d as u8;
    let stored = conn.proto_state;
    if usize::from(stored) >= STATE_NAMES.len() {
        return (
            Action::Invalid,
            Cow::Owned(format!("unknown TCP state {stored}")),
        );
    }
    let mut old = stored;
    let index = class_of(pkt.tcp_flags);
    let mut new = TRANSITIONS[d][usize::from(index)][usize::from(old)];
    let mut skip_window = false;
    match new {
        ESTABLISHED | FIN_WAIT | CLOSE_WAIT | LAST_ACK => {} // nothing beyond the window check
        IV => {
            return (
                Action::Invalid,
                Cow::Owned(format!(
                    "{} from the {} in {} is invalid: {}",
                    class_name_of(index),
                    DIRECTION_NAMES[d],
                    state_name_of(old),
                    INVALID_WHY[d][usize::from(index)]
                )),
            );
        }
        _ if new == IG || (new == SYN_SENT && old >= TIME_WAIT) => {
            if new == SYN_SENT && may_reopen(td, dir) {
                let reason = match old {
                    TIME_WAIT => {
                        Cow::Borrowed("SYN in TIME_WAIT reopens the connection: old entry deleted")
                    }
                    CLOSE => {
                        Cow::Borrowed("SYN in CLOSE reopens the connection: old entry deleted")
                    }
                    _ => Cow::Owned(format!(
                        "SYN in {} reopens the connection: old entry deleted",
                        state_name_of(old)
                    )),
                };
                return (Action::Repeat, reason);
            }
            if !(index == SYNACK_SET
                && td.last_index == SYN_SET
                && td.last_dir != dir
                && pkt.ack == td.last_end)
            {
                return (Action::Accept, ignore(td, pkt, dir, index, old));
            }
            // This SYN/ACK answers the SYN we ignored: the endpoints restarted, follow them.
            resync(td, dir);
            old = SYN_SENT;
            new = SYN_RECV;
        }
        TIME_WAIT
            if old == LAST_ACK
                && index == ACK_SET
                && td.last_dir != dir
                && td.last_index == SYN_SET
                && td.last_flags & w::EXP_CHALLENGE_ACK != 0 =>
        {
            td.last_flags &= !w::EXP_CHALLENGE_ACK;
            return (
                Action::Accept,
                Cow::Borrowed(
                    "challenge ACK in LAST_ACK ignored (answers a SYN, not the last FIN)",
                ),
            );
        }
        SYN_SENT2 => td.last_flags |= w::SIMULTANEOUS_OPEN,
        // The ACK completing a simultaneous open.
        SYN_RECV
            if dir == REPLY && index == ACK_SET && td.last_flags & w::SIMULTANEOUS_OPEN != 0 =>
        {
            new = ESTABLISHED;
        }
        CLOSE if index == RST_SET => {
            let rst = rst_rules(conn.status, stored, td, pkt, dir, old, cfg);
            if rst & RST_INVALID != 0 {
                return (
                    Action::Invalid,
                    Cow::Owned(format!(
                        "RST with a sequence number below what the peer already \
                         acknowledged (seq {} < {})",
                        pkt.seq,
                        td.seen[1 - d].td_maxack
                    )),
                );
            }
            if rst & RST_KEEP_STATE != 0 {
                new = old;
            }
            skip_window = rst & RST_SKIP_WINDOW != 0;
        }
        _ => {}
    }

    let mut note: Reason = Cow::Borrowed("");
    if !skip_window {
        let be_liberal =
            td.seen[d].flags & w::BE_LIBERAL != 0 || cfg.nf_conntrack_tcp_be_liberal != 0;
        let receiver = dir ^ 1;
        let offset = |seq: u32| seq_offset(conn, receiver, seq);
        let (verdict, text) = tcp_in_window(td, stored, dir, index, pkt, be_liberal, &offset);
        match verdict {
            WinAction::Accept => note = text,
            WinAction::Ignore => return (Action::Accept, text),
            WinAction::Invalid => {
                let reason = match handle_invalid(conn, td, dir, index, now, cfg) {
                    Some(cut) => Cow::Owned(format!("{text}{cut}")),
                    None => text,
                };
                return (Action::Invalid, reason);
            }
        }
    }
    commit(conn, td, index, dir, old, new, now, cfg, note)
}

/// A SYN in TIME_WAIT/CLOSE starts afresh after a FIN close, or right after our own RST.
fn may_reopen(td: &TcpData, dir: u8) -> bool {
    let closed_by_fin = (td.seen[0].flags | td.seen[1].flags) & w::CLOSE_INIT != 0;
    closed_by_fin || (td.last_dir == dir && td.last_index == RST_SET)
}

/// Let the packet through unchanged, but remember it (it may prove we are out of sync).
fn ignore(td: &mut TcpData, pkt: &Packet, dir: u8, index: u8, old: u8) -> Reason {
    td.last_index = index;
    td.last_dir = dir;
    td.last_seq = pkt.seq;
    td.last_end = w::segment_end(pkt);
    td.last_win = pkt.window;
    if index == SYN_SET && dir == ORIGINAL {
        remember_syn_options(td, pkt);
        if old == LAST_ACK {
            // The peer may answer this SYN with a challenge ACK, not the last ACK.
            td.last_flags |= w::EXP_CHALLENGE_ACK;
        }
    }
    if old == SYN_SENT && index == ACK_SET && dir == REPLY {
        td.last_ack = pkt.ack; // a challenge ACK: an RST may follow at exactly this sequence
    }
    let at = usize::from(dir) * 60 + usize::from(index) * 10 + usize::from(old);
    table_text(&REASONS.ignored, at)
}

fn remember_syn_options(td: &mut TcpData, pkt: &Packet) {
    let mut seen = TcpDirState::default();
    w::parse_options(pkt, &mut seen);
    td.last_flags = seen.flags & (w::WINDOW_SCALE | w::SACK_PERM);
    td.last_wscale = if seen.flags & w::WINDOW_SCALE != 0 {
        seen.td_scale
    } else {
        0
    };
}

/// Rebuild the SYN sender's window from the remembered SYN; forget the other side.
fn resync(td: &mut TcpData, dir: u8) {
    td.last_flags &= !w::EXP_CHALLENGE_ACK;
    let (last_end, last_win, last_wscale, last_flags) =
        (td.last_end, td.last_win, td.last_wscale, td.last_flags);
    let syn_side = &mut td.seen[side(td.last_dir)];
    syn_side.td_end = last_end;
    syn_side.td_maxend = last_end;
    syn_side.td_maxwin = if last_win != 0 {
        u32::from(last_win)
    } else {
        1
    };
    syn_side.td_scale = last_wscale;
    syn_side.flags = last_flags;
    td.seen[side(dir)].reset();
}

/// Decide how an RST is checked (the CLOSE case of nf_conntrack_tcp_packet).
fn rst_rules(
    status: u32,
    stored: u8,
    td: &TcpData,
    pkt: &Packet,
    dir: u8,
    old: u8,
    cfg: &Sysctls,
) -> u8 {
    if state_can_early_drop(stored) {
        // Closing already: the tuple may have been reused, the old numbers mean nothing.
        return RST_SKIP_WINDOW;
    }
    let mut result = 0;
    let peer = &td.seen[1 - side(dir)];
    let seq = pkt.seq;
    let established = old == ESTABLISHED && status & IPS_ASSURED != 0;
    if peer.flags & w::MAXACK_SET != 0 && td.last_index != SYN_SET {
        if seq == 0 && !established {
            return 0; // probably answers a SYN we let through
        }
        if before(seq, peer.td_maxack) && cfg.nf_conntrack_tcp_ignore_invalid_rst == 0 {
            return RST_INVALID;
        }
        if !established || seq == peer.td_maxack {
            return 0;
        }
        if td.last_index == ACK_SET && td.last_dir == dir && seq == td.last_end {
            return 0; // RST right after this side's last data segment
        }
        // In window but not exactly where expected: keep the state so the peer can
        // send a challenge ACK (RFC 5961).
        result = RST_KEEP_STATE;
    }
    if ((status & IPS_SEEN_REPLY != 0 && td.last_index == SYN_SET && td.last_dir != dir)
        || (status & IPS_ASSURED == 0 && td.last_index == ACK_SET))
        && pkt.ack == td.last_end
    {
        // Answers the other side's SYN, or an ACK, that we let through while ignoring:
        // it may acknowledge data we never saw. (The direction test is a 2026 stable
        // fix that the reference 6.18.44 kernel carries.)
        return result | RST_SKIP_WINDOW;
    }
    if old == SYN_SENT && td.last_index == ACK_SET && td.last_dir == REPLY && seq == td.last_ack {
        return result | RST_SKIP_WINDOW; // answers a challenge ACK we let through
    }
    result
}

/// Out-of-window FIN/RST from both sides: the endpoints are done, don't wait 5 days.
fn handle_invalid(
    conn: &mut Conn,
    td: &mut TcpData,
    dir: u8,
    index: u8,
    now: f64,
    cfg: &Sysctls,
) -> Option<String> {
    if conn.status & IPS_ASSURED == 0
        || conn.status & IPS_FIXED_TIMEOUT != 0
        || (index != RST_SET && index != FIN_SET)
    {
        return None;
    }
    if td.last_dir != dir && (td.last_index == FIN_SET || td.last_index == RST_SET) {
        let remaining = conn.expires - now;
        let unack = cfg.nf_conntrack_tcp_timeout_unacknowledged;
        if remaining >= 120.0 && remaining > unack as f64 {
            conn.expires = now + unack as f64;
            return Some(format!("; remaining lifetime cut to {unack} s"));
        }
        return None;
    }
    td.last_index = index;
    td.last_dir = dir;
    None
}

/// An accepted packet: store the state, choose the timeout, maybe set ASSURED.
#[allow(clippy::too_many_arguments)]
fn commit(
    conn: &mut Conn,
    td: &mut TcpData,
    index: u8,
    dir: u8,
    old: u8,
    new: u8,
    now: f64,
    cfg: &Sysctls,
    note: Reason,
) -> Outcome {
    td.last_index = index;
    td.last_dir = dir;
    conn.proto_state = new;
    if new == FIN_WAIT && old != FIN_WAIT {
        td.seen[side(dir)].flags |= w::CLOSE_INIT;
    }
    let mut timeout = timeout_for(td, index, new, cfg);
    let mut reason = move_text(index, old, new);
    let status = conn.status;
    if status & IPS_SEEN_REPLY == 0 {
        if index == RST_SET {
            // Deleted at once, but the RST itself is counted (nf_ct_kill_acct).
            conn.status = status | IPS_DYING | IPS_ACCT_PENDING;
            let at = usize::from(old) * 10 + usize::from(new);
            return (Action::Accept, table_text(&REASONS.dying, at));
        }
        if index == SYN_SET && old == SYN_SENT {
            return (
                Action::Accept,
                table_text(&REASONS.syn_again, usize::from(new)),
            );
        }
        let unack = cfg.nf_conntrack_tcp_timeout_unacknowledged;
        if new == ESTABLISHED && timeout > unack {
            timeout = unack; // a pickup nobody answered yet does not get 5 days
        }
    } else if status & IPS_ASSURED == 0
        && new == ESTABLISHED
        && (old == SYN_RECV || old == ESTABLISHED)
    {
        conn.status = status | IPS_ASSURED;
        let at = usize::from(index) * 10 + usize::from(old);
        reason = table_text(&REASONS.assured, at);
    }
    conn.refresh_acct(now, timeout as f64);
    if note.is_empty() {
        (Action::Accept, reason)
    } else {
        (Action::Accept, Cow::Owned(format!("{reason}; {note}")))
    }
}

/// Timeout for the new state, shortened while the connection looks stuck.
fn timeout_for(td: &TcpData, index: u8, new: u8, cfg: &Sysctls) -> u64 {
    let state_timeout = state_timeout_of(cfg, new);
    let retrans = cfg.nf_conntrack_tcp_timeout_max_retrans;
    if u64::from(td.retrans) >= cfg.nf_conntrack_tcp_max_retrans && state_timeout > retrans {
        return retrans;
    }
    if index == RST_SET {
        return cfg.nf_conntrack_tcp_timeout_close;
    }
    let unack = cfg.nf_conntrack_tcp_timeout_unacknowledged;
    if (td.seen[0].flags | td.seen[1].flags) & w::DATA_UNACKNOWLEDGED != 0 && state_timeout > unack
    {
        return unack;
    }
    if td.last_win == 0 && state_timeout > retrans {
        return retrans;
    }
    state_timeout
}

/// The sysctl timeout of a TCP state.
pub fn state_timeout_of(cfg: &Sysctls, state: u8) -> u64 {
    match state {
        ESTABLISHED => cfg.nf_conntrack_tcp_timeout_established,
        SYN_SENT => cfg.nf_conntrack_tcp_timeout_syn_sent,
        SYN_RECV => cfg.nf_conntrack_tcp_timeout_syn_recv,
        FIN_WAIT => cfg.nf_conntrack_tcp_timeout_fin_wait,
        CLOSE_WAIT => cfg.nf_conntrack_tcp_timeout_close_wait,
        LAST_ACK => cfg.nf_conntrack_tcp_timeout_last_ack,
        TIME_WAIT => cfg.nf_conntrack_tcp_timeout_time_wait,
        CLOSE => cfg.nf_conntrack_tcp_timeout_close,
        _ => SYN_SENT2_TIMEOUT,
    }
}

fn state_can_early_drop(state: u8) -> bool {
    matches!(state, FIN_WAIT | CLOSE_WAIT | LAST_ACK | TIME_WAIT | CLOSE)
}

/// Closing connections may be evicted by the GC's early drop even when ASSURED.
pub fn can_early_drop(conn: &Conn) -> bool {
    state_can_early_drop(conn.proto_state)
}

/// The entry's TCP state as /proc prints it.
pub fn state_name(conn: &Conn) -> &'static str {
    state_name_of(conn.proto_state)
}
