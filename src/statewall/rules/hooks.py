"""iptables and ip6tables behind the pipeline's `RuleEngine` seam.

Loads both families' iptables-save files, compiles them once, and answers
the pipeline's "what does table T say at hook H" by walking the compiled
table and copying the rules' side effects onto the packet's context: the
raw table's CT target (notrack, zone, helper) before conntrack runs, marks,
log lines and notes.

Two kernel facts live here. The nat table is consulted only for a
connection's first packet (its NAT binding is set up once; later packets
follow it), so only packets that carry a not-yet-confirmed entry walk it.
And which rule "decided" is the terminal one, or the filter table's rule or
policy for a packet that was accepted everywhere.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from statewall.netfilter import PacketContext, TableVerdict, Topology
from statewall.rules.compile import CompiledRuleset, compile_ruleset
from statewall.rules.context import RuleState
from statewall.rules.parser import parse_ruleset
from statewall.rules.walker import walk

NetTriple = tuple[int, int, int]


@dataclass
class IptablesEngine:
    """The compiled IPv4 and IPv6 rulesets of one simulated machine."""

    v4: CompiledRuleset | None
    v6: CompiledRuleset | None

    def _for(self, family: int) -> CompiledRuleset | None:
        return self.v4 if family == 4 else self.v6

    def has_chain(self, family: int, table: str, hook: str) -> bool:
        compiled = self._for(family)
        if compiled is None:
            return False
        loaded = compiled.tables.get(table)
        return loaded is not None and hook in loaded.entry

    def evaluate(self, family: int, table: str, hook: str, ctx: PacketContext) -> TableVerdict:
        compiled = self._for(family)
        if compiled is None or (table == "nat" and not _first_of_connection(ctx)):
            return TableVerdict("ACCEPT", None, "")
        decision = walk(compiled, table, hook, ctx.pkt, ctx.ctinfo, ctx.conn, ctx.now,
                        ctx.iface_in, ctx.iface_out, ctx.mark, trace=ctx.nf_trace)
        if decision is None:
            return TableVerdict("ACCEPT", None, "")
        ctx.mark = decision.mark
        ctx.nf_trace = decision.nf_trace
        ctx.notes.extend(decision.trace)
        for kind, value in decision.effects:
            if kind == "notrack":
                ctx.notrack = bool(value)
            elif kind == "zone":
                ctx.zone = int(value)
            elif kind == "helper":
                ctx.helper = str(value)
            elif kind == "ct-timeout":
                ctx.ct_timeout = str(value)
        ctx.notes.extend(decision.logs)
        ctx.notes.extend(decision.notes)
        return TableVerdict(decision.verdict, decision.rule, decision.reason)

    def lowered_json(self) -> tuple[str | None, str | None]:
        """Both families as the plain data the core evaluates (statewall.rules.lower)."""
        from statewall.rules.lower import lower

        return tuple(None if c is None else lower(c).to_json()  # type: ignore[return-value]
                     for c in (self.v4, self.v6))

    @property
    def unknown_rules(self) -> list[str]:
        """Rules evaluated as unknown (--allow-unknown), as `family table chain #n` text."""
        out: list[str] = []
        for label, compiled in (("IPv4", self.v4), ("IPv6", self.v6)):
            if compiled is not None:
                out.extend(f"{label} {ref.table} {ref.chain} rule {ref.number} (line {ref.line})"
                           for ref in compiled.unknown_rules)
        return out


def _first_of_connection(ctx: PacketContext) -> bool:
    return ctx.ct is not None and ctx.ct.conn is not None and ctx.ct.unconfirmed


def _triples(nets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> tuple[NetTriple, ...]:
    return tuple((net.version, int(net.network_address), int(net.netmask)) for net in nets)


def rule_state_for(topology: Topology, seed: int = 0, sets: Mapping[str, Any] | None = None) -> RuleState:
    """Shared rule state seeded with the machine's addresses, interfaces and ipsets."""
    return RuleState(
        seed=seed,
        local_nets=_triples(topology.local),
        iface_nets={name: _triples(nets) for name, nets in topology.interfaces},
        sets=dict(sets or {}),
    )


def load_engine(
    rules_v4: str | os.PathLike[str] | None,
    rules_v6: str | os.PathLike[str] | None = None,
    *,
    topology: Topology | None = None,
    allow_unknown: bool = False,
    seed: int = 0,
    sets: Mapping[str, Any] | None = None,
) -> IptablesEngine:
    """Read, parse and compile iptables-save files; errors name file and line."""
    topo = topology or Topology()
    compiled: list[CompiledRuleset | None] = []
    for path, family in ((rules_v4, 4), (rules_v6, 6)):
        if path is None:
            compiled.append(None)
            continue
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        compiled.append(compile_text(text, str(path), family, topo, allow_unknown, seed, sets))
    return IptablesEngine(compiled[0], compiled[1])


def compile_text(text: str, source: str, family: int, topology: Topology | None = None,
                 allow_unknown: bool = False, seed: int = 0,
                 sets: Mapping[str, Any] | None = None) -> CompiledRuleset:
    ruleset = parse_ruleset(text, source=source, family=family, allow_unknown=allow_unknown)
    state = rule_state_for(topology or Topology(), seed, sets)
    return compile_ruleset(ruleset, state, allow_unknown=allow_unknown)
