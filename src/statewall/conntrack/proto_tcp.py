"""TCP connection tracking: the state machine of nf_conntrack_proto_tcp.c (Linux 6.18).

How this works
--------------
Conntrack follows a TCP connection as a middlebox that can miss packets and
can be out of sync with the endpoints. Each packet:

1. `tcp_error`: header length, checksum (PREROUTING only), flag combination.
2. `tcp_new` (first packet only): a SYN, or with nf_conntrack_tcp_loose=1 an
   ACK (mid-stream pickup, tracked liberally for life), may start an entry.
3. `tcp_packet`: the packet's class (SYN, SYN/ACK, FIN, ACK, RST) and
   direction select a row of TRANSITIONS; the old state selects the cell:
   a new state, IG (let it through, change nothing, remember it) or IV
   (INVALID). A few cells need more than the table: reopening a closed
   connection with a new SYN, resynchronising on a SYN/ACK that answers an
   ignored SYN, challenge ACKs, simultaneous open and the RST sequence rules.
4. The window check (tcp_window.tcp_in_window) accepts, ignores or rejects.
5. On accept: commit the state, pick the timeout, set ASSURED.

Signals to the core: REPEAT asks it to delete the entry and classify the
packet again as a new connection (reopen); `IPS_DYING` on the entry asks it
to delete the entry after this packet (an RST accepted before any reply).
"""

from __future__ import annotations

from typing import Final

from statewall.checksum import l4_checksum_ok
from statewall.config import Sysctls
from statewall.conntrack import tcp_window as w
from statewall.conntrack.conn import (
    IPS_ASSURED,
    IPS_DYING,
    IPS_FIXED_TIMEOUT,
    IPS_SEEN_REPLY,
    ORIGINAL,
    REPLY,
    Conn,
)
from statewall.conntrack.l4proto import ACCEPT, INVALID, REPEAT, L4Tracker
from statewall.conntrack.tcp_window import (
    ACK_SET,
    CLOSE,
    CLOSE_WAIT,
    ESTABLISHED,
    FIN_SET,
    FIN_WAIT,
    LAST_ACK,
    NONE,
    NONE_SET,
    RST_SET,
    SYN_RECV,
    SYN_SENT,
    SYN_SENT2,
    SYN_SET,
    SYNACK_SET,
    TIME_WAIT,
    TcpData,
    segment_end,
)
from statewall.packet import ACK, CWR, ECE, FIN, PROTO_TCP, PSH, RST, SYN, URG, Packet

__all__ = [
    "ACK_SET", "CLOSE", "CLOSE_WAIT", "ESTABLISHED", "FIN_SET", "FIN_WAIT", "LAST_ACK",
    "NONE", "NONE_SET", "RST_SET", "SYN_RECV", "SYN_SENT", "SYN_SENT2", "SYN_SET",
    "SYNACK_SET", "TIME_WAIT", "IV", "IG", "STATE_NAMES", "CLASS_NAMES", "TRANSITIONS",
    "TRACKER", "TcpData", "tcp_error", "tcp_new", "tcp_packet", "tcp_can_early_drop",
]

STATE_NAMES: Final = (
    "NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
    "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2",
)
CLASS_NAMES: Final = ("SYN", "SYN/ACK", "FIN", "ACK", "RST", "NONE")
DIRECTION_NAMES: Final = ("originator", "responder")

IV: Final = 10  # TCP_CONNTRACK_MAX: the packet is INVALID
IG: Final = 11  # TCP_CONNTRACK_IGNORE: let it through, change nothing, remember it

NO, SS, SR, ES, FW = NONE, SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT
CW, LA, TW, CL, S2 = CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE, SYN_SENT2

# tcp_conntracks[direction][class][old state] -> new state, IV or IG.
TRANSITIONS: Final[tuple[tuple[tuple[int, ...], ...], ...]] = (
    (  # ORIGINAL: packets from the connection's initiator
        #  NO  SS  SR  ES  FW  CW  LA  TW  CL  S2
        # SYN opens or is retransmitted; later the endpoints may have restarted without
        # us, so pass it and remember it; TW/CL may reopen; S2: late retransmission.
        (SS, SS, IG, IG, IG, IG, IG, SS, SS, S2),
        # SYN/ACK from the initiator only answers the responder's SYN (simultaneous open).
        (IV, IV, SR, IV, IV, IV, IV, IV, IV, SR),
        # FIN needs a SYN/ACK first; then FIN_WAIT, a FIN from both sides -> LAST_ACK.
        (IV, IV, FW, FW, LA, LA, LA, TW, CL, IV),
        # ACK: NO is a mid-stream pickup; none before the SYN/ACK; LA -> TW is the last ACK.
        (ES, IV, ES, ES, CW, CW, TW, TW, CL, IV),
        # RST closes anything that exists (sequence rules in _rst_rules).
        (IV, CL, CL, CL, CL, CL, CL, CL, CL, CL),
        # No SYN/FIN/ACK/RST: unreachable after tcp_error, invalid everywhere.
        (IV, IV, IV, IV, IV, IV, IV, IV, IV, IV),
    ),
    (  # REPLY: packets from the responder
        #  NO  SS  SR  ES  FW  CW  LA  TW  CL  S2
        # SYN: simultaneous open from SS/S2; in TW the port may have become a client
        # (reopen); anywhere else the responder has no business sending a SYN.
        (IV, S2, IV, IV, IV, IV, IV, SS, IV, S2),
        # SYN/ACK answers the SYN; later ones are retransmissions or answer ignored SYNs.
        (IV, SR, IG, IG, IG, IG, IG, IG, IG, SR),
        # FIN needs a SYN/ACK first; same closing progression as the initiator's.
        (IV, IV, FW, FW, LA, LA, LA, TW, CL, IV),
        # ACK in SS/S2 may be a challenge ACK or a half-open peer; SR: answers a late SYN.
        (IV, IG, SR, ES, CW, CW, TW, TW, CL, IG),
        # RST closes anything that exists (sequence rules in _rst_rules).
        (IV, CL, CL, CL, CL, CL, CL, CL, CL, CL),
        # No SYN/FIN/ACK/RST: unreachable after tcp_error, invalid everywhere.
        (IV, IV, IV, IV, IV, IV, IV, IV, IV, IV),
    ),
)

# Why a (direction, class) cell is IV, for the INVALID reason.
_INVALID_WHY: Final = (
    (
        "only the first packet can be a SYN from NONE",  # never: SYN is valid in every state
        "the originator sends a SYN/ACK only in a simultaneous open",
        "no SYN/ACK seen yet",
        "no SYN/ACK seen yet",
        "an RST cannot start a connection",
        "no SYN, FIN, ACK or RST flag",
    ),
    (
        "the responder may send a SYN only in a simultaneous open or to reopen from TIME_WAIT",
        "no connection to answer",
        "no SYN/ACK seen yet",
        "no connection to acknowledge",
        "an RST cannot start a connection",
        "no SYN, FIN, ACK or RST flag",
    ),
)
# Why a (direction, class) cell is IG, for the reason of an ignored packet.
_IGNORE_WHY: Final = (
    (
        "the endpoints may have restarted; remembered to resynchronise on the SYN/ACK",
        "", "", "", "", "",
    ),
    (
        "", "a retransmission, or the answer to an ignored SYN", "", "possible challenge ACK "
        "or half-open peer", "", "",
    ),
)


def _flag_class(flags: int) -> int:
    if flags & RST:
        return RST_SET
    if flags & SYN:
        return SYNACK_SET if flags & ACK else SYN_SET
    if flags & FIN:
        return FIN_SET
    if flags & ACK:
        return ACK_SET
    return NONE_SET


# get_conntrack_index for every value of the flags byte.
CLASS_OF_FLAGS: Final = tuple(_flag_class(flags) for flags in range(256))

_SIGNIFICANT: Final = FIN | SYN | RST | ACK | URG  # PSH, ECE and CWR may accompany anything
_VALID_COMBINATIONS: Final = frozenset((
    SYN, SYN | URG, SYN | ACK, RST, RST | ACK,
    FIN | ACK, FIN | ACK | URG, ACK, ACK | URG,
))
VALID_FLAGS: Final = tuple((flags & _SIGNIFICANT) in _VALID_COMBINATIONS for flags in range(256))
_FLAG_NAMES: Final = ((SYN, "SYN"), (FIN, "FIN"), (RST, "RST"), (ACK, "ACK"), (URG, "URG"),
                      (PSH, "PSH"), (ECE, "ECE"), (CWR, "CWR"))


def flag_names(flags: int) -> str:
    names = [name for bit, name in _FLAG_NAMES if flags & bit]
    return "+".join(names) if names else "no flags"


def _move_reason(index: int, old: int, new: int) -> str:
    if old == new:
        return f"{CLASS_NAMES[index]} in {STATE_NAMES[old]}: stays {STATE_NAMES[new]}"
    return f"{CLASS_NAMES[index]} in {STATE_NAMES[old]}: {STATE_NAMES[old]} → {STATE_NAMES[new]}"


# Reasons for accepted transitions, built once: [class][old][new].
_MOVE_REASONS: Final = tuple(
    tuple(tuple(_move_reason(index, old, new) for new in range(10)) for old in range(10))
    for index in range(6)
)


# -- tcp_error --------------------------------------------------------------------

def tcp_error(pkt: Packet, cfg: Sysctls, in_prerouting: bool) -> str | None:
    """Header length, checksum and flag validation; a string makes the packet INVALID."""
    data = pkt.data
    l4 = pkt.l4_off
    present = len(data) - l4
    if present < 20:
        return f"truncated TCP header ({present} of 20 bytes present)"
    header_len = (data[l4 + 12] >> 4) * 4
    if header_len < 20:
        return f"bad TCP data offset ({header_len // 4} words, minimum 5)"
    if present < header_len:
        return f"truncated TCP header (data offset says {header_len} bytes, {present} present)"
    if (cfg.nf_conntrack_checksum and in_prerouting
            and not l4_checksum_ok(pkt.family, pkt.src, pkt.dst, PROTO_TCP, data[l4:])):
        return "bad TCP checksum"
    if not VALID_FLAGS[pkt.tcp_flags]:
        return f"invalid TCP flag combination {flag_names(pkt.tcp_flags & _SIGNIFICANT)}"
    return None


# -- tcp_new ----------------------------------------------------------------------

def tcp_new(conn: Conn, pkt: Packet, cfg: Sysctls) -> str | None:
    """May this first packet start a connection? Set up the originator's window."""
    index = CLASS_OF_FLAGS[pkt.tcp_flags]
    new = TRANSITIONS[ORIGINAL][index][NONE]
    if new == IV:
        return f"{CLASS_NAMES[index]} cannot start a connection (only a SYN or an ACK can)"
    if new != SYN_SENT and not cfg.nf_conntrack_tcp_loose:
        return (f"{CLASS_NAMES[index]} without a SYN cannot start a connection "
                "(nf_conntrack_tcp_loose=0)")
    td = TcpData()
    sender = td.seen[ORIGINAL]
    end = segment_end(pkt)
    window = pkt.window if pkt.window else 1
    sender.td_end = end
    sender.td_maxwin = window
    if new == SYN_SENT:
        sender.td_maxend = end
        w.parse_options(pkt, sender)
    else:
        # Picked up mid-stream: the history (scaling, SACK) is unknown, so never
        # judge this connection's windows strictly.
        sender.td_maxend = (end + window) & w.U32
        td.seen[ORIGINAL].flags = td.seen[REPLY].flags = w.SACK_PERM | w.BE_LIBERAL
    conn.proto_data = td
    conn.proto_state = NONE
    return None


# -- tcp_packet -------------------------------------------------------------------

# Outcomes of _rst_rules, combined as bits.
_RST_KEEP_STATE: Final = 1
_RST_SKIP_WINDOW: Final = 2
_RST_INVALID: Final = 4

# SYN_SENT2 has no sysctl; the kernel's table gives it SYN_SENT's default.
SYN_SENT2_TIMEOUT: Final = 120


def tcp_packet(conn: Conn, pkt: Packet, direction: int, ctinfo: int, now: float,
               cfg: Sysctls) -> tuple[int, str]:
    """nf_conntrack_tcp_packet: the table lookup, its special cells, the window check."""
    td: TcpData = conn.proto_data
    old = conn.proto_state
    index = CLASS_OF_FLAGS[pkt.tcp_flags]
    new = TRANSITIONS[direction][index][old]
    skip_window = False
    if new in (ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK):
        pass  # the common cells: nothing beyond the window check
    elif new == IV:
        return INVALID, (f"{CLASS_NAMES[index]} from the {DIRECTION_NAMES[direction]} in "
                         f"{STATE_NAMES[old]} is invalid: {_INVALID_WHY[direction][index]}")
    elif new == IG or (new == SYN_SENT and old >= TIME_WAIT):
        if new == SYN_SENT and _may_reopen(td, direction):
            return REPEAT, f"SYN in {STATE_NAMES[old]} reopens the connection: old entry deleted"
        if not (index == SYNACK_SET and td.last_index == SYN_SET and td.last_dir != direction
                and pkt.ack == td.last_end):
            return ACCEPT, _ignore(td, pkt, direction, index, old)
        # This SYN/ACK answers the SYN we ignored: the endpoints restarted, follow them.
        _resync(td, direction)
        old, new = SYN_SENT, SYN_RECV
    elif new == TIME_WAIT:
        if (old == LAST_ACK and index == ACK_SET and td.last_dir != direction
                and td.last_index == SYN_SET and td.last_flags & w.EXP_CHALLENGE_ACK):
            td.last_flags &= ~w.EXP_CHALLENGE_ACK
            return ACCEPT, "challenge ACK in LAST_ACK ignored (answers a SYN, not the last FIN)"
    elif new == SYN_SENT2:
        td.last_flags |= w.SIMULTANEOUS_OPEN
    elif new == SYN_RECV:
        if direction == REPLY and index == ACK_SET and td.last_flags & w.SIMULTANEOUS_OPEN:
            new = ESTABLISHED  # the ACK completing a simultaneous open
    elif new == CLOSE and index == RST_SET:
        rst = _rst_rules(conn, td, pkt, direction, old, cfg)
        if rst & _RST_INVALID:
            return INVALID, (f"RST with a sequence number below what the peer already "
                             f"acknowledged (seq {pkt.seq} < {td.seen[1 - direction].td_maxack})")
        if rst & _RST_KEEP_STATE:
            new = old
        skip_window = rst & _RST_SKIP_WINDOW != 0

    note = ""
    if not skip_window:
        verdict, note = w.tcp_in_window(td, conn.proto_state, direction, index, pkt,
                                        td.seen[direction].flags & w.BE_LIBERAL != 0
                                        or cfg.nf_conntrack_tcp_be_liberal != 0)
        if verdict == w.WIN_IGNORE:
            return ACCEPT, note
        if verdict == w.WIN_INVALID:
            return INVALID, note + _handle_invalid(conn, td, direction, index, now, cfg)
    return _commit(conn, td, index, direction, old, new, now, cfg, note)


def _may_reopen(td: TcpData, direction: int) -> bool:
    """A SYN in TIME_WAIT/CLOSE starts afresh after a FIN close, or right after our own RST."""
    closed_by_fin = (td.seen[0].flags | td.seen[1].flags) & w.CLOSE_INIT
    return bool(closed_by_fin) or (td.last_dir == direction and td.last_index == RST_SET)


def _ignore(td: TcpData, pkt: Packet, direction: int, index: int, old: int) -> str:
    """Let the packet through unchanged, but remember it (it may prove we are out of sync)."""
    td.last_index = index
    td.last_dir = direction
    td.last_seq = pkt.seq
    td.last_end = segment_end(pkt)
    td.last_win = pkt.window
    if index == SYN_SET and direction == ORIGINAL:
        _remember_syn_options(td, pkt)
        if old == LAST_ACK:
            # The peer may answer this SYN with a challenge ACK, not the last ACK.
            td.last_flags |= w.EXP_CHALLENGE_ACK
    if old == SYN_SENT and index == ACK_SET and direction == REPLY:
        td.last_ack = pkt.ack  # a challenge ACK: an RST may follow at exactly this sequence
    why = _IGNORE_WHY[direction][index] or "the firewall may be out of sync"
    return f"{CLASS_NAMES[index]} in {STATE_NAMES[old]} ignored ({why})"


def _remember_syn_options(td: TcpData, pkt: Packet) -> None:
    seen = w.TcpDirState()
    w.parse_options(pkt, seen)
    td.last_flags = seen.flags & (w.WINDOW_SCALE | w.SACK_PERM)
    td.last_wscale = seen.td_scale if seen.flags & w.WINDOW_SCALE else 0


def _resync(td: TcpData, direction: int) -> None:
    """Rebuild the SYN sender's window from the remembered SYN; forget the other side."""
    syn_side = td.seen[td.last_dir]
    syn_side.td_end = td.last_end
    syn_side.td_maxend = td.last_end
    syn_side.td_maxwin = td.last_win if td.last_win else 1
    syn_side.td_scale = td.last_wscale
    td.last_flags &= ~w.EXP_CHALLENGE_ACK
    syn_side.flags = td.last_flags
    td.seen[direction].reset()


def _rst_rules(conn: Conn, td: TcpData, pkt: Packet, direction: int, old: int,
               cfg: Sysctls) -> int:
    """Decide how an RST is checked (the CLOSE case of nf_conntrack_tcp_packet)."""
    if tcp_can_early_drop(conn):
        # Closing already: the tuple may have been reused, the old numbers mean nothing.
        return _RST_SKIP_WINDOW
    result = 0
    peer = td.seen[1 - direction]
    seq = pkt.seq
    status = conn.status
    established = old == ESTABLISHED and status & IPS_ASSURED != 0
    if peer.flags & w.MAXACK_SET and td.last_index != SYN_SET:
        if seq == 0 and not established:
            return 0  # probably answers a SYN we let through
        if w.before(seq, peer.td_maxack) and not cfg.nf_conntrack_tcp_ignore_invalid_rst:
            return _RST_INVALID
        if not established or seq == peer.td_maxack:
            return 0
        if td.last_index == ACK_SET and td.last_dir == direction and seq == td.last_end:
            return 0  # RST right after this side's last data segment
        # In window but not exactly where expected: keep the state so the peer can send
        # a challenge ACK (RFC 5961).
        result = _RST_KEEP_STATE
    if ((status & IPS_SEEN_REPLY and td.last_index == SYN_SET and td.last_dir != direction)
            or (not status & IPS_ASSURED and td.last_index == ACK_SET)) \
            and pkt.ack == td.last_end:
        # Answers the other side's SYN, or an ACK, that we let through while ignoring:
        # it may acknowledge data we never saw. (The direction test is a 2026 stable fix
        # that the reference 6.18.44 kernel carries.)
        return result | _RST_SKIP_WINDOW
    if (old == SYN_SENT and td.last_index == ACK_SET and td.last_dir == REPLY
            and seq == td.last_ack):
        return result | _RST_SKIP_WINDOW  # answers a challenge ACK we let through
    return result


def _handle_invalid(conn: Conn, td: TcpData, direction: int, index: int, now: float,
                    cfg: Sysctls) -> str:
    """Out-of-window FIN/RST from both sides: the endpoints are done, don't wait 5 days."""
    if (not conn.status & IPS_ASSURED or conn.status & IPS_FIXED_TIMEOUT
            or (index != RST_SET and index != FIN_SET)):
        return ""
    if td.last_dir != direction and (td.last_index == FIN_SET or td.last_index == RST_SET):
        remaining = conn.expires - now
        unack = cfg.nf_conntrack_tcp_timeout_unacknowledged
        if remaining >= 120 and remaining > unack:
            conn.expires = now + unack
            return f"; remaining lifetime cut to {unack} s"
        return ""
    td.last_index = index
    td.last_dir = direction
    return ""


def _commit(conn: Conn, td: TcpData, index: int, direction: int, old: int, new: int,
            now: float, cfg: Sysctls, note: str) -> tuple[int, str]:
    """An accepted packet: store the state, choose the timeout, maybe set ASSURED."""
    td.last_index = index
    td.last_dir = direction
    conn.proto_state = new
    if new == FIN_WAIT and old != FIN_WAIT:
        td.seen[direction].flags |= w.CLOSE_INIT
    timeout = _timeout(td, index, new, cfg)
    reason = _MOVE_REASONS[index][old][new]
    status = conn.status
    if not status & IPS_SEEN_REPLY:
        if index == RST_SET:
            conn.status = status | IPS_DYING
            return ACCEPT, f"{reason}; RST before any reply: connection deleted"
        if index == SYN_SET and old == SYN_SENT:
            return ACCEPT, f"{reason}; SYN retransmission does not refresh the timeout"
        unack = cfg.nf_conntrack_tcp_timeout_unacknowledged
        if new == ESTABLISHED and timeout > unack:
            timeout = unack  # a pickup nobody answered yet does not get 5 days
    elif (not status & IPS_ASSURED and new == ESTABLISHED
          and old in (SYN_RECV, ESTABLISHED)):
        conn.status = status | IPS_ASSURED
        reason = f"{reason}; connection assured"
    conn.set_timeout(now, timeout)
    if note:
        return ACCEPT, f"{reason}; {note}"
    return ACCEPT, reason


def _timeout(td: TcpData, index: int, new: int, cfg: Sysctls) -> int:
    """Timeout for the new state, shortened while the connection looks stuck."""
    state_timeout = state_timeout_of(cfg, new)
    retrans = cfg.nf_conntrack_tcp_timeout_max_retrans
    if td.retrans >= cfg.nf_conntrack_tcp_max_retrans and state_timeout > retrans:
        return retrans
    if index == RST_SET:
        return cfg.nf_conntrack_tcp_timeout_close
    unack = cfg.nf_conntrack_tcp_timeout_unacknowledged
    if (td.seen[0].flags | td.seen[1].flags) & w.DATA_UNACKNOWLEDGED and state_timeout > unack:
        return unack
    if td.last_win == 0 and state_timeout > retrans:
        return retrans
    return state_timeout


def state_timeout_of(cfg: Sysctls, state: int) -> int:
    """The sysctl timeout of a TCP state."""
    if state == ESTABLISHED:
        return cfg.nf_conntrack_tcp_timeout_established
    if state == SYN_SENT:
        return cfg.nf_conntrack_tcp_timeout_syn_sent
    if state == SYN_RECV:
        return cfg.nf_conntrack_tcp_timeout_syn_recv
    if state == FIN_WAIT:
        return cfg.nf_conntrack_tcp_timeout_fin_wait
    if state == CLOSE_WAIT:
        return cfg.nf_conntrack_tcp_timeout_close_wait
    if state == LAST_ACK:
        return cfg.nf_conntrack_tcp_timeout_last_ack
    if state == TIME_WAIT:
        return cfg.nf_conntrack_tcp_timeout_time_wait
    if state == CLOSE:
        return cfg.nf_conntrack_tcp_timeout_close
    return SYN_SENT2_TIMEOUT


def tcp_can_early_drop(conn: Conn) -> bool:
    """Closing connections may be evicted by the GC's early drop even when ASSURED."""
    state = conn.proto_state
    return state in (FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE)


def tcp_state_name(conn: Conn) -> str:
    return STATE_NAMES[conn.proto_state]


TRACKER: Final = L4Tracker(
    name="tcp",
    proto=PROTO_TCP,
    error=tcp_error,
    new=tcp_new,
    packet=tcp_packet,
    state_name=tcp_state_name,
    can_early_drop=tcp_can_early_drop,
)
