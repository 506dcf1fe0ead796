"""The TFTP helper (nf_conntrack_tftp.c: tftp_help).

How this works. Every packet of a helped flow is looked at, in either
direction and already the very first one (before the entry is confirmed):
a payload starting with opcode 1 (RRQ) or 2 (WRQ) announces that the server
will answer from a fresh port. The expectation is built from the REPLY tuple
whichever side sent the request: "server, any port → client:client port",
UDP, 300 s, one per flow (a repeated request replaces it). Nothing else in
the request (file name, mode, options) is read.
"""

from __future__ import annotations

from statewall.conntrack.conn import Conn
from statewall.conntrack.expect import ExpectationTable, ExpectPolicy
from statewall.helpers.common import NOTHING, HelperVerdict, announce, exact_source
from statewall.packet import PROTO_UDP, Packet

POLICY = ExpectPolicy(max_expected=1, timeout=300)
OPCODES = {1: "RRQ (read request)", 2: "WRQ (write request)"}


def tftp_help(conn: Conn, ctinfo: int, pkt: Packet, now: float, table: ExpectationTable,
              expect_max: int) -> HelperVerdict:
    data = pkt.payload
    if len(data) < 2:
        return NOTHING
    description = OPCODES.get(data[0] << 8 | data[1])
    if description is None:
        return NOTHING
    exp = exact_source(conn, "tftp", PROTO_UDP, conn.reply_src, conn.reply_dst,
                       conn.reply_dport, pkt, description)
    return announce(table, exp, POLICY, now, expect_max)
