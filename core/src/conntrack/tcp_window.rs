//! TCP window tracking: does a segment fit what each side has been allowed
//! to send?
//!
//! Mirrors `tcp_in_window` and its helpers `tcp_init_sender`, `tcp_options`
//! and `tcp_sack` in net/netfilter/nf_conntrack_proto_tcp.c (Linux 6.18),
//! decision for decision, each decision with a reason.
//!
//! Conntrack sits between the endpoints and sees only their segments. Per
//! direction X it keeps (`TcpDirState`):
//!
//! * `td_end`    the highest sequence number X has sent (seq + payload, SYN
//!   and FIN count one each);
//! * `td_maxend` the highest sequence number X may send: the largest
//!   ack + window its peer advertised;
//! * `td_maxwin` the largest window X advertised (scaled), grown when the
//!   peer legitimately overshoots;
//! * `td_maxack` the highest ack number X sent (valid once MAXACK_SET is set);
//! * `td_scale`  X's window-scale shift, used only if both SYNs offered one.
//!
//! A segment from sender S to receiver R passes four checks, in kernel order:
//!
//! ```text
//!   I    seq  <= S.td_maxend                         (not beyond the right edge)
//!   III  sack <= R.td_end                            (acknowledges nothing unseen)
//!   II   end  >= S.td_end - R.td_maxwin              (not older than one window)
//!   IV   sack >= R.td_end - max(S.td_maxwin, 66000)  (ACK not absurdly stale)
//! ```
//!
//! Failing I (unless the overshoot is small) or III makes the packet INVALID;
//! failing II or IV only makes conntrack IGNORE it (an old retransmission or
//! a delayed ACK is harmless). With liberal tracking every failure is
//! accepted, without updating the windows.
//!
//! Sequence arithmetic is modulo 2**32 with serial comparisons. Options are
//! read from the header bytes with the kernel's stopping rules (not from the
//! decoder's summary), so the tracker's view never depends on how another
//! stage chose to summarise them.

use std::borrow::Cow;

use crate::packet::{Packet, ACK, FIN, RST, SYN};
use crate::reason::Reason;

// Connection states (enum tcp_conntrack); their names are in proto_tcp.
pub const NONE: u8 = 0;
pub const SYN_SENT: u8 = 1;
pub const SYN_RECV: u8 = 2;
pub const ESTABLISHED: u8 = 3;
pub const FIN_WAIT: u8 = 4;
pub const CLOSE_WAIT: u8 = 5;
pub const LAST_ACK: u8 = 6;
pub const TIME_WAIT: u8 = 7;
pub const CLOSE: u8 = 8;
pub const SYN_SENT2: u8 = 9;

// Packet classes (enum tcp_bit_set, get_conntrack_index): the table's middle index.
pub const SYN_SET: u8 = 0;
pub const SYNACK_SET: u8 = 1;
pub const FIN_SET: u8 = 2;
pub const ACK_SET: u8 = 3;
pub const RST_SET: u8 = 4;
pub const NONE_SET: u8 = 5;

// Per-direction flags (include/uapi/linux/netfilter/nf_conntrack_tcp.h).
pub const WINDOW_SCALE: u8 = 0x01;
pub const SACK_PERM: u8 = 0x02;
pub const CLOSE_INIT: u8 = 0x04;
pub const BE_LIBERAL: u8 = 0x08;
pub const DATA_UNACKNOWLEDGED: u8 = 0x10;
pub const MAXACK_SET: u8 = 0x20;
// Only ever set in TcpData::last_flags.
pub const EXP_CHALLENGE_ACK: u8 = 0x40;
pub const SIMULTANEOUS_OPEN: u8 = 0x80;

/// RFC 7323 caps the shift; larger offers are clamped.
pub const MAX_WSCALE: u8 = 14;
pub const MAXACKWINCONST: u32 = 66000;

pub const OPT_EOL: u8 = 0;
pub const OPT_NOP: u8 = 1;
pub const OPT_WSCALE: u8 = 3;
pub const OPT_SACK_PERM: u8 = 4;
pub const OPT_SACK: u8 = 5;
pub const OPT_TIMESTAMP: u8 = 8;

/// The outcome of the window check (enum nf_ct_tcp_action).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WinAction {
    Accept,
    Ignore,
    Invalid,
}

/// Serial-number a < b (the kernel's before(): signed 32-bit difference).
#[inline]
pub fn before(a: u32, b: u32) -> bool {
    a.wrapping_sub(b) >= 0x8000_0000
}

#[inline]
pub fn after(a: u32, b: u32) -> bool {
    b.wrapping_sub(a) >= 0x8000_0000
}

/// What conntrack knows about one direction's sender (struct ip_ct_tcp_state).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpDirState {
    pub td_end: u32,
    pub td_maxend: u32,
    pub td_maxwin: u32,
    pub td_maxack: u32,
    pub td_scale: u8,
    pub flags: u8,
}

impl TcpDirState {
    /// Forget this side's history, except that it is tracked liberally.
    pub fn reset(&mut self) {
        *self = TcpDirState {
            flags: self.flags & BE_LIBERAL,
            ..TcpDirState::default()
        };
    }
}

/// The TCP part of a conntrack entry (struct ip_ct_tcp), stored inline in
/// `ProtoData::Tcp`.
///
/// `seen[0]` describes the originator, `seen[1]` the responder. The `last_*`
/// fields remember the latest packet that was ignored or accepted: they let
/// conntrack resynchronise on a SYN/ACK answering a SYN it ignored, spot
/// challenge ACKs and RSTs that answer them, and count identical ACKs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpData {
    pub seen: [TcpDirState; 2],
    pub last_seq: u32,
    pub last_ack: u32,
    pub last_end: u32,
    /// Identical ACK-class segments in a row, saturating: only whether it has
    /// reached nf_conntrack_tcp_max_retrans matters.
    pub retrans: u32,
    pub last_win: u16,
    pub last_dir: u8,
    pub last_index: u8,
    pub last_wscale: u8,
    pub last_flags: u8,
}

impl Default for TcpData {
    fn default() -> Self {
        TcpData {
            seen: [TcpDirState::default(); 2],
            last_seq: 0,
            last_ack: 0,
            last_end: 0,
            retrans: 0,
            last_win: 0,
            last_dir: 0,
            last_index: NONE_SET,
            last_wscale: 0,
            last_flags: 0,
        }
    }
}

/// The index of a direction in `TcpData::seen` (anything but ORIGINAL is the reply side).
#[inline]
pub(crate) fn side(direction: u8) -> usize {
    usize::from(direction != 0)
}

/// Sender and receiver of a segment travelling in `direction`.
#[inline]
fn pair(seen: &mut [TcpDirState; 2], direction: u8) -> (&mut TcpDirState, &mut TcpDirState) {
    let [orig, reply] = seen;
    if side(direction) == 0 {
        (orig, reply)
    } else {
        (reply, orig)
    }
}

/// `win << scale` truncated to 32 bits, defined for any shift.
#[inline]
fn scaled(win: u16, scale: u8) -> u32 {
    if scale >= 32 {
        0
    } else {
        // The shifted value fits in 48 bits; the kernel keeps the low 32.
        ((u64::from(win) << scale) & 0xFFFF_FFFF) as u32
    }
}

/// seq + payload length, plus one each for SYN and FIN (segment_seq_plus_len).
pub fn segment_end(pkt: &Packet) -> u32 {
    let flags = pkt.tcp_flags;
    // Sequence space is modulo 2**32, so truncating the length is the wrap.
    let len = pkt.payload_len() as u32;
    pkt.seq
        .wrapping_add(len)
        .wrapping_add(u32::from(flags & SYN != 0))
        .wrapping_add(u32::from(flags & FIN != 0))
}

/// Where the options sit in `pkt.data`: from byte 20 of the TCP header to its
/// data offset. A header byte that is missing reads as "no options".
fn options_bounds(pkt: &Packet) -> (usize, usize) {
    let start = pkt.l4_off.saturating_add(20);
    let doff = pkt
        .data
        .get(pkt.l4_off.saturating_add(12))
        .map_or(5, |b| usize::from(b >> 4));
    (start, pkt.l4_off.saturating_add(doff * 4))
}

/// Read window scale and SACK-permitted from a SYN the way the kernel does.
///
/// A header without options leaves the state alone; otherwise the scale and
/// the option flags are reset first. Parsing stops at EOL, at a length below
/// 2 and at an option that does not fit, like tcp_options().
pub fn parse_options(pkt: &Packet, state: &mut TcpDirState) {
    let data = pkt.data;
    let (mut i, end) = options_bounds(pkt);
    if i >= end {
        return;
    }
    state.td_scale = 0;
    state.flags &= BE_LIBERAL;
    while i < end {
        let Some(&kind) = data.get(i) else { return };
        if kind == OPT_EOL {
            return;
        }
        if kind == OPT_NOP {
            i += 1;
            continue;
        }
        if end - i < 2 {
            return;
        }
        let Some(&size) = data.get(i + 1) else { return };
        let size = usize::from(size);
        if size < 2 || size > end - i {
            return;
        }
        if kind == OPT_SACK_PERM && size == 2 {
            state.flags |= SACK_PERM;
        } else if kind == OPT_WSCALE && size == 3 {
            let Some(&shift) = data.get(i + 2) else {
                return;
            };
            state.td_scale = shift.min(MAX_WSCALE);
            state.flags |= WINDOW_SCALE;
        }
        i += size;
    }
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

/// The highest right edge of the first SACK option if later than `sack` (tcp_sack).
pub fn sack_edge(pkt: &Packet, mut sack: u32) -> u32 {
    let data = pkt.data;
    let (mut i, end) = options_bounds(pkt);
    if i >= end {
        return sack;
    }
    // The common timestamp-only header carries no SACK.
    if end - i == 12 && data.get(i..i + 4) == Some(&[OPT_NOP, OPT_NOP, OPT_TIMESTAMP, 10][..]) {
        return sack;
    }
    while i < end {
        let Some(&kind) = data.get(i) else {
            return sack;
        };
        if kind == OPT_EOL {
            return sack;
        }
        if kind == OPT_NOP {
            i += 1;
            continue;
        }
        if end - i < 2 {
            return sack;
        }
        let Some(&size) = data.get(i + 1) else {
            return sack;
        };
        let size = usize::from(size);
        if size < 2 || size > end - i {
            return sack;
        }
        if kind == OPT_SACK && size >= 10 && (size - 2) % 8 == 0 {
            let mut edge = i + 6;
            while edge < i + size {
                let Some(right) = read_u32(data, edge) else {
                    return sack;
                };
                if after(right, sack) {
                    sack = right;
                }
                edge += 8;
            }
            return sack;
        }
        i += size;
    }
    sack
}

/// Start tracking a side from its SYN or SYN/ACK (tcp_init_sender).
///
/// Window scaling is in force only if both SYNs offered it; the decision is
/// taken when the responder's SYN(/ACK) arrives, so a retransmitted SYN from
/// the originator does not wipe its own scale before the answer.
pub fn init_sender(
    sender: &mut TcpDirState,
    receiver: &mut TcpDirState,
    pkt: &Packet,
    end: u32,
    direction: u8,
) {
    let win = pkt.window;
    sender.td_end = end;
    sender.td_maxend = end;
    sender.td_maxwin = if win != 0 { u32::from(win) } else { 1 };
    parse_options(pkt, sender);
    if side(direction) == 1
        && !(sender.flags & WINDOW_SCALE != 0 && receiver.flags & WINDOW_SCALE != 0)
    {
        sender.td_scale = 0;
        receiver.td_scale = 0;
    }
}

/// First segment seen from a side mid-stream: trust the packet's own numbers.
fn pick_up_sender(
    sender: &mut TcpDirState,
    receiver: &mut TcpDirState,
    end: u32,
    win: u16,
    sack: u32,
) {
    sender.td_end = end;
    let swin = scaled(win, sender.td_scale);
    sender.td_maxwin = if swin != 0 { swin } else { 1 };
    sender.td_maxend = end.wrapping_add(sender.td_maxwin);
    if receiver.td_maxwin == 0 {
        // Nothing seen the other way either: open III and IV until it speaks.
        receiver.td_end = sack;
        receiver.td_maxend = sack;
    } else if sack == receiver.td_end.wrapping_add(1) {
        // Likely the answer to a keep-alive probing one byte below td_end.
        receiver.td_end = sack;
    }
}

const NO_NOTE: Reason = Cow::Borrowed("");

/// Check one segment against the tracked windows; update them when it fits.
///
/// `state` is the entry's stored TCP state (before this packet), `index` the
/// packet class. Returns the action and a note (empty for a plain accept).
pub fn tcp_in_window(
    td: &mut TcpData,
    state: u8,
    direction: u8,
    index: u8,
    pkt: &Packet,
    be_liberal: bool,
    receiver_offset: &dyn Fn(u32) -> i32,
) -> (WinAction, Reason) {
    let flags = pkt.tcp_flags;
    let mut seq = pkt.seq;
    let mut ack = pkt.ack;
    let mut sack = ack;
    let win = pkt.window;
    let mut end = segment_end(pkt);
    let (sender, receiver) = pair(&mut td.seen, direction);
    if receiver.flags & SACK_PERM != 0 && pkt.payload_off.saturating_sub(pkt.l4_off) > 20 {
        sack = sack_edge(pkt, sack);
    }
    // The ack counts in the receiver's numbering as its packets left the
    // machine (after a helper resized one): back to the numbering tracked.
    let offset = receiver_offset(ack.wrapping_sub(1)) as u32;
    ack = ack.wrapping_sub(offset);
    sack = sack.wrapping_sub(offset);

    if sender.td_maxwin == 0 {
        if flags & SYN != 0 {
            init_sender(sender, receiver, pkt, end, direction);
            if flags & ACK == 0 {
                return (WinAction::Accept, NO_NOTE); // the responder's own SYN: simultaneous open
            }
        } else {
            pick_up_sender(sender, receiver, end, win, sack);
        }
    } else if flags & SYN != 0
        && after(end, sender.td_end)
        && (state == SYN_SENT || state == SYN_RECV)
    {
        // A new SYN(/ACK) with a later ISN: the endpoint restarted its attempt.
        init_sender(sender, receiver, pkt, end, direction);
        if side(direction) == 1 && flags & ACK == 0 {
            return (WinAction::Accept, NO_NOTE);
        }
    }

    if flags & ACK == 0 || (flags & RST != 0 && ack == 0) {
        // No ACK (or the zero ack of broken RST/ACK stacks): pretend it acks everything seen.
        ack = receiver.td_end;
        sack = receiver.td_end;
    }
    if flags & RST != 0 && seq == 0 && state == SYN_SENT {
        // An RST answering a SYN, sent with sequence number 0.
        seq = sender.td_end;
        end = sender.td_end;
    }

    let maxackwindow = sender.td_maxwin.max(MAXACKWINCONST);
    if after(seq, sender.td_maxend) {
        return beyond_right_edge(sender, receiver, seq, end, sack, maxackwindow, be_liberal);
    }
    if after(sack, receiver.td_end) {
        return failed(
            be_liberal,
            WinAction::Invalid,
            format!(
                "ACK of data never sent (ack {sack} > highest sequence seen {})",
                receiver.td_end
            ),
        );
    }
    if receiver.td_maxwin != 0
        && !after(
            end,
            sender
                .td_end
                .wrapping_sub(receiver.td_maxwin)
                .wrapping_sub(1),
        )
    {
        return failed(
            be_liberal,
            WinAction::Ignore,
            format!(
                "old retransmission ignored (ends at {end}, before the window's left edge {})",
                sender.td_end.wrapping_sub(receiver.td_maxwin)
            ),
        );
    }
    if !after(
        sack,
        receiver.td_end.wrapping_sub(maxackwindow).wrapping_sub(1),
    ) {
        return failed(
            be_liberal,
            WinAction::Ignore,
            format!(
                "overly delayed ACK ignored (ack {sack} < lower bound {})",
                receiver.td_end.wrapping_sub(maxackwindow)
            ),
        );
    }

    update(td, direction, index, pkt, seq, ack, sack, end);
    (WinAction::Accept, NO_NOTE)
}

/// Check I failed: tolerate a small overshoot (some stacks send past the window).
fn beyond_right_edge(
    sender: &mut TcpDirState,
    receiver: &TcpDirState,
    seq: u32,
    end: u32,
    sack: u32,
    maxackwindow: u32,
    be_liberal: bool,
) -> (WinAction, Reason) {
    let overshot = end.wrapping_sub(sender.td_maxend).wrapping_add(1);
    if receiver.td_maxwin != 0
        && after(
            end,
            sender
                .td_end
                .wrapping_sub(receiver.td_maxwin)
                .wrapping_sub(1),
        )
        && after(
            sack,
            receiver.td_end.wrapping_sub(maxackwindow).wrapping_sub(1),
        )
        && overshot <= receiver.td_maxwin
        && !after(sack, receiver.td_end)
    {
        // Remember the data so the peer's ACK of it will not look like check III failing.
        sender.td_end = end;
        sender.flags |= DATA_UNACKNOWLEDGED;
        return failed(
            be_liberal,
            WinAction::Ignore,
            format!(
                "{overshot} bytes beyond the receiver's window ignored (seq {seq} > max {})",
                sender.td_maxend
            ),
        );
    }
    failed(
        be_liberal,
        WinAction::Invalid,
        format!(
            "SEQ beyond the receiver's window (seq {seq} > max {})",
            sender.td_maxend
        ),
    )
}

fn failed(be_liberal: bool, outcome: WinAction, reason: String) -> (WinAction, Reason) {
    if be_liberal {
        return (
            WinAction::Accept,
            Cow::Owned(format!("{reason}; accepted: liberal window tracking")),
        );
    }
    (outcome, Cow::Owned(reason))
}

/// The segment fits: widen the windows it proves and count identical ACKs.
#[allow(clippy::too_many_arguments)]
fn update(
    td: &mut TcpData,
    direction: u8,
    index: u8,
    pkt: &Packet,
    seq: u32,
    ack: u32,
    sack: u32,
    end: u32,
) {
    let flags = pkt.tcp_flags;
    let win_raw = pkt.window;
    let (sender, receiver) = pair(&mut td.seen, direction);
    let win = if flags & SYN != 0 {
        u32::from(win_raw)
    } else {
        scaled(win_raw, sender.td_scale)
    };
    let swin = win.wrapping_add(sack).wrapping_sub(ack);
    if sender.td_maxwin < swin {
        sender.td_maxwin = swin;
    }
    if after(end, sender.td_end) {
        sender.td_end = end;
        sender.flags |= DATA_UNACKNOWLEDGED;
    }
    if flags & ACK != 0 {
        if sender.flags & MAXACK_SET == 0 {
            sender.td_maxack = ack;
            sender.flags |= MAXACK_SET;
        } else if after(ack, sender.td_maxack) {
            sender.td_maxack = ack;
        }
    }
    if receiver.td_maxwin != 0 && after(end, sender.td_maxend) {
        receiver.td_maxwin = receiver
            .td_maxwin
            .wrapping_add(end)
            .wrapping_sub(sender.td_maxend);
    }
    let right = sack.wrapping_add(win);
    if after(right, receiver.td_maxend.wrapping_sub(1)) {
        receiver.td_maxend = if win != 0 {
            right
        } else {
            right.wrapping_add(1)
        };
    }
    if ack == receiver.td_end {
        receiver.flags &= !DATA_UNACKNOWLEDGED;
    }
    if index == ACK_SET {
        if td.last_dir == direction
            && td.last_seq == seq
            && td.last_ack == ack
            && td.last_end == end
            && td.last_win == win_raw
        {
            td.retrans = td.retrans.saturating_add(1);
        } else {
            td.last_dir = direction;
            td.last_seq = seq;
            td.last_ack = ack;
            td.last_end = end;
            td.last_win = win_raw;
            td.retrans = 0;
        }
    }
}
