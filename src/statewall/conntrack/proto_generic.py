"""The generic tracker: every protocol without a tracker of its own
(net/netfilter/nf_conntrack_proto_generic.c, `generic_packet` in
nf_conntrack_core.c).

ESP, AH, IPIP, OSPF, PIM, VRRP, DCCP (no tracker since 6.16) and any other
protocol number are tracked by addresses and protocol number alone: the
tuple's port parts are 0, so two ESP SAs between the same hosts share one
entry. There is nothing to validate, no state, and the entry is never
ASSURED; every packet in either direction re-arms the one timeout.
"""

from __future__ import annotations

from statewall.config import Sysctls
from statewall.conntrack.conn import Conn
from statewall.conntrack.l4proto import ACCEPT, L4Tracker
from statewall.packet import Packet

_REASON = "generic protocol: tracked by addresses only (nf_conntrack_generic_timeout)"


def generic_error(pkt: Packet, cfg: Sysctls, in_prerouting: bool) -> str | None:
    """Nothing in an unknown protocol's header can be checked."""
    return None


def generic_new(conn: Conn, pkt: Packet, cfg: Sysctls) -> str | None:
    return None


def generic_packet(
    conn: Conn, pkt: Packet, direction: int, ctinfo: int, now: float, cfg: Sysctls
) -> tuple[int, str]:
    conn.set_timeout(now, cfg.nf_conntrack_generic_timeout)
    return ACCEPT, _REASON


# `proto` is only a placeholder: this tracker serves every protocol number
# that has no tracker of its own. "unknown" is how /proc names them.
GENERIC_TRACKER = L4Tracker(
    name="unknown", proto=0, error=generic_error, new=generic_new, packet=generic_packet
)
