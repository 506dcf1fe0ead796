"""parse_nft against the kernel: each shared listing parses to what `nft -j list ruleset` printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import _unavailable
from nftshared import NAMES, RULESETS, kernel_objects, listing

from statewall.nft.errors import NftSyntaxError
from statewall.nft.parser import parse_nft


@pytest.fixture
def rulesets() -> Path:
    if not RULESETS.is_dir():
        _unavailable(f"shared nft rulesets not found at {RULESETS}")
    return RULESETS


def _first_difference(got: list[Any], want: list[Any]) -> str:
    for index, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            return f"object {index}:\n got  {json.dumps(a)}\n want {json.dumps(b)}"
    return f"{len(got)} objects, want {len(want)}"


@pytest.mark.parametrize("name", NAMES or ["(no shared rulesets)"])
def test_listing_parses_to_kernel_json(rulesets: Path, name: str) -> None:
    got = parse_nft(listing(name), str(rulesets / f"{name}.nft"))
    for obj in got:
        # nft 1.0.6 leaves a netdev base chain's device out of its JSON; the parser keeps it
        if "chain" in obj and obj["chain"]["family"] == "netdev":
            obj["chain"].pop("dev", None)
    want = kernel_objects(name)
    assert got == want, _first_difference(got, want)


# originals that cannot be loaded as they stand, and why (one line each)
REFUSED = {
    "deb-all-in-one.orig.nft": "include file not found (near './inet-filter.nft')",
    "deb-sets-and-maps.orig.nft": "no such table: ip filter",
    "pi-access-point.orig.nft": "include file not found (near '/etc/nftables/nat-ap.nft')",
    "ts-flowtable.orig.nft": "flowtables are not supported",
}


def _originals() -> list[str]:
    if not RULESETS.is_dir():
        return ["(no shared rulesets)"]
    files = [*RULESETS.glob("*.orig.nft"), *RULESETS.glob("*.orig.t"), *RULESETS.glob("*.loaded.nft")]
    return sorted(p.name for p in files)


@pytest.mark.parametrize("name", _originals())
def test_original_parses_or_is_refused_in_one_line(rulesets: Path, name: str) -> None:
    path = rulesets / name
    text = path.read_text()
    if name.endswith(".t"):
        with pytest.raises(NftSyntaxError, match=r":1:1: an nftables test-suite file"):
            parse_nft(text, str(path))
        return
    if name in REFUSED:
        with pytest.raises(NftSyntaxError) as info:
            parse_nft(text, str(path))
        assert REFUSED[name] in str(info.value) and "\n" not in str(info.value)
        return
    assert parse_nft(text, str(path))


def test_pi_access_point_with_its_include_dir(rulesets: Path, tmp_path: Path) -> None:
    inc = tmp_path / "etc/nftables"
    inc.mkdir(parents=True)
    (inc / "nat-ap.nft").write_text((rulesets / "pi-access-point.orig.include-nat-ap.nft").read_text())
    text = (
        (rulesets / "pi-access-point.orig.nft")
        .read_text()
        .replace('"/etc/nftables/nat-ap.nft"', '"etc/nftables/nat-ap.nft"')
    )
    got = parse_nft(text, str(tmp_path / "nftables.conf"))
    assert got == kernel_objects("pi-access-point")


def test_defines_sets_and_nested_defines() -> None:
    text = """
define ports = { 22, 80 }
define more = { $ports, 443 }
define lan = "eth0"
table inet f {
\tchain input {
\t\ttype filter hook input priority filter + 10; policy drop;
\t\tiifname $lan tcp dport $more accept
\t}
}
"""
    objects = parse_nft(text, "t.nft")
    assert objects[1]["chain"]["prio"] == 10 and objects[1]["chain"]["policy"] == "drop"
    assert objects[2]["rule"]["expr"] == [
        {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}},
        {
            "match": {
                "op": "==",
                "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                "right": {"set": [22, 80, 443]},
            }
        },
        {"accept": None},
    ]


def test_commands_run_in_order(tmp_path: Path) -> None:
    (tmp_path / "rules.d").mkdir()
    (tmp_path / "rules.d" / "a.nft").write_text("add rule ip t c tcp dport 1 drop\n")
    (tmp_path / "rules.d" / "b.nft").write_text("insert rule ip t c tcp dport 2 drop\n")
    main = tmp_path / "main.nft"
    main.write_text(
        "table ip old { chain x { } }\nflush ruleset\n"
        "add table ip t\nadd chain ip t c { type nat hook postrouting priority srcnat; }\n"
        'include "rules.d/*.nft"\n'
    )
    objects = parse_nft(main.read_text(), str(main))
    assert [next(iter(o)) for o in objects] == ["table", "chain", "rule", "rule"]
    assert objects[1]["chain"]["prio"] == 100
    ports = [o["rule"]["expr"][0]["match"]["right"] for o in objects[2:]]
    assert ports == [2, 1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "table ip t {\n\tchain c {\n\t\ttcp dport 22 frobnicate\n\t}\n}\n",
            "t.nft:3:16: unknown statement (near 'frobnicate')",
        ),
        ("add rule ip nosuch c accept\n", "t.nft:1:10: no such table: ip nosuch (near 'nosuch')"),
        (
            "table ip t { chain c { ip saddr $nope } }\n",
            "t.nft:1:33: undefined variable '$nope' (near '$nope')",
        ),
        ('table ip t { comment "open\n', "t.nft:1:22: unterminated string (near '\"open')"),
        (
            "table ip t {\n\tflowtable f { }\n}\n",
            "t.nft:2:14: flowtables are not supported (near 'flowtable f')",
        ),
    ],
)
def test_errors_are_one_line_with_place(text: str, message: str) -> None:
    with pytest.raises(NftSyntaxError) as info:
        parse_nft(text, "t.nft")
    assert str(info.value) == message


# As the kernel lists them, with the expressions `nft -j list ruleset` gives
# for each (6.x): `rt mtu` is the route's MTU, not a routing header field.
TRANSLATED_STATEMENTS = [
    ("tcp option maxseg size set rt mtu",
     [{"mangle": {"key": {"tcp option": {"name": "maxseg", "field": "size"}},
                  "value": {"rt": {"key": "mtu"}}}}]),
    ("meta nftrace set 1", [{"mangle": {"key": {"meta": {"key": "nftrace"}}, "value": 1}}]),
    ("meta random & 2147483647 < 1073741824 accept",
     [{"match": {"op": "<", "left": {"&": [{"meta": {"key": "random"}}, 2147483647]},
                 "right": 1073741824}}, {"accept": None}]),
    ('log prefix "x" level info flags ip options',
     [{"log": {"prefix": "x", "level": "info", "flags": "ip options"}}]),
    ("log flags tcp sequence,options", [{"log": {"flags": ["tcp sequence", "tcp options"]}}]),
    ("log flags all", [{"log": {"flags": "all"}}]),
]


@pytest.mark.parametrize(("text", "expr"), TRANSLATED_STATEMENTS)
def test_statements_translations_use(text: str, expr: list[Any]) -> None:
    from statewall.nft.printer import format_statements

    objects = parse_nft(f"table ip f {{\n chain c {{\n  {text}\n }}\n}}\n", "t.nft")
    rule = next(o["rule"] for o in objects if "rule" in o)
    assert rule["expr"] == expr
    assert format_statements(expr) == text


def test_map_element_glued_to_its_verdict(rulesets: Path) -> None:
    """`{ 25:accept }` (py-inet-tcp.loaded.nft, which the kernel loads): the key, then
    the verdict, as in the kernel's listing; a MAC keeps its colons."""
    objects = parse_nft((rulesets / "py-inet-tcp.loaded.nft").read_text(), "py-inet-tcp")
    vmaps = [o["rule"]["expr"] for o in objects if "rule" in o
             and "vmap" in o["rule"]["expr"][0]][1:]
    want = [o["rule"]["expr"] for o in kernel_objects("py-inet-tcp") if "rule" in o
            and '[25, {"accept": null}]' in json.dumps(o["rule"]["expr"])]
    assert vmaps == want and len(want) == 2
    mac = parse_nft("table ip t {\n chain c {\n  ether saddr aa:bb:cc:dd:ee:ff\n }\n}\n", "m")
    assert next(o["rule"] for o in mac if "rule" in o)["expr"][0]["match"]["right"] == \
        "aa:bb:cc:dd:ee:ff"
