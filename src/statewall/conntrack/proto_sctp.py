"""The SCTP tracker (net/netfilter/nf_conntrack_proto_sctp.c).

How this works:

* `sctp_error` drops what cannot be parsed: short common header, bad CRC32c
  (at PREROUTING), no chunks, a zero-length chunk, COOKIE_ECHO/COOKIE_ACK not
  first, INIT/INIT_ACK/SHUTDOWN_COMPLETE not alone (`do_basic_checks`).
* `sctp_new` decides whether the first packet may create an entry (never with
  ABORT, SHUTDOWN_COMPLETE or COOKIE_ACK; every chunk must be valid from state
  NONE; an INIT must carry verification tag 0) and learns the first tags.
* `sctp_packet` checks verification tags (RFC 9260 8.5) and walks the chunks
  through `TRANSITIONS`, one chunk at a time, as the kernel does. The timeout
  is the one of the final state; entering ESTABLISHED sets ASSURED.

Chunks absent from the table (DATA, SACK, ...) leave the state as it is.
"""

from __future__ import annotations

from statewall.config import Sysctls
from statewall.conntrack.conn import IPS_ASSURED, IPS_CONFIRMED, ORIGINAL, Conn
from statewall.conntrack.l4proto import ACCEPT, INVALID, L4Tracker
from statewall.packet import PROTO_SCTP, Packet

# States (enum sctp_conntrack); IV marks a transition that makes the packet INVALID.
NONE, CLOSED, COOKIE_WAIT, COOKIE_ECHOED, ESTABLISHED = 0, 1, 2, 3, 4
SHUTDOWN_SENT, SHUTDOWN_RECD, SHUTDOWN_ACK_SENT, HEARTBEAT_SENT = 5, 6, 7, 8
IV = 9
STATE_NAMES = (
    "NONE", "CLOSED", "COOKIE_WAIT", "COOKIE_ECHOED", "ESTABLISHED", "SHUTDOWN_SENT",
    "SHUTDOWN_RECD", "SHUTDOWN_ACK_SENT", "HEARTBEAT_SENT",
)

# Chunk types (RFC 9260 3.2).
DATA, INIT, INIT_ACK, SACK, HEARTBEAT, HEARTBEAT_ACK, ABORT = 0, 1, 2, 3, 4, 5, 6
SHUTDOWN, SHUTDOWN_ACK, ERROR, COOKIE_ECHO, COOKIE_ACK = 7, 8, 9, 10, 11
SHUTDOWN_COMPLETE = 14
CHUNK_FLAG_T = 0x01  # ABORT / SHUTDOWN_COMPLETE: "tag reflected"

COMMON_HEADER_LEN = 12
CHUNK_HEADER_LEN = 4
INIT_HEADER_LEN = 16  # initiate tag, a_rwnd, streams, initial TSN
SCTP_FLAG_HEARTBEAT_VTAG_FAILED = 1

_CL, _CW, _CE, _ES = CLOSED, COOKIE_WAIT, COOKIE_ECHOED, ESTABLISHED
_SS, _SR, _SA, _HS, _NO = SHUTDOWN_SENT, SHUTDOWN_RECD, SHUTDOWN_ACK_SENT, HEARTBEAT_SENT, NONE

# TRANSITIONS[direction][chunk type] -> new state per old state, columns:
#              NO   CL   CW   CE   ES   SS   SR   SA   HS
TRANSITIONS: tuple[dict[int, tuple[int, ...]], dict[int, tuple[int, ...]]] = ({
    # ORIGINAL direction (the side that sent the first packet).
    # INIT starts an association; it restarts one being shut down (CLOSED) and
    # turns a heartbeat-only secondary path into a real handshake.
    INIT:              (_CL, _CL, _CW, _CE, _ES, _CL, _CL, _SA, _CW),
    # INIT_ACK belongs to the other side; from the initiator it changes nothing.
    INIT_ACK:          (_CL, _CL, _CW, _CE, _ES, _SS, _SR, _SA, _CL),
    # ABORT closes whatever there was.
    ABORT:             (_CL, _CL, _CL, _CL, _CL, _CL, _CL, _CL, _CL),
    # SHUTDOWN on an established association starts the close.
    SHUTDOWN:          (_CL, _CL, _CW, _CE, _SS, _SS, _SR, _SA, _CL),
    # SHUTDOWN_ACK answers a SHUTDOWN; as a first packet it is an OOTB answer.
    SHUTDOWN_ACK:      (_SA, _CL, _CW, _CE, _ES, _SA, _SA, _SA, _SA),
    # ERROR is informational here.
    ERROR:             (_CL, _CL, _CW, _CE, _ES, _SS, _SR, _SA, _CL),
    # COOKIE_ECHO, third step of the handshake.
    COOKIE_ECHO:       (_CL, _CL, _CE, _CE, _ES, _SS, _SR, _SA, _CL),
    # COOKIE_ACK from the initiator completes a simultaneous open only.
    COOKIE_ACK:        (_CL, _CL, _CW, _ES, _ES, _SS, _SR, _SA, _CL),
    # SHUTDOWN_COMPLETE ends a close in progress.
    SHUTDOWN_COMPLETE: (_CL, _CL, _CW, _CE, _ES, _SS, _SR, _CL, _CL),
    # HEARTBEAT as first packet tracks a multihomed secondary path.
    HEARTBEAT:         (_HS, _CL, _CW, _CE, _ES, _SS, _SR, _SA, _HS),
    # HEARTBEAT_ACK from the initiator changes nothing.
    HEARTBEAT_ACK:     (_CL, _CL, _CW, _CE, _ES, _SS, _SR, _SA, _HS),
}, {
    # REPLY direction; a reply never meets state NONE or (but for heartbeats) HS.
    # INIT from the responder: handshake collision, state kept.
    INIT:              (IV, _CL, _CW, _CE, _ES, _SS, _SR, _SA, IV),
    # INIT_ACK answers the INIT: CLOSED becomes COOKIE_WAIT.
    INIT_ACK:          (IV, _CW, _CW, _CE, _ES, _SS, _SR, _SA, IV),
    # ABORT closes.
    ABORT:             (IV, _CL, _CL, _CL, _CL, _CL, _CL, _CL, IV),
    # SHUTDOWN from the responder: SHUTDOWN_RECD.
    SHUTDOWN:          (IV, _CL, _CW, _CE, _SR, _SS, _SR, _SA, IV),
    # SHUTDOWN_ACK answering the initiator's SHUTDOWN.
    SHUTDOWN_ACK:      (IV, _CL, _CW, _CE, _ES, _SA, _SA, _SA, IV),
    # ERROR in answer to COOKIE_ECHO (stale cookie) closes.
    ERROR:             (IV, _CL, _CW, _CL, _ES, _SS, _SR, _SA, IV),
    # COOKIE_ECHO from the responder: simultaneous open.
    COOKIE_ECHO:       (IV, _CL, _CE, _CE, _ES, _SS, _SR, _SA, IV),
    # COOKIE_ACK, last step of the handshake: ESTABLISHED.
    COOKIE_ACK:        (IV, _CL, _CW, _ES, _ES, _SS, _SR, _SA, IV),
    # SHUTDOWN_COMPLETE ends a close in progress.
    SHUTDOWN_COMPLETE: (IV, _CL, _CW, _CE, _ES, _SS, _SR, _CL, IV),
    # HEARTBEAT from the responder keeps the state.
    HEARTBEAT:         (IV, _CL, _CW, _CE, _ES, _SS, _SR, _SA, _HS),
    # HEARTBEAT_ACK confirms a secondary path: ESTABLISHED.
    HEARTBEAT_ACK:     (IV, _CL, _CW, _CE, _ES, _SS, _SR, _SA, _ES),
})

# Chunks whose presence exempts the packet from the plain vtag check (they
# carry their own tag rules).
_OWN_TAG_RULES = (
    1 << INIT | 1 << SHUTDOWN_COMPLETE | 1 << COOKIE_ECHO | 1 << ABORT | 1 << SHUTDOWN_ACK
    | 1 << HEARTBEAT | 1 << HEARTBEAT_ACK
)
_NEVER_FIRST = 1 << ABORT | 1 << SHUTDOWN_COMPLETE | 1 << COOKIE_ACK


class SctpData:
    """Per-entry SCTP data (struct ip_ct_sctp), kept in `Conn.proto_data`."""

    __slots__ = ("vtag", "init", "flags", "last_dir")

    def __init__(self) -> None:
        self.vtag = [0, 0]  # verification tag expected in each direction
        self.init = [False, False]  # an INIT was seen from that direction
        self.flags = 0
        self.last_dir = ORIGINAL


Chunk = tuple[int, int, int]  # (type, flags, offset of the chunk header)


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC32c (Castagnoli), the SCTP checksum."""
    crc = 0xFFFFFFFF
    table = _CRC32C
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def sctp_checksum_ok(segment: bytes) -> bool:
    """CRC32c over the packet with the checksum field zeroed, sent low byte first."""
    computed = crc32c(segment[:8] + b"\x00\x00\x00\x00" + segment[12:])
    return int.from_bytes(segment[8:12], "little") == computed


def chunks(data: bytes, off: int) -> list[Chunk]:
    """The chunk headers after the common header, walked as the kernel walks them.

    Stops at a zero-length chunk (which `sctp_error` rejects) and where fewer
    than 4 bytes remain.
    """
    found: list[Chunk] = []
    pos = off + COMMON_HEADER_LEN
    end = len(data)
    while pos + CHUNK_HEADER_LEN <= end:
        length = data[pos + 2] << 8 | data[pos + 3]
        found.append((data[pos], data[pos + 1], pos))
        if not length:
            break
        pos += (length + 3) & ~3
    return found


def _basic_checks(data: bytes, off: int) -> str | None:
    """do_basic_checks: chunk placement rules."""
    alone = False
    walked = chunks(data, off)
    for index, (ctype, _flags, pos) in enumerate(walked):
        if ctype in (INIT, INIT_ACK, SHUTDOWN_COMPLETE):
            alone = True
        if index and (alone or ctype in (COOKIE_ACK, COOKIE_ECHO)):
            return f"INVALID: SCTP chunk {ctype} in position {index} (must be first or alone)"
        if not (data[pos + 2] | data[pos + 3]):
            return f"INVALID: SCTP zero-length chunk (type {ctype})"
    if not walked:
        return "INVALID: SCTP packet without chunks"
    return None


def sctp_error(pkt: Packet, cfg: Sysctls, in_prerouting: bool) -> str | None:
    """sctp_error and do_basic_checks: what makes a packet unusable whatever the entry."""
    data = pkt.data
    off = pkt.l4_off
    if len(data) - off < COMMON_HEADER_LEN:
        return "INVALID: SCTP short packet (common header needs 12 bytes)"
    if in_prerouting and cfg.nf_conntrack_checksum and not sctp_checksum_ok(data[off:]):
        return "INVALID: SCTP bad CRC32c checksum"
    return _basic_checks(data, off)


def _vtag(data: bytes, off: int) -> int:
    return int.from_bytes(data[off + 4:off + 8], "big")


def _init_tag(data: bytes, pos: int) -> int | None:
    """The initiate tag of an INIT or INIT_ACK chunk at `pos`, None when truncated."""
    start = pos + CHUNK_HEADER_LEN
    if len(data) < start + INIT_HEADER_LEN:
        return None
    return int.from_bytes(data[start:start + 4], "big")


def sctp_new(conn: Conn, pkt: Packet, cfg: Sysctls) -> str | None:
    """May this first packet create an entry? Learn the tags it tells (sctp_new)."""
    data = pkt.data
    off = pkt.l4_off
    walked = chunks(data, off)
    seen = 0
    for ctype, _flags, _pos in walked:
        seen |= 1 << ctype
    if seen & _NEVER_FIRST:
        return "INVALID: SCTP ABORT, SHUTDOWN_COMPLETE or COOKIE_ACK cannot start a connection"
    ct = SctpData()
    vtag = _vtag(data, off)
    for ctype, _flags, pos in walked:
        row = TRANSITIONS[ORIGINAL].get(ctype)
        if row is None or row[NONE] in (NONE, IV):
            return f"INVALID: SCTP chunk {ctype} cannot start a connection"
        if ctype == INIT:
            init_tag = _init_tag(data, pos)
            if vtag:
                return "INVALID: SCTP INIT with a non-zero verification tag"
            if init_tag is None:
                return "INVALID: SCTP INIT chunk truncated"
            ct.vtag[1] = init_tag
        elif ctype == HEARTBEAT:
            ct.vtag[0] = vtag
        else:
            # An out-of-the-blue packet: the answer will carry this tag.
            ct.vtag[1] = vtag
    conn.proto_data = ct
    conn.proto_state = NONE
    return None


def sctp_packet(
    conn: Conn, pkt: Packet, direction: int, ctinfo: int, now: float, cfg: Sysctls
) -> tuple[int, str]:
    data = pkt.data
    off = pkt.l4_off
    ct = conn.proto_data
    if not isinstance(ct, SctpData):
        return INVALID, "INVALID: SCTP entry without SCTP data"
    walked = chunks(data, off)
    seen = 0
    for ctype, _flags, _pos in walked:
        seen |= 1 << ctype
    vtag = _vtag(data, off)
    if not seen & _OWN_TAG_RULES and vtag != ct.vtag[direction]:
        expected = ct.vtag[direction]
        return INVALID, f"INVALID: SCTP verification tag {vtag:#x} (expected {expected:#x})"
    old_state = new_state = NONE
    ignore = False
    for ctype, flags, pos in walked:
        problem = _tag_rule(ct, ctype, flags, vtag, direction, seen, ignore)
        if problem == _SKIP:
            ignore = True
            continue
        if problem:
            return INVALID, problem
        old_state = conn.proto_state
        row = TRANSITIONS[direction].get(ctype)
        new_state = old_state if row is None else row[old_state]
        if new_state == IV:
            return INVALID, (
                f"INVALID: SCTP chunk {ctype} not allowed in {STATE_NAMES[old_state]} "
                f"({'reply' if direction else 'original'} direction)"
            )
        if ctype in (INIT, INIT_ACK):
            problem = _learn_init(conn, ct, ctype, data, pos, direction)
            if problem == _SKIP:
                ignore = True
            elif problem:
                return INVALID, problem
        conn.proto_state = new_state
        if new_state != old_state and new_state == ESTABLISHED:
            conn.status |= IPS_ASSURED
    if ignore:
        return ACCEPT, "SCTP: accepted without refreshing the timeout"
    conn.set_timeout(now, _timeout(cfg, new_state))
    return ACCEPT, "SCTP: " + STATE_NAMES[new_state]


_SKIP = "skip"


def _tag_rule(ct: SctpData, ctype: int, flags: int, vtag: int, direction: int, seen: int,
              ignore: bool) -> str:
    """The per-chunk verification-tag rules (RFC 9260 8.5.1); '' when the chunk passes."""
    own, peer = ct.vtag[direction], ct.vtag[1 - direction]
    if ctype == INIT:
        return "INVALID: SCTP INIT with a non-zero verification tag" if vtag else ""
    if ctype in (ABORT, SHUTDOWN_COMPLETE):
        expected = peer if flags & CHUNK_FLAG_T else own
        return "" if vtag == expected else "INVALID: SCTP ABORT/SHUTDOWN_COMPLETE with a wrong tag"
    if ctype == COOKIE_ECHO:
        return "" if vtag == own else "INVALID: SCTP COOKIE_ECHO with a wrong verification tag"
    if ctype == COOKIE_ACK:
        ct.init[0] = ct.init[1] = False
        return ""
    if ctype in (HEARTBEAT, HEARTBEAT_ACK):
        return _heartbeat_tag(ct, ctype, vtag, direction, seen, ignore)
    return ""


def _heartbeat_tag(ct: SctpData, ctype: int, vtag: int, direction: int, seen: int,
                   ignore: bool) -> str:
    """Heartbeats may reveal that the peers restarted with new tags (port reuse)."""
    if ct.vtag[direction] == 0:
        ct.vtag[direction] = vtag
        return ""
    if vtag == ct.vtag[direction]:
        ct.flags &= ~SCTP_FLAG_HEARTBEAT_VTAG_FAILED
        return ""
    if seen & 1 << DATA or ignore:
        return "INVALID: SCTP heartbeat with a wrong verification tag"
    if ctype == HEARTBEAT:
        ct.flags |= SCTP_FLAG_HEARTBEAT_VTAG_FAILED
        ct.last_dir = direction
        return _SKIP
    if not ct.flags & SCTP_FLAG_HEARTBEAT_VTAG_FAILED or ct.last_dir == direction:
        return "INVALID: SCTP HEARTBEAT_ACK with a wrong verification tag"
    # The heartbeat with the unknown tag was answered: adopt the new tags.
    ct.flags &= ~SCTP_FLAG_HEARTBEAT_VTAG_FAILED
    ct.vtag[direction] = vtag
    ct.vtag[1 - direction] = 0
    return ""


def _learn_init(conn: Conn, ct: SctpData, ctype: int, data: bytes, pos: int,
                direction: int) -> str:
    """Note the tag an INIT or INIT_ACK announces for the other direction."""
    init_tag = _init_tag(data, pos)
    if init_tag is None:
        return "INVALID: SCTP INIT/INIT_ACK chunk truncated"
    other = 1 - direction
    if ctype == INIT:
        if ct.init[direction] and ct.init[other]:
            ct.init[other] = False
        ct.init[direction] = True
        ct.vtag[other] = init_tag
        # A retransmitted INIT must not keep a dead entry alive.
        if conn.proto_state == CLOSED and conn.status & IPS_CONFIRMED:
            return _SKIP
        return ""
    known = ct.vtag[other]
    if not ct.init[other] and known and known != init_tag:
        return "INVALID: SCTP INIT_ACK announcing a tag other than the one in use"
    if ct.init[direction] and ct.init[other] and known != init_tag:
        return "INVALID: SCTP INIT_ACK in an INIT collision with a mismatched tag"
    ct.vtag[other] = init_tag
    return ""


def _timeout(cfg: Sysctls, state: int) -> int:
    if state == ESTABLISHED:
        return cfg.nf_conntrack_sctp_timeout_established
    if state == CLOSED:
        return cfg.nf_conntrack_sctp_timeout_closed
    if state == COOKIE_WAIT:
        return cfg.nf_conntrack_sctp_timeout_cookie_wait
    if state == COOKIE_ECHOED:
        return cfg.nf_conntrack_sctp_timeout_cookie_echoed
    if state == SHUTDOWN_SENT:
        return cfg.nf_conntrack_sctp_timeout_shutdown_sent
    if state == SHUTDOWN_RECD:
        return cfg.nf_conntrack_sctp_timeout_shutdown_recd
    if state == SHUTDOWN_ACK_SENT:
        return cfg.nf_conntrack_sctp_timeout_shutdown_ack_sent
    if state == HEARTBEAT_SENT:
        return cfg.nf_conntrack_sctp_timeout_heartbeat_sent
    return 0


def sctp_state_name(conn: Conn) -> str:
    return STATE_NAMES[conn.proto_state]


def sctp_can_early_drop(conn: Conn) -> bool:
    """Associations being shut down may be evicted even when ASSURED."""
    return conn.proto_state in (SHUTDOWN_SENT, SHUTDOWN_RECD, SHUTDOWN_ACK_SENT)


SCTP_TRACKER = L4Tracker(
    name="sctp", proto=PROTO_SCTP, error=sctp_error, new=sctp_new, packet=sctp_packet,
    state_name=sctp_state_name, can_early_drop=sctp_can_early_drop,
)
