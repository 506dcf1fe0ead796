"""The FTP helper (nf_conntrack_ftp.c: help, find_pattern, try_rfc959, try_rfc1123,
try_eprt, try_epsv_response, get_port, find_nl_seq, update_nl_seq).

How this works. Only ESTABLISHED data segments are read, and only those that
start exactly where an earlier segment of the same direction ended with a
newline (up to two such sequence numbers are remembered per direction). So the
first segment in each direction is never parsed, a command must start its
segment, and after a segment without a final newline parsing pauses until one
more segment ends in a newline.

A parsed segment is matched at offset 0 against `PORT`, `EPRT` (client) or
`227 `, `229 ` (server). A recognised keyword whose argument does not parse,
or a segment that is a prefix of a keyword, is a "partial" match: the kernel
*drops* the packet (its retransmission will be parsed again). An announced
address that differs from the sender's gives no expectation (module parameter
`loose=0`) but the packet passes. The expectation is "the peer, any port →
announced port on the announcer", TCP, 300 s, one per control connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from statewall.conntrack.conn import CT_ESTABLISHED, CT_ESTABLISHED_REPLY, ORIGINAL, Conn
from statewall.conntrack.display import format_address
from statewall.conntrack.expect import ExpectationTable, ExpectPolicy
from statewall.helpers.common import (
    NOTHING,
    HelperVerdict,
    announce,
    direction_of,
    exact_source,
    sender,
)
from statewall.packet import PROTO_TCP, Packet

POLICY = ExpectPolicy(max_expected=1, timeout=300)
SEQ_MASK = 0xFFFFFFFF
LOW96 = (1 << 96) - 1
NL, CR, COMMA, DOT, COLON = 0x0A, 0x0D, 0x2C, 0x2E, 0x3A


class FtpState:
    """struct nf_ct_ftp_master: sequence numbers just after a newline, per direction."""

    __slots__ = ("after_nl", "pickup")

    def __init__(self) -> None:
        self.after_nl: tuple[list[int], list[int]] = ([], [])
        # Set for entries injected by conntrackd failover (ctnetlink): parse the
        # next segment once whatever its sequence number.
        self.pickup = [False, False]


class Command(NamedTuple):
    """A parsed announcement: address (None: not mentioned, EPSV) and port."""

    description: str
    address: int | None
    port: int
    full_address: bool  # EPRT |2|: all 128 bits given; PORT/227 give 32 bits


def ftp_help(conn: Conn, ctinfo: int, pkt: Packet, now: float, table: ExpectationTable,
             expect_max: int) -> HelperVerdict:
    if ctinfo != CT_ESTABLISHED and ctinfo != CT_ESTABLISHED_REPLY:
        return NOTHING
    data = pkt.payload
    if not data:
        return NOTHING
    direction = direction_of(ctinfo)
    state = table.helper_data.get(conn)
    if state is None:
        state = table.helper_data[conn] = FtpState()
    seqs = state.after_nl[direction]
    next_seq = (pkt.seq + len(data)) & SEQ_MASK
    ends_nl = data[-1] == NL
    if pkt.seq not in seqs:
        if not state.pickup[direction]:
            if ends_nl:
                remember_newline(seqs, next_seq)
            return NOTHING
        state.pickup[direction] = False
    parsed = parse_command(data, direction, conn.family)
    if isinstance(parsed, str):
        return HelperVerdict(False, f"dropped by the ftp helper: {parsed}")
    verdict = NOTHING
    if parsed is not None:
        verdict = _expect(conn, direction, parsed, pkt, now, table, expect_max)
    if ends_nl:
        remember_newline(seqs, next_seq)
    return verdict


def _expect(conn: Conn, direction: int, cmd: Command, pkt: Packet, now: float,
            table: ExpectationTable, expect_max: int) -> HelperVerdict:
    own = sender(conn, direction)
    announced = own
    if cmd.address is not None:
        announced = cmd.address if cmd.full_address or conn.family == 4 else \
            (cmd.address << 96) | (own & LOW96)
    # The peer's view of the sender: the other direction's destination.
    target = conn.orig_dst if direction != ORIGINAL else conn.reply_dst
    peer = conn.orig_src if direction != ORIGINAL else conn.reply_src
    if announced != own:
        if not table.params.ftp_loose:
            return HelperVerdict(True, (
                f"ftp: {cmd.description} names {format_address(conn.family, announced, False)}"
                f", not the sender {format_address(conn.family, own, False)}: "
                "no expectation (loose=0)"))
        target = announced
    exp = exact_source(conn, "ftp", PROTO_TCP, peer, target, cmd.port, pkt, cmd.description)
    return announce(table, exp, POLICY, now, expect_max)


def remember_newline(seqs: list[int], seq: int) -> None:
    """update_nl_seq: keep at most two positions, replacing the older by a newer one."""
    if seq in seqs:
        return
    if len(seqs) < 2:
        seqs.append(seq)
        return
    oldest = 0 if _before(seqs[0], seqs[1]) else 1
    if _before(seqs[oldest], seq):
        seqs[oldest] = seq


def _before(a: int, b: int) -> bool:
    """TCP sequence order (before(a, b)): a - b is negative as a 32-bit number."""
    return ((a - b) & SEQ_MASK) >= 0x80000000


# -- the grammars -------------------------------------------------------------------


def parse_command(data: bytes, direction: int, family: int) -> Command | str | None:
    """A command at the start of `data`, None if there is none, a str if the kernel drops."""
    for pattern, description, skip, parser in _SEARCH[direction]:
        result = _try_pattern(data, pattern, description, skip, parser, family)
        if result is not None:
            return result
    return None


def _try_pattern(data: bytes, pattern: bytes, description: str, skip: bytes,
                 parser: ArgumentParser, family: int) -> Command | str | None:
    """find_pattern: None = no match, str = partial (drop), Command = match."""
    size = len(pattern)
    head = data[:size].lower()
    if len(data) <= size:
        if head == pattern[:len(data)].lower():
            return f"incomplete {description} ({data!r} is a prefix of {pattern.decode()!r})"
        return None
    if head != pattern.lower():
        return None
    start = size
    if skip:
        found = data.find(skip, size)
        if found < 0:
            return f"malformed {description} (no {skip.decode()!r} after {pattern.decode()!r})"
        start = found + 1
    parsed = parser(data, start, family)
    if parsed is None:
        return f"malformed {description}: {data[:60]!r}"
    address, port, full = parsed
    return Command(description, address, port, full)


Parsed = tuple[int | None, int, bool] | None


def _port_argument(data: bytes, start: int, family: int) -> Parsed:
    """PORT h1,h2,h3,h4,p1,p2 then CR (try_rfc959)."""
    found = numbers(data, start, 6, COMMA, CR)
    return None if found is None else _host_port(found[0])


def _pasv_argument(data: bytes, start: int, family: int) -> Parsed:
    """227: the six numbers start at the first digit anywhere (try_rfc1123)."""
    for pos in range(start, len(data)):
        if 0x30 <= data[pos] <= 0x39:
            found = numbers(data, pos, 6, COMMA, None)
            return None if found is None else _host_port(found[0])
    return None


def _host_port(n: list[int]) -> tuple[int, int, bool]:
    address = ((n[0] << 24) | (n[1] << 16) | (n[2] << 8) | n[3]) & 0xFFFFFFFF
    return address, ((n[4] << 8) | n[5]) & 0xFFFF, False


def _eprt_argument(data: bytes, start: int, family: int) -> Parsed:
    """EPRT dAFdADDRdPORTd with any printable non-digit d (try_eprt)."""
    if len(data) - start <= 3:
        return None
    delim = data[start]
    if not _is_delimiter(delim) or data[start + 2] != delim:
        return None
    if data[start + 1] != (0x31 if family == 4 else 0x32):
        return None
    if family == 4:
        found = numbers(data, start + 3, 4, DOT, delim)
        if found is None:
            return None
        n, end = found
        address = ((n[0] << 24) | (n[1] << 16) | (n[2] << 8) | n[3]) & 0xFFFFFFFF
    else:
        parsed6 = parse_ipv6(data, start + 3, delim)
        if parsed6 is None:
            return None
        address, end = parsed6
    port = delimited_port(data, end + 1, delim)
    return None if port is None else (address, port, True)


def _epsv_argument(data: bytes, start: int, family: int) -> Parsed:
    """229 (dddPORTd): three equal delimiters, then the port (try_epsv_response)."""
    if len(data) - start <= 3:
        return None
    delim = data[start]
    if not _is_delimiter(delim) or data[start + 1] != delim or data[start + 2] != delim:
        return None
    port = delimited_port(data, start + 3, delim)
    return None if port is None else (None, port, False)


ArgumentParser = Callable[[bytes, int, int], Parsed]

# Per direction, in the kernel's order: keyword, what it is, byte to skip to, argument.
_SEARCH: tuple[tuple[tuple[bytes, str, bytes, ArgumentParser], ...], ...] = (
    ((b"PORT", "PORT command", b" ", _port_argument),
     (b"EPRT", "EPRT command", b" ", _eprt_argument)),
    ((b"227 ", "227 PASV reply", b"", _pasv_argument),
     (b"229 ", "229 EPSV reply", b"(", _epsv_argument)),
)


def _is_delimiter(byte: int) -> bool:
    return 33 <= byte <= 126 and not 0x30 <= byte <= 0x39


def numbers(data: bytes, start: int, count: int, sep: int,
            term: int | None) -> tuple[list[int], int] | None:
    """try_number: `count` decimal numbers split by `sep`, then `term` (None: any byte).

    Accumulators are unsigned 32-bit and wrap; empty numbers are 0. Returns the
    numbers and the terminator's offset.
    """
    values = [0] * count
    index = 0
    pos = start
    end = len(data)
    while pos < end and index < count:
        byte = data[pos]
        if 0x30 <= byte <= 0x39:
            values[index] = (values[index] * 10 + byte - 0x30) & 0xFFFFFFFF
        elif byte == sep:
            index += 1
        elif (term is None or byte == term) and index == count - 1:
            return values, pos
        else:
            return None
        pos += 1
    return None


def delimited_port(data: bytes, start: int, delim: int) -> int | None:
    """get_port: digits up to `delim` into a wrapping 16-bit value that must not be 0."""
    value = 0
    for pos in range(start, len(data)):
        byte = data[pos]
        if byte == delim:
            return value or None
        if not 0x30 <= byte <= 0x39:
            return None
        value = (value * 10 + byte - 0x30) & 0xFFFF
    return None


# -- IPv6 text as in6_pton reads it -------------------------------------------------

_HEX = 0x01
_COLON = 0x02  # a single ':' may come
_COLON2 = 0x04  # the second ':' of '::' may come
_GAP = 0x08  # a '::' may start here
_DOT = 0x10
_END = 0x20
_FRESH = 0x40  # no word pending to store
_COLONS = _COLON | _COLON2 | _GAP


def _hex_value(byte: int) -> int:
    if 0x30 <= byte <= 0x39:
        return byte - 0x30
    lower = byte | 0x20
    return lower - 0x57 if 0x61 <= lower <= 0x66 else -1


def parse_ipv6(data: bytes, start: int, delim: int) -> tuple[int, int] | None:
    """in6_pton with a delimiter: (address, offset where parsing stopped) or None.

    The delimiter, a NUL byte and the end of data all end the address. A
    dotted IPv4 tail is accepted where exactly 32 bits remain.
    """
    out = bytearray()
    gap = -1
    state = _GAP | _HEX | _FRESH
    word = 0
    tail_start = -1
    pos = start
    while True:
        byte = data[pos] if pos < len(data) else 0
        ends = byte == delim or byte == 0
        if ends or byte == COLON:
            if not state & (_END if ends else _COLONS):
                return None
            if not state & _FRESH:
                out += bytes(((word >> 8) & 0xFF, word & 0xFF))
            word = 0
            if ends:
                break
            state, gap = _after_colon(state, gap, len(out))
            tail_start = pos + 1
        elif byte == DOT:
            if not state & _DOT or tail_start < 0:
                return None
            tail = parse_ipv4_tail(data, tail_start, delim)
            if tail is None:
                return None
            out += tail[0]
            pos = tail[1]
            break
        else:
            value = _hex_value(byte)
            if value < 0 or not state & _HEX:
                return None
            word = (word << 4) | value
            state = _after_hex(word, gap, len(out))
        state = _limit(state, gap, len(out))
        pos += 1
    return _assemble(out, gap), pos


def _after_colon(state: int, gap: int, stored: int) -> tuple[int, int]:
    colons = state & _COLONS
    if colons == _COLON2:
        state = _HEX | _END | (_FRESH if stored >= 16 else 0)
        return state, stored
    if colons == _COLON | _GAP:
        return _HEX | _COLON2, gap
    if colons == _COLON:
        return _HEX, gap
    if colons == _GAP:
        return _COLON2, gap
    return 0, gap


def _after_hex(word: int, gap: int, stored: int) -> int:
    state = _COLON | _END
    if not word & 0xF000:
        state |= _HEX
    if gap < 0 and stored + 2 < 16:
        state = (state | _GAP) & ~_END
    if stored + 2 >= 16:
        state &= ~(_COLON | _GAP)
    return state


def _limit(state: int, gap: int, stored: int) -> int:
    if (gap >= 0 and stored + 4 < 16) or stored + 4 == 16:
        state |= _DOT
    if stored >= 16:
        state &= ~(_HEX | _COLONS)
    return state


def _assemble(out: bytearray, gap: int) -> int:
    if gap >= 0:
        out = out[:gap] + bytes(16 - len(out)) + out[gap:]
    return int.from_bytes(bytes(out[:16]).ljust(16, b"\0"), "big")


def parse_ipv4_tail(data: bytes, start: int, delim: int) -> tuple[bytes, int] | None:
    """in4_pton: four decimal octets 1-3 digits each ending at delim, NUL, ':' or the end."""
    octets = bytearray()
    value = digits = 0
    pos = start
    while True:
        byte = data[pos] if pos < len(data) else 0
        ends = byte in (delim, 0, COLON)
        if ends or byte == DOT:
            if not digits:
                return None
            octets.append(value & 0xFF)
            value = digits = 0
            if ends:
                return (bytes(octets), pos) if len(octets) == 4 else None
        elif 0x30 <= byte <= 0x39:
            value = value * 10 + byte - 0x30
            digits += 1
            if value > 255:
                return None
        else:
            return None
        if len(octets) >= 4:
            return None
        pos += 1
