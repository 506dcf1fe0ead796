"""An nftables ruleset (libnftables JSON objects) as the core's rule data.

Each nft table becomes a core `Table` named as nft prints it in traces
("inet filter") with `"nft": {"family": ...}`; an `ip` table goes into the
IPv4 ruleset, an `ip6` table into the IPv6 one and an `inet` table into
both. Base chains carry their hook, priority and type (`"base"`) and their
policy; regular chains neither. Each rule is lowered by
`statewall.nft.expr.lower_rule`, each named set or map by
`statewall.nft.sets.lower_set` into the family's nft set list.

Tables of the other families are not evaluated: statewall replays IP
packets through the IPv4 and IPv6 hooks only. An `arp` table never sees
such a packet, so it is left out with a note. A `bridge` or `netdev` table
(and an `ingress`/`egress` chain of an inet table) could drop IP packets
before or around those hooks, so leaving it out could give a wrong verdict:
such a ruleset is refused, or with allow_unknown loaded without them, with
a note.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from statewall.nft.expr import lower_rule
from statewall.nft.expr_keys import Unsupported
from statewall.nft.fold import fold
from statewall.nft.load import NftError
from statewall.nft.printer import format_statements
from statewall.nft.scope import JsonObject, RuleScope
from statewall.nft.sets import lower_set

HOOKS = {"prerouting": "PREROUTING", "input": "INPUT", "forward": "FORWARD",
         "output": "OUTPUT", "postrouting": "POSTROUTING"}
# The named priorities of the ip, ip6 and inet families (nft(8): CHAINS).
PRIORITIES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50,
              "srcnat": 100}
CORE_FAMILIES = {"ip": (4,), "ip6": (6,), "inet": (4, 6)}
# The hooks each chain type may use (the kernel refuses the rest).
TYPE_HOOKS = {"filter": set(HOOKS), "nat": {"prerouting", "input", "output", "postrouting"},
              "route": {"output"}}
_NOT_IP = ("statewall replays IP packets through the IPv4 and IPv6 hooks only, "
           "and this table could drop them before or around those hooks")
_PRIORITY = re.compile(r"^\s*([a-z]+)\s*(?:([+-])\s*(\d+))?\s*$")


@dataclass
class NftFamily:
    """One core family's share of the ruleset: its tables and its nft sets (core JSON)."""

    tables: list[JsonObject] = field(default_factory=list)
    sets: list[JsonObject] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    """Rules evaluated as unknown, `IPv4 inet filter input #3 (line 12)`."""


@dataclass
class NftRuleset:
    """A lowered nftables ruleset: the IPv4 and IPv6 parts (None: no table there)."""

    source: str
    v4: NftFamily | None = None
    v6: NftFamily | None = None
    notes: list[str] = field(default_factory=list)
    objects: list[JsonObject] = field(default_factory=list)
    """The ruleset as read (what `replay --counters` prints back)."""

    def family(self, family: int) -> NftFamily | None:
        return self.v4 if family == 4 else self.v6


def _kind(obj: JsonObject) -> tuple[str, JsonObject]:
    kind, body = next(iter(obj.items()))
    return kind, body if isinstance(body, dict) else {}


@dataclass
class _Table:
    family: str
    name: str
    chains: list[JsonObject] = field(default_factory=list)
    rules: dict[str, list[JsonObject]] = field(default_factory=dict)
    sets: list[JsonObject] = field(default_factory=list)
    objects: dict[tuple[str, str], JsonObject] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.family} {self.name}"


def priority_of(value: Any, where: str) -> int:
    """A base chain's priority: a number, or a named one with an offset ("dstnat - 5")."""
    if isinstance(value, bool):
        raise NftError(f"{where}: bad chain priority {value!r}")
    if isinstance(value, int):
        return value
    text = str(value)
    if re.fullmatch(r"\s*-?\d+\s*", text):
        return int(text)
    found = _PRIORITY.match(text)
    if found is None or found.group(1) not in PRIORITIES:
        raise NftError(f"{where}: unknown chain priority {text!r} (named priorities: "
                       f"{', '.join(PRIORITIES)})")
    base, sign, offset = found.groups()
    return PRIORITIES[base] + (int(offset) * (-1 if sign == "-" else 1) if sign else 0)


def _collect(objects: Iterable[JsonObject], source: str, allow_unknown: bool,
             notes: list[str]) -> list[_Table]:
    """The ip, ip6 and inet tables with their chains, rules, sets and objects."""
    tables: dict[tuple[str, str], _Table] = {}
    skipped: set[tuple[str, str]] = set()
    for obj in objects:
        kind, body = _kind(obj)
        key = (str(body.get("family", "")), str(body.get("table", "")))
        if kind == "table":
            family, name = str(body.get("family")), str(body.get("name"))
            if family in CORE_FAMILIES:
                tables.setdefault((family, name), _Table(family, name))
                continue
            skipped.add((family, name))
            if family == "arp":
                notes.append(f"{source}: note: table arp {name} left out: ARP packets never "
                             "meet the IPv4 and IPv6 hooks")
            elif allow_unknown:
                notes.append(f"{source}: note: table {family} {name} left out: {_NOT_IP}")
            else:
                raise NftError(f"{source}: table {family} {name} is not evaluated: {_NOT_IP} "
                               "(--allow-unknown loads the ruleset without it)", source)
            continue
        if key in skipped or kind == "metainfo":
            continue
        table = tables.get(key)
        where = _place(body, source, int(body.get("line", 0) or 0),
                       int(body.get("column", 0) or 0))
        if table is None:
            raise NftError(f"{where}: {kind} {body.get('name', '')} names table "
                           f"{key[0]} {key[1]}, which does not exist", source)
        if kind == "chain":
            table.chains.append(body)
            table.rules.setdefault(str(body.get("name")), [])
        elif kind == "rule":
            chain = str(body.get("chain"))
            if chain not in table.rules:
                raise NftError(f"{where}: rule in {table.label} {chain}: no such chain", source)
            table.rules[chain].append(body)
        elif kind in ("set", "map"):
            table.sets.append(obj)
        elif kind != "element":
            table.objects[(kind, str(body.get("name")))] = body
    return list(tables.values())


def _base(chain: JsonObject, table: _Table, source: str, allow_unknown: bool,
          notes: list[str]) -> JsonObject | None | bool:
    """The core's `base` of a base chain; None for a regular chain; False for a
    chain left out (an ingress/egress hook, with allow_unknown)."""
    hook = chain.get("hook")
    if hook is None:
        return None
    where = f"{source}: {table.label} chain {chain.get('name')}"
    if hook not in HOOKS:
        why = f"hook {hook} is not evaluated: {_NOT_IP}"
        if not allow_unknown:
            raise NftError(f"{where}: {why} (--allow-unknown loads the ruleset without it)",
                           source)
        notes.append(f"{where}: note: left out: {why}")
        return False
    kind = str(chain.get("type", "filter"))
    if kind not in TYPE_HOOKS or hook not in TYPE_HOOKS[kind]:
        raise NftError(f"{where}: a chain of type {kind} cannot hook {hook}", source)
    return {"hook": HOOKS[str(hook)], "priority": priority_of(chain.get("prio", 0), where),
            "type": kind}


def _policy(chain: JsonObject, where: str) -> str:
    policy = str(chain.get("policy", "accept"))
    if policy not in ("accept", "drop"):
        raise NftError(f"{where}: bad chain policy {policy!r} (accept or drop)")
    return policy.upper()


def _lower_set(obj: JsonObject, scope: RuleScope, table: _Table, source: str,
               allow_unknown: bool, notes: list[str]) -> JsonObject:
    """A named set or map for the core; one that cannot be held is refused, or
    with allow_unknown kept empty (the rules reading it are unknown anyway)."""
    kind, body = _kind(obj)
    try:
        return lower_set(obj, scope)
    except Unsupported as why:
        where = f"{source}: {table.label} {kind} {body.get('name')}"
        if not allow_unknown:
            raise NftError(f"{where}: {why} (--allow-unknown loads it empty)", source) from None
        empty = {key: value for key, value in body.items() if key not in ("elem", "map")}
        if scope.core_family == 4 or table.family != "inet":
            notes.append(f"{where}: {why}: loaded empty")
        return lower_set({"set": empty}, scope)


def _lower_table(table: _Table, core_family: int, source: str, out: NftFamily,
                 allow_unknown: bool, notes: list[str]) -> None:
    label = "IPv4" if core_family == 4 else "IPv6"
    kept: list[tuple[JsonObject, JsonObject | None]] = []
    for chain in table.chains:
        base = _base(chain, table, source, allow_unknown, notes if core_family == 4 or
                     table.family != "inet" else [])
        if base is not False:
            kept.append((chain, base if isinstance(base, dict) else None))
    chains = {str(chain.get("name")): index for index, (chain, _) in enumerate(kept)}
    sets: dict[str, int] = {}
    scope = RuleScope(table.family, table.name, "", chains, sets, table.objects, source,
                      core_family)
    for obj in table.sets:
        _, body = _kind(obj)
        sets[str(body.get("name"))] = len(out.sets)
        out.sets.append(_lower_set(obj, scope, table, source, allow_unknown, notes))
    core_chains: list[JsonObject] = []
    for chain, base in kept:
        name = str(chain.get("name"))
        rules = []
        for number, rule in enumerate(table.rules.get(name, []), 1):
            stmts = rule.get("expr") or []
            line = int(rule.get("line", 0) or 0)
            column = int(rule.get("column", 0) or 0)
            place = _place(rule, source, line, column)
            scope = RuleScope(table.family, table.name, name, chains, sets, table.objects,
                              place, core_family)
            lowered = lower_rule(stmts, scope)
            target = lowered.target
            if lowered.unsupported is not None:
                if not allow_unknown:
                    raise NftError(f"{place}: {table.label} {name} rule #{number}: "
                                   f"{lowered.unsupported} (--allow-unknown evaluates it as "
                                   "unknown)", source, line)
                target = {"kind": "unknown", "why": lowered.unsupported}
                out.unknown.append(f"{label} {table.label} {name} #{number}" +
                                   (f" ({place})" if line else ""))
            header, matches = fold(lowered.matches, core_family)
            rules.append({"header": header, "matches": matches, "target": target,
                          "number": number,
                          "line": line, "place": place, "text": _rule_text(stmts),
                          "unknown": lowered.unsupported})
        chain_line = int(chain.get("line", 0) or 0)
        core_chains.append({"name": name, "rules": rules, "line": chain_line,
                            "place": _place(chain, source, chain_line,
                                            int(chain.get("column", 0) or 0)),
                            "policy": None if base is None else
                            _policy(chain, f"{source}: {table.label} chain {name}"),
                            "base": base})
    _check_loops(table.label, core_chains, source)
    out.tables.append({"name": table.label, "nft": {"family": table.family},
                       "chains": core_chains})


def _place(body: JsonObject, source: str, line: int, column: int) -> str:
    """Where a rule or chain stands, as diagnostics name it: `FILE:LINE` of the text it was
    written in, `FILE:LINE:COLUMN` of its object in JSON (where `nft -j` puts the
    whole ruleset on one line), or the file alone when neither is known."""
    if not line:
        return source
    if column:
        return f"{source}:{line}:{column}"
    return f"{body.get('file', source)}:{line}"


def _check_loops(label: str, chains: list[JsonObject], source: str) -> None:
    """nft refuses a ruleset whose jumps and gotos lead back to a chain on the way
    (iterative: any depth of nesting is checked without recursion)."""
    targets = [[r["target"]["chain"] for r in c["rules"]
                if r["target"].get("kind") in ("jump", "goto")] for c in chains]
    done: set[int] = set()
    for start in range(len(chains)):
        if start in done:
            continue
        path, on_path = [(start, 0)], {start}
        while path:
            at, next_edge = path[-1]
            if next_edge == len(targets[at]):
                done.add(at)
                on_path.discard(at)
                path.pop()
                continue
            path[-1] = (at, next_edge + 1)
            to = targets[at][next_edge]
            if to in on_path:
                names = [chains[c]["name"] for c, _ in path[[c for c, _ in path].index(to):]]
                raise NftError(f"{source}: {label}: jumps loop: "
                               f"{' -> '.join([*names, chains[to]['name']])}", source)
            if to not in done:
                on_path.add(to)
                path.append((to, 0))


def lower_objects(objects: Iterable[JsonObject], source: str, *,
                  allow_unknown: bool = False) -> NftRuleset:
    """The ruleset's IPv4 and IPv6 parts; NftError (one line) for what is refused."""
    objects = list(objects)
    result = NftRuleset(source, objects=objects)
    tables = _collect(objects, source, allow_unknown, result.notes)
    for core_family in (4, 6):
        part = NftFamily()
        for table in tables:
            if core_family in CORE_FAMILIES[table.family]:
                _lower_table(table, core_family, source, part, allow_unknown, result.notes)
        if part.tables:
            if core_family == 4:
                result.v4 = part
            else:
                result.v6 = part
    return result


def load_nft(path: str, *, allow_unknown: bool = False) -> NftRuleset:
    """Read (JSON or text) and lower an nftables ruleset file."""
    from statewall.nft.load import load_objects

    return lower_objects(load_objects(path), path, allow_unknown=allow_unknown)


def _rule_text(stmts: list[JsonObject]) -> str:
    """The rule as `nft list ruleset` prints it, its counters without the values
    they had when listed (the replay counts its own)."""
    return format_statements([{"counter": None} if isinstance(stmt.get("counter"), dict)
                              and "packets" in stmt["counter"] else stmt for stmt in stmts])
