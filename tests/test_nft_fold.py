"""Folding nft tests into the rule header and `-m state` (statewall.nft.fold).

Each case lowers a real nft rule, as `nft list ruleset` prints it, and checks
what was folded and what was left; the walk tests and the kernel tests judge
the verdicts.
"""

from __future__ import annotations

from typing import Any

from statewall.nft.fold import fold
from statewall.nft.lower import lower_objects
from statewall.nft.parser import parse_nft


def lowered(rule: str, family: str = "ip", core_family: int = 4) -> dict[str, Any]:
    text = (f"table {family} t {{\n\tchain c {{\n\t\ttype filter hook forward priority filter;"
            f" policy accept;\n\t\t{rule}\n\t}}\n}}\n")
    ruleset = lower_objects(parse_nft(text, "<test>"), "<test>")
    part = ruleset.family(core_family)
    assert part is not None
    rules: list[dict[str, Any]] = part.tables[0]["chains"][0]["rules"]
    return rules[0]


def kinds(rule: dict[str, Any]) -> list[str]:
    return [m["kind"] if m["kind"] != "nft" else m["expr"]["op"] for m in rule["matches"]]


def test_addresses_protocol_and_state_fold() -> None:
    rule = lowered("ip saddr 10.0.0.0/8 ip daddr != 198.51.100.7 tcp dport 80 "
                   "ct state established,related accept")
    assert rule["header"] == {
        "src": {"addr": str(0x0A000000), "mask": str(0xFF000000)}, "src_neg": False,
        "dst": {"addr": str(0xC6336407), "mask": str(0xFFFFFFFF)}, "dst_neg": True,
        "proto": 6, "proto_neg": False}
    assert kinds(rule) == ["cmp", "state"]  # the port stays an nft compare
    assert rule["matches"][1] == {"kind": "state", "mask": 2 | 4, "neg": False}


def test_interfaces_exact_and_wildcard() -> None:
    rule = lowered('iifname "lan0" oifname != "wg*" accept')
    assert rule["header"] == {"iface_in": "lan0", "iface_in_neg": False,
                              "iface_out": "wg+", "iface_out_neg": True}
    assert rule["matches"] == []


def test_nothing_moves_past_a_statement() -> None:
    rule = lowered("counter ip saddr 192.0.2.1 accept")
    assert rule["header"] == {}
    assert kinds(rule) == ["counter", "cmp"]


def test_a_mask_that_is_no_prefix_stays_a_compare() -> None:
    rule = lowered("ip saddr & 255.0.255.0 == 10.0.1.0 accept")
    assert rule["header"] == {}
    assert kinds(rule) == ["cmp"]


def test_inet_dependency_holds_in_its_own_family_only() -> None:
    v4 = lowered("ip saddr 192.0.2.1 accept", "inet", 4)
    assert v4["header"]["src"] == {"addr": str(0xC0000201), "mask": str(0xFFFFFFFF)}
    assert v4["matches"] == []
    v6 = lowered("ip saddr 192.0.2.1 accept", "inet", 6)
    # In the IPv6 ruleset the nfproto test never holds: it stays, and so does the load.
    assert kinds(v6) == ["cmp", "cmp"]


def test_ct_state_equality_is_no_bit_test() -> None:
    header, matches = fold([{"kind": "nft", "expr": {
        "op": "cmp", "left": {"key": {"kind": "ct", "key": "state", "dir": None}},
        "cmp": "eq", "data": "00000008"}}], 4)
    assert header == {} and matches[0]["kind"] == "nft"
