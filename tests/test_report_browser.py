"""The report in a real browser (headless Chromium through Selenium).

Each page is built from a replay the test also runs through the library, and
the page must show what that replay computed: the ctstate × verdict counts,
a connection's ladder with one arrow per packet, a rule's connections. The
page must load with no console error and ask for nothing but itself, and its
layout must fit 1280 and 390 pixel wide windows (element geometry, not pixels).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_browser import console_errors, need_browser, open_browser, page_url, requests

import statewall
from statewall.capture import LINKTYPE_RAW
from statewall.capture.writer import write_pcap
from statewall.demo import DEMO_RULES, demo_frames


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[statewall.PacketVerdict]]:
    folder = tmp_path_factory.mktemp("report")
    capture, rules = folder / "demo.pcap", folder / "demo.rules"
    write_pcap(str(capture), demo_frames(), linktype=LINKTYPE_RAW)
    rules.write_text(DEMO_RULES)
    page = folder / "demo.html"
    statewall.report(capture, page, rules=rules)
    return page, list(statewall.replay(capture, rules=rules))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need_browser()
    with open_browser() as driver:
        yield driver


def load(driver: Any, page: Path, width: int = 1280) -> None:
    driver.set_window_size(width, 900)
    requests(driver)  # forget what came before
    driver.get(page_url(page))


def js(driver: Any, script: str) -> Any:
    return driver.execute_script(script)


def test_loads_without_errors_or_requests(browser: Any, demo: tuple[Path, Any]) -> None:
    page, _ = demo
    load(browser, page)
    assert console_errors(browser) == []
    assert requests(browser) == [page_url(page)]
    assert browser.title == "statewall report: demo.pcap"


def test_overview_holds_the_replays_counts(browser: Any, demo: tuple[Path, Any]) -> None:
    page, verdicts = demo
    load(browser, page)
    expected = Counter((v.ctstate or "-", v.verdict) for v in verdicts)
    shown = Counter({(cell["state"], cell["verdict"]): cell["count"] for cell in js(browser, """
        return [...document.querySelectorAll('#state-verdict td')].map(td => ({
          state: td.dataset.state, verdict: td.dataset.verdict, count: Number(td.dataset.count)}))
          .filter(c => c.count > 0);""")})
    assert shown == expected
    drops = Counter(str(v.rule) if v.rule else None for v in verdicts
                    if v.verdict in ("DROP", "REJECT"))
    bars = js(browser, """return [...document.querySelectorAll('#drops-by-rule .bar')]
        .map(b => [b.dataset.label, Number(b.dataset.count)]);""")
    assert sorted(n for _, n in bars) == sorted(drops.values())
    assert {label for label, _ in bars} >= {r for r in drops if r is not None}


def test_clicking_a_connection_draws_its_ladder(browser: Any, demo: tuple[Path, Any]) -> None:
    page, verdicts = demo
    load(browser, page)
    per_conn = Counter(v.conn for v in verdicts if v.conn)
    for conn, packets in per_conn.items():
        browser.find_element("css selector", f'tr.conn[data-conn="{conn}"]').click()
        arrows = js(browser, "return document.querySelectorAll('#ladder g.arrow').length")
        assert arrows == packets, conn
    dropped = {v.frame for v in verdicts if v.conn and v.verdict == "DROP"}
    browser.find_element("css selector", 'tr.conn[data-conn="1"]').click()
    red = js(browser, "return [...document.querySelectorAll('#ladder g.arrow.dropped')]"
                      ".map(g => Number(g.dataset.frame))")
    assert set(red) == {f for f in dropped if verdicts[f - 1].conn == 1}


def test_clicking_a_rule_lists_its_connections(browser: Any, demo: tuple[Path, Any]) -> None:
    page, verdicts = demo
    load(browser, page)
    decided: dict[str, set[int]] = {}
    for v in verdicts:
        if v.rule is not None and v.conn:
            decided.setdefault(str(v.rule), set()).add(v.conn)
    rows = js(browser, """return [...document.querySelectorAll('#rules-body tr.rule')]
        .map(tr => tr.dataset.rule);""")
    assert rows
    for rule_id in rows:
        browser.find_element("css selector", f'#rules-body tr.rule[data-rule="{rule_id}"]').click()
        title = js(browser, "return document.querySelector('#rule-conns h3').textContent")
        listed = js(browser, "return [...document.querySelectorAll('#rule-conn-list li')]"
                             ".map(li => Number(li.dataset.conn))")
        label = title.split(":")[0]
        assert set(listed) == decided.get(label, set()), label
    dead = js(browser, "return [...document.querySelectorAll('tr.rule.dead')].length")
    assert dead == 0  # every rule of the demo's ruleset matches a packet


def test_tcp_transitions(browser: Any, demo: tuple[Path, Any]) -> None:
    page, verdicts = demo
    load(browser, page)
    expected: Counter[tuple[str, str]] = Counter()
    last: dict[int, str] = {}
    for v in verdicts:
        if v.tcp_state and v.conn and v.tcp_state != last.get(v.conn, "NONE"):
            expected[(last.get(v.conn, "NONE"), v.tcp_state)] += 1
            last[v.conn] = v.tcp_state
    edges = js(browser, """return [...document.querySelectorAll('#tcp-graph g.transition')]
        .map(g => [g.dataset.from, g.dataset.to, Number(g.dataset.count)]);""")
    assert Counter({(a, b): n for a, b, n in edges}) == expected
    browser.find_element("css selector", "#tcp-graph g.transition").click()
    assert js(browser, "return document.querySelectorAll('#transition-list li').length") == edges[0][2]


@pytest.mark.parametrize("width", [1280, 390])
def test_layout_fits(browser: Any, demo: tuple[Path, Any], width: int) -> None:
    page, _ = demo
    load(browser, page, width)
    browser.find_element("css selector", 'tr.conn[data-conn="1"]').click()
    inner = js(browser, "return document.documentElement.clientWidth")
    assert js(browser, "return document.documentElement.scrollWidth") <= inner
    boxes = js(browser, """return [...document.querySelectorAll(
        'section, .card, .panel, .scroll, .ladder-box, header')].filter(e => e.offsetParent !== null)
        .map(e => { const r = e.getBoundingClientRect();
                    return [e.id || e.className, r.left, r.right]; });""")
    for name, left, right in boxes:
        assert left >= 0 and right <= inner + 0.5, (name, left, right, inner)


@pytest.mark.shared
def test_ftp_related_children_link_to_their_master(browser: Any, shared: Path,
                                                   tmp_path: Path) -> None:
    capture = shared / "traces" / "ftp-passive-pasv-download-ipv4.pcap"
    rules = tmp_path / "ftp.rules"
    rules.write_text("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                     "-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n"
                     "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                     "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"
                     "-A FORWARD -p tcp --dport 21 -j ACCEPT\n-A FORWARD -p tcp --dport 22 -j ACCEPT\n"
                     "COMMIT\n")
    page = tmp_path / "ftp.html"
    statewall.report(capture, page, rules=rules)
    children = {v.conn: v for v in statewall.replay(capture, rules=rules)
                if v.ctstate == "RELATED"}
    assert children
    load(browser, page)
    assert console_errors(browser) == []
    for conn, first in children.items():
        browser.find_element("css selector", f'tr.conn[data-conn="{conn}"]').click()
        master = js(browser, "return Number(document.querySelector('#ladder-panel [data-master]')"
                             ".dataset.master)")
        announce = js(browser, "return Number(document.querySelector("
                               "'#ladder-panel [data-announce]').dataset.announce)")
        assert f"in packet #{announce}" in first.reason
        browser.find_element("css selector", "#ladder-panel [data-announce]").click()
        assert js(browser, "return document.querySelector('#ladder-panel h3').textContent"
                  ).startswith(f"Connection {master}:")
        focus = js(browser, "return Number(document.querySelector('#ladder g.arrow.focus')"
                            ".dataset.frame)")
        assert focus == announce
        marks = js(browser, "return [...document.querySelectorAll('#ladder .announces')]"
                            ".map(t => t.dataset.children)")
        assert any(str(conn) in m.split() for m in marks)
    # The rule that never matched is marked dead; the SSH rule met no packet.
    dead = js(browser, "return [...document.querySelectorAll('tr.rule.dead td.text')]"
                       ".map(td => td.textContent)")
    assert any("--dport 22" in text for text in dead)


def test_marks_itself_ready_once_laid_out(browser: Any, demo: tuple[Path, Any]) -> None:
    """The ready mark bench/run.py times the opening by: set once the overview,
    the ruleset and the connections are on the page, to the milliseconds since
    the navigation began."""
    page, _ = demo
    load(browser, page)
    mark = None
    for _ in range(200):
        mark = js(browser, "return document.documentElement.dataset.ready")
        if mark is not None:
            break
        time.sleep(0.01)
    assert mark is not None and float(mark) > 0
    assert js(browser, "return document.querySelectorAll('#state-verdict td').length") > 0
    assert js(browser, "return document.querySelectorAll('tr.rule').length") > 0
    assert js(browser, "return document.querySelectorAll('tr.conn').length") > 0
