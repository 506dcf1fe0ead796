"""What partitioning by host pair cannot keep exact, found before and after a run.

Before the run, from the compiled ruleset as the core evaluates it (the
lowered JSON of both families, iptables and nft alike) and the options:
rule state shared by packets of different host pairs (`-m recent`,
`limit`, `hashlimit`, `connlimit`, `statistic`, `-j SET`, nft `limit`,
`quota`, `add`/`update @set`, `numgen`), NAT (a translated reply's
addresses differ from its original's, and port selection looks at every
connection), the IRC helper, whose DCC expectations admit a data
connection from any host, and `-m set` tests of an element's counters, which
count the packets of every host pair the element covers. After the run, from
the partitions' peaks: the machine-wide limits (`nf_conntrack_max`, `nf_conntrack_expect_max`, the
fragment memory thresholds) are proven out of reach when the partitions'
peaks add up to less than the limit; and an ICMP error that came in
fragments and quotes another partition's host pair (see core/src/partition/mod.rs).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from statewall.config import Sysctls
from statewall.engine import Firewall

# iptables match kinds (statewall.rules.lower) whose state is shared across host pairs.
SHARED_MATCHES = {
    "recent": "-m recent",
    "limit": "-m limit",
    "hashlimit": "-m hashlimit",
    "connlimit": "-m connlimit",
    "statistic_nth": "-m statistic --mode nth",
    "statistic_random": "-m statistic --mode random",
}
# nft expression ops with state shared across host pairs.
SHARED_NFT = {"limit": "nft limit", "quota": "nft quota", "dynset": "nft add/update @set"}
NAT_TARGETS = ("nat", "nft_nat")
IRC = "the IRC helper (its DCC expectations admit a connection from any host)"
# A fragment of a datagram is at most this big: the slack a fragment memory peak needs.
DATAGRAM = 65_536


def static_reasons(firewall: Firewall) -> list[str]:
    """What makes a partitioned run of this machine inexact, known before the run:
    one line each, `FILE:LINE: what (why)`, in ruleset order, then the options."""
    out: list[str] = []
    rules = firewall.rules
    if rules is not None:
        for lowered in rules.lowered_json():
            if lowered is not None:
                out.extend(_ruleset_reasons(json.loads(lowered)))
    if firewall.auto_helpers:
        out.append("--auto-helpers: the IRC helper on port 6667, whose DCC expectations "
                   "admit a connection from any host")
    return list(dict.fromkeys(out))


def _ruleset_reasons(data: dict[str, Any]) -> Iterator[str]:
    source = data.get("source", "<rules>")
    for table in data.get("tables", ()):
        for chain in table.get("chains", ()):
            for rule in chain.get("rules", ()):
                where = f"{source}:{rule.get('line', 0)}"
                for what in _rule_reasons(rule):
                    yield f"{where}: {what}"


def _rule_reasons(rule: dict[str, Any]) -> Iterator[str]:
    for match in rule.get("matches", ()):
        kind = match.get("kind")
        if kind in SHARED_MATCHES:
            yield f"{SHARED_MATCHES[kind]} (its state is shared across host pairs)"
        elif kind == "set" and (match.get("packets") or match.get("bytes")):
            yield "-m set --packets-*/--bytes-* (a set element's counters count every host pair)"
        elif kind == "nft":
            yield from _nft_reasons(match.get("expr", {}))
    target = rule.get("target") or {}
    kind = target.get("kind")
    if kind in NAT_TARGETS:
        yield "NAT (a translated connection's two directions have different host pairs)"
    elif kind == "set":
        yield "-j SET (adds to sets every host pair reads)"
    elif kind == "ct" and ["helper", "irc"] in target.get("effects", ()):
        yield IRC


def _nft_reasons(expr: dict[str, Any]) -> Iterator[str]:
    op = expr.get("op")
    if op in SHARED_NFT:
        yield f"{SHARED_NFT[op]} (its state is shared across host pairs)"
    elif expr.get("effect") == "helper" and (
            expr.get("value") == "irc" or "irc" in expr.get("values", ())):  # set, or by a map
        yield IRC
    if '"numgen"' in json.dumps(expr):
        yield "nft numgen (its counter is shared across host pairs)"


def proven_reasons(cfg: Sysctls, peaks: list[tuple[int, int, int, int]], strays: int) -> list[str]:
    """What the partitions' results show may differ from a single run: a
    machine-wide limit the summed peaks do not keep out of reach, and ICMP
    errors in fragments that missed their connection."""
    entries, expectations, frag4, frag6 = (sum(column) for column in zip(*peaks, strict=True)) \
        if peaks else (0, 0, 0, 0)
    out = []
    limits = (
        ("nf_conntrack_max", entries, cfg.nf_conntrack_max, 1, "entries"),
        ("nf_conntrack_expect_max", expectations, cfg.nf_conntrack_expect_max, 1, "expectations"),
        ("ipfrag_high_thresh", frag4, cfg.ipfrag_high_thresh, DATAGRAM, "bytes of IPv4 fragments"),
        ("nf_conntrack_frag6_high_thresh", frag6, cfg.nf_conntrack_frag6_high_thresh, DATAGRAM,
         "bytes of IPv6 fragments"),
    )
    for name, total, limit, slack, what in limits:
        # 0 means unlimited for the table; the others are always set.
        if limit and total + slack > limit:
            out.append(f"{name}={limit}: the partitions held up to {total} {what} together, "
                       "so the machine-wide limit may have been reached")
    if strays:
        out.append(f"{strays} ICMP error(s) in fragments quote another host pair than their "
                   "own: they went with their fragments, not with their connection")
    return out
