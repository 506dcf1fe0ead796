"""nft expressions against the kernel: a ruleset is loaded with `nft -f` in a
network namespace, datagrams are sent through its output hook, and the
rules' counters must equal what the core counts for the same datagrams
walked through the kernel's own `nft -j` listing of the ruleset, lowered by
statewall.nft.expr (bit tests, interval and concatenated set lookups,
verdict maps, limit's burst, quota, dynamic set timeouts, marks set from
maps and expressions, numgen, interface wildcards, fib types).
"""

from __future__ import annotations

import json
import shutil
import socket
import time

import pytest
from rulewalk import walk
from test_nft_expr import _tables

from statewall import builder
from statewall._core import RuleEngine
from statewall.decode import decode_datagram
from statewall.nft.expr import lower_rule
from statewall.nft.scope import RuleScope
from statewall.nft.sets import lower_set
from statewall.oracle import netns as ns

RULESET = """
table ip t {
    set s { type ipv4_addr; flags timeout; }
    chain o {
        type filter hook output priority 0; policy accept;
        tcp flags & (syn | ack) == syn counter
        tcp flags syn counter
        ip saddr { 192.0.2.0/28, 198.51.100.1-198.51.100.9 } counter
        ip saddr != { 192.0.2.0/28, 198.51.100.1-198.51.100.9 } counter
        ip saddr . tcp dport { 192.0.2.1 . 22, 192.0.2.2 . 80 } counter
        limit rate 2/second burst 3 packets counter
        quota 200 bytes counter
        ip saddr @s counter
        tcp dport 22 add @s { ip saddr timeout 1s } counter
        tcp dport vmap { 22 : jump j, 443 : continue }
        tcp sport >= 1000 tcp sport <= 1002 counter
        meta mark set ip saddr map { 192.0.2.1 : 5, 192.0.2.2 : 6 }
        meta mark & 0xff == 5 counter
        meta mark set meta mark | 0x100
        meta mark 0x106 counter
        numgen inc mod 3 0 counter
        oifname "sw*" ip daddr 203.0.113.0/25 counter
        ip saddr 192.0.2.0-192.0.2.15 tcp sport 1000-1003 counter
        fib daddr type unicast counter
        fib daddr type local counter
    }
    chain j {
        counter
    }
}
"""

# (seconds after the first, source, source port, destination port, flags)
TRAFFIC = [
    (0.0, "192.0.2.1", 1000, 22, "S"), (0.0, "192.0.2.1", 1001, 80, "SA"),
    (0.0, "198.51.100.5", 1002, 22, "A"), (0.0, "192.0.2.2", 1003, 80, "S"),
    (0.0, "203.0.113.9", 1004, 443, "SF"), (0.0, "192.0.2.20", 1005, 22, "S"),
    (0.3, "192.0.2.1", 1006, 443, "A"), (1.6, "192.0.2.1", 1007, 443, "A"),
    (1.6, "192.0.2.20", 1008, 80, "A"),
]


def _kernel_counters(name: str) -> tuple[list[int], dict[str, object]]:
    listing = json.loads(ns.run(["nft", "-j", "list", "ruleset"], name))
    counts = []
    for o in listing["nftables"]:
        for stmt in o.get("rule", {}).get("expr", []):
            if "counter" in stmt:
                counts.append(stmt["counter"]["packets"])
    return counts, listing


def _core_counters(listing: dict[str, object], datagrams: list[tuple[float, bytes]]) -> list[int]:
    objs = listing["nftables"]
    assert isinstance(objs, list)
    (_, table), = _tables(objs).items()
    scope = RuleScope("ip", "t", "o", table["chains"], table["sets"], table["objects"],
                      "kernel", 4)
    chains: list[list[dict[str, object]]] = [[] for _ in table["chains"]]
    for rule in table["rules"]:
        # The counter is the kernel's report; the core's rule counter counts the same.
        stmts = [s for s in rule["expr"] if "counter" not in s]
        lowered = lower_rule(stmts, scope)
        assert lowered.unsupported is None, lowered.unsupported
        chain = chains[table["chains"][rule["chain"]]]
        chain.append({"matches": lowered.matches, "target": lowered.target,
                      "number": len(chain) + 1, "text": json.dumps(rule["expr"])})
    names = list(table["chains"])
    core = {"family": 4, "source": "kernel", "tables": [{"name": "filter", "chains": [
        {"name": "OUTPUT" if n == "o" else n, "policy": "ACCEPT" if n == "o" else None,
         "rules": chains[i]} for i, n in enumerate(names)]}],
        "nft_sets": [lower_set(s, scope) for s in table["set_objs"]]}
    engine = RuleEngine(json.dumps(core))
    for at, data in datagrams:
        walk(engine, "filter", "OUTPUT", decode_datagram(data), now=at, iface_out="sw0")
    by_rule = {(chain, number): packets for _, chain, number, packets, _ in engine.counters()}
    counted = [("OUTPUT", n + 1) for n, r in enumerate(table["rules"][:len(chains[0])])
               if any("counter" in s for s in r["expr"])]
    counted += [("j", 1)]
    return [by_rule[c] for c in counted]


def test_nft_expressions_count_as_the_kernels(kernel: None, netns: str) -> None:
    if shutil.which("nft") is None:
        pytest.skip("nft not installed (apt-get install nftables)")
    ns.ip_batch(netns, ["link add sw0 type veth peer name sw1", "link set sw0 up",
                        "link set sw1 up", "link set lo up",
                        "addr add 203.0.113.1/24 dev sw0"])
    ns.run(["nft", "-f", "-"], netns, stdin=RULESET)
    # The listing before the traffic: afterwards it holds the quota used and the set's elements.
    _, listing = _kernel_counters(netns)
    datagrams = []
    with ns.entered(netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    with sock:
        start = time.monotonic()
        for at, src, sport, dport, flags in TRAFFIC:
            time.sleep(max(0.0, start + at - time.monotonic()))
            data = builder.tcp(src, "203.0.113.2", sport, dport, flags)
            sent = time.monotonic() - start
            sock.sendto(data, ("203.0.113.2", 0))
            datagrams.append((sent, data))
    kernel_counts, _ = _kernel_counters(netns)
    assert kernel_counts == _core_counters(listing, datagrams)
    # The scenario means something: the burst held some back; the set held 192.0.2.1 for
    # the second and seventh datagrams, and neither address at 1.6 s (1 s timeouts).
    assert kernel_counts[5] < len(TRAFFIC) and kernel_counts[7] == 2
