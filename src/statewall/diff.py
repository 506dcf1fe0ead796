"""What-if: one capture through two machines, A and B, and what changes.

"What changes if I deploy this ruleset?" A and B are `MachineOptions`: they
may differ in anything — the rulesets, ipsets, sysctls, profile, topology.
Both replay the same capture in the core, in lockstep; a packet is reported
when its verdict, its ctstate, the rule that decided or (NAT) the addresses
and ports it leaves with differ. Differences
are grouped by change (A's deciding rule -> B's), so a person reads "these 12
packets were accepted by FORWARD #3 and now fall to the policy", and
counted by flow (both directions of an address/port pair), the connections
that changed. Entries evicted to make room (early drop) on each side are
collected too: they answer "with nf_conntrack_max=N, which connections would
have been evicted".
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from statewall._core import escape_controls
from statewall.api import MachineOptions, Replay, build_firewall
from statewall.events import CAUSE_EARLY_DROP, CAUSE_GC_EARLY_DROP, ConntrackEvent
from statewall.verdict import PacketVerdict, addressing_text
from statewall.wording import count, noun

_PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 47: "gre", 58: "icmpv6",
                132: "sctp", 136: "udplite"}
_EVICTIONS = (CAUSE_EARLY_DROP, CAUSE_GC_EARLY_DROP)
EXAMPLES = 3  # packets shown per change in the text report


@dataclass(frozen=True, slots=True)
class Difference:
    """One packet judged differently by A and B."""

    frame: int  # 1-based, as in the capture
    flow: str
    a: PacketVerdict
    b: PacketVerdict

    @property
    def change(self) -> str:
        """`A's deciding rule -> B's`, or the verdicts when the rule is the same."""
        ra, rb = _rule(self.a), _rule(self.b)
        if ra != rb:
            return f"{ra} -> {rb}"
        if self.a.verdict == self.b.verdict and _leaving(self.a) != _leaving(self.b):
            return f"{ra}: leaves as {_leaving(self.a)} -> {_leaving(self.b)}"
        return f"{ra}: {self.a.verdict} -> {self.b.verdict}"


@dataclass
class DiffResult:
    packets: int = 0
    differences: list[Difference] = field(default_factory=list)
    evicted_a: list[ConntrackEvent] = field(default_factory=list)
    evicted_b: list[ConntrackEvent] = field(default_factory=list)

    def by_change(self) -> list[tuple[str, list[Difference]]]:
        """Differences grouped by change, most packets first (ties: first seen first)."""
        groups: dict[str, list[Difference]] = {}
        for diff in self.differences:
            groups.setdefault(diff.change, []).append(diff)
        return sorted(groups.items(), key=lambda item: -len(item[1]))

    def flows(self) -> list[str]:
        """The flows (connections, both directions) with a difference, in order of the first."""
        return list(dict.fromkeys(d.flow for d in self.differences))

    def summary_line(self) -> str:
        changed = len(self.differences)
        return (f"{count(changed, 'packet')} of {self.packets} "
                f"{noun(changed, 'differs', 'differ')} in verdict, ctstate, deciding rule or "
                "translation, "
                f"in {count(len(self.flows()), 'connection')}; "
                f"evicted by early drop: A {len(self.evicted_a)}, B {len(self.evicted_b)}")


def flow_label(v: PacketVerdict) -> str:
    """Both directions of a flow under one name: `tcp 192.0.2.1:4000 <-> 198.51.100.7:80`."""
    if v.src is None or v.dst is None:
        return "not IP"
    name = _PROTO_NAMES.get(v.proto, f"proto {v.proto}")

    def end(address: str, port: int | None) -> str:
        text = address if ":" not in address else f"[{address}]"
        return text if port is None else f"{text}:{port}"

    ends = sorted((end(v.src, v.sport), end(v.dst, v.dport)))
    return f"{name} {ends[0]} <-> {ends[1]}"


def differs(a: PacketVerdict, b: PacketVerdict) -> bool:
    return (a.verdict, a.ctstate, _rule(a), _leaving(a)) != \
        (b.verdict, b.ctstate, _rule(b), _leaving(b))


def _leaving(v: PacketVerdict) -> str:
    """Where the packet went, as `src:port > dst:port` after NAT."""
    return addressing_text(v.leaving())


def _rule(v: PacketVerdict) -> str:
    return str(v.rule) if v.rule is not None else "no rule"


class _Evictions:
    """An event sink keeping only early-drop DESTROYs."""

    def __init__(self, into: list[ConntrackEvent]) -> None:
        self.into = into

    def __call__(self, event: ConntrackEvent) -> None:
        if event.cause in _EVICTIONS:
            self.into.append(event)


def diff(capture: str | os.PathLike[str], a: MachineOptions, b: MachineOptions, *,
         limit: int | None = None) -> DiffResult:
    """Replay `capture` through A and B in lockstep; collect what differs."""
    result = DiffResult()
    run_a = Replay(capture, build_firewall(a, _Evictions(result.evicted_a)), limit=limit)
    run_b = Replay(capture, build_firewall(b, _Evictions(result.evicted_b)), limit=limit)
    for va, vb in zip(run_a, run_b, strict=True):
        result.packets += 1
        if differs(va, vb):
            result.differences.append(Difference(va.frame, flow_label(va), va, vb))
    return result


def _side(verdict: PacketVerdict) -> str:
    state = verdict.ctstate or "-"
    if verdict.ctdir:
        state += f"/{verdict.ctdir}"
    # The reason comes escaped from the core; the rule's chain name is the ruleset's own text.
    decided = f" by {escape_controls(str(verdict.rule))}" if verdict.rule else ""
    return f"{state} {verdict.verdict}{decided} | {verdict.reason}"


def report_lines(result: DiffResult, examples: int = EXAMPLES) -> Iterator[str]:
    """The text report: each change with its packet and connection counts and its first
    packets with both answers, then the evictions, then one summary line."""
    for change, diffs in result.by_change():
        flows = len({d.flow for d in diffs})
        yield (f"{escape_controls(change)}: {count(len(diffs), 'packet')}, "
               f"{count(flows, 'connection')}")
        for d in diffs[:examples]:
            yield f"  #{d.frame} {d.a.summary}"
            yield f"      A: {_side(d.a)}"
            yield f"      B: {_side(d.b)}"
        if len(diffs) > examples:
            yield f"  ... {count(len(diffs) - examples, 'more packet')}"
    for label, events in (("A", result.evicted_a), ("B", result.evicted_b)):
        for event in events:
            yield f"evicted under {label} at {event.ts:.6f}: {event.body}"
    yield result.summary_line()


def jsonl_records(result: DiffResult) -> Iterator[dict[str, object]]:
    """One object per differing packet: its frame, flow, change and both records."""
    for d in result.differences:
        yield {"frame": d.frame, "flow": d.flow, "change": d.change,
               "a": d.a.as_json(), "b": d.b.as_json()}


__all__ = ["DiffResult", "Difference", "diff", "differs", "flow_label", "jsonl_records",
           "report_lines"]
