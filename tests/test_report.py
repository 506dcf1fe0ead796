"""`statewall report` without a browser: the command, its errors, and the page's data."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import statewall
from statewall.capture import LINKTYPE_RAW
from statewall.capture.writer import write_pcap
from statewall.cli import main
from statewall.demo import DEMO_RULES, demo_frames


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, Path]:
    capture, rules = tmp_path / "demo.pcap", tmp_path / "demo.rules"
    write_pcap(str(capture), demo_frames(), linktype=LINKTYPE_RAW)
    rules.write_text(DEMO_RULES)
    return capture, rules


def model(page: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page,
                      re.S)
    assert found is not None
    data: dict[str, object] = json.loads(found.group(1))
    return data


def test_page_asks_for_nothing(demo: tuple[Path, Path]) -> None:
    page = statewall.report(demo[0], rules=demo[1])
    urls = set(re.findall(r"""(?:https?:)?//[^\s"'<>)]+""", page))
    assert urls == {"http://www.w3.org/2000/svg"}  # a namespace name, never fetched
    assert "src=" not in page and "<link" not in page


def test_totals_and_counters(demo: tuple[Path, Path]) -> None:
    data = model(statewall.report(demo[0], rules=demo[1]))
    run = statewall.replay(demo[0], rules=demo[1])
    summary = run.summary
    assert data["meta"]["packets"] == summary.packets  # type: ignore[index]
    assert dict(data["verdicts"]) == summary.verdicts  # type: ignore[arg-type]
    rules = data["rules"]
    assert isinstance(rules, list)
    assert sum(r["decided"] for r in rules) == sum(
        1 for v in statewall.replay(demo[0], rules=demo[1]) if v.rule is not None)


def test_filter_keeps_the_selected_packets(demo: tuple[Path, Path]) -> None:
    data = model(statewall.report(demo[0], rules=demo[1], filter="verdict == DROP"))
    drops = sum(1 for v in statewall.replay(demo[0], rules=demo[1]) if v.verdict == "DROP")
    assert data["meta"]["selected"] == drops  # type: ignore[index]
    assert data["meta"]["filter"] == "--filter verdict == DROP"  # type: ignore[index]


def test_rules_b(demo: tuple[Path, Path], tmp_path: Path) -> None:
    stricter = tmp_path / "b.rules"
    stricter.write_text(DEMO_RULES.replace("-A FORWARD -s 192.0.2.0/24 -p udp "
                                           "-m conntrack --ctstate NEW -j ACCEPT\n", ""))
    data = model(statewall.report(demo[0], rules=demo[1], rules_b=stricter))
    diff = data["diff"]
    assert isinstance(diff, dict)
    assert diff["differences"] > 0 and diff["changes"]
    assert len(diff["rules_b"]) == len(data["rules"]) - 1  # type: ignore[arg-type]


def test_cli(demo: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(demo[0]), "--rules", str(demo[1]), "-o", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert main(["report", str(tmp_path / "none.pcap"), "-o", str(out)]) == 3
    assert main(["report", str(demo[0]), "--rules-b", str(tmp_path / "none"), "-o", str(out)]) == 3
    assert main(["report", str(demo[0]), "-o", str(out), "--filter", "verdict =="]) == 2
    assert main(["demo", "--report", str(out)]) == 0
    assert "statewall demo" in out.read_text()
    assert "statewall-demo-" not in out.read_text()
    err = capsys.readouterr().err
    assert "Traceback" not in err


BOTH_FAMILIES = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                 "-A FORWARD -p udp --dport 53 -j ACCEPT\n-A FORWARD -p udp --dport 123 -j DROP\n"
                 "COMMIT\n")


def test_rules_of_both_families_are_told_apart(tmp_path: Path) -> None:
    """The IPv4 and IPv6 files are the same text, so their rules share table, chain,
    number and line: only the family tells which one decided a packet."""
    from statewall import builder as b

    sends = [("10.0.0.1", "10.0.1.1", 53)] * 3 + [("2001:db8::1", "2001:db8:1::1", 53)] + \
        [("2001:db8::1", "2001:db8:1::1", 123)] * 2 + [("10.0.0.1", "10.0.1.1", 123)]
    capture = tmp_path / "both.pcap"
    write_pcap(str(capture), [(1_700_000_000.0 + i, b.udp(src, dst, 40000 + i, port, b"x"))
                              for i, (src, dst, port) in enumerate(sends)], linktype=LINKTYPE_RAW)
    v4, v6 = tmp_path / "rules.v4", tmp_path / "rules.v6"
    v4.write_text(BOTH_FAMILIES)
    v6.write_text(BOTH_FAMILIES)
    verdicts = list(statewall.replay(capture, rules=v4, rules6=v6))
    family = {v.index: 6 if ":" in (v.src or "") else 4 for v in verdicts}
    decided = Counter((family[v.index], str(v.rule)) for v in verdicts if v.rule is not None)
    dropped = Counter((family[v.index], str(v.rule)) for v in verdicts if v.verdict == "DROP")
    data = model(statewall.report(capture, rules=v4, rules6=v6))
    rules: list[dict[str, Any]] = data["rules"]  # type: ignore[assignment]
    label = {r["id"]: (r["family"], f"{r['table']} {r['chain']} "
                                    f"{'#' + str(r['number']) if r['number'] else 'policy'}")
             for r in rules}
    assert Counter({label[r["id"]]: r["decided"] for r in rules if r["decided"]}) == decided
    drop_rules: list[list[int]] = data["drop_rules"]  # type: ignore[assignment]
    assert Counter({label[r]: n for r, n in drop_rules}) == dropped
    assert dropped == Counter({(6, "filter FORWARD #2"): 2, (4, "filter FORWARD #2"): 1})


def test_caps_keep_the_first_packets(demo: tuple[Path, Path]) -> None:
    """With small caps the page keeps the first connections' first packets, the
    lowest-numbered connections per rule, the first frames per transition, and the
    most common drop reasons; every count still covers every packet."""
    from statewall.api import machine_options
    from statewall.report import Caps, build_report

    caps = Caps(connections=2, rows_per_connection=2, rows=3, conns_per_rule=1,
                frames_per_transition=1, reasons=1)
    page = build_report(demo[0], machine_options(rules=demo[1]), caps=caps)
    data = model(page)
    verdicts = list(statewall.replay(demo[0], rules=demo[1]))
    kept: dict[int, list[statewall.PacketVerdict]] = {}
    total = 0
    for v in verdicts:
        conn = v.conn or 0
        if conn not in kept and len(kept) < caps.connections:
            kept[conn] = []
        if conn in kept and len(kept[conn]) < caps.rows_per_connection and total < caps.rows:
            kept[conn].append(v)
            total += 1
    packets: dict[str, list[list[Any]]] = data["packets"]  # type: ignore[assignment]
    assert list(packets) == [str(c) for c in kept]
    for conn, rows in kept.items():
        assert [(r[0], r[7], r[8]) for r in packets[str(conn)]] == \
            [(v.index + 1, v.reason, v.summary) for v in rows]
    conns = sorted({v.conn for v in verdicts if v.conn})
    listed: list[dict[str, Any]] = data["connections"]  # type: ignore[assignment]
    assert [c["conn"] for c in listed if c["conn"]] == conns[:caps.connections]
    for entry in listed:
        assert entry["shown"] == sum(1 for v in verdicts if (v.conn or 0) == entry["conn"])
    by_rule: dict[str, set[int]] = {}
    for v in verdicts:
        if v.rule is not None and v.conn:
            by_rule.setdefault(str(v.rule), set()).add(v.conn)
    rules: list[dict[str, Any]] = data["rules"]  # type: ignore[assignment]
    for r in rules:
        conns_of = by_rule.get(f"{r['table']} {r['chain']} "
                               f"{'#' + str(r['number']) if r['number'] else 'policy'}", set())
        assert r["conns_total"] == len(conns_of)
        assert r["conns"] == sorted(conns_of)[:caps.conns_per_rule]
    first: dict[tuple[str, str], int] = {}
    taken: Counter[tuple[str, str]] = Counter()
    last: dict[int, str] = {}
    for v in verdicts:
        if v.tcp_state and v.conn and v.tcp_state != last.get(v.conn, "NONE"):
            key = (last.get(v.conn, "NONE"), v.tcp_state)
            first.setdefault(key, v.index + 1)
            taken[key] += 1
            last[v.conn] = v.tcp_state
    names: dict[str, Any] = data["names"]  # type: ignore[assignment]
    tcp: list[list[Any]] = data["tcp"]  # type: ignore[assignment]
    assert {(names["tcp"][a], names["tcp"][b]): (n, frames) for a, b, n, frames in tcp} == \
        {key: (taken[key], [frame]) for key, frame in first.items()}
    reasons = Counter(v.reason for v in verdicts if v.verdict in ("DROP", "REJECT"))
    drop_reasons: list[list[Any]] = data["drop_reasons"]  # type: ignore[assignment]
    assert drop_reasons[0] == list(reasons.most_common(1)[0])
    assert drop_reasons[1:] == ([[None, sum(reasons.values()) - drop_reasons[0][1]]]
                                if len(reasons) > 1 else [])
    meta: dict[str, Any] = data["meta"]  # type: ignore[assignment]
    assert [c.split(":")[0] for c in meta["capped"]] == \
        ["connections", "packets", "packets", "rules"] + \
        (["TCP transitions"] if any(n > 1 for n in taken.values()) else [])
