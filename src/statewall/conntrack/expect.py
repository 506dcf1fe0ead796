"""Expectations: "a connection like THIS belongs to that master" (nf_conntrack_expect.c).

How this works. A helper that reads an announcement on a master connection
(an FTP PORT command, an IRC DCC offer, a TFTP request) registers an
`Expectation` with `related` (the kernel's nf_ct_expect_related):

* the walk over expectations with the same destination (`__nf_ct_expect_check`)
  replaces an identical one of the same master (a retransmitted command) and
  refuses one that clashes with another expectation, i.e. both could match the
  same packet (`expect_clash`);
* the master's `max_expected` per class is enforced by evicting its *oldest*
  expectation of that class (`evict_oldest_expect`); the new one goes in;
* the namespace cap `nf_conntrack_expect_max` refuses insertion when full
  (the helper then drops the announcing packet).

`match_new` (nf_ct_find_expectation, called from init_conntrack) runs when a
packet creates a brand-new entry, before the protocol tracker and the filter
rules see it: a match is consumed at once, even if that packet is then dropped.
Destination address, port, protocol, family and zone must be equal; only the
source address and port are masked.

Expectations die at their nominal expiry (the live kernel's timer may fire a
few seconds later; the spec tells conformance tests to avoid that window),
when consumed, replaced or evicted, and all at once when their master dies
(`master_destroyed`, the kernel's nf_ct_remove_expectations).

The table also carries the per-connection data of the helpers and their
module parameters, so that one object holds all helper state of a replay.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from statewall.config import HelperParams
from statewall.conntrack.conn import IPS_CONFIRMED, IPS_DYING, Conn
from statewall.conntrack.display import PORT_PROTOS, format_address

# Expectation flags (NF_CT_EXPECT_*), in the order listings print them.
EXP_F_PERMANENT = 0x1
EXP_F_INACTIVE = 0x2
EXP_F_USERSPACE = 0x4
FLAG_NAMES = ((EXP_F_PERMANENT, "PERMANENT"), (EXP_F_INACTIVE, "INACTIVE"),
              (EXP_F_USERSPACE, "USERSPACE"))

# The kernel's cap on max_expected (NF_CT_EXPECT_MAX_CNT); a policy of 0 means it.
EXPECT_MAX_CNT = 255

ExpectEventSink = Callable[[str, "Expectation", float], None]


@dataclass(frozen=True, slots=True)
class ExpectPolicy:
    """One (helper, class) policy: struct nf_conntrack_expect_policy."""

    max_expected: int
    timeout: int
    name: str = ""  # only SIP names its classes ("signalling", "audio", ...)




class Expectation:
    """One struct nf_conntrack_expect, plus where and why it was announced.

    `src` is stored as the helper gave it (not masked): listings print it so.
    Wildcard fields have mask 0 and value 0.
    """

    __slots__ = (
        "family", "proto", "zone", "src", "src_mask", "sport", "sport_mask", "dst", "dport",
        "master", "helper", "klass", "flags", "policy_name", "created", "expires",
        "packet_index", "description", "alive",
    )

    def __init__(
        self, master: Conn, helper: str, proto: int, src: int, src_mask: int, sport: int,
        sport_mask: int, dst: int, dport: int, *, klass: int = 0, flags: int = 0,
        packet_index: int = -1, description: str = "",
    ) -> None:
        self.family = master.family
        self.proto = proto
        self.zone = master.zone
        self.src = src
        self.src_mask = src_mask
        self.sport = sport
        self.sport_mask = sport_mask
        self.dst = dst
        self.dport = dport
        self.master = master
        self.helper = helper
        self.klass = klass
        self.flags = flags
        self.policy_name = ""
        self.created = 0.0
        self.expires = 0.0
        self.packet_index = packet_index
        self.description = description
        self.alive = False

    def remaining(self, now: float) -> int:
        """Whole seconds left, truncated toward zero as the listings print them."""
        return int(self.expires - now)

    def same_as(self, other: Expectation) -> bool:
        """expect_matches: identical tuple and mask (destination is the bucket key)."""
        return (self.src == other.src and self.src_mask == other.src_mask
                and self.sport == other.sport and self.sport_mask == other.sport_mask)

    def clashes_with(self, other: Expectation) -> bool:
        """expect_clash: some source would match both (compared under both masks)."""
        mask = self.src_mask & other.src_mask
        port_mask = self.sport_mask & other.sport_mask
        return not ((self.src ^ other.src) & mask or (self.sport ^ other.sport) & port_mask)

    def __repr__(self) -> str:
        return (f"Expectation({self.helper} proto={self.proto} {self.src:x}/{self.src_mask:x}:"
                f"{self.sport}/{self.sport_mask:x} > {self.dst:x}:{self.dport})")


def full_mask(family: int) -> int:
    """An exact-match address mask for the family."""
    return (1 << 32) - 1 if family == 4 else (1 << 128) - 1


def _bucket_key(zone: int, family: int, proto: int, dst: int, dport: int) -> int:
    return ((((dst << 16 | dport) << 8 | proto) << 16 | zone) << 1) | (family == 6)


@dataclass(slots=True)
class ExpectStats:
    """The expectation columns of /proc/net/stat/nf_conntrack."""

    expect_new: int = 0  # children created from an expectation
    expect_create: int = 0  # insertions
    expect_delete: int = 0  # removals of any cause


@dataclass
class ExpectationTable:
    """One network namespace's expectations, and the helpers' state in it."""

    params: HelperParams = field(default_factory=HelperParams)
    event_sink: ExpectEventSink | None = None
    stats: ExpectStats = field(default_factory=ExpectStats)
    count: int = 0
    # Per-connection helper data (struct nf_conn_help's private area), by master.
    helper_data: dict[Conn, Any] = field(default_factory=dict)
    _by_dst: dict[int, list[Expectation]] = field(default_factory=dict)
    _by_master: dict[Conn, list[Expectation]] = field(default_factory=dict)
    _timers: list[tuple[float, int, Expectation]] = field(default_factory=list)
    _seq: int = 0
    # Which expectation each expected connection came from, for RELATED reasons.
    _origin: dict[Conn, Expectation] = field(default_factory=dict)

    # -- insertion (nf_ct_expect_related) -------------------------------------

    def related(self, exp: Expectation, policy: ExpectPolicy, now: float,
                expect_max: int) -> str | None:
        """Insert `exp`; None on success, else why the kernel refuses it.

        `expect_max` is nf_conntrack_expect_max (a global in the kernel, read
        at each insertion).
        """
        self.expire(now)
        key = _bucket_key(exp.zone, exp.family, exp.proto, exp.dst, exp.dport)
        bucket = self._by_dst.get(key)
        if bucket:
            refusal = self._replace_or_clash(bucket, exp, now)
            if refusal is not None:
                return refusal
        limit = policy.max_expected or EXPECT_MAX_CNT
        if self._expecting(exp.master, exp.klass) >= limit:
            self._evict_oldest(exp.master, exp.klass, now)
        if self.count >= expect_max:
            return f"expectation table full (nf_conntrack_expect_max={expect_max})"
        self._insert(key, exp, policy, now)
        return None

    def _replace_or_clash(self, bucket: list[Expectation], exp: Expectation,
                          now: float) -> str | None:
        for other in bucket:
            if other.master is exp.master and other.same_as(exp):
                if other.klass != exp.klass:
                    return "the same tuple is already expected with another class"
                self._remove(other, now, "replaced")
                return None
            if other.clashes_with(exp):
                return (f"it clashes with an expectation of {other.helper} control "
                        f"{_endpoints(other.master)}")
        return None

    def _expecting(self, master: Conn, klass: int) -> int:
        return sum(1 for e in self._by_master.get(master, ()) if e.klass == klass)

    def _evict_oldest(self, master: Conn, klass: int, now: float) -> None:
        for old in self._by_master.get(master, ()):
            if old.klass == klass:
                self._remove(old, now, "evicted (max_expected)")
                return

    def _insert(self, key: int, exp: Expectation, policy: ExpectPolicy, now: float) -> None:
        exp.created = now
        exp.expires = now + policy.timeout
        exp.policy_name = policy.name
        exp.alive = True
        self._by_dst.setdefault(key, []).append(exp)
        self._by_master.setdefault(exp.master, []).append(exp)
        self._seq += 1
        heapq.heappush(self._timers, (exp.expires, self._seq, exp))
        self.count += 1
        self.stats.expect_create += 1
        if self.event_sink is not None:
            self.event_sink("NEW", exp, now)

    # -- matching a new connection (nf_ct_find_expectation) ----------------------

    def match_new(self, conn: Conn, pkt: object, now: float) -> Conn | None:
        """Find and consume the expectation `conn` fulfils; return its master.

        Usable as `ConntrackTable.expect_match`. `pkt` is unused: the kernel
        matches on the new entry's original tuple only.
        """
        if not self.count:
            return None
        if self._timers[0][0] <= now:
            self.expire(now)
        bucket = self._by_dst.get(_bucket_key(conn.zone, conn.family, conn.proto,
                                              conn.orig_dst, conn.orig_dport))
        if not bucket:
            return None
        src, sport = conn.orig_src, conn.orig_sport
        for exp in bucket:
            if exp.flags & EXP_F_INACTIVE:
                continue
            if (src ^ exp.src) & exp.src_mask or (sport ^ exp.sport) & exp.sport_mask:
                continue
            return self._fulfil(exp, conn, now)
        return None

    def _fulfil(self, exp: Expectation, conn: Conn, now: float) -> Conn | None:
        master = exp.master
        # The peer cannot know of an announcement that never left the machine.
        if not master.status & IPS_CONFIRMED or master.status & IPS_DYING:
            return None
        if not exp.flags & EXP_F_PERMANENT:
            self._remove(exp, now, "consumed")
        self._origin[conn] = exp
        self.stats.expect_new += 1
        return master

    # -- removal ------------------------------------------------------------

    def master_destroyed(self, conn: Conn, now: float | None = None) -> None:
        """The entry died: drop its expectations and helper data.

        Call it for every destroyed entry, and for an unconfirmed one dropped
        with its packet (a TFTP request can announce before confirmation).
        Existing children survive, as in the kernel.
        """
        when = conn.expires if now is None else now
        for exp in list(self._by_master.get(conn, ())):
            self._remove(exp, when, "master destroyed")
        self.helper_data.pop(conn, None)
        self._origin.pop(conn, None)

    def remove(self, exp: Expectation, now: float, cause: str = "deleted") -> None:
        """conntrack -D expect: remove one expectation."""
        if exp.alive:
            self._remove(exp, now, cause)

    def _remove(self, exp: Expectation, now: float, cause: str) -> None:
        exp.alive = False
        key = _bucket_key(exp.zone, exp.family, exp.proto, exp.dst, exp.dport)
        bucket = self._by_dst[key]
        bucket.remove(exp)
        if not bucket:
            del self._by_dst[key]
        mine = self._by_master[exp.master]
        mine.remove(exp)
        if not mine:
            del self._by_master[exp.master]
        self.count -= 1
        self.stats.expect_delete += 1
        if self.event_sink is not None:
            self.event_sink("DESTROY", exp, now)

    def expire(self, now: float) -> int:
        """Remove every expectation whose time is up at `now`; returns how many."""
        removed = 0
        timers = self._timers
        while timers and timers[0][0] <= now:
            expires, _, exp = heapq.heappop(timers)
            if exp.alive:
                self._remove(exp, expires, "timeout")
                removed += 1
        return removed

    # -- inspection -----------------------------------------------------------

    def live(self, now: float) -> list[Expectation]:
        """The expectations a listing at `now` shows (creation order)."""
        return [e for mine in self._by_master.values() for e in mine if e.expires > now]

    def of_master(self, master: Conn) -> list[Expectation]:
        return list(self._by_master.get(master, ()))

    def origin(self, conn: Conn) -> Expectation | None:
        """The expectation an expected connection was created from."""
        return self._origin.get(conn)

    def related_reason(self, conn: Conn) -> str | None:
        """'RELATED: expected by ftp control A:p → B:21, PORT command in packet #9'."""
        exp = self._origin.get(conn)
        if exp is None:
            return None
        return f"RELATED: expected by {exp.helper} control {_endpoints(exp.master)}, {_cause(exp)}"


def _cause(exp: Expectation) -> str:
    what = exp.description or "announcement"
    if exp.packet_index < 0:
        return what
    return f"{what} in packet #{exp.packet_index + 1}"


def endpoint(family: int, address: int, port: int) -> str:
    """A.B.C.D:port or [v6]:port, as people write them."""
    text = format_address(family, address, False)
    return f"{text}:{port}" if family == 4 else f"[{text}]:{port}"


def _endpoints(conn: Conn) -> str:
    return (f"{endpoint(conn.family, conn.orig_src, conn.orig_sport)} → "
            f"{endpoint(conn.family, conn.orig_dst, conn.orig_dport)}")


# -- listings -----------------------------------------------------------------


def _flags_text(flags: int) -> str:
    return ",".join(name for bit, name in FLAG_NAMES if flags & bit)


def _ports(exp: Expectation, sport: int, dport: int) -> str:
    return f"sport={sport} dport={dport} " if exp.proto in PORT_PROTOS else ""


def proc_expect_line(exp: Expectation, now: float) -> str:
    """One line of /proc/net/nf_conntrack_expect (exp_seq_show), newline included."""
    l3num = 2 if exp.family == 4 else 10
    text = (f"{exp.remaining(now)} l3proto = {l3num} proto={exp.proto} "
            f"src={format_address(exp.family, exp.src, True)} "
            f"dst={format_address(exp.family, exp.dst, True)} {_ports(exp, exp.sport, exp.dport)}")
    if exp.flags:
        text += _flags_text(exp.flags) + " "
    text += exp.helper
    if exp.policy_name:
        text += "/" + exp.policy_name
    return text + "\n"


def conntrack_expect_line(exp: Expectation, now: float) -> str:
    """One line of `conntrack -L expect` (conntrack-tools 1.4.7), no newline."""
    return f"{exp.remaining(now)} {_expect_body(exp)}"


def _expect_body(exp: Expectation) -> str:
    fam = exp.family
    master = exp.master
    text = (f"proto={exp.proto} src={format_address(fam, exp.src, False)} "
            f"dst={format_address(fam, exp.dst, False)} {_ports(exp, exp.sport, exp.dport)}"
            f"mask-src={format_address(fam, exp.src_mask, False)} "
            f"mask-dst={format_address(fam, full_mask(fam), False)} "
            f"{_ports(exp, exp.sport_mask, 0xFFFF)}"
            f"master-src={format_address(fam, master.orig_src, False)} "
            f"master-dst={format_address(fam, master.orig_dst, False)} "
            f"{_ports(exp, master.orig_sport, master.orig_dport)}")
    if exp.flags:
        text += _flags_text(exp.flags) + " "
    return text + f"class={exp.klass} helper={exp.helper}"


def conntrack_expect_event_line(kind: str, exp: Expectation, timeout: int) -> str:
    """One line of `conntrack -E expect`: `    [NEW] ` or `[DESTROY] ` then the body."""
    tag = "    [NEW]" if kind == "NEW" else "[DESTROY]"
    return f"{tag} {timeout} {_expect_body(exp)}"


__all__ = [
    "EXP_F_INACTIVE", "EXP_F_PERMANENT", "EXP_F_USERSPACE", "ExpectPolicy", "ExpectStats",
    "Expectation", "ExpectationTable", "HelperParams", "conntrack_expect_event_line",
    "conntrack_expect_line", "endpoint", "full_mask", "proc_expect_line",
]
