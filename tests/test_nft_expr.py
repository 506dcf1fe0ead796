"""nft expressions and statements (statewall.nft.expr, core rules::nft):
every rule of the shared nft rulesets lowers (or names what it uses that the
core does not evaluate) and loads, and small rulesets decide packets as the
kernel's nft does.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from nftwalk import (
    ACCEPT,
    DROP,
    Stmts,
    ct,
    engine,
    match,
    meta,
    one,
    payload,
    scope_of,
    verdicts,
)
from rulewalk import CT_ESTABLISHED, CT_ESTABLISHED_REPLY, CT_INVALID, CT_NEW, CT_RELATED, Entry

from statewall import builder
from statewall._core import RuleEngine
from statewall.decode import decode_datagram
from statewall.nft.expr import lower_rule
from statewall.nft.expr_keys import Unsupported
from statewall.nft.scope import JsonObject, RuleScope
from statewall.nft.sets import lower_set
from statewall.packet import Packet

SHARED = Path(os.environ.get("STATEWALL_SHARED", Path(__file__).resolve().parents[2] / "shared"))
NFT_RULESETS = SHARED / "nft-rulesets"
IN_CI = os.environ.get("CI", "").lower() == "true"


def tcp(src: str = "192.0.2.1", dst: str = "198.51.100.2", sport: int = 40000,
        dport: int = 22, flags: str = "S") -> Packet:
    return decode_datagram(builder.tcp(src, dst, sport, dport, flags))


def udp(src: str = "192.0.2.1", dst: str = "198.51.100.2", sport: int = 40000,
        dport: int = 53, ts: float = 0.0) -> Packet:
    return decode_datagram(builder.udp(src, dst, sport, dport, b"x"), ts=ts)


# --- the shared rulesets ------------------------------------------------------------

# What the shared rulesets use that the core does not evaluate, and how many
# rules (an inet rule counted once) each makes unsupported.
EXPECTED_UNSUPPORTED = {
    "exthdr field": 1, "tproxy": 8, "meta priority": 7, "meta iifgroup": 5, "meta oifgroup": 5,
    "meta cpu": 4, "meta cgroup": 3, "meta rtclassid": 1, "ct event set": 3,
"quota from a map": 2, "limit from a map": 1,
    "ct label set": 1, "ct reply zone set": 1, "ct count": 1, "ct expectation": 1,
    "link-layer header (@ll)": 3, "ether header": 1, "vlan header": 3, "osf name": 2,
    "ipsec reqid": 2, "socket transparent": 1, "socket mark": 1, "socket wildcard": 1,
    "synproxy": 1, "meter": 1, "ip option": 1, "tcp option": 1, "sctp chunk": 1,
    "a statement after a verdict map": 1,
}


def _shared_files() -> list[Path]:
    if not NFT_RULESETS.is_dir():
        if IN_CI:
            pytest.fail(f"required under CI but unavailable: {NFT_RULESETS}")
        pytest.skip(f"shared nft rulesets not found at {NFT_RULESETS}")
    return sorted(NFT_RULESETS.glob("*.json"))


def _tables(objs: list[JsonObject]) -> dict[tuple[str, str], dict[str, Any]]:
    tables: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"chains": {}, "sets": {}, "objects": {}, "set_objs": [], "rules": []})
    for o in objs:
        (kind, body), = o.items()
        if kind in ("metainfo", "table") or body.get("family") not in ("ip", "ip6", "inet"):
            continue
        t = tables[(body["family"], body["table"])]
        if kind == "chain":
            t["chains"][body["name"]] = len(t["chains"])
        elif kind in ("set", "map"):
            t["sets"][body["name"]] = len(t["sets"])
            t["set_objs"].append(o)
        elif kind == "rule":
            t["rules"].append(body)
        else:
            t["objects"][(kind, body["name"])] = body
    return tables


def _lower_file(path: Path) -> tuple[int, Counter[str]]:
    """Lowers every rule and loads each table into the core; (rules lowered, unsupported)."""
    tables = _tables(json.loads(path.read_text())["nftables"])
    lowered, unsupported = 0, Counter[str]()
    for (family, name), t in tables.items():
        reasons: dict[int, str] = {}
        for core_family in (4, 6) if family == "inet" else (4 if family == "ip" else 6,):
            scope = RuleScope(family, name, "", t["chains"], t["sets"], t["objects"],
                              str(path), core_family)
            chains: list[list[JsonObject]] = [[] for _ in t["chains"]]
            for i, rule in enumerate(t["rules"]):
                r = lower_rule(rule["expr"], scope)
                if r.unsupported is not None:
                    reasons.setdefault(i, r.unsupported)
                    continue
                chains[t["chains"][rule["chain"]]].append(
                    {"matches": r.matches, "target": r.target,
                     "number": len(chains[t["chains"][rule["chain"]]]) + 1})
            sets = []
            for s in t["set_objs"]:
                try:
                    sets.append(lower_set(s, scope))
                except Unsupported:
                    sets.append({"name": "unsupported", "key_len": 0})
            names = list(t["chains"])
            # The table's chains keep their indexes; an entry chain after them jumps to each.
            entry = {"name": "FORWARD", "policy": "ACCEPT", "rules": [
                {"matches": [], "target": {"kind": "jump", "chain": i}, "number": i + 1}
                for i in range(len(names))]}
            core = {"family": core_family, "source": str(path), "nft_sets": sets,
                    "tables": [{"name": f"{family} {name}", "chains": [
                        *({"name": n, "policy": None, "rules": chains[i]}
                          for i, n in enumerate(names)), entry]}]}
            RuleEngine(json.dumps(core))
        lowered += len(t["rules"]) - len(reasons)
        unsupported.update(reasons.values())
    return lowered, unsupported


def test_every_shared_rule_lowers_or_names_what_it_uses() -> None:
    total, unsupported = 0, Counter[str]()
    for path in _shared_files():
        n, why = _lower_file(path)
        total += n
        unsupported.update(why)
    assert dict(unsupported) == EXPECTED_UNSUPPORTED
    # 842 rules of the ip, ip6 and inet tables (bridge, netdev and arp are not lowered).
    assert total + sum(unsupported.values()) == 842
    assert total == 778


# --- expressions ------------------------------------------------------------------


def test_ct_state_set_of_flags_is_a_bit_test() -> None:
    e = engine({"fwd": [[match(ct("state"), ["established", "related"], "in"), ACCEPT]]},
               policy="DROP")
    p = udp()
    assert [one(e, p, ctinfo=c).verdict for c in
            (CT_ESTABLISHED, CT_RELATED, CT_ESTABLISHED_REPLY, CT_NEW, CT_INVALID)] == \
        ["ACCEPT", "ACCEPT", "ACCEPT", "DROP", "DROP"]
    e = engine({"fwd": [[match(ct("state"), "invalid"), DROP]]})
    assert one(e, p, ctinfo=CT_INVALID).verdict == "DROP"
    assert one(e, p, ctinfo=CT_NEW).verdict == "ACCEPT"


def test_tcp_flags_masked_equality_and_the_implicit_flag_test() -> None:
    masked = [match({"&": [payload("tcp", "flags"), ["syn", "ack"]]}, "syn"), ACCEPT]
    e = engine({"fwd": [masked]}, policy="DROP")
    assert verdicts(e, [tcp(flags="S"), tcp(flags="SA"), tcp(flags="SF"), tcp(flags="A")]) == \
        ["ACCEPT", "DROP", "ACCEPT", "DROP"]
    implicit = [match(payload("tcp", "flags"), "syn", "in"), ACCEPT]
    e = engine({"fwd": [implicit]}, policy="DROP")
    assert verdicts(e, [tcp(flags="S"), tcp(flags="SA"), tcp(flags="A")]) == \
        ["ACCEPT", "ACCEPT", "DROP"]
    # The implied `meta l4proto tcp`: a UDP datagram's bytes at the same offset do not count.
    assert verdicts(e, [udp(sport=0x0202, dport=0x0202)]) == ["DROP"]
    # `!=` with flags is plain inequality (nft emits `cmp neq`, no bitwise).
    e = engine({"fwd": [[match(payload("tcp", "flags"), ["syn", "ack"], "!="), ACCEPT]]},
               policy="DROP")
    assert verdicts(e, [tcp(flags="S"), tcp(flags="SA")]) == ["ACCEPT", "DROP"]
    e = engine({"fwd": [[match(ct("state"), {"|": ["established", "related"]}, "!="), DROP]]})
    assert one(e, udp(), ctinfo=CT_ESTABLISHED).verdict == "DROP"


def test_interval_and_prefix_sets_and_their_negation() -> None:
    right = {"set": [{"prefix": {"addr": "192.0.2.0", "len": 28}},
                     {"range": ["198.51.100.1", "198.51.100.9"]}, "203.0.113.7"]}
    e = engine({"fwd": [[match(payload("ip", "saddr"), right), ACCEPT]]}, policy="DROP")
    srcs = ["192.0.2.15", "192.0.2.16", "198.51.100.9", "198.51.100.10", "203.0.113.7",
            "203.0.113.8"]
    assert verdicts(e, [udp(src=s) for s in srcs]) == \
        ["ACCEPT", "DROP", "ACCEPT", "DROP", "ACCEPT", "DROP"]
    e = engine({"fwd": [[match(payload("ip", "saddr"), right, "!="), ACCEPT]]}, policy="DROP")
    assert verdicts(e, [udp(src=s) for s in srcs]) == \
        ["DROP", "ACCEPT", "DROP", "ACCEPT", "DROP", "ACCEPT"]


def test_a_prefix_a_range_and_an_interface_wildcard() -> None:
    e = engine({"fwd": [
        [match(payload("ip", "daddr"), {"prefix": {"addr": "198.51.100.0", "len": 24}}, "!="),
         DROP],
        [match(payload("udp", "dport"), {"range": [50, 60]}), match(meta("iifname"), "eth*"),
         ACCEPT]]}, policy="DROP")
    assert one(e, udp(dst="203.0.113.1"), iface_in="eth0").rule.number == 1
    assert one(e, udp(dport=53), iface_in="eth12").verdict == "ACCEPT"
    assert one(e, udp(dport=61), iface_in="eth0").verdict == "DROP"
    assert one(e, udp(dport=53), iface_in="ppp0").verdict == "DROP"


def test_concatenations_pad_each_part() -> None:
    right = {"set": [{"concat": ["192.0.2.1", 22]}, {"concat": ["192.0.2.2", 80]}]}
    left = {"concat": [payload("ip", "saddr"), payload("tcp", "dport")]}
    e = engine({"fwd": [[match(left, right), ACCEPT]]}, policy="DROP")
    assert verdicts(e, [tcp(src="192.0.2.1", dport=22), tcp(src="192.0.2.1", dport=80),
                        tcp(src="192.0.2.2", dport=80)]) == ["ACCEPT", "DROP", "ACCEPT"]


def test_an_ip_match_in_an_inet_table_leaves_ipv6_alone() -> None:
    rule = [match(payload("ip", "saddr"), "192.0.2.1", "!="), DROP]
    e = engine({"fwd": [rule]}, core_family=6)
    pkt = decode_datagram(builder.udp("2001:db8::1", "2001:db8::2", 1, 2, b""))
    assert one(e, pkt).verdict == "ACCEPT"


def test_ipv6_extension_headers_exist_or_not() -> None:
    e = engine({"fwd": [[match({"exthdr": {"name": "hbh"}}, True), DROP],
                        [match({"exthdr": {"name": "rt"}}, False), ACCEPT]]},
               core_family=6, policy="DROP")
    segment = builder.udp_segment("2001:db8::1", "2001:db8::2", 1, 2, b"x")
    with_hbh = builder.ipv6("2001:db8::1", "2001:db8::2", 17, segment,
                            ext_headers=[builder.hop_by_hop()])
    plain = builder.ipv6("2001:db8::1", "2001:db8::2", 17, segment)
    assert one(e, decode_datagram(with_hbh)).rule.number == 1
    assert one(e, decode_datagram(plain)).rule.number == 2


# --- statements -------------------------------------------------------------------


def test_marks_set_from_expressions_and_maps() -> None:
    mark_map = {"map": {"key": payload("ip", "saddr"),
                        "data": {"set": [["192.0.2.1", 5], ["192.0.2.2", 6]]}}}
    e = engine({"fwd": [
        [{"mangle": {"key": meta("mark"), "value": mark_map}}],
        [{"mangle": {"key": ct("mark"), "value": {"|": [meta("mark"), 0x100]}}}],
        [match({"&": [meta("mark"), 0xFF]}, 6), ACCEPT]]}, policy="DROP")
    conn = Entry(4, 17, 0, (0, 0, 0, 0), (0, 0, 0, 0))
    d = one(e, udp(src="192.0.2.2"), ctinfo=CT_NEW, conn=conn)
    assert (d.verdict, d.mark, conn.mark) == ("ACCEPT", 6, 0x106)
    # No element: the statement stops the rule, the mark stays.
    d = one(e, udp(src="192.0.2.9"), ctinfo=CT_NEW, conn=conn)
    assert (d.verdict, d.mark) == ("DROP", 0)


def test_a_verdict_map_jumps_returns_and_falls_back_to_its_catch_all() -> None:
    vmap = {"map": {"family": "inet", "name": "ports", "table": "t", "type": "inet_service",
                    "map": "verdict", "elem": [
                        [22, {"jump": {"target": "ssh"}}],
                        [80, {"accept": None}],
                        [{"elem": {"val": "*"}}, {"drop": None}]]}}
    e = engine({"fwd": [[{"vmap": {"key": payload("tcp", "dport"), "data": "@ports"}}],
                        [match(payload("tcp", "dport"), 22), DROP]],
                "ssh": [[match(payload("ip", "saddr"), "192.0.2.1"), ACCEPT],
                        [{"return": None}]]}, sets=[vmap])
    assert one(e, tcp(dport=22)).verdict == "ACCEPT"
    d = one(e, tcp(src="192.0.2.5", dport=22))
    assert (d.verdict, d.rule.chain, d.rule.number) == ("DROP", "FORWARD", 2)
    assert one(e, tcp(dport=80)).verdict == "ACCEPT"
    assert one(e, tcp(dport=443)).verdict == "DROP"


def test_dynamic_set_updates_time_out_on_the_packets_clock() -> None:
    blocked = {"set": {"family": "ip", "name": "blk", "table": "t", "type": "ipv4_addr",
                       "flags": ["timeout"], "timeout": 60, "size": 2}}
    e = engine({"fwd": [
        [match(payload("ip", "saddr"), "@blk"), DROP],
        [match(payload("udp", "dport"), 22),
         {"set": {"op": "add", "elem": {"elem": {"val": payload("ip", "saddr"), "timeout": 10}},
                  "set": "@blk"}}]]}, sets=[blocked], family="ip")
    p22, p53 = udp(dport=22), udp(dport=53)
    assert one(e, p22, now=100.0).verdict == "ACCEPT"
    assert one(e, p53, now=105.0).verdict == "DROP"
    assert one(e, p53, now=110.0).verdict == "ACCEPT"
    # The set holds two elements at most: a third address is not added.
    for src in ("192.0.2.7", "192.0.2.8", "192.0.2.9"):
        one(e, udp(src=src, dport=22), now=120.0)
    assert [one(e, udp(src=s), now=121.0).verdict for s in
            ("192.0.2.7", "192.0.2.8", "192.0.2.9")] == ["DROP", "DROP", "ACCEPT"]


def test_counters_quota_and_limit() -> None:
    e = engine({"fwd": [[{"quota": {"val": 100, "val_unit": "bytes"}}, ACCEPT]]},
               policy="DROP")
    # 29-byte datagrams: the fourth brings the total to 116, over 100 (exactly 100 is not).
    assert verdicts(e, [udp() for _ in range(4)]) == ["ACCEPT"] * 3 + ["DROP"]
    e = engine({"fwd": [[{"quota": {"val": 58, "val_unit": "bytes"}}, ACCEPT]]},
               policy="DROP")
    assert verdicts(e, [udp() for _ in range(3)]) == ["ACCEPT", "ACCEPT", "DROP"]
    e = engine({"fwd": [[{"limit": {"rate": 1, "per": "second", "burst": 2}}, ACCEPT]]},
               policy="DROP")
    got = [one(e, udp(), now=t).verdict for t in (0.0, 0.1, 0.2, 1.3)]
    assert got == ["ACCEPT", "ACCEPT", "DROP", "ACCEPT"]


def test_log_reject_and_nat_reuse_the_iptables_targets() -> None:
    e = engine({"fwd": [[{"log": {"prefix": "nft: "}},
                         match(payload("tcp", "dport"), 23), {"reject": {"type": "tcp reset"}}],
                        [{"reject": None}]]})
    d = one(e, tcp(dport=23))
    assert (d.verdict, d.reject_with) == ("REJECT", "tcp-reset")
    assert d.logs[0].startswith("nft: IN= OUT= SRC=192.0.2.1")
    d = one(e, udp())
    assert (d.verdict, d.reject_with) == ("REJECT", "icmp-port-unreachable")
    e = engine({"fwd": [[{"reject": None}]]}, core_family=6)
    d = one(e, decode_datagram(builder.udp("2001:db8::1", "2001:db8::2", 1, 2, b"")))
    assert d.reject_with == "icmp6-port-unreachable"
    e = engine({"fwd": [[{"dnat": {"family": "ip", "addr": "198.51.100.5", "port": 8080}}]]})
    d = one(e, tcp())
    assert d.verdict == "ACCEPT"
    e = engine({"fwd": [[{"dnat": {"addr": {"map": {
        "key": payload("tcp", "dport"),
        "data": {"set": [[22, "198.51.100.7"]]}}}}}]]}, family="ip")
    assert one(e, tcp(dport=22)).verdict == "ACCEPT"
    # No element for the key: the rule stops, the policy decides.
    assert one(e, tcp(dport=25)).rule.number == 0


def test_ct_helper_and_notrack_are_conntrack_effects() -> None:
    helper = {("ct helper", "ftp-std"): {"name": "ftp-std", "type": "ftp", "protocol": "tcp"}}
    e = engine({"fwd": [[{"ct helper": "ftp-std"}, {"notrack": None}]]}, objects=helper)
    assert one(e, tcp(dport=21)).effects == (("helper", "ftp"), ("notrack", True))
    helper[("ct helper", "tftp-69")] = {"name": "tftp-69", "type": "tftp", "protocol": "udp"}
    by_port = {"map": {"key": payload("udp", "dport"),
                       "data": {"set": [[69, "tftp-69"], [21, "ftp-std"]]}}}
    e = engine({"fwd": [[{"ct helper": by_port}]]}, objects=helper)
    assert one(e, udp(dport=69)).effects == (("helper", "tftp"),)
    assert one(e, udp(dport=70)).effects == ()


def test_numgen_picks_among_the_map_elements() -> None:
    vmap = {"vmap": {"key": {"numgen": {"mode": "random", "mod": 1, "offset": 0}},
                     "data": {"set": [[0, {"goto": {"target": "ep"}}]]}}}
    e = engine({"fwd": [[vmap]], "ep": [[{"dnat": {"addr": "198.51.100.9"}}]]}, family="ip")
    d = one(e, tcp())
    assert (d.verdict, d.rule.chain) == ("ACCEPT", "ep")


# --- what is not evaluated --------------------------------------------------------


@pytest.mark.parametrize(("stmts", "why"), [
    ([match({"osf": {"key": "name"}}, "Linux"), ACCEPT], "osf name"),
    ([match({"socket": {"key": "transparent"}}, 1), ACCEPT], "socket transparent"),
    ([{"tproxy": {"family": "ip", "addr": "192.0.2.1"}}], "tproxy"),
    ([match(payload("tcp", "dport"), "no-such-service"), ACCEPT],
     "a value the core cannot hold: 'no-such-service' is not a inet_service value"),
    ([match(payload("ip", "saddr"), "@nowhere"), ACCEPT],
     "set @nowhere, which the table does not define"),
])
def test_unsupported_constructs_are_named(stmts: Stmts, why: str) -> None:
    assert lower_rule(stmts, scope_of(["c"], [])).unsupported == why
