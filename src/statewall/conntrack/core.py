"""The connection table and the per-packet classification (nf_conntrack_core.c).

How this works, in kernel order (nf_conntrack_in, resolve_normal_ct,
init_conntrack, __nf_conntrack_confirm):

* `classify` runs where the kernel's conntrack hook runs (PREROUTING or
  OUTPUT, after the raw table). ICMP errors are matched to the connection
  they quote first; then the tracker validates the packet, the tuple is
  looked up (expired entries are reaped on the way and never matched), a miss
  builds an *unconfirmed* entry, ctinfo is derived from direction and status,
  and the protocol tracker runs. SEEN_REPLY is set only after the tracker
  accepted a reply-direction packet, so trackers see the value before it.
* `confirm` runs at the last hook (POSTROUTING or INPUT) for packets that
  survived the rules: an unconfirmed entry is inserted and its NEW event
  emitted. `discard` is the other ending: the packet was dropped, so an
  unconfirmed entry vanishes without trace (no entry, no event).

All state lives in a `ConntrackTable`; the clock is the `now` argument.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from statewall.config import Sysctls
from statewall.conntrack import l4proto, proto_icmp
from statewall.conntrack.conn import (
    CT_ESTABLISHED,
    CT_ESTABLISHED_REPLY,
    CT_INVALID,
    CT_NEW,
    CT_RELATED,
    CT_RELATED_REPLY,
    CT_UNTRACKED,
    IPS_ASSURED,
    IPS_CONFIRMED,
    IPS_DYING,
    IPS_EXPECTED,
    IPS_SEEN_REPLY,
    ORIGINAL,
    REPLY,
    Conn,
    tuple_key,
)
from statewall.conntrack.events import (
    IPCT_ASSURED,
    IPCT_NEW,
    IPCT_PROTOINFO,
    IPCT_RELATED,
    IPCT_REPLY,
    ConntrackEvent,
)
from statewall.conntrack.trackers import icmp_error_handler, tracker_for
from statewall.packet import PROTO_ICMP, PROTO_ICMPV6, Packet

EventSink = Callable[[ConntrackEvent], None]


@dataclass(slots=True)
class ConntrackStats:
    """The counters `conntrack -S` prints (per netns, summed over CPUs)."""

    found: int = 0
    invalid: int = 0
    insert: int = 0
    insert_failed: int = 0
    drop: int = 0
    early_drop: int = 0
    error: int = 0
    search_restart: int = 0
    clash_resolve: int = 0
    chaintoolong: int = 0


class CtResult:
    """What conntrack attached to one packet: the skb's `_nfct` and ctinfo.

    Mutable because later hooks update it (the rule engine's raw-table
    decisions, confirmation); one is allocated per tracked packet.
    """

    __slots__ = ("ctinfo", "conn", "unconfirmed", "reason", "drop")

    def __init__(self, ctinfo: int, conn: Conn | None, reason: str, unconfirmed: bool = False) -> None:
        self.ctinfo = ctinfo
        self.conn = conn
        self.reason = reason
        self.unconfirmed = unconfirmed
        self.drop = False

    @property
    def direction(self) -> int | None:
        if self.conn is None:
            return None
        return REPLY if self.ctinfo >= CT_ESTABLISHED_REPLY else ORIGINAL


def untracked(reason: str) -> CtResult:
    return CtResult(CT_UNTRACKED, None, reason)


@dataclass
class ConntrackTable:
    """One network namespace's conntrack state: entries, counters, events."""

    cfg: Sysctls
    event_sink: EventSink | None = None
    entries: dict[int, Conn] = field(default_factory=dict)
    stats: ConntrackStats = field(default_factory=ConntrackStats)
    count: int = 0
    next_id: int = 1
    # Set by the expectation machinery (helpers): given a fresh entry, find
    # and consume the expectation it fulfils, returning the master or None.
    expect_match: Callable[[Conn, Packet, float], Conn | None] | None = None
    # Told of every removed entry (its expectations die with it).
    on_destroy: Callable[[Conn, float], None] | None = None

    # -- lookup -----------------------------------------------------------

    def lookup(
        self, family: int, proto: int, src: int, dst: int, sport: int, dport: int, zone: int,
        now: float,
    ) -> tuple[Conn, int] | None:
        """Find a live confirmed entry by either tuple; reap it if it has expired."""
        key = tuple_key(family, proto, src, dst, sport, dport, zone)
        conn = self.entries.get(key)
        if conn is None:
            return None
        if conn.expires <= now:
            self.destroy(conn, now, "timeout")
            return None
        return conn, (ORIGINAL if key == conn.orig_key else REPLY)

    def __iter__(self) -> Iterator[Conn]:
        """Confirmed entries in insertion order (each once)."""
        for key, conn in self.entries.items():
            if key == conn.orig_key:
                yield conn

    def live(self, now: float) -> list[Conn]:
        """Entries not yet expired at `now` (what a listing at that moment shows)."""
        return [conn for conn in self if conn.expires > now]

    # -- the per-packet path ----------------------------------------------

    def classify(self, pkt: Packet, now: float, in_prerouting: bool = True, zone: int = 0) -> CtResult:
        """nf_conntrack_in: attach an entry and a ctinfo to the packet."""
        if pkt.error is not None:
            self.stats.invalid += 1
            return CtResult(CT_INVALID, None, f"malformed: {pkt.error}")
        if pkt.fragment is not None and pkt.fragment.offset:
            self.stats.invalid += 1
            return CtResult(CT_INVALID, None, "a non-first fragment reached conntrack unreassembled")
        tracker = tracker_for(pkt.proto)
        if pkt.proto == PROTO_ICMP or pkt.proto == PROTO_ICMPV6:
            handled = self._icmp_error(pkt, now, in_prerouting, zone)
            if handled is not None:
                return handled
        reason = tracker.error(pkt, self.cfg, in_prerouting)
        if reason is not None:
            self.stats.invalid += 1
            return CtResult(CT_INVALID, None, reason)
        for _attempt in range(2):
            result = self._resolve_and_track(tracker, pkt, now, zone)
            if result is not None:
                return result
            self.stats.search_restart += 1
        raise AssertionError("tracker asked to reopen a connection twice for one packet")

    def _icmp_error(self, pkt: Packet, now: float, in_prerouting: bool, zone: int) -> CtResult | None:
        def lookup(family: int, proto: int, src: int, dst: int, sport: int, dport: int,
                   z: int) -> tuple[Conn, int] | None:
            return self.lookup(family, proto, src, dst, sport, dport, z, now)

        outcome = icmp_error_handler(pkt.proto)(pkt, self.cfg, in_prerouting, zone, lookup)
        if outcome.kind == proto_icmp.NOT_AN_ERROR:
            return None
        if outcome.kind == proto_icmp.RELATED and outcome.conn is not None:
            ctinfo = CT_RELATED_REPLY if outcome.direction == REPLY else CT_RELATED
            return CtResult(ctinfo, outcome.conn, outcome.reason)
        if outcome.kind == proto_icmp.UNTRACKED:
            return untracked(outcome.reason)
        self.stats.invalid += 1
        self.stats.error += 1
        return CtResult(CT_INVALID, None, outcome.reason)

    def _resolve_and_track(self, tracker: l4proto.L4Tracker, pkt: Packet, now: float,
                           zone: int) -> CtResult | None:
        """One lookup-and-track pass; None asks the caller to start again (TCP reopen)."""
        found = self.lookup(pkt.family, pkt.proto, pkt.src, pkt.dst, pkt.sport, pkt.dport, zone, now)
        if found is None:
            conn_or_reason = self._new_entry(tracker, pkt, now, zone)
            if isinstance(conn_or_reason, str):
                self.stats.invalid += 1
                return CtResult(CT_INVALID, None, conn_or_reason)
            conn, direction, unconfirmed = conn_or_reason, ORIGINAL, True
        else:
            self.stats.found += 1
            conn, direction = found
            unconfirmed = False
        ctinfo = _ctinfo(conn, direction)
        old_state, old_status = conn.proto_state, conn.status
        action, reason = tracker.packet(conn, pkt, direction, ctinfo, now, self.cfg)
        if action == l4proto.REPEAT:
            self.destroy(conn, now, "reopened")
            return None
        if action == l4proto.INVALID:
            self.stats.invalid += 1
            return CtResult(CT_INVALID, None, reason)
        result = CtResult(ctinfo, conn, reason, unconfirmed)
        if action == l4proto.DROP:
            self.stats.drop += 1
            result.drop = True
            return result
        if direction == REPLY and not conn.status & IPS_SEEN_REPLY:
            conn.status |= IPS_SEEN_REPLY
        self._cache_events(conn, old_state, old_status)
        if conn.status & IPS_DYING and not unconfirmed:
            self.destroy(conn, now, "reset")
        return result

    def _new_entry(self, tracker: l4proto.L4Tracker, pkt: Packet, now: float,
                   zone: int) -> Conn | str:
        reply = tracker.invert(pkt.src, pkt.dst, pkt.sport, pkt.dport)
        if reply is None:
            return f"{tracker.name} type {pkt.dport >> 8} cannot start a connection (no reply type)"
        conn = Conn(pkt.family, pkt.proto, zone, (pkt.src, pkt.dst, pkt.sport, pkt.dport), reply, now)
        conn.first_packet = pkt.index
        # The kernel consumes a matching expectation when it builds the entry,
        # before the tracker judges the packet: a rejected first packet uses it up.
        if self.expect_match is not None:
            master = self.expect_match(conn, pkt, now)
            if master is not None:
                conn.master = master
                conn.status |= IPS_EXPECTED
                conn.mark = master.mark
        reason = tracker.new(conn, pkt, self.cfg)
        if reason is not None:
            return reason
        return conn

    def _cache_events(self, conn: Conn, old_state: int, old_status: int) -> None:
        if self.event_sink is None:
            return
        gained = conn.status & ~old_status
        if gained & IPS_SEEN_REPLY:
            conn.events |= IPCT_REPLY
        if gained & IPS_ASSURED:
            conn.events |= IPCT_ASSURED
        if conn.proto_state != old_state:
            conn.events |= IPCT_PROTOINFO

    # -- confirmation and removal -------------------------------------------

    def confirm(self, result: CtResult, now: float) -> None:
        """The last hook: insert a new entry, deliver cached events."""
        conn = result.conn
        if conn is None:
            return
        if result.unconfirmed and result.ctinfo < CT_ESTABLISHED_REPLY:
            result.unconfirmed = False
            conn.status |= IPS_CONFIRMED
            conn.conn_id = self.next_id
            self.next_id += 1
            self.entries[conn.orig_key] = conn
            self.entries[conn.reply_key] = conn
            self.count += 1
            self.stats.insert += 1
            if self.event_sink is not None:
                conn.events |= IPCT_RELATED if conn.master is not None else IPCT_NEW
            if conn.status & IPS_DYING:
                self.destroy(conn, now, "reset")
                return
        if self.event_sink is not None and conn.events and conn.status & IPS_CONFIRMED:
            self.event_sink(ConntrackEvent.cached(conn, now))
            conn.events = 0

    def discard(self, result: CtResult) -> None:
        """The packet was dropped: an unconfirmed entry dies with it."""
        result.unconfirmed = False

    def destroy(self, conn: Conn, now: float, cause: str) -> None:
        """Remove an entry (expiry, RST, reopen, eviction) and report DESTROY."""
        if self.entries.get(conn.orig_key) is not conn:
            return
        del self.entries[conn.orig_key]
        self.entries.pop(conn.reply_key, None)
        self.count -= 1
        conn.status |= IPS_DYING
        if self.on_destroy is not None:
            self.on_destroy(conn, now)
        if self.event_sink is not None:
            self.event_sink(ConntrackEvent.destroyed(conn, now, cause))

    def expire(self, now: float) -> int:
        """Reap every entry that has timed out by `now`; returns how many."""
        dead = [conn for conn in self if conn.expires <= now]
        for conn in sorted(dead, key=lambda c: c.expires):
            self.destroy(conn, conn.expires, "timeout")
        return len(dead)


def _ctinfo(conn: Conn, direction: int) -> int:
    if direction == REPLY:
        return CT_ESTABLISHED_REPLY
    if conn.status & IPS_SEEN_REPLY:
        return CT_ESTABLISHED
    if conn.status & IPS_EXPECTED:
        return CT_RELATED
    return CT_NEW

__all__ = [
    "ConntrackStats", "ConntrackTable", "CtResult", "EventSink", "untracked",
]
