"""The Amanda helper (nf_conntrack_amanda.c: amanda_help).

How this works. Only REPLY packets are read (from the host that received the
first datagram, normally the Amanda client daemon on UDP 10080). Each one
first pushes the master's timeout to `master_timeout` (300 s), because
Amanda replies may come late. Then the first `CONNECT ` line (anywhere in the
payload, up to its newline) is searched for `DATA `, `MESG `, `INDEX ` and
`STATE `, each followed by at most five digits: a port. Port 0 (no digits)
stops the search. Each port gives an expectation "initiator, any port →
replier:port", TCP, 180 s, at most 4 per master; a refused one drops the
packet but the other keywords are still processed.
"""

from __future__ import annotations

from statewall.conntrack.conn import CT_ESTABLISHED_REPLY, Conn
from statewall.conntrack.expect import ExpectationTable, ExpectPolicy
from statewall.helpers.common import NOTHING, HelperVerdict, announce, exact_source
from statewall.packet import PROTO_TCP, Packet

POLICY = ExpectPolicy(max_expected=4, timeout=180)
KEYWORDS = (b"DATA ", b"MESG ", b"INDEX ", b"STATE ")
MAX_DIGITS = 5


def amanda_help(conn: Conn, ctinfo: int, pkt: Packet, now: float, table: ExpectationTable,
                expect_max: int) -> HelperVerdict:
    if ctinfo < CT_ESTABLISHED_REPLY:
        return NOTHING
    conn.set_timeout(now, table.params.amanda_master_timeout)
    data = pkt.payload
    start = data.find(b"CONNECT ")
    if start < 0:
        return NOTHING
    start += 8
    stop = data.find(b"\n", start)
    if stop < 0:
        return NOTHING
    reasons: list[str] = []
    accept = True
    for port, keyword in connect_ports(data[start:stop]):
        exp = exact_source(conn, "amanda", PROTO_TCP, conn.orig_src, conn.orig_dst, port, pkt,
                           f"CONNECT {keyword} port")
        verdict = announce(table, exp, POLICY, now, expect_max)
        accept = accept and verdict.accept
        reasons.append(verdict.reason)
    if not reasons:
        return NOTHING
    return HelperVerdict(accept, "; ".join(reasons))


def connect_ports(line: bytes) -> list[tuple[int, str]]:
    """The announced ports of one CONNECT line, in keyword order, up to a port 0."""
    ports: list[tuple[int, str]] = []
    for keyword in KEYWORDS:
        at = line.find(keyword)
        if at < 0:
            continue
        at += len(keyword)
        value = 0
        for byte in line[at:at + MAX_DIGITS]:
            if not 0x30 <= byte <= 0x39:
                break
            value = value * 10 + byte - 0x30
        port = value & 0xFFFF
        if port == 0:
            break
        ports.append((port, keyword.decode().strip()))
    return ports
