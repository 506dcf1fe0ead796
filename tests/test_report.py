"""`statewall report` without a browser: the command, its errors, and the page's data."""

from __future__ import annotations

import json
import re
from pathlib import Path

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
