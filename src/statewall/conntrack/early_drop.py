"""Making room in a full table (nf_conntrack_core.c: early_drop, early_drop_list, gc_worker).

How this works. The kernel's table is a hash of `nf_conntrack_buckets`
chains, and every entry sits in two of them (one per tuple). When a new
entry would push the namespace over `nf_conntrack_max`, `early_drop` walks
at most 8 consecutive chains starting at the new tuple's bucket; in the
first chain that holds any candidate it deletes *every* candidate: entries
that are confirmed, not dying and not ASSURED (expired ones met on the way
are reaped, not counted). Nothing deleted in 8 chains means the packet is
dropped, and the garbage collector's next run switches to early-drop mode:
while the count is at least 95 % of the maximum (computed as
`max / 100 * 95` in integers, so never below 100 entries) it also deletes
ASSURED entries the tracker calls evictable (TCP closing states, SCTP
shutdown states).

The kernel's hash is keyed with a random boot-time secret, so no program
can know which entries share a chain on a given machine. `BucketIndex`
therefore uses its own deterministic hash of each tuple over the same
number of buckets: what gets evicted is decided exactly as the kernel
decides it, but which unassured entries happen to share a chain with the
new one is a plausible draw, not a prediction. Tests must only rely on
facts that hold for every hash: ASSURED entries survive, something
evictable in range is evicted, a full table of ASSURED entries drops.

The index is built the first time the table is full and then maintained on
insert and delete, so tables that never fill up pay nothing for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from statewall.conntrack.conn import IPS_ASSURED, IPS_DYING, Conn
from statewall.conntrack.trackers import tracker_for

NF_CT_EVICTION_RANGE = 8
# The GC reschedules itself between 1 s and 60 s (GC_SCAN_INTERVAL_MIN/MAX);
# its early-drop pass is modelled at the earliest moment it could run.
GC_EARLY_DROP_DELAY = 1.0

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15

CAUSE_EARLY_DROP = "early drop (table full)"
CAUSE_GC_EARLY_DROP = "early drop by the garbage collector (table nearly full)"
CAUSE_TIMEOUT = "timeout"

Destroy = Callable[[Conn, float, str], None]


def bucket_of(key: int, buckets: int) -> int:
    """A deterministic stand-in for hash_conntrack + reciprocal_scale."""
    mixed = ((hash(key) & _MASK64) * _GOLDEN) & _MASK64
    return ((mixed >> 32) * buckets) >> 32


class BucketIndex:
    """The hash chains: bucket number -> entries linked there, oldest first.

    The kernel adds at the head of a chain, so walks go newest first.
    """

    __slots__ = ("size", "chains")

    def __init__(self, size: int, conns: Iterable[Conn]) -> None:
        self.size = max(size, 1)
        self.chains: dict[int, list[Conn]] = {}
        for conn in conns:
            self.add(conn)

    def add(self, conn: Conn) -> None:
        for key in (conn.orig_key, conn.reply_key):
            self.chains.setdefault(bucket_of(key, self.size), []).append(conn)

    def remove(self, conn: Conn) -> None:
        for key in (conn.orig_key, conn.reply_key):
            bucket = bucket_of(key, self.size)
            chain = self.chains.get(bucket)
            if chain is not None and conn in chain:
                chain.remove(conn)
                if not chain:
                    del self.chains[bucket]

    def walk(self, bucket: int) -> list[Conn]:
        """A snapshot of one chain, newest first (deleting while walking is safe)."""
        return list(reversed(self.chains.get(bucket, ())))


def _dead(conn: Conn) -> bool:
    return bool(conn.status & IPS_DYING)


def early_drop(index: BucketIndex, new_key: int, now: float, destroy: Destroy) -> int:
    """Delete the candidates of the first chain in range that has any; how many went."""
    start = bucket_of(new_key, index.size)
    for step in range(NF_CT_EVICTION_RANGE):
        drops = 0
        for conn in index.walk((start + step) % index.size):
            if _dead(conn):
                continue
            if conn.expires <= now:
                destroy(conn, conn.expires, CAUSE_TIMEOUT)
                continue
            if conn.status & IPS_ASSURED:
                continue
            destroy(conn, now, CAUSE_EARLY_DROP)
            drops += 1
        if drops:
            return drops
    return 0


def gc_evictable(conn: Conn) -> bool:
    """gc_worker_can_early_drop: unassured, or assured but closing."""
    if not conn.status & IPS_ASSURED:
        return True
    return tracker_for(conn.proto).can_early_drop(conn)


def gc_early_drop(index: BucketIndex, count: Callable[[], int], nf_conntrack_max: int,
                  now: float, destroy: Destroy) -> int:
    """One GC run in early-drop mode: buckets in order, while the table is >= 95 % full."""
    max95 = nf_conntrack_max // 100 * 95
    if max95 == 0:
        return 0
    killed = 0
    for bucket in sorted(index.chains):
        for conn in index.walk(bucket):
            if _dead(conn):
                continue
            if conn.expires <= now:
                destroy(conn, conn.expires, CAUSE_TIMEOUT)
                continue
            if count() >= max95 and gc_evictable(conn):
                destroy(conn, now, CAUSE_GC_EARLY_DROP)
                killed += 1
    return killed


__all__ = [
    "CAUSE_EARLY_DROP", "CAUSE_GC_EARLY_DROP", "CAUSE_TIMEOUT", "GC_EARLY_DROP_DELAY",
    "NF_CT_EVICTION_RANGE", "BucketIndex", "bucket_of", "early_drop", "gc_early_drop",
    "gc_evictable",
]
