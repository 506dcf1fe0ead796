"""The contract between the conntrack core and each protocol tracker.

Mirrors `struct nf_conntrack_l4proto`: each tracker module (proto_tcp,
proto_udp, proto_icmp, ...) provides an `L4Tracker` with plain functions.
The core calls, in kernel order (nf_conntrack_in):

1. `error(pkt, cfg, in_prerouting)` before any lookup: header, checksum and
   flag validation. A string means INVALID with that reason.
2. for a packet that matches no entry, `new(conn, pkt, cfg)`: may this packet
   create a connection? Initialise per-protocol state on `conn`; a string
   means INVALID (the fresh entry is discarded).
3. `packet(conn, pkt, direction, ctinfo, now, cfg)`: the state machine. It
   returns an action and a human reason, and re-arms the timeout with
   `conn.set_timeout(now, seconds)` when it accepts.

Actions follow the kernel's verdict conventions: ACCEPT (tracked, possibly
"ignored" with no state change: the reason says so), INVALID (no conntrack
attached; entry untouched), DROP (conntrack itself drops the packet) and
REPEAT (delete the old entry and classify the packet again as a new
connection: TCP reopen).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from statewall.config import Sysctls
    from statewall.conntrack.conn import Conn
    from statewall.packet import Packet

ACCEPT = 1
INVALID = -1
DROP = 0
REPEAT = 2

ErrorFn = Callable[["Packet", "Sysctls", bool], "str | None"]
NewFn = Callable[["Conn", "Packet", "Sysctls"], "str | None"]
PacketFn = Callable[["Conn", "Packet", int, int, float, "Sysctls"], "tuple[int, str]"]
# Reply tuple for a packet's original tuple: (src, dst, sport, dport) or None
# when the tuple cannot be inverted (e.g. an ICMP type without a reply type).
InvertFn = Callable[[int, int, int, int], "tuple[int, int, int, int] | None"]
StateNameFn = Callable[["Conn"], str]
CanEarlyDropFn = Callable[["Conn"], bool]


def invert_ports(src: int, dst: int, sport: int, dport: int) -> tuple[int, int, int, int]:
    """The reply tuple of a port-based protocol: swap addresses and ports."""
    return dst, src, dport, sport


def no_state_name(conn: Conn) -> str:
    return ""


def never_early_drop(conn: Conn) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class L4Tracker:
    """One protocol tracker: its name as /proc prints it and its functions."""

    name: str
    proto: int
    error: ErrorFn
    new: NewFn
    packet: PacketFn
    invert: InvertFn = invert_ports
    state_name: StateNameFn = no_state_name
    # ASSURED entries this protocol lets the GC evict under pressure (tcp_can_early_drop).
    can_early_drop: CanEarlyDropFn = never_early_drop
