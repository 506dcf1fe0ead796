"""The confirm step with helpers (nf_confirm, nf_conntrack_proto.c).

At the last hook (INPUT or POSTROUTING), after every filter chain accepted
the packet, the entry's helper reads it and may create expectations or drop
it; only then is a new entry inserted. A packet the helper drops takes an
unconfirmed entry with it, and with that entry go the expectations it had
just announced (destroy_conntrack: a TFTP request announces before its
entry is confirmed).
"""

from __future__ import annotations

from statewall.conntrack.core import ConntrackTable, CtResult
from statewall.conntrack.expect import ExpectationTable
from statewall.helpers.common import NOTHING, HelperVerdict
from statewall.helpers.registry import run_helper
from statewall.packet import Packet


def confirm_with_helper(table: ConntrackTable, expectations: ExpectationTable, ct: CtResult,
                        pkt: Packet, now: float) -> HelperVerdict:
    """Run the helper, then confirm; a refusing verdict means the packet is dropped."""
    conn = ct.conn
    verdict = NOTHING
    if conn is not None and conn.helper is not None:
        verdict = run_helper(conn, ct.ctinfo, pkt, now, expectations, table.cfg)
        if not verdict.accept:
            if ct.unconfirmed:
                table.discard(ct)
                expectations.master_destroyed(conn, now)
            return verdict
    table.confirm(ct, now)
    return verdict
