"""What-if: the same capture under two configurations, and what changes.

Two `Firewall`s, A and B, are fed the same packets in lockstep (each its
own decoded copy, since the engine annotates packets). A packet is reported
when its ctstate or its verdict differs; differences are grouped by the
flow they belong to (both directions of an address/port pair, or the ICMP
identifier), so a user sees "this connection broke under B" rather than a
list of packet numbers. Entries evicted to make room (early drop) on each
side are collected too: they answer "with nf_conntrack_max=N, which
connections would have been evicted".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from statewall._core import escape_controls, format_address
from statewall.engine import Firewall
from statewall.events import CAUSE_EARLY_DROP, CAUSE_GC_EARLY_DROP, ConntrackEvent
from statewall.packet import PROTO_ICMP, PROTO_ICMPV6, Packet
from statewall.verdict import PacketVerdict

_PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 47: "gre", 58: "icmpv6",
                132: "sctp", 136: "udplite"}
_EVICTIONS = (CAUSE_EARLY_DROP, CAUSE_GC_EARLY_DROP)

# Builds one side's Firewall around the event sink the comparison passes in.
FirewallFactory = Callable[[Callable[[ConntrackEvent], None]], Firewall]


@dataclass(frozen=True, slots=True)
class Difference:
    """One packet judged differently by A and B."""

    number: int  # 1-based, as in the capture
    flow: str
    a: PacketVerdict
    b: PacketVerdict


@dataclass
class CompareResult:
    packets: int = 0
    differences: list[Difference] = field(default_factory=list)
    evicted_a: list[ConntrackEvent] = field(default_factory=list)
    evicted_b: list[ConntrackEvent] = field(default_factory=list)

    def by_flow(self) -> list[tuple[str, list[Difference]]]:
        """Differences grouped by flow, flows in order of their first difference."""
        groups: dict[str, list[Difference]] = {}
        for diff in self.differences:
            groups.setdefault(diff.flow, []).append(diff)
        return list(groups.items())

    def summary_line(self) -> str:
        flows = len(self.by_flow())
        return (f"{len(self.differences)} of {self.packets} packets differ in ctstate or "
                f"verdict, in {flows} flows; evicted by early drop: A {len(self.evicted_a)}, "
                f"B {len(self.evicted_b)}")


def endpoint(family: int, address: int, port: int) -> str:
    """A.B.C.D:port or [v6]:port, as people write them."""
    text = format_address(family, address)
    return f"{text}:{port}" if family == 4 else f"[{text}]:{port}"


def flow_label(pkt: Packet) -> str:
    """Both directions of a flow under one name: `tcp 192.0.2.1:4000 <-> 198.51.100.7:80`."""
    name = _PROTO_NAMES.get(pkt.proto, f"proto {pkt.proto}")
    if pkt.family == 0:
        return "not IP"
    if pkt.proto in (PROTO_ICMP, PROTO_ICMPV6):
        ends = sorted((endpoint(pkt.family, pkt.src, 0), endpoint(pkt.family, pkt.dst, 0)))
        ends = [e.rsplit(":", 1)[0] for e in ends]
        return f"{name} {ends[0]} <-> {ends[1]} id={pkt.sport}"
    ends = sorted((endpoint(pkt.family, pkt.src, pkt.sport),
                   endpoint(pkt.family, pkt.dst, pkt.dport)))
    return f"{name} {ends[0]} <-> {ends[1]}"


def differs(a: PacketVerdict, b: PacketVerdict) -> bool:
    return a.ctstate != b.ctstate or a.verdict != b.verdict


class _Evictions:
    """An event sink keeping only early-drop DESTROYs."""

    def __init__(self, into: list[ConntrackEvent]) -> None:
        self.into = into

    def __call__(self, event: ConntrackEvent) -> None:
        if event.cause in _EVICTIONS:
            self.into.append(event)


def compare(packets: Iterable[tuple[Packet, Packet]], make_a: FirewallFactory,
            make_b: FirewallFactory) -> CompareResult:
    """Replay pairs of identical packets through A and B; collect what differs."""
    result = CompareResult()
    fw_a = make_a(_Evictions(result.evicted_a))
    fw_b = make_b(_Evictions(result.evicted_b))
    for pkt_a, pkt_b in packets:
        flow = flow_label(pkt_a)
        a, b = fw_a.process(pkt_a), fw_b.process(pkt_b)
        result.packets += 1
        if differs(a, b):
            result.differences.append(Difference(a.index + 1, flow, a, b))
    return result


def _side(verdict: PacketVerdict) -> str:
    state = verdict.ctstate or "-"
    if verdict.ctdir:
        state += f"/{verdict.ctdir}"
    # The reason comes escaped from the core; the rule's chain name is the ruleset's own text.
    decided = f" by {escape_controls(str(verdict.rule))}" if verdict.rule else ""
    return f"{state} {verdict.verdict}{decided} | {verdict.reason}"


def report_lines(result: CompareResult) -> Iterator[str]:
    """The text report: per flow its differing packets with both answers, then evictions."""
    for flow, diffs in result.by_flow():
        yield f"{flow}: {len(diffs)} packets differ"
        for diff in diffs:
            yield f"  #{diff.number} {diff.a.summary}"
            yield f"      A: {_side(diff.a)}"
            yield f"      B: {_side(diff.b)}"
    for label, events in (("A", result.evicted_a), ("B", result.evicted_b)):
        for event in events:
            yield f"evicted under {label} at {event.ts:.6f}: {event.body}"
    yield result.summary_line()


__all__ = ["CompareResult", "Difference", "FirewallFactory", "compare", "differs", "flow_label",
           "report_lines"]
