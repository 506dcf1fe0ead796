"""The IRC helper (nf_conntrack_irc.c: help, parse_dcc), IPv4 only.

How this works. Only client → server segments (ORIGINAL, ESTABLISHED) are
read, each on its own (no sequence tracking), at most 4095 bytes. After
leading blanks the segment must be a `PRIVMSG ` (any case); the first ` :`
(the message text) must be followed by `\\1DCC ` and one of `SEND `, `CHAT `,
`MOVE `, `TSEND `, `SCHAT ` (an unknown type makes the scan look for a later
` :`). The argument is skipped up to a space, a newline must follow somewhere,
then come the address as one decimal number and the port. An address other
than the client's, or port 0, is a forged offer: no expectation, packet
accepted. At most one offer per segment counts. The expectation is "anyone,
any port → client:port", TCP, 300 s, up to 8 per IRC connection.
"""

from __future__ import annotations

from statewall.conntrack.conn import CT_ESTABLISHED, Conn
from statewall.conntrack.display import format_address
from statewall.conntrack.expect import Expectation, ExpectationTable, ExpectPolicy
from statewall.helpers.common import NOTHING, HelperVerdict, announce
from statewall.packet import PROTO_TCP, Packet

MAX_SEARCH_SIZE = 4095
DCC_TYPES = (b"SEND ", b"CHAT ", b"MOVE ", b"TSEND ", b"SCHAT ")
BLANKS = b" \r\n"
# Shortest tail the scan needs after a ` :`: ` :\1DCC SENT t AAAAAAAA P\1\n`.
MIN_TAIL = 26
# The argument must end this far before the end: `AAAAAAAA P\1\n`.
MIN_AFTER_ARG = 12


def irc_help(conn: Conn, ctinfo: int, pkt: Packet, now: float, table: ExpectationTable,
             expect_max: int) -> HelperVerdict:
    if ctinfo != CT_ESTABLISHED or conn.family != 4:
        return NOTHING
    data = pkt.payload[:MAX_SEARCH_SIZE]
    found = find_dcc(data)
    if found is None:
        return NOTHING
    kind, address, port = found
    description = f"DCC {kind} offer"
    if (address != conn.orig_src and address != conn.reply_dst) or port == 0:
        return HelperVerdict(True, (
            f"irc: forged {description} for {format_address(4, address, False)}:{port} "
            f"(client is {format_address(4, conn.orig_src, False)}): no expectation"))
    params = table.params
    policy = ExpectPolicy(params.irc_max_dcc_channels, params.irc_dcc_timeout)
    exp = Expectation(conn, "irc", PROTO_TCP, 0, 0, 0, 0, conn.reply_dst, port,
                      packet_index=pkt.index, description=description)
    return announce(table, exp, policy, now, expect_max)


def find_dcc(data: bytes) -> tuple[str, int, int] | None:
    """The first DCC offer the kernel would act on: (type, address, port), or None."""
    end = len(data)
    pos = 0
    while pos < end - 10 and data[pos] in BLANKS:
        pos += 1
    if pos < end - 10:
        if data[pos:pos + 8].lower() != b"privmsg ":
            return None
        pos += 8
    last = max(end - MIN_TAIL + 1, 0)  # a ` :` must start before end - MIN_TAIL
    while True:
        pos = data.find(b" :", pos, last)
        if pos < 0:
            return None
        pos += 2
        if not data.startswith(b"\x01DCC ", pos):
            return None
        pos += 5
        for kind in DCC_TYPES:
            if data.startswith(kind, pos):
                parsed = parse_dcc(data, pos + len(kind), end)
                if parsed is None:
                    return None
                return kind.decode().strip(), parsed[0], parsed[1]


def parse_dcc(data: bytes, pos: int, end: int) -> tuple[int, int] | None:
    """parse_dcc: skip the argument, then `<address> <port>` before a newline."""
    while True:
        byte = data[pos]
        pos += 1
        if byte == 0x20:
            break
        if pos > end - MIN_AFTER_ARG:
            return None
    if data.find(b"\n", pos, end) < 0:
        return None
    address, pos = _decimal(data, pos)
    while data[pos] == 0x20:
        pos += 1
    port, pos = _decimal(data, pos)
    return address & 0xFFFFFFFF, port & 0xFFFF


def _decimal(data: bytes, pos: int) -> tuple[int, int]:
    """simple_strtoul in base 10: leading digits (none gives 0) and where they stop."""
    value = 0
    while 0x30 <= data[pos] <= 0x39:
        value = (value * 10 + data[pos] - 0x30) & 0xFFFFFFFFFFFFFFFF
        pos += 1
    return value, pos
