"""An nftables ruleset printed back with the replay's counters, as `nft list ruleset` shows them.

The core counts each `counter` statement where it stands in its rule (a
counter before a test counts the packets that reach it, not those the rule
matches) and each named counter object once, whichever rules update it. An
inet table is evaluated once per family, so its counts are the sums of the
two, as the kernel's single table would show.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable
from typing import Any

from statewall.nft.lower import NftRuleset
from statewall.nft.printer import format_ruleset

JsonObject = dict[str, Any]
# (family 4 or 6, table as "FAMILY NAME", chain, rule number, place among the
#  rule's counters, the named object ("FAMILY TABLE counter NAME") or None,
#  packets, bytes): Firewall.nft_counters().
CoreCount = tuple[int, str, str, int, int, str | None, int, int]


def with_counters(ruleset: NftRuleset, counts: Iterable[CoreCount]) -> list[JsonObject]:
    """A copy of the ruleset's objects, every counter holding the replay's count."""
    statements: Counter[tuple[str, str, int, int]] = Counter()
    statement_bytes: Counter[tuple[str, str, int, int]] = Counter()
    named: dict[tuple[int, str], tuple[int, int]] = {}
    for family, table, chain, rule, place, name, packets, nbytes in counts:
        statements[(table, chain, rule, place)] += packets
        statement_bytes[(table, chain, rule, place)] += nbytes
        if name is not None:
            named[(family, name)] = (packets, nbytes)  # the same slot for every use
    named_packets: Counter[str] = Counter()
    named_bytes: Counter[str] = Counter()
    for (_, name), (packets, nbytes) in named.items():
        named_packets[name] += packets
        named_bytes[name] += nbytes
    objects = copy.deepcopy(ruleset.objects)
    numbers: Counter[tuple[str, str]] = Counter()
    for obj in objects:
        kind, body = next(iter(obj.items()))
        if kind == "rule":
            label, chain = f"{body['family']} {body['table']}", body["chain"]
            numbers[(label, chain)] += 1
            counters = [stmt for stmt in body.get("expr") or [] if "counter" in stmt]
            for place, stmt in enumerate(counters):
                if isinstance(stmt["counter"], dict):
                    key = (label, chain, numbers[(label, chain)], place)
                    stmt["counter"] = {"packets": statements[key], "bytes": statement_bytes[key]}
        elif kind == "counter" and isinstance(body, dict):
            name = f"{body['family']} {body['table']} counter {body['name']}"
            body["packets"], body["bytes"] = named_packets[name], named_bytes[name]
    return objects


def counters_text(ruleset: NftRuleset, counts: Iterable[CoreCount]) -> str:
    """`nft list ruleset` of the ruleset after the replay."""
    return format_ruleset(with_counters(ruleset, counts))
