"""Warnings about nftables rulesets that load but probably do not do what was meant.

The checks of statewall.rules.lint, read off the lowered rule data (after
statewall.nft.fold, a `ct state` bit test is a `state` match and addresses,
protocol and interfaces sit in the header), so they speak of the rules as
the core will evaluate them:

- TCP NEW accepted with no test of the TCP flags and no earlier rule
  dropping NEW TCP without SYN: with nf_conntrack_tcp_loose=1 (the default)
  a stray ACK or FIN is NEW and creates an entry.
- ESTABLISHED accepted with no earlier rule of the chain dropping INVALID.
- RELATED accepted while no rule attaches a helper (`ct helper set`):
  helpers are attached only on request since Linux 4.7, so apart from ICMP
  errors nothing is ever RELATED.
- A rule after one that decides every packet reaching it (no test at all).
- A regular chain no base chain reaches by jump, goto or verdict map.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from statewall.nft.lower import NftRuleset

JsonObject = dict[str, Any]
ESTABLISHED, RELATED, NEW, INVALID = 2, 4, 8, 1
TCP, ICMP, ICMPV6 = 6, 1, 58
TERMINAL = frozenset({"verdict", "goto", "reject", "nfqueue"})
# Statements that test nothing: a rule made of these and a verdict decides every packet.
PASSIVE = frozenset({"counter", "log"})


def lint_nft(ruleset: NftRuleset) -> list[str]:
    """Every warning, each `FILE:LINE: warning: ...`, once even for an inet table."""
    out: list[str] = []
    for part in (ruleset.v4, ruleset.v6):
        if part is None:
            continue
        helpers = any(_attaches_helper(rule) for table in part.tables
                      for _, rule in _rules(table))
        for table in part.tables:
            for chain in table["chains"]:
                out.extend(_chain_checks(ruleset.source, table["name"], chain, helpers))
            out.extend(_unreachable(ruleset.source, table, part.sets))
    return list(dict.fromkeys(out))


def _rules(table: JsonObject) -> Iterator[tuple[JsonObject, JsonObject]]:
    for chain in table["chains"]:
        for rule in chain["rules"]:
            yield chain, rule


def _warn(source: str, rule: JsonObject, where: str, text: str) -> str:
    return f"{rule.get('place') or source}: warning: {where} #{rule['number']} {text}"


def _state(rule: JsonObject) -> int:
    """The ctstate bits the rule requires (0: it does not test the state)."""
    return next((m["mask"] for m in rule["matches"]
                 if m["kind"] == "state" and not m["neg"]), 0)


def _verdict(rule: JsonObject) -> str | None:
    target = rule["target"]
    return target.get("verdict") if target.get("kind") == "verdict" else None


def _tests_tcp_flags(rule: JsonObject) -> bool:
    for match in rule["matches"]:
        expr = match.get("expr", {})
        key = expr.get("left", {}).get("key", {})
        if key.get("kind") == "payload" and key.get("base") == "th" and key.get("offset") == 13:
            return True
    return False


def _attaches_helper(rule: JsonObject) -> bool:
    return any(m.get("expr", {}).get("effect") == "helper" for m in rule["matches"])


def _decides_all(rule: JsonObject) -> bool:
    passive = all(m["kind"] == "nft" and m["expr"]["op"] in PASSIVE for m in rule["matches"])
    return (not rule.get("header") and passive and rule.get("unknown") is None
            and rule["target"].get("kind") in TERMINAL)


def _chain_checks(source: str, table: str, chain: JsonObject, helpers: bool) -> list[str]:
    out: list[str] = []
    where = f"{table} {chain['name']}"
    guarded = invalid_dropped = False
    for index, rule in enumerate(chain["rules"]):
        state, verdict = _state(rule), _verdict(rule)
        tcp = (rule.get("header") or {}).get("proto") == TCP
        proto = (rule.get("header") or {}).get("proto")
        if tcp and state & NEW and verdict == "DROP" and _tests_tcp_flags(rule):
            guarded = True
        if state & INVALID and verdict == "DROP":
            invalid_dropped = True
        if verdict == "ACCEPT" and tcp and state == NEW and not _tests_tcp_flags(rule) \
                and not guarded:
            out.append(_warn(source, rule, where, "accepts TCP NEW without testing the "
                             "flags: a stray ACK or FIN is NEW too (nf_conntrack_tcp_loose=1) "
                             "and creates an entry"))
        if verdict == "ACCEPT" and state & ESTABLISHED and not invalid_dropped:
            out.append(_warn(source, rule, where, "accepts ESTABLISHED but no earlier rule "
                             "drops INVALID: INVALID packets fall through to the rules below"))
            invalid_dropped = True  # once per chain
        if verdict == "ACCEPT" and state & RELATED and not helpers \
                and proto not in (ICMP, ICMPV6):
            out.append(_warn(source, rule, where, "accepts RELATED but no `ct helper set` "
                             "attaches a helper (not automatic since Linux 4.7): only ICMP "
                             "errors will be RELATED"))
        if _decides_all(rule):
            out.extend(_warn(source, later, where, f"is never reached: #{rule['number']} "
                             "before it decides every packet")
                       for later in chain["rules"][index + 1:])
            break
    return out


def _targets(rule: JsonObject, sets: list[JsonObject]) -> Iterator[int]:
    """The chains a rule's target may jump or go to (a verdict map's, too)."""
    target = rule["target"]
    if target.get("kind") in ("jump", "goto"):
        yield target["chain"]
    if target.get("kind") == "nft_vmap":
        ref = target["map"]
        spec = ref.get("anon") if "anon" in ref else sets[ref["set"]]
        for element in spec.get("elements", ()):
            verdict = element.get("verdict") or {}
            if "chain" in verdict:
                yield verdict["chain"]


def _unreachable(source: str, table: JsonObject, sets: list[JsonObject]) -> list[str]:
    chains = table["chains"]
    seen: set[int] = set()
    todo = [i for i, chain in enumerate(chains) if chain.get("base")]
    while todo:
        index = todo.pop()
        if index not in seen:
            seen.add(index)
            todo.extend(to for rule in chains[index]["rules"] for to in _targets(rule, sets))
    return [f"{chain.get('place') or source}: warning: chain {chain['name']} of {table['name']} "
            "is never reached "
            "(no jump, goto or verdict map from a base chain leads to it)"
            for i, chain in enumerate(chains) if i not in seen]
