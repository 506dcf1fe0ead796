"""The netfilter pipeline: hooks in kernel order around the conntrack core.

How this works. A datagram is routed (router by default: PREROUTING →
FORWARD → POSTROUTING; with local addresses: PREROUTING → INPUT for packets
to the host, OUTPUT → POSTROUTING for packets from it). At each hook the
tables run in priority order, with conntrack at its own priority:

    PREROUTING   defrag · raw · CONNTRACK · mangle · nat
    INPUT        mangle · filter · security · nat · CONFIRM
    FORWARD      mangle · filter · security
    OUTPUT       defrag · raw · CONNTRACK · mangle · nat · filter · security
    POSTROUTING  mangle · nat · CONFIRM

A terminal verdict (DROP, REJECT, QUEUE) ends the walk and any unconfirmed
entry dies with the packet. The rule engine plugs in through `RuleEngine`;
without one every table accepts, which is what a machine with conntrack
loaded but no rules does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from statewall.conntrack.conn import (
    CT_INVALID,
    CT_RELATED,
    CT_UNTRACKED,
    CTSTATE_NAMES,
    IPS_EXPECTED,
    Conn,
    status_names,
)
from statewall.conntrack.core import ConntrackTable, CtResult, untracked
from statewall.conntrack.expect import ExpectationTable
from statewall.helpers.confirm import confirm_with_helper
from statewall.helpers.registry import assign_helper
from statewall.packet import Packet
from statewall.verdict import ACCEPT, DROP, RuleRef

PREROUTING = "PREROUTING"
INPUT = "INPUT"
FORWARD = "FORWARD"
OUTPUT = "OUTPUT"
POSTROUTING = "POSTROUTING"

CONNTRACK = "<conntrack>"
CONFIRM = "<confirm>"

HOOK_ORDER: dict[str, tuple[str, ...]] = {
    PREROUTING: ("raw", CONNTRACK, "mangle", "nat"),
    INPUT: ("mangle", "filter", "security", "nat", CONFIRM),
    FORWARD: ("mangle", "filter", "security"),
    OUTPUT: ("raw", CONNTRACK, "mangle", "nat", "filter", "security"),
    POSTROUTING: ("mangle", "nat", CONFIRM),
}

PATH_FORWARD = (PREROUTING, FORWARD, POSTROUTING)
PATH_INPUT = (PREROUTING, INPUT)
PATH_OUTPUT = (OUTPUT, POSTROUTING)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class PacketContext:
    """Everything the rules may read or change about one packet on its way.

    The raw table's CT target writes `notrack`, `zone`, `helper` and
    `ct_timeout` before conntrack runs; MARK writes `mark`; LOG and friends
    append to `notes`.
    """

    __slots__ = ("pkt", "now", "hook", "ct", "iface_in", "iface_out", "notrack", "zone",
                 "helper", "ct_timeout", "mark", "nf_trace", "notes")

    def __init__(self, pkt: Packet, now: float, iface_in: str | None, iface_out: str | None) -> None:
        self.pkt = pkt
        self.now = now
        self.hook = PREROUTING
        self.ct: CtResult | None = None
        self.iface_in = iface_in
        self.iface_out = iface_out
        self.notrack = False
        self.zone = 0
        self.helper: str | None = None
        self.ct_timeout: str | None = None
        self.mark = 0
        self.nf_trace = False
        self.notes: list[str] = []

    @property
    def ctinfo(self) -> int:
        return self.ct.ctinfo if self.ct is not None else CT_INVALID

    @property
    def conn(self) -> Conn | None:
        return self.ct.conn if self.ct is not None else None


@dataclass(frozen=True, slots=True)
class TableVerdict:
    """A table's answer for one packet at one hook."""

    verdict: str  # ACCEPT (continue to the next table), DROP, REJECT, QUEUE, UNKNOWN
    rule: RuleRef | None
    reason: str


class RuleEngine(Protocol):
    """What the pipeline needs from a compiled ruleset."""

    def has_chain(self, family: int, table: str, hook: str) -> bool: ...

    def evaluate(self, family: int, table: str, hook: str, ctx: PacketContext) -> TableVerdict: ...


@dataclass(frozen=True)
class Topology:
    """Which addresses are the firewall's own and which interface leads where."""

    local: tuple[Network, ...] = ()
    interfaces: tuple[tuple[str, tuple[Network, ...]], ...] = ()

    def is_local(self, family: int, address: int) -> bool:
        return any(_contains(net, family, address) for net in self.local)

    def interface_for(self, family: int, address: int) -> str | None:
        for name, nets in self.interfaces:
            if any(_contains(net, family, address) for net in nets):
                return name
        return None


def _contains(net: Network, family: int, address: int) -> bool:
    if net.version != family:
        return False
    return (address & int(net.netmask)) == int(net.network_address)


def parse_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(text.strip(), strict=False) for text in texts)


@dataclass
class HookOutcome:
    """Where the walk ended and who decided."""

    verdict: str = ACCEPT
    rule: RuleRef | None = None
    reason: str = ""
    hooks: list[str] = field(default_factory=list)


# What the routing decision does with special addresses, as measured on Linux
# 6.18 forwarding between two plain interfaces (no multicast routing daemon,
# route_localnet off). Every interface belongs to the all-hosts groups, and
# with forwarding on IPv6 also to all-routers; other groups are not joined.
_V4_JOINED = frozenset({0xE0000001, 0xFFFFFFFF})  # 224.0.0.1, limited broadcast
_V6_JOINED = frozenset(int(ipaddress.IPv6Address(a)) for a in ("ff02::1", "ff02::2"))
_V6_LOOPBACK = 1
_NOT_JOINED = "dropped by routing: multicast group not joined and no multicast routing"
_LINK_LOCAL = "dropped by routing: link-local addresses are never forwarded"
_MARTIAN = "dropped by routing: martian source address"


def stack_drop(family: int, src: int, dst: int) -> str:
    """Why the IPv6 receive path drops a datagram before PREROUTING ("" if it does not)."""
    if family == 6:
        if src >> 120 == 0xFF:
            return "dropped by the IPv6 layer before netfilter: multicast source address"
        if dst >> 112 == 0xFF01:
            return "dropped by the IPv6 layer before netfilter: interface-local multicast from the wire"
        if src == _V6_LOOPBACK or dst == _V6_LOOPBACK:
            return "dropped by the IPv6 layer before netfilter: loopback address from the wire"
    return ""


def choose_path(topology: Topology, family: int, src: int, dst: int) -> tuple[Sequence[str], str]:
    """The hooks a datagram traverses, and why routing drops it ("" when it does not).

    Router by default; a host for packets to or from its local addresses.
    A routing drop happens after PREROUTING, so conntrack has already seen
    the packet but never confirms its entry.
    """
    if topology.local:
        if topology.is_local(family, src):
            return PATH_OUTPUT, ""
        if topology.is_local(family, dst):
            return PATH_INPUT, ""
    reason = _v4_route(src, dst) if family == 4 else _v6_route(src, dst)
    if reason == "local":
        return PATH_INPUT, ""
    if reason:
        return (PREROUTING,), reason
    return PATH_FORWARD, ""


def _v4_route(src: int, dst: int) -> str:
    if src >> 28 == 0xE or src == 0xFFFFFFFF:
        return _MARTIAN
    if dst in _V4_JOINED:
        return "local"
    if dst >> 28 == 0xE:
        return _NOT_JOINED
    if dst == 0 or src == 0:
        return _MARTIAN
    return ""


def _v6_route(src: int, dst: int) -> str:
    if dst >> 120 == 0xFF:
        return "local" if dst in _V6_JOINED else _NOT_JOINED
    if src == 0:
        return _MARTIAN
    if src >> 118 == 0x3FA or dst >> 118 == 0x3FA:  # fe80::/10
        return _LINK_LOCAL
    return ""


@dataclass
class Netns:
    """The per-namespace state the hooks act on: conntrack and its expectations."""

    table: ConntrackTable
    expectations: ExpectationTable
    auto_helpers: bool = False


def run_hooks(
    ns: Netns,
    rules: RuleEngine | None,
    ctx: PacketContext,
    path: Sequence[str],
    routing_drop: str = "",
) -> HookOutcome:
    """Walk the packet through the hooks of its path; conntrack at its priority."""
    outcome = _walk_hooks(ns, rules, ctx, path)
    if routing_drop and outcome.verdict == ACCEPT:
        outcome.verdict = DROP
        outcome.rule = None
        outcome.reason = routing_drop
        _dropped(ns, ctx)
    return outcome


def _walk_hooks(ns: Netns, rules: RuleEngine | None, ctx: PacketContext,
                path: Sequence[str]) -> HookOutcome:
    outcome = HookOutcome()
    pkt = ctx.pkt
    for hook in path:
        ctx.hook = hook
        outcome.hooks.append(hook)
        for name in HOOK_ORDER[hook]:
            if name == CONNTRACK:
                ctx.ct = _conntrack(ns, ctx, hook == PREROUTING)
                if ctx.ct.drop:
                    outcome.verdict = DROP
                    outcome.reason = f"dropped by conntrack itself: {ctx.ct.reason}"
                    return outcome
            elif name == CONFIRM:
                if ctx.ct is not None and not _confirm(ns, ctx, outcome):
                    return outcome
            elif rules is not None and rules.has_chain(pkt.family, name, hook):
                answer = rules.evaluate(pkt.family, name, hook, ctx)
                if _decides(answer, name, outcome.rule):
                    outcome.rule = answer.rule
                    outcome.reason = answer.reason
                if answer.verdict != ACCEPT:
                    outcome.verdict = answer.verdict
                    _dropped(ns, ctx)
                    return outcome
    return outcome


def _confirm(ns: Netns, ctx: PacketContext, outcome: HookOutcome) -> bool:
    """nf_confirm: the entry's helper reads the packet (and may drop it), then insert."""
    assert ctx.ct is not None
    verdict = confirm_with_helper(ns.table, ns.expectations, ctx.ct, ctx.pkt, ctx.now)
    if not verdict.accept:
        outcome.verdict = DROP
        outcome.rule = None
        outcome.reason = verdict.reason
        return False
    if verdict.reason:
        ctx.notes.append(verdict.reason)
    return True


def _dropped(ns: Netns, ctx: PacketContext) -> None:
    """A rule dropped the packet: an unconfirmed entry (and what it announced) dies."""
    ct = ctx.ct
    if ct is None:
        return
    if ct.unconfirmed and ct.conn is not None:
        ns.expectations.master_destroyed(ct.conn, ctx.now)
    ns.table.discard(ct)


def _decides(answer: TableVerdict, table: str, current: RuleRef | None) -> bool:
    """Is this table's answer the one to report as deciding the packet's fate?

    A terminal verdict always is. For a packet accepted everywhere, the filter
    table's rule (or policy) is what people mean; another table's explicit
    rule counts only while the filter table has not spoken.
    """
    if answer.rule is None:
        return False
    if answer.verdict != ACCEPT or table == "filter":
        return True
    return current is None and answer.rule.number > 0


def _conntrack(ns: Netns, ctx: PacketContext, in_prerouting: bool) -> CtResult:
    if ctx.notrack:
        return untracked("UNTRACKED: marked NOTRACK in the raw table")
    result = ns.table.classify(ctx.pkt, ctx.now, in_prerouting, ctx.zone)
    conn = result.conn
    if conn is None:
        return result
    if result.unconfirmed:
        assign_helper(conn, ctx.helper, ns.auto_helpers)
    if result.ctinfo == CT_RELATED and conn.status & IPS_EXPECTED:
        origin = ns.expectations.related_reason(conn)
        if origin:
            result.reason = f"{origin}; {result.reason}"
    return result


def ct_labels(ct: CtResult | None) -> tuple[str | None, str | None, tuple[str, ...]]:
    """ctstate, ctdir and status names as users see them."""
    if ct is None or ct.drop:  # conntrack itself dropped it: no rule ever saw a state
        return None, None, ()
    state = CTSTATE_NAMES[ct.ctinfo]
    if ct.ctinfo in (CT_INVALID, CT_UNTRACKED) or ct.conn is None:
        return state, None, ()
    direction = "REPLY" if ct.direction == 1 else "ORIGINAL"
    return state, direction, tuple(status_names(ct.conn.status))
