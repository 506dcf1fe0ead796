"""The GRE tracker (net/netfilter/nf_conntrack_proto_gre.c).

Plain GRE (version 0, and any version other than 1) is tracked like a
generic protocol, with both tuple keys 0: one entry per address pair.
Enhanced GRE (version 1, PPTP) carrying PPP is keyed by the call-id in its
header (the tuple's destination key); the source key comes from the PPTP
helper's keymap and is 0 without one. Version 1 with another payload
protocol cannot be turned into a tuple, so the packet is INVALID.

Each entry keeps its own pair of timeouts, copied from the sysctls when it is
created so that the PPTP helper can raise them for its data channels
(`ct->proto.gre.timeout` / `stream_timeout`). Before a reply the short one
applies; from the packet after the first reply on, the stream one and ASSURED.
"""

from __future__ import annotations

from typing import NamedTuple

from statewall.config import Sysctls
from statewall.conntrack.conn import IPS_ASSURED, IPS_SEEN_REPLY, Conn
from statewall.conntrack.l4proto import ACCEPT, L4Tracker
from statewall.packet import PROTO_GRE, Packet

GRE_PROTO_PPP = 0x880B
GRE_VERSION_PPTP = 1
# Bytes of the enhanced GRE header up to and including the call-id.
PPTP_KEY_HEADER_LEN = 8

_UNREPLIED = "GRE: no reply seen yet (timeout)"
_STREAM = "GRE: replied (stream_timeout, ASSURED)"


class GreTimeouts(NamedTuple):
    """An entry's own timeouts, as /proc prints them (`timeout=30, stream_timeout=180`)."""

    timeout: int
    stream_timeout: int


def gre_keys(data: bytes, off: int) -> tuple[int, int] | None:
    """(source key, destination key) of a GRE header at `off`, as `gre_pkt_to_tuple`.

    None means no tuple can be built (version 1 carrying something other
    than PPP). Headers too short to hold a key give keys 0/0, like the kernel.
    The source key is always 0 here: the PPTP keymap is the helper's business.
    """
    available = len(data) - off
    if available < 4 or data[off + 1] & 0x07 != GRE_VERSION_PPTP:
        return 0, 0
    if available < PPTP_KEY_HEADER_LEN:
        return 0, 0
    if (data[off + 2] << 8 | data[off + 3]) != GRE_PROTO_PPP:
        return None
    return 0, data[off + 6] << 8 | data[off + 7]


def gre_error(pkt: Packet, cfg: Sysctls, in_prerouting: bool) -> str | None:
    """The only GRE packet conntrack refuses is one it cannot build a tuple for."""
    data = pkt.data
    off = pkt.l4_off
    if gre_keys(data, off) is None:
        protocol = data[off + 2] << 8 | data[off + 3]
        return (
            f"INVALID: GRE version 1 carrying protocol {protocol:#06x} "
            "(only PPP over enhanced GRE can be tracked)"
        )
    return None


def gre_new(conn: Conn, pkt: Packet, cfg: Sysctls) -> str | None:
    conn.proto_data = GreTimeouts(cfg.nf_conntrack_gre_timeout, cfg.nf_conntrack_gre_timeout_stream)
    return None


def gre_packet(
    conn: Conn, pkt: Packet, direction: int, ctinfo: int, now: float, cfg: Sysctls
) -> tuple[int, str]:
    timeouts = conn.proto_data
    if not isinstance(timeouts, GreTimeouts):
        timeouts = GreTimeouts(cfg.nf_conntrack_gre_timeout, cfg.nf_conntrack_gre_timeout_stream)
        conn.proto_data = timeouts
    status = conn.status
    if not status & IPS_SEEN_REPLY:
        conn.set_timeout(now, timeouts.timeout)
        return ACCEPT, _UNREPLIED
    conn.set_timeout(now, timeouts.stream_timeout)
    conn.status = status | IPS_ASSURED
    return ACCEPT, _STREAM


GRE_TRACKER = L4Tracker(
    name="gre", proto=PROTO_GRE, error=gre_error, new=gre_new, packet=gre_packet
)
