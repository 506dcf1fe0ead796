"""TCP window tracking: does a segment fit what each side has been allowed to send?

Mirrors `tcp_in_window` and its helpers `tcp_init_sender`, `tcp_options` and
`tcp_sack` in net/netfilter/nf_conntrack_proto_tcp.c (Linux 6.18).

How this works
--------------
Conntrack is a middlebox: it never sees the endpoints' sockets, only the
segments between them. Per direction X it keeps (`TcpDirState`):

* `td_end`    the highest sequence number X has sent (seq + payload, SYN and
              FIN count one each);
* `td_maxend` the highest sequence number X may send: the largest
              ack + window its peer advertised;
* `td_maxwin` the largest window X advertised (scaled), grown when the peer
              legitimately overshoots;
* `td_maxack` the highest ack number X sent (valid once MAXACK_SET is set);
* `td_scale`  X's window-scale shift, used only if both SYNs offered one.

A segment from sender S to receiver R passes four checks, in kernel order:

  I    seq  <= S.td_maxend                       (not beyond the right edge)
  III  sack <= R.td_end                          (acknowledges nothing unseen)
  II   end  >= S.td_end - R.td_maxwin            (not older than one window)
  IV   sack >= R.td_end - max(S.td_maxwin, 66000) (ACK not absurdly stale)

Failing I (unless the overshoot is small) or III makes the packet INVALID.
Failing II or IV only makes conntrack IGNORE it: an old retransmission or a
delayed ACK is harmless, and marking it INVALID used to hang connections
behind strict rulesets. With liberal tracking (the sysctl, or a connection
picked up mid-stream) every failure is accepted, without updating the windows.

All sequence arithmetic is modulo 2**32 with serial comparisons, as in TCP.

The state numbers and packet classes are defined here because both this
module and the state machine (proto_tcp) need them; proto_tcp re-exports them.
"""

from __future__ import annotations

from typing import Final

from statewall.packet import ACK, FIN, RST, SYN, Packet

# Connection states (enum tcp_conntrack); names as /proc prints them are in proto_tcp.
NONE: Final = 0
SYN_SENT: Final = 1
SYN_RECV: Final = 2
ESTABLISHED: Final = 3
FIN_WAIT: Final = 4
CLOSE_WAIT: Final = 5
LAST_ACK: Final = 6
TIME_WAIT: Final = 7
CLOSE: Final = 8
SYN_SENT2: Final = 9

# Packet classes (enum tcp_bit_set, get_conntrack_index): the table's middle index.
SYN_SET: Final = 0
SYNACK_SET: Final = 1
FIN_SET: Final = 2
ACK_SET: Final = 3
RST_SET: Final = 4
NONE_SET: Final = 5

# Per-direction flags (include/uapi/linux/netfilter/nf_conntrack_tcp.h).
WINDOW_SCALE: Final = 0x01
SACK_PERM: Final = 0x02
CLOSE_INIT: Final = 0x04
BE_LIBERAL: Final = 0x08
DATA_UNACKNOWLEDGED: Final = 0x10
MAXACK_SET: Final = 0x20
# Only ever set in TcpData.last_flags.
EXP_CHALLENGE_ACK: Final = 0x40
SIMULTANEOUS_OPEN: Final = 0x80

# Outcomes of the window check (enum nf_ct_tcp_action).
WIN_ACCEPT: Final = 0
WIN_IGNORE: Final = 1
WIN_INVALID: Final = 2

MAX_WSCALE: Final = 14  # RFC 7323 caps the shift; larger offers are clamped
MAXACKWINCONST: Final = 66000
U32: Final = 0xFFFFFFFF
_HALF: Final = 0x80000000

OPT_EOL: Final = 0
OPT_NOP: Final = 1
OPT_WSCALE: Final = 3
OPT_SACK_PERM: Final = 4
OPT_SACK: Final = 5
OPT_TIMESTAMP: Final = 8


def before(a: int, b: int) -> bool:
    """Serial-number a < b (the kernel's before(): signed 32-bit difference)."""
    return ((a - b) & U32) >= _HALF


def after(a: int, b: int) -> bool:
    return ((b - a) & U32) >= _HALF


class TcpDirState:
    """What conntrack knows about one direction's sender (struct ip_ct_tcp_state)."""

    __slots__ = ("td_end", "td_maxend", "td_maxwin", "td_maxack", "td_scale", "flags")

    def __init__(self) -> None:
        self.td_end = 0
        self.td_maxend = 0
        self.td_maxwin = 0
        self.td_maxack = 0
        self.td_scale = 0
        self.flags = 0

    def reset(self) -> None:
        """Forget this side's history, except that it is tracked liberally."""
        self.td_end = 0
        self.td_maxend = 0
        self.td_maxwin = 0
        self.td_maxack = 0
        self.td_scale = 0
        self.flags &= BE_LIBERAL

    def __repr__(self) -> str:
        return (
            f"TcpDirState(end={self.td_end} maxend={self.td_maxend} maxwin={self.td_maxwin} "
            f"maxack={self.td_maxack} scale={self.td_scale} flags={self.flags:#x})"
        )


class TcpData:
    """The TCP part of a conntrack entry (struct ip_ct_tcp), kept in `Conn.proto_data`.

    `seen[0]` describes the originator, `seen[1]` the responder. The `last_*`
    fields remember the latest packet that was ignored or accepted: they let
    conntrack resynchronise on a SYN/ACK answering a SYN it ignored, spot
    challenge ACKs and RSTs that answer them, and count identical ACKs.
    """

    __slots__ = (
        "seen", "last_dir", "last_index", "last_seq", "last_ack", "last_end",
        "last_win", "last_wscale", "last_flags", "retrans",
    )

    def __init__(self) -> None:
        self.seen = (TcpDirState(), TcpDirState())
        self.last_dir = 0
        self.last_index = NONE_SET
        self.last_seq = 0
        self.last_ack = 0
        self.last_end = 0
        self.last_win = 0
        self.last_wscale = 0
        self.last_flags = 0
        self.retrans = 0


def segment_end(pkt: Packet) -> int:
    """seq + payload length, plus one each for SYN and FIN (segment_seq_plus_len)."""
    flags = pkt.tcp_flags
    length = len(pkt.data) - pkt.payload_off + (flags & SYN) // SYN + (flags & FIN)
    return (pkt.seq + length) & U32


def _options_bounds(pkt: Packet) -> tuple[int, int]:
    start = pkt.l4_off + 20
    return start, pkt.l4_off + (pkt.data[pkt.l4_off + 12] >> 4) * 4


def parse_options(pkt: Packet, state: TcpDirState) -> None:
    """Read window scale and SACK-permitted from a SYN the way the kernel does.

    A header without options leaves the state alone; otherwise the scale and
    the option flags are reset first. Parsing stops at EOL, at a length below
    2 and at an option that does not fit, like tcp_options().
    """
    data = pkt.data
    i, end = _options_bounds(pkt)
    if i >= end:
        return
    state.td_scale = 0
    state.flags &= BE_LIBERAL
    while i < end:
        kind = data[i]
        if kind == OPT_EOL:
            return
        if kind == OPT_NOP:
            i += 1
            continue
        if end - i < 2:
            return
        size = data[i + 1]
        if size < 2 or size > end - i:
            return
        if kind == OPT_SACK_PERM and size == 2:
            state.flags |= SACK_PERM
        elif kind == OPT_WSCALE and size == 3:
            state.td_scale = min(data[i + 2], MAX_WSCALE)
            state.flags |= WINDOW_SCALE
        i += size


def sack_edge(pkt: Packet, sack: int) -> int:
    """The highest right edge of the first SACK option if later than `sack` (tcp_sack)."""
    data = pkt.data
    i, end = _options_bounds(pkt)
    if i >= end:
        return sack
    if (end - i == 12 and data[i] == OPT_NOP and data[i + 1] == OPT_NOP
            and data[i + 2] == OPT_TIMESTAMP and data[i + 3] == 10):
        return sack  # the common timestamp-only header carries no SACK
    while i < end:
        kind = data[i]
        if kind == OPT_EOL:
            return sack
        if kind == OPT_NOP:
            i += 1
            continue
        if end - i < 2:
            return sack
        size = data[i + 1]
        if size < 2 or size > end - i:
            return sack
        if kind == OPT_SACK and size >= 10 and (size - 2) % 8 == 0:
            for edge in range(i + 6, i + size, 8):
                right = int.from_bytes(data[edge:edge + 4], "big")
                if after(right, sack):
                    sack = right
            return sack
        i += size
    return sack


def init_sender(sender: TcpDirState, receiver: TcpDirState, pkt: Packet, end: int,
                direction: int) -> None:
    """Start tracking a side from its SYN or SYN/ACK (tcp_init_sender).

    Window scaling is in force only if both SYNs offered it; the decision is
    taken when the responder's SYN(/ACK) arrives, so a retransmitted SYN from
    the originator does not wipe its own scale before the answer.
    """
    win = pkt.window
    sender.td_end = end
    sender.td_maxend = end
    sender.td_maxwin = win if win else 1
    parse_options(pkt, sender)
    if direction == 1 and not (sender.flags & WINDOW_SCALE and receiver.flags & WINDOW_SCALE):
        sender.td_scale = 0
        receiver.td_scale = 0


def _pick_up_sender(sender: TcpDirState, receiver: TcpDirState, end: int, win: int,
                    sack: int) -> None:
    """First segment seen from a side mid-stream: trust the packet's own numbers."""
    sender.td_end = end
    swin = (win << sender.td_scale) & U32
    sender.td_maxwin = swin if swin else 1
    sender.td_maxend = (end + sender.td_maxwin) & U32
    if receiver.td_maxwin == 0:
        # Nothing seen the other way either: open III and IV until it speaks.
        receiver.td_end = sack
        receiver.td_maxend = sack
    elif sack == (receiver.td_end + 1) & U32:
        # Likely the answer to a keep-alive probing one byte below td_end.
        receiver.td_end = sack


def tcp_in_window(td: TcpData, state: int, direction: int, index: int, pkt: Packet,
                  be_liberal: bool) -> tuple[int, str]:
    """Check one segment against the tracked windows; update them when it fits.

    `state` is the entry's stored TCP state (before this packet), `index` the
    packet class. Returns WIN_ACCEPT, WIN_IGNORE or WIN_INVALID and a reason
    (empty for a plain accept).
    """
    sender = td.seen[direction]
    receiver = td.seen[1 - direction]
    flags = pkt.tcp_flags
    seq = pkt.seq
    ack = sack = pkt.ack
    win = pkt.window
    end = segment_end(pkt)
    if receiver.flags & SACK_PERM and pkt.payload_off - pkt.l4_off > 20:
        sack = sack_edge(pkt, sack)

    if sender.td_maxwin == 0:
        if flags & SYN:
            init_sender(sender, receiver, pkt, end, direction)
            if not flags & ACK:
                return WIN_ACCEPT, ""  # the responder's own SYN: simultaneous open
        else:
            _pick_up_sender(sender, receiver, end, win, sack)
    elif flags & SYN and after(end, sender.td_end) and state in (SYN_SENT, SYN_RECV):
        # A new SYN(/ACK) with a later ISN: the endpoint restarted its attempt.
        init_sender(sender, receiver, pkt, end, direction)
        if direction == 1 and not flags & ACK:
            return WIN_ACCEPT, ""

    if not flags & ACK or (flags & RST and ack == 0):
        # No ACK (or the zero ack of broken RST/ACK stacks): pretend it acks everything seen.
        ack = sack = receiver.td_end
    if flags & RST and seq == 0 and state == SYN_SENT:
        seq = end = sender.td_end  # RST answering a SYN, sent with sequence number 0

    maxackwindow = sender.td_maxwin if sender.td_maxwin > MAXACKWINCONST else MAXACKWINCONST
    if after(seq, sender.td_maxend):
        return _beyond_right_edge(sender, receiver, seq, end, sack, maxackwindow, be_liberal)
    if after(sack, receiver.td_end):
        return _failed(be_liberal, WIN_INVALID, f"ACK of data never sent (ack {sack} > "
                       f"highest sequence seen {receiver.td_end})")
    if receiver.td_maxwin and not after(end, (sender.td_end - receiver.td_maxwin - 1) & U32):
        return _failed(be_liberal, WIN_IGNORE, f"old retransmission ignored (ends at {end}, "
                       f"before the window's left edge "
                       f"{(sender.td_end - receiver.td_maxwin) & U32})")
    if not after(sack, (receiver.td_end - maxackwindow - 1) & U32):
        return _failed(be_liberal, WIN_IGNORE, f"overly delayed ACK ignored (ack {sack} < "
                       f"lower bound {(receiver.td_end - maxackwindow) & U32})")

    _update(td, sender, receiver, direction, index, pkt, seq, ack, sack, end)
    return WIN_ACCEPT, ""


def _beyond_right_edge(sender: TcpDirState, receiver: TcpDirState, seq: int, end: int,
                       sack: int, maxackwindow: int, be_liberal: bool) -> tuple[int, str]:
    """Check I failed: tolerate a small overshoot (some stacks send past the window)."""
    overshot = (end - sender.td_maxend + 1) & U32
    if (receiver.td_maxwin
            and after(end, (sender.td_end - receiver.td_maxwin - 1) & U32)
            and after(sack, (receiver.td_end - maxackwindow - 1) & U32)
            and overshot <= receiver.td_maxwin
            and not after(sack, receiver.td_end)):
        # Remember the data so the peer's ACK of it will not look like check III failing.
        sender.td_end = end
        sender.flags |= DATA_UNACKNOWLEDGED
        return _failed(be_liberal, WIN_IGNORE, f"{overshot} bytes beyond the receiver's window "
                       f"ignored (seq {seq} > max {sender.td_maxend})")
    return _failed(be_liberal, WIN_INVALID, f"SEQ beyond the receiver's window "
                   f"(seq {seq} > max {sender.td_maxend})")


def _failed(be_liberal: bool, outcome: int, reason: str) -> tuple[int, str]:
    if be_liberal:
        return WIN_ACCEPT, f"{reason}; accepted: liberal window tracking"
    return outcome, reason


def _update(td: TcpData, sender: TcpDirState, receiver: TcpDirState, direction: int,
            index: int, pkt: Packet, seq: int, ack: int, sack: int, end: int) -> None:
    """The segment fits: widen the windows it proves and count identical ACKs."""
    flags = pkt.tcp_flags
    win_raw = pkt.window
    win = win_raw if flags & SYN else (win_raw << sender.td_scale) & U32
    swin = (win + sack - ack) & U32
    if sender.td_maxwin < swin:
        sender.td_maxwin = swin
    if after(end, sender.td_end):
        sender.td_end = end
        sender.flags |= DATA_UNACKNOWLEDGED
    if flags & ACK:
        if not sender.flags & MAXACK_SET:
            sender.td_maxack = ack
            sender.flags |= MAXACK_SET
        elif after(ack, sender.td_maxack):
            sender.td_maxack = ack
    if receiver.td_maxwin != 0 and after(end, sender.td_maxend):
        receiver.td_maxwin = (receiver.td_maxwin + end - sender.td_maxend) & U32
    right = (sack + win) & U32
    if after(right, (receiver.td_maxend - 1) & U32):
        receiver.td_maxend = right if win else (right + 1) & U32
    if ack == receiver.td_end:
        receiver.flags &= ~DATA_UNACKNOWLEDGED
    if index == ACK_SET:
        if (td.last_dir == direction and td.last_seq == seq and td.last_ack == ack
                and td.last_end == end and td.last_win == win_raw):
            td.retrans += 1
        else:
            td.last_dir = direction
            td.last_seq = seq
            td.last_ack = ack
            td.last_end = end
            td.last_win = win_raw
            td.retrans = 0
