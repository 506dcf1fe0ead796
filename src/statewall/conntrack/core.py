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
* A new entry counts against `nf_conntrack_max` from its allocation; when
  the table is full, `early_drop.py` makes room or the packet is dropped.
  As in the kernel, allocation happens before the TCP/UDP/SCTP trackers
  validate the packet, so even a packet they then call INVALID can evict
  entries (or be dropped) when the table is full.
* Timeouts are kept by the capture clock. `gc` stands for the kernel's
  garbage collector and reaps each entry at the instant it expires (a heap
  of deadlines, re-armed lazily when a refresh moved one later), so the
  DESTROY event carries the expiry time. The live kernel reaps up to a GC
  interval later, at an unpredictable moment; only the fact of expiry, and
  that an expired entry is never matched again, is deterministic.

Statistics follow the kernel's `conntrack -S` counters exactly, including
the ones Linux 6.x no longer increments on the packet path (`found` and
`insert` are only touched by NAT and ctnetlink, so they stay 0 here).

All state lives in a `ConntrackTable`; the clock is the `now` argument.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from statewall.config import Sysctls
from statewall.conntrack import early_drop, l4proto, proto_icmp
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
    """The counters `conntrack -S` prints (per netns, summed over CPUs).

    found, insert: only NAT and ctnetlink count them in 6.x (0 on replay).
    invalid: no conntrack attached (bad tuple, tracker refused), but not
    ICMP error-handler failures, which count as `error` only.
    drop: table full with nothing evictable, or a tracker's DROP (which
    also counts as invalid). early_drop: entries evicted for new ones.
    """

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
    # The GC's deadlines, a heap of (expiry as last seen, sequence, entry);
    # `timers[0][0] <= now` is the cheap test for "gc(now) has work".
    timers: list[tuple[float, int, Conn]] = field(default_factory=list, repr=False)
    _seq: int = 0
    # Hash chains, built the first time the table is full (early_drop.py).
    _buckets: early_drop.BucketIndex | None = field(default=None, repr=False)
    # When the GC's next run, switched to early-drop mode by a drop, happens.
    gc_early_drop_at: float | None = None

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
            self.destroy(conn, conn.expires, early_drop.CAUSE_TIMEOUT)
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
        if self.timers and self.timers[0][0] <= now or self.gc_early_drop_at is not None:
            self.gc(now)
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
            if self._full() and not self._allocated_for_invalid(tracker, pkt, now, zone):
                return self._table_full()
            self.stats.invalid += 1
            return CtResult(CT_INVALID, None, reason)
        for _attempt in range(2):
            result = self._resolve_and_track(tracker, pkt, now, zone)
            if result is not None:
                return result
        raise AssertionError("tracker asked to reopen a connection twice for one packet")

    def _allocated_for_invalid(self, tracker: l4proto.L4Tracker, pkt: Packet, now: float,
                               zone: int) -> bool:
        """Could the kernel allocate the entry it builds before its tracker says INVALID?

        TCP, UDP and SCTP validate inside their packet function, after the
        lookup missed and the entry was allocated; the ICMP checks run first.
        """
        if pkt.proto == PROTO_ICMP or pkt.proto == PROTO_ICMPV6:
            return True
        if self.lookup(pkt.family, pkt.proto, pkt.src, pkt.dst, pkt.sport, pkt.dport, zone,
                       now) is not None:
            return True
        if tracker.invert(pkt.src, pkt.dst, pkt.sport, pkt.dport) is None:
            return True
        return self._admit(pkt, zone, now)

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
        self.stats.error += 1
        return CtResult(CT_INVALID, None, outcome.reason)

    def _resolve_and_track(self, tracker: l4proto.L4Tracker, pkt: Packet, now: float,
                           zone: int) -> CtResult | None:
        """One lookup-and-track pass; None asks the caller to start again (TCP reopen)."""
        found = self.lookup(pkt.family, pkt.proto, pkt.src, pkt.dst, pkt.sport, pkt.dport, zone, now)
        if found is None:
            reply = tracker.invert(pkt.src, pkt.dst, pkt.sport, pkt.dport)
            if reply is None:
                self.stats.invalid += 1
                return CtResult(CT_INVALID, None, f"{tracker.name} type {pkt.dport >> 8} cannot "
                                "start a connection (no reply type)")
            if self._full() and not self._admit(pkt, zone, now):
                return self._table_full()
            conn_or_reason = self._new_entry(tracker, pkt, reply, now, zone)
            if isinstance(conn_or_reason, str):
                self.stats.invalid += 1
                return CtResult(CT_INVALID, None, conn_or_reason)
            conn, direction, unconfirmed = conn_or_reason, ORIGINAL, True
        else:
            conn, direction = found
            unconfirmed = False
        ctinfo = _ctinfo(conn, direction)
        old_state, old_status, old_expires = conn.proto_state, conn.status, conn.expires
        action, reason = tracker.packet(conn, pkt, direction, ctinfo, now, self.cfg)
        if action == l4proto.REPEAT:
            self.destroy(conn, now, "reopened")
            return None
        if action == l4proto.INVALID:
            self.stats.invalid += 1
            return CtResult(CT_INVALID, None, reason)
        result = CtResult(ctinfo, conn, reason, unconfirmed)
        if action == l4proto.DROP:
            self.stats.invalid += 1
            self.stats.drop += 1
            result.drop = True
            return result
        if conn.expires < old_expires and not unconfirmed:
            self._arm(conn)
        if conn.status & IPS_DYING and not unconfirmed:
            # The tracker deleted it: the DESTROY shows the entry as it was
            # (still UNREPLIED), and nothing is reported for it afterwards.
            self.destroy(conn, now, "reset")
            if direction == REPLY:
                conn.status |= IPS_SEEN_REPLY
            return result
        if direction == REPLY and not conn.status & IPS_SEEN_REPLY:
            conn.status |= IPS_SEEN_REPLY
        self._cache_events(conn, old_state, old_status)
        return result

    def _new_entry(self, tracker: l4proto.L4Tracker, pkt: Packet,
                   reply: tuple[int, int, int, int], now: float, zone: int) -> Conn | str:
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

    # -- the table limit (__nf_conntrack_alloc) ------------------------------

    def _full(self) -> bool:
        """Would one more entry exceed nf_conntrack_max (0: unlimited)?"""
        limit = self.cfg.nf_conntrack_max
        return bool(limit) and self.count >= limit

    def _admit(self, pkt: Packet, zone: int, now: float) -> bool:
        """Evict to make room for the packet's entry; False when nothing could go."""
        if self._buckets is None:
            self._buckets = early_drop.BucketIndex(self.cfg.nf_conntrack_buckets, self)
        key = tuple_key(pkt.family, pkt.proto, pkt.src, pkt.dst, pkt.sport, pkt.dport, zone)
        drops = early_drop.early_drop(self._buckets, key, now, self.destroy)
        if drops:
            self.stats.early_drop += drops
            return True
        if self.gc_early_drop_at is None:
            self.gc_early_drop_at = now + early_drop.GC_EARLY_DROP_DELAY
        return False

    def _table_full(self) -> CtResult:
        self.stats.drop += 1
        result = CtResult(CT_INVALID, None, "conntrack table full, no entry could be evicted "
                          f"(nf_conntrack_max={self.cfg.nf_conntrack_max})")
        result.drop = True
        return result

    # -- the garbage collector (gc_worker) ------------------------------------

    def _arm(self, conn: Conn) -> None:
        self._seq += 1
        heapq.heappush(self.timers, (conn.expires, self._seq, conn))
        if len(self.timers) > 4 * self.count + 4096:
            self._compact()

    def _compact(self) -> None:
        """Forget deadlines of dead entries (each kept until its time, otherwise)."""
        self.timers = [(conn.expires, seq, conn) for seq, conn in enumerate(self, self._seq)]
        self._seq += len(self.timers)
        heapq.heapify(self.timers)

    def gc(self, now: float) -> int:
        """Reap every entry that expired by `now`, each at its expiry; returns how many.

        Also runs the GC's early-drop pass when a table-full drop asked for it.
        """
        reaped = 0
        when = self.gc_early_drop_at
        if when is not None and when <= now:
            reaped += self._reap(when)
            self.gc_early_drop_at = None
            if self._buckets is not None:
                reaped += early_drop.gc_early_drop(self._buckets, lambda: self.count,
                                                   self.cfg.nf_conntrack_max, when, self.destroy)
        return reaped + self._reap(now)

    def _reap(self, now: float) -> int:
        timers = self.timers
        reaped = 0
        while timers and timers[0][0] <= now:
            deadline, _, conn = heapq.heappop(timers)
            if self.entries.get(conn.orig_key) is not conn:
                continue
            if deadline < conn.expires:  # refreshed since: wait for the new deadline
                self._arm(conn)
                continue
            self.destroy(conn, conn.expires, early_drop.CAUSE_TIMEOUT)
            reaped += 1
        return reaped

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
            self._arm(conn)
            if self._buckets is not None:
                self._buckets.add(conn)
            if self.event_sink is not None:
                conn.events |= IPCT_RELATED if conn.master is not None else IPCT_NEW
            if conn.status & IPS_DYING:
                self.destroy(conn, now, "reset")
                return
        if (self.event_sink is not None and conn.events and conn.status & IPS_CONFIRMED
                and not conn.status & IPS_DYING):
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
        if self._buckets is not None:
            self._buckets.remove(conn)
        if self.on_destroy is not None:
            self.on_destroy(conn, now)
        if self.event_sink is not None:
            self.event_sink(ConntrackEvent.destroyed(conn, now, cause))

    def expire(self, now: float) -> int:
        """Reap every entry that has timed out by `now`; returns how many."""
        return self.gc(now)


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
