"""A tracked connection (the kernel's `struct nf_conn`) and its tuple keys.

A connection owns two tuples, ORIGINAL and REPLY. Both are indexed in the
table under a packed integer key, so a packet matching either finds the
connection; comparing the packet's key with `orig_key` gives its direction.
Packing the tuple into one int (rather than a Python tuple of fields) keeps a
tracked connection small and the lookup a single dict probe.

For ICMP and ICMPv6 the 16-bit tuple parts follow the kernel's layout:
the "source port" is the echo identifier and the "destination port" is
`type << 8 | code`.
"""

from __future__ import annotations

from typing import Any

# Directions (enum ip_conntrack_dir).
ORIGINAL = 0
REPLY = 1

# ctinfo values (enum ip_conntrack_info). INVALID and UNTRACKED are not ctinfo
# values in the kernel (no conntrack / the untracked object); statewall gives
# them numbers so a packet's classification is one int.
CT_ESTABLISHED = 0
CT_RELATED = 1
CT_NEW = 2
CT_ESTABLISHED_REPLY = 3
CT_RELATED_REPLY = 4
CT_INVALID = 5
CT_UNTRACKED = 7

CTSTATE_NAMES = {
    CT_ESTABLISHED: "ESTABLISHED",
    CT_RELATED: "RELATED",
    CT_NEW: "NEW",
    CT_ESTABLISHED_REPLY: "ESTABLISHED",
    CT_RELATED_REPLY: "RELATED",
    CT_INVALID: "INVALID",
    CT_UNTRACKED: "UNTRACKED",
}

# Status bits (enum ip_conntrack_status) that users can see or match.
IPS_EXPECTED = 1 << 0
IPS_SEEN_REPLY = 1 << 1
IPS_ASSURED = 1 << 2
IPS_CONFIRMED = 1 << 3
IPS_SRC_NAT = 1 << 4
IPS_DST_NAT = 1 << 5
IPS_DYING = 1 << 9
IPS_FIXED_TIMEOUT = 1 << 10
IPS_HELPER = 1 << 13

STATUS_NAMES = (
    (IPS_EXPECTED, "EXPECTED"),
    (IPS_SEEN_REPLY, "SEEN_REPLY"),
    (IPS_ASSURED, "ASSURED"),
    (IPS_CONFIRMED, "CONFIRMED"),
    (IPS_SRC_NAT, "SRC_NAT"),
    (IPS_DST_NAT, "DST_NAT"),
)


def status_names(status: int) -> list[str]:
    return [name for bit, name in STATUS_NAMES if status & bit]


def tuple_key(family: int, proto: int, src: int, dst: int, sport: int, dport: int, zone: int) -> int:
    """Pack a tuple (plus zone) into one int; injective within and across families."""
    key = (src << 32) | dst if family == 4 else (src << 128) | dst
    key = (((((key << 16 | sport) << 16 | dport) << 8 | proto) << 16) | zone) << 1
    return key | (family == 6)


class Conn:
    """One connection-tracking entry.

    `expires` is an absolute time on the capture clock. `proto_state` is the
    protocol's small state number (TCP/SCTP state; 0 elsewhere) and
    `proto_data` holds whatever else a tracker keeps (TCP window data).
    """

    __slots__ = (
        "family", "proto", "zone",
        "orig_src", "orig_dst", "orig_sport", "orig_dport",
        "reply_src", "reply_dst", "reply_sport", "reply_dport",
        "orig_key", "reply_key",
        "status", "expires", "created", "proto_state", "proto_data",
        "mark", "helper", "master", "conn_id", "first_packet",
        "counters", "events",
    )

    family: int
    proto: int
    zone: int
    orig_src: int
    orig_dst: int
    orig_sport: int
    orig_dport: int
    reply_src: int
    reply_dst: int
    reply_sport: int
    reply_dport: int
    orig_key: int
    reply_key: int
    status: int
    expires: float
    created: float
    proto_state: int
    proto_data: Any
    mark: int
    helper: str | None
    master: Conn | None
    conn_id: int
    first_packet: int
    counters: list[int] | None  # [orig packets, orig bytes, reply packets, reply bytes]
    events: int

    def __init__(
        self,
        family: int,
        proto: int,
        zone: int,
        orig: tuple[int, int, int, int],
        reply: tuple[int, int, int, int],
        created: float,
    ) -> None:
        self.family = family
        self.proto = proto
        self.zone = zone
        self.orig_src, self.orig_dst, self.orig_sport, self.orig_dport = orig
        self.reply_src, self.reply_dst, self.reply_sport, self.reply_dport = reply
        self.orig_key = tuple_key(family, proto, *orig, zone)
        self.reply_key = tuple_key(family, proto, *reply, zone)
        self.status = 0
        self.expires = created
        self.created = created
        self.proto_state = 0
        self.proto_data = None
        self.mark = 0
        self.helper = None
        self.master = None
        self.conn_id = 0
        self.first_packet = -1
        self.counters = None
        self.events = 0

    def set_timeout(self, now: float, seconds: float) -> None:
        """Re-arm the timeout to `now + seconds` (the kernel sets, never extends)."""
        if not self.status & IPS_FIXED_TIMEOUT:
            self.expires = now + seconds

    def remaining(self, now: float) -> int:
        """Whole seconds left, as /proc and conntrack -L print them (truncated)."""
        left = self.expires - now
        return int(left) if left > 0 else 0

    def expired(self, now: float) -> bool:
        return self.expires <= now

    def __repr__(self) -> str:
        return (
            f"Conn(#{self.conn_id} proto={self.proto} {self.orig_src:x}:{self.orig_sport} > "
            f"{self.orig_dst:x}:{self.orig_dport} state={self.proto_state} status={self.status:#x})"
        )
