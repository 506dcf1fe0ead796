"""Loading nftables rulesets: the file's kinds, what is refused, and how tables,
base chains and priorities become the core's data."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from statewall.cli import main
from statewall.nft.load import NftError, load_objects
from statewall.nft.lower import load_nft, lower_objects, priority_of


def write(tmp_path: Path, objects: list[dict[str, Any]], name: str = "r.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"nftables": [{"metainfo": {"json_schema_version": 1}},
                                             *objects]}))
    return path


def base(family: str, table: str, name: str, hook: str, prio: Any, kind: str = "filter",
         policy: str = "accept") -> dict[str, Any]:
    return {"chain": {"family": family, "table": table, "name": name, "type": kind,
                      "hook": hook, "prio": prio, "policy": policy}}


def test_bad_json_is_one_line_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"nftables": [\n  {"table": }\n]}')
    with pytest.raises(NftError) as error:
        load_objects(path)
    assert str(error.value).startswith(f"{path}:2:13: bad JSON")


def test_json_of_another_shape_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"tables": []}')
    with pytest.raises(NftError, match=r'expected \{"nftables": \[\.\.\.\]\}'):
        load_objects(path)


def test_inet_tables_go_into_both_families_with_their_base_chains(tmp_path: Path) -> None:
    path = write(tmp_path, [
        {"table": {"family": "inet", "name": "filter"}},
        {"table": {"family": "ip", "name": "nat"}},
        base("inet", "filter", "input", "input", "filter - 5", policy="drop"),
        {"chain": {"family": "inet", "table": "filter", "name": "helper"}},
        base("ip", "nat", "post", "postrouting", 100, kind="nat"),
        {"rule": {"family": "inet", "table": "filter", "chain": "input",
                  "expr": [{"jump": {"target": "helper"}}]}},
    ])
    nft = load_nft(str(path))
    assert nft.v4 is not None and nft.v6 is not None
    assert [t["name"] for t in nft.v4.tables] == ["inet filter", "ip nat"]
    assert [t["name"] for t in nft.v6.tables] == ["inet filter"]
    chains = nft.v6.tables[0]["chains"]
    assert chains[0]["base"] == {"hook": "INPUT", "priority": -5, "type": "filter"}
    assert (chains[0]["policy"], chains[1]["policy"], chains[1]["base"]) == ("DROP", None, None)
    assert chains[0]["rules"][0]["target"] == {"kind": "jump", "chain": 1}
    assert nft.v4.tables[1]["chains"][0]["base"]["type"] == "nat"


@pytest.mark.parametrize(("text", "value"), [
    (0, 0), ("-300", -300), ("raw", -300), ("mangle + 10", -140), ("dstnat", -100),
    ("srcnat - 1", 99), ("security", 50)])
def test_named_priorities(text: Any, value: int) -> None:
    assert priority_of(text, "x") == value


def test_an_unknown_priority_name_is_refused() -> None:
    with pytest.raises(NftError, match="unknown chain priority 'out'"):
        priority_of("out", "f: t c")


def test_bridge_and_netdev_tables_are_refused_arp_left_out_with_a_note() -> None:
    arp = [{"table": {"family": "arp", "name": "a"}},
           base("arp", "a", "in", "input", 0)]
    nft = lower_objects(arp, "f.nft")
    assert nft.v4 is None and nft.notes == [
        "f.nft: note: table arp a left out: ARP packets never meet the IPv4 and IPv6 hooks"]
    bridge = [{"table": {"family": "bridge", "name": "br"}}]
    with pytest.raises(NftError, match=r"^f\.nft: table bridge br is not evaluated: "):
        lower_objects(bridge, "f.nft")
    assert lower_objects(bridge, "f.nft", allow_unknown=True).notes[0].startswith(
        "f.nft: note: table bridge br left out")


def test_a_nat_chain_in_forward_and_a_jump_loop_are_refused() -> None:
    table = {"table": {"family": "ip", "name": "t"}}
    with pytest.raises(NftError, match="a chain of type nat cannot hook forward"):
        lower_objects([table, base("ip", "t", "f", "forward", 0, kind="nat")], "f.nft")
    loop = [table, {"chain": {"family": "ip", "table": "t", "name": "a"}},
            {"rule": {"family": "ip", "table": "t", "chain": "a",
                      "expr": [{"goto": {"target": "a"}}]}}]
    with pytest.raises(NftError, match=r"^f\.nft: ip t: jumps loop: a -> a$"):
        lower_objects(loop, "f.nft")


def test_check_nft_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, [{"table": {"family": "ip", "name": "t"}},
                            base("ip", "t", "in", "input", 0, policy="drop")])
    assert main(["check", "--nft", str(good)]) == 0
    bad = write(tmp_path, [{"table": {"family": "netdev", "name": "n"}}], "bad.json")
    assert main(["check", "--nft", str(bad)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith(f"{bad}: table netdev n is not evaluated")


def test_refusals_and_unknown_rules_cite_file_and_line(tmp_path: Path) -> None:
    """A rule read from text is cited as FILE:LINE (an included file by its own
    name); the parsed objects themselves stay nft's JSON."""
    from statewall.nft.parser import parse_nft

    inner = tmp_path / "inner.nft"
    inner.write_text("add rule ip t c meta priority 1 accept\n")
    main = tmp_path / "main.nft"
    main.write_text("table ip t {\n chain c {\n  type filter hook input priority 0\n"
                    "  osf name \"Linux\" drop\n }\n}\n"
                    f'include "{inner}"\n')
    with pytest.raises(NftError, match=re.escape(f"{main}:4: ip t c rule #1: osf name")):
        load_nft(str(main))
    lowered = load_nft(str(main), allow_unknown=True)
    assert lowered.v4 is not None
    assert lowered.v4.unknown == [f"IPv4 ip t c #1 ({main}:4)", f"IPv4 ip t c #2 ({inner}:1)"]
    assert all("line" not in o.get("rule", {}) for o in parse_nft(main.read_text(), str(main)))


RULES_JSON = [
    {"table": {"family": "ip", "name": "t"}},
    base("ip", "t", "c", "input", 0),
    {"chain": {"family": "ip", "table": "t", "name": "lonely"}},
    {"rule": {"family": "ip", "table": "t", "chain": "c", "expr": [{"accept": None}]}},
    {"rule": {"family": "ip", "table": "t", "chain": "c",
              "expr": [{"match": {"op": "==", "left": {"meta": {"key": "cpu"}}, "right": 1}},
                       {"drop": None}]}},
]


def test_json_diagnostics_cite_line_and_column_of_the_object(tmp_path: Path) -> None:
    """`nft -j` prints the ruleset on one line: a JSON rule is cited as
    FILE:LINE:COLUMN of its object (and named by table, chain and number), a
    pretty-printed file gets its own lines. Never line 0."""
    one_line = tmp_path / "one.json"
    text = json.dumps({"nftables": [{"metainfo": {"json_schema_version": 1}}, *RULES_JSON]})
    one_line.write_text(text)
    column = text.index('{"rule"', text.index('{"rule"') + 1) + 1  # the second rule
    with pytest.raises(NftError, match="^" + re.escape(
            f"{one_line}:1:{column}: ip t c rule #2: meta cpu (--allow-unknown")):
        load_nft(str(one_line))
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps({"nftables": RULES_JSON}, indent=2))
    lines = pretty.read_text().splitlines()
    cpu = next(n for n, text in enumerate(lines) if '"cpu"' in text)
    # The object's "{" stands alone on the line before its `"rule": {` (0-based n: line n).
    rule_line = max(n for n, text in enumerate(lines[:cpu]) if '"rule"' in text)
    assert lines[rule_line - 1] == "    {"
    with pytest.raises(NftError, match="^" + re.escape(f"{pretty}:{rule_line}:5: ip t c rule #2")):
        load_nft(str(pretty))
    lowered = load_nft(str(pretty), allow_unknown=True)
    assert lowered.v4 is not None
    assert lowered.v4.unknown == [f"IPv4 ip t c #2 ({pretty}:{rule_line}:5)"]


def test_json_lint_warnings_have_places(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "lint.json"
    text = json.dumps({"nftables": RULES_JSON[:4] + [RULES_JSON[3]]})
    path.write_text(text)
    assert main(["check", "--nft", str(path), "--lint"]) == 0
    out = capsys.readouterr().out.splitlines()
    rules = [n + 1 for n in range(len(text)) if text.startswith('{"rule"', n)]
    lonely = text.index('{"chain": {"family": "ip", "table": "t", "name": "lonely"') + 1
    assert out == [
        f"{path}:1:{rules[1]}: warning: ip t c #2 is never reached: #1 before it decides "
        "every packet",
        f"{path}:1:{lonely}: warning: chain lonely of ip t is never reached (no jump, goto or "
        "verdict map from a base chain leads to it)"]


def test_text_lint_cites_the_chain_line(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "lint.nft"
    path.write_text("table ip t {\n\tchain c {\n\t\ttype filter hook input priority 0;\n\t}\n"
                    "\tchain lonely {\n\t\tcounter\n\t}\n}\n")
    assert main(["check", "--nft", str(path), "--lint"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{path}:5: warning: chain lonely of ip t is never reached (no jump, goto or verdict "
        "map from a base chain leads to it)"]


def test_a_json_rule_in_a_missing_chain_is_cited_where_it_stands(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    text = json.dumps({"nftables": [RULES_JSON[0], {"rule": {
        "family": "ip", "table": "t", "chain": "nowhere", "expr": [{"accept": None}]}}]})
    path.write_text(text)
    column = text.index('{"rule"') + 1
    with pytest.raises(NftError, match="^" + re.escape(
            f"{path}:1:{column}: rule in ip t nowhere: no such chain")):
        load_nft(str(path))
