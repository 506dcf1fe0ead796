"""Per-walk state (the skb as matches and targets see it) and the walk's result.

A `PacketContext` is created once per table walk; matches read it, targets
write their effects into it (mark, log lines, "notrack"). The walk ends in a
frozen `Decision`: the verdict, the rule that decided it, and everything the
rules did on the way. `RuleState` holds the state rules share across
packets (xt_recent tables, limit buckets, the statistic generator): it
belongs to one compiled ruleset, never to the module.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from statewall.verdict import RuleRef

if TYPE_CHECKING:
    from statewall.conntrack.conn import Conn
    from statewall.packet import Packet

# Target results (the kernel's NF_* verdicts plus XT_CONTINUE / XT_RETURN).
CONTINUE = 0
ACCEPT = 1
DROP = 2
REJECT = 3
QUEUE = 4
RETURN = 5
UNKNOWN = 6

VERDICT_NAMES = {ACCEPT: "ACCEPT", DROP: "DROP", REJECT: "REJECT", QUEUE: "QUEUE",
                 UNKNOWN: "UNKNOWN"}


class PacketContext:
    """The packet plus what the rules may read or change while walking one table."""

    __slots__ = (
        "pkt", "ctinfo", "conn", "now", "iface_in", "iface_out", "hook", "family",
        "mark", "logs", "effects", "reject_with", "queue_num", "notes", "trace",
        "unknown", "hotdrop",
    )

    def __init__(
        self,
        pkt: Packet,
        ctinfo: int,
        conn: Conn | None,
        now: float,
        hook: str,
        iface_in: str | None,
        iface_out: str | None,
        mark: int = 0,
    ) -> None:
        self.pkt = pkt
        self.ctinfo = ctinfo
        self.conn = conn
        self.now = now
        self.hook = hook
        self.iface_in = iface_in
        self.iface_out = iface_out
        self.family = pkt.family
        self.mark = mark
        self.logs: list[str] | None = None
        self.effects: list[tuple[str, Any]] | None = None
        self.reject_with: str | None = None
        self.queue_num = 0
        self.notes: list[str] | None = None
        self.trace = False
        # Set by a match that passed but could not really decide (the rule's
        # fate is then undetermined) and by one that drops the packet on the
        # spot (the kernel's par->hotdrop).
        self.unknown: str | None = None
        self.hotdrop: str | None = None

    def log(self, line: str) -> None:
        if self.logs is None:
            self.logs = []
        self.logs.append(line)

    def effect(self, kind: str, value: Any) -> None:
        if self.effects is None:
            self.effects = []
        self.effects.append((kind, value))

    def note(self, text: str) -> None:
        if self.notes is None:
            self.notes = []
        self.notes.append(text)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of walking one table for one packet.

    `verdict` is ACCEPT, DROP, REJECT, QUEUE or UNKNOWN (a rule statewall could
    not evaluate decided it). `rule` is the deciding rule or the built-in
    chain's policy (number 0). Effects are (kind, value) pairs in rule order:
    ("notrack", True), ("helper", "ftp"), ("zone", 1), ("ct-timeout", name),
    ("ct-events", "new,..."), ("connmark", value), ("nat", description), ...
    """

    verdict: str
    rule: RuleRef
    reason: str
    mark: int = 0
    reject_with: str | None = None
    queue_num: int = 0
    logs: tuple[str, ...] = ()
    effects: tuple[tuple[str, Any], ...] = ()
    notes: tuple[str, ...] = ()
    trace: tuple[str, ...] = ()
    # skb->nf_trace after the walk: once a TRACE rule set it, every later
    # table and hook traces the packet too.
    nf_trace: bool = False


@dataclass(slots=True)
class RecentEntry:
    """One address in an xt_recent table: a ring of hit times in jiffies and a TTL."""

    stamps: list[int]
    index: int
    ttl: int


@dataclass(slots=True)
class RecentTable:
    """An xt_recent list (`/proc/net/xt_recent/NAME`), keyed by (family, address)."""

    name: str
    mask: int  # --mask of the rule that created the table (later rules' masks are ignored)
    stamp_mask: int  # ring size - 1 of each entry's time stamps (nstamps_max_mask)
    entries: dict[tuple[int, int], RecentEntry] = field(default_factory=dict)


@dataclass(slots=True)
class RuleState:
    """Everything the rules of one loaded ruleset remember between packets."""

    seed: int = 0
    recent_size: int = 100  # xt_recent module parameter ip_list_tot
    recent_pkt_count: int = 0  # xt_recent module parameter ip_pkt_list_tot
    hz: int = 250  # the kernel's tick rate: limit and recent count in jiffies
    recent: dict[str, RecentTable] = field(default_factory=dict)
    sets: dict[str, Any] = field(default_factory=dict)
    # Topology for addrtype, rpfilter and the like: (family, address, mask) of
    # the host's own networks (`--local`) and of the networks behind each
    # interface (`--iface NAME=CIDR`).
    local_nets: tuple[tuple[int, int, int], ...] = ()
    iface_nets: dict[str, tuple[tuple[int, int, int], ...]] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    # xt_hashlimit tables by --hashlimit-name (shared by every rule naming them).
    hashlimit: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng.seed(self.seed)
