"""The iptables and ip6tables rulesets of one simulated machine.

Loads both families' iptables-save files, parses and checks them once
(errors name the file and line) and hands them to the core as the plain
data `statewall.rules.lower` makes of them. The core walks them at each
hook: the raw table's CT target (notrack, zone, helper) before conntrack
runs, the nat table for a connection's first packet only, and the filter
table's rule or policy as what decided for a packet accepted everywhere.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from statewall._core import escape_controls
from statewall.rules.compile import CompiledRuleset, compile_ruleset
from statewall.rules.ext import RuleState
from statewall.rules.parser import parse_ruleset
from statewall.topology import Topology

if TYPE_CHECKING:
    from statewall.nft.lower import NftRuleset

NetTriple = tuple[int, int, int]


@dataclass
class IptablesEngine:
    """The checked IPv4 and IPv6 rulesets of one simulated machine: iptables
    and ip6tables ones, and an nftables ruleset beside them (`nft`, with the
    machine's rule state `nft_state` for a family without iptables rules).
    The core gets one ruleset per family holding the tables of both."""

    v4: CompiledRuleset | None
    v6: CompiledRuleset | None
    nft: NftRuleset | None = None
    nft_state: RuleState | None = None

    def lowered_json(self) -> tuple[str | None, str | None]:
        """Both families as the plain data the core evaluates (statewall.rules.lower)."""
        return self._lowered(4, self.v4), self._lowered(6, self.v6)

    def _lowered(self, family: int, compiled: CompiledRuleset | None) -> str | None:
        from statewall.rules.lower import lower, machine_only

        nft = None if self.nft is None else self.nft.family(family)
        if compiled is None and nft is None:
            return None
        if compiled is not None:
            data = lower(compiled).to_dict()
        else:
            assert self.nft is not None
            data = machine_only(family, self.nft.source, self.nft_state or RuleState()).to_dict()
        if nft is not None:
            data["tables"] += nft.tables
            data["nft_sets"] = nft.sets
        return json.dumps(data, separators=(",", ":"))

    def covers(self, family: int) -> bool:
        """True when some ruleset (iptables or nft) filters this family."""
        compiled = self.v4 if family == 4 else self.v6
        return compiled is not None or (self.nft is not None
                                        and self.nft.family(family) is not None)

    @property
    def notes(self) -> list[str]:
        """Remarks on how rules will be evaluated, `FILE:LINE: note: ...` (both families)."""
        notes = [note for compiled in (self.v4, self.v6) if compiled is not None
                 for note in compiled.notes]
        return notes + (self.nft.notes if self.nft is not None else [])

    @property
    def forces_acct(self) -> bool:
        """A rule uses connbytes, whose loading turns accounting on (xt_connbytes)."""
        return any(match.name == "connbytes"
                   for compiled in (self.v4, self.v6) if compiled is not None
                   for table in compiled.tables.values() for chain in table.chains
                   for rule in chain.rules for match in rule.matches)

    @property
    def unknown_rules(self) -> list[str]:
        """Rules evaluated as unknown (--allow-unknown), as `IPv4 table chain #n (line L)` text
        (control characters in names escaped, as in every text output)."""
        out: list[str] = []
        for label, compiled in (("IPv4", self.v4), ("IPv6", self.v6)):
            if compiled is not None:
                out.extend(escape_controls(f"{label} {ref.table} {ref.chain} #{ref.number} "
                                           f"(line {ref.line})")
                           for ref in compiled.unknown_rules)
            nft = None if self.nft is None else self.nft.family(4 if label == "IPv4" else 6)
            if nft is not None:
                out.extend(escape_controls(line) for line in nft.unknown)
        return out


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
    nft: str | os.PathLike[str] | None = None,
) -> IptablesEngine:
    """Read, parse and check iptables-save files and an nftables ruleset (JSON
    or text); errors name file and line."""
    topo = topology or Topology()
    compiled: list[CompiledRuleset | None] = []
    for path, family in ((rules_v4, 4), (rules_v6, 6)):
        if path is None:
            compiled.append(None)
            continue
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        compiled.append(compile_text(text, str(path), family, topo, allow_unknown, seed, sets))
    engine = IptablesEngine(compiled[0], compiled[1])
    if nft is not None:
        from statewall.nft.lower import load_nft

        engine.nft = load_nft(os.fspath(nft), allow_unknown=allow_unknown)
        engine.nft_state = rule_state_for(topo, seed, sets)
    return engine


def compile_text(text: str, source: str, family: int, topology: Topology | None = None,
                 allow_unknown: bool = False, seed: int = 0,
                 sets: Mapping[str, Any] | None = None) -> CompiledRuleset:
    ruleset = parse_ruleset(text, source=source, family=family, allow_unknown=allow_unknown)
    state = rule_state_for(topology or Topology(), seed, sets)
    return compile_ruleset(ruleset, state, allow_unknown=allow_unknown)
