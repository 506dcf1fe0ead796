"""nft rules through the core without the base-chain plumbing: a table's
chains (lowered by statewall.nft.expr) placed in an iptables-like `filter`
table whose FORWARD (or OUTPUT) chain is the base chain, with its policy,
and walked with the rule tests' `walk`.
"""

from __future__ import annotations

import json
from typing import Any

from rulewalk import Decision, walk

from statewall._core import RuleEngine
from statewall.nft.expr import lower_rule
from statewall.nft.scope import JsonObject, RuleScope
from statewall.nft.sets import lower_set
from statewall.packet import Packet

Stmts = list[dict[str, Any]]


def scope_of(chains: list[str], sets: list[JsonObject], family: str = "inet",
             core_family: int = 4, objects: dict[tuple[str, str], JsonObject] | None = None,
             ) -> RuleScope:
    names = {s.get("set", s.get("map", {})).get("name", ""): i for i, s in enumerate(sets)}
    return RuleScope(family, "t", chains[0], {c: i for i, c in enumerate(chains)}, names,
                     objects or {}, "t.nft", core_family)


def engine(chains: dict[str, list[Stmts]], sets: list[JsonObject] | None = None,
           family: str = "inet", core_family: int = 4, policy: str = "ACCEPT",
           base: str = "FORWARD",
           objects: dict[tuple[str, str], JsonObject] | None = None) -> RuleEngine:
    """The first chain is the base chain (renamed `base`, with `policy`)."""
    sets = sets or []
    names = list(chains)
    scope = scope_of(names, sets, family, core_family, objects)
    core_chains = []
    for ci, (name, rules) in enumerate(chains.items()):
        lowered = []
        for n, stmts in enumerate(rules, 1):
            r = lower_rule(stmts, scope)
            assert r.unsupported is None, r.unsupported
            lowered.append({"matches": r.matches, "target": r.target, "number": n,
                            "text": json.dumps(stmts)})
        core_chains.append({"name": base if ci == 0 else name,
                            "policy": policy if ci == 0 else None, "rules": lowered})
    ruleset = {"family": core_family, "source": "t.nft",
               "tables": [{"name": "filter", "chains": core_chains}],
               "nft_sets": [lower_set(s, scope) for s in sets]}
    return RuleEngine(json.dumps(ruleset))


def verdicts(e: RuleEngine, pkts: list[Packet], hook: str = "FORWARD", **kw: Any) -> list[str]:
    out = []
    for p in pkts:
        d = walk(e, "filter", hook, p, **kw)
        assert d is not None
        out.append(d.verdict)
    return out


def one(e: RuleEngine, pkt: Packet, hook: str = "FORWARD", **kw: Any) -> Decision:
    d = walk(e, "filter", hook, pkt, **kw)
    assert d is not None
    return d


def match(left: JsonObject, right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def payload(proto: str, field: str) -> JsonObject:
    return {"payload": {"protocol": proto, "field": field}}


def meta(key: str) -> JsonObject:
    return {"meta": {"key": key}}


def ct(key: str, **kw: str) -> JsonObject:
    return {"ct": {"key": key, **kw}}


ACCEPT: dict[str, Any] = {"accept": None}
DROP: dict[str, Any] = {"drop": None}
