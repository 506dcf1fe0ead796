"""`report --engine dask` against its oracle, the single-process report: the
page's model (and, the meta being the same, the whole page) must be equal.

A capture built here (many host pairs; TCP sessions, some dropped or
rejected by rules; UDP flows and the ICMP errors that quote them; pings, some
fragmented; stray segments conntrack finds INVALID; FTP with its data
connection through the helper) is reported with caps small enough that every
cap cuts, once in this process and once on a dask.distributed LocalCluster of
1, 2 and 4 single-threaded worker processes, from the library and the
command; so are a few shared captures. Then what the engine refuses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, LocalCluster
from test_dask import RECENT

import statewall.dask
from statewall import builder as b
from statewall.api import MachineOptions
from statewall.capture import LINKTYPE_RAW
from statewall.capture.writer import write_pcap
from statewall.cli import main
from statewall.dask.run import InexactRun
from statewall.report import build_report
from statewall.report.model import Caps
from statewall.select import Selection, parse_filter

RULES = """*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p tcp --dport 21 -j CT --helper ftp
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -p tcp --dport 23 -j DROP
-A FORWARD -p tcp --dport 25 -j REJECT
-A FORWARD -p tcp --syn -j ACCEPT
-A FORWARD -p udp -j ACCEPT
-A FORWARD -p icmp -j ACCEPT
COMMIT
"""
# Small enough that each cuts what the built capture holds.
SMALL = Caps(connections=25, rows_per_connection=4, rows=40, conns_per_rule=6,
             frames_per_transition=5, reasons=2, table_points=15)
SHARED_CAPTURES = ("ftp-pasv-and-port-internet-ipv4.pcap", "icmp-port-unreachable-dns-mixed.pcap",
                   "ip-frag-dns-udp-ipv4-ipv6.pcap", "large-mixed-lan-1kxun.pcap")


@pytest.fixture(scope="module", params=(1, 2, 4), ids=lambda n: f"{n}workers")
def cluster(request: pytest.FixtureRequest) -> Iterator[tuple[int, str]]:
    with LocalCluster(n_workers=request.param, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=50) as local:
        yield request.param, local.scheduler_address


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("report")
    rules = folder / "rules.v4"
    rules.write_text(RULES)
    return built_capture(folder / "built.pcap"), rules


def tcp_session(client: str, server: str, sport: int, dport: int, t: float,
                payload: bytes) -> list[tuple[float, bytes]]:
    return [(t + k * 0.07, frame) for k, frame in enumerate([
        b.tcp(client, server, sport, dport, "S", 1000, 0),
        b.tcp(server, client, dport, sport, "SA", 5000, 1001),
        b.tcp(client, server, sport, dport, "A", 1001, 5001),
        b.tcp(client, server, sport, dport, "PA", 1001, 5001, payload=payload),
        b.tcp(server, client, dport, sport, "A", 5001, 1001 + len(payload)),
        b.tcp(client, server, sport, dport, "FA", 1001 + len(payload), 5001),
        b.tcp(server, client, dport, sport, "FA", 5001, 1002 + len(payload)),
        b.tcp(client, server, sport, dport, "A", 1002 + len(payload), 5002),
    ])]


def built_capture(path: Path) -> Path:
    frames: list[tuple[float, bytes]] = []
    servers = [f"198.51.100.{n}" for n in range(1, 5)]
    for i in range(48):
        client, server = f"192.0.2.{i + 1}", servers[i % 4]
        t = 1.0 + i * 0.05
        port = (80, 80, 23, 25)[i % 4]
        if port == 80:
            frames += tcp_session(client, server, 40000 + i, port, t, b"GET / HTTP/1.0\r\n\r\n")
        else:  # dropped or rejected: the SYN, and its retransmission
            frames += [(t + k, b.tcp(client, server, 40000 + i, port, "S", 7, 0)) for k in (0, 1)]
        query = b.udp(client, server, 50000 + i, 53, payload=b"q" * (10 + i))
        frames += [(t + 0.01, query),
                   (t + 0.02, b.udp(server, client, 53, 50000 + i, payload=b"a" * 30))]
        if i % 3 == 0:
            frames.append((t + 0.03, b.icmp_error("203.0.113.9", client, 3, 3, query)))
        if i % 5 == 0:  # a segment of no connection: INVALID
            frames.append((t + 0.04, b.tcp(client, server, 30000 + i, 443, "A", 1, 1)))
        ping = b.icmp_echo(client, server, i, 1, payload=bytes(range(256)) * (6 if i % 6 else 1))
        if i % 6:
            frames += [(t + 0.05 + k * 0.001, f)
                       for k, f in enumerate(b.fragment(ping, 512, ident=i))]
        else:
            frames.append((t + 0.05, ping))
    for i in range(4):  # long sessions: their later packets come among many connections'
        client, server, sport = f"192.0.2.{101 + i}", servers[i], 45000 + i
        frames += tcp_session(client, server, sport, 80, 0.5 + i * 0.01, b"x")[:3]
        frames += [(0.8 + i * 0.01 + k * 0.15,
                    b.tcp(client, server, sport, 80, "PA", 1001 + k, 5001, payload=b"k"))
                   for k in range(20)]
    client, server = "192.0.2.200", "198.51.100.200"
    ftp = [b.tcp(client, server, 46000, 21, "S", 1, 0),
           b.tcp(server, client, 21, 46000, "SA", 100, 2),
           b.tcp(client, server, 46000, 21, "A", 2, 101),
           b.tcp(server, client, 21, 46000, "PA", 101, 2, payload=b"220 hi\r\n"),
           # The helper reads a command after a line of the same direction (as the kernel).
           b.tcp(client, server, 46000, 21, "PA", 2, 109, payload=b"USER a\r\n"),
           b.tcp(client, server, 46000, 21, "PA", 10, 109,
                 payload=b"PORT 192,0,2,200,156,64\r\n"),
           b.tcp(server, client, 20, 40000, "S", 500, 0),
           b.tcp(client, server, 40000, 20, "SA", 900, 501),
           b.tcp(server, client, 20, 40000, "A", 501, 901)]
    frames += [(2.0 + k * 0.01, f) for k, f in enumerate(ftp)]
    frames.sort(key=lambda f: f[0])
    write_pcap(path, frames, linktype=LINKTYPE_RAW)
    return path


def model(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page,
                      re.S)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def same_page(single: str, partitioned: str) -> dict[str, Any]:
    expected = model(single)
    assert model(partitioned) == expected
    assert partitioned == single  # the meta is the same too
    return expected


@pytest.mark.parametrize("filter", [None, "proto == tcp or verdict == DROP"])
def test_the_library_gives_the_single_runs_model_with_every_cap_cutting(
        cluster: tuple[int, str], built: tuple[Path, Path], filter: str | None) -> None:
    capture, rules = built
    select = Selection.of(parse_filter(filter)) if filter is not None else None
    single = build_report(capture, MachineOptions(rules=rules), select=select, caps=SMALL,
                          chosen=None if filter is None else f"--filter {filter}")
    with Client(cluster[1]) as client:
        partitioned = statewall.dask.report(client, capture, rules=rules, caps=SMALL,
                                            filter=filter)
    data = same_page(single, partitioned)
    # What the comparison is meant to cover is there.
    assert len(data["meta"]["capped"]) == 5, data["meta"]["capped"]
    assert len(data["drop_reasons"]) == SMALL.reasons + 1  # and the others, summed
    assert data["connections"][-1]["conn"] == 0 and data["connections"][-1]["drops"]
    assert "0" in data["packets"] and data["drop_rules"] and data["tcp"]
    assert data["expectations"]["related"] == 1 and data["expectations"]["created"] == 1
    assert any(r["decided"] and r["number"] for r in data["rules"])


def test_the_command_gives_the_single_runs_page(
        cluster: tuple[int, str], built: tuple[Path, Path], tmp_path: Path,
        capfd: pytest.CaptureFixture[str]) -> None:
    capture, rules = built
    argv = ["report", str(capture), "--rules", str(rules), "--limit", "400", "--title", "built"]
    assert main([*argv, "-o", str(tmp_path / "single.html")]) == 0
    assert main([*argv, "-o", str(tmp_path / "dask.html"), "--engine", "dask",
                 "--scheduler", cluster[1]]) == 0
    assert capfd.readouterr() == ("", "")
    data = same_page((tmp_path / "single.html").read_text(), (tmp_path / "dask.html").read_text())
    assert data["meta"]["packets"] == 400 and data["meta"]["title"] == "built"


@pytest.mark.parametrize("name", SHARED_CAPTURES)
def test_shared_captures_give_the_single_runs_page(
        shared: Path, cluster: tuple[int, str], built: tuple[Path, Path], tmp_path: Path,
        name: str) -> None:
    argv = ["report", str(shared / "traces" / name), "--rules", str(built[1])]
    assert main([*argv, "-o", str(tmp_path / "single.html")]) == 0
    assert main([*argv, "-o", str(tmp_path / "dask.html"), "--engine", "dask",
                 "--scheduler", cluster[1]]) == 0
    data = same_page((tmp_path / "single.html").read_text(), (tmp_path / "dask.html").read_text())
    assert data["meta"]["packets"] and data["connections"]


def test_a_recent_match_is_refused_without_inexact_and_listed_with_it(
        cluster: tuple[int, str], built: tuple[Path, Path], tmp_path: Path,
        capfd: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "recent.v4"
    rules.write_text(RECENT)
    page = tmp_path / "dask.html"
    argv = ["report", str(built[0]), "--rules", str(rules), "-o", str(page),
            "--engine", "dask", "--scheduler", cluster[1]]
    assert main(argv) == 5
    out, err = capfd.readouterr()
    assert out == "" and err.count("\n") == 1 and f"{rules}:5: -m recent" in err
    assert not page.exists()
    assert main([*argv, "--inexact"]) == 0
    assert "-m recent" in capfd.readouterr().err
    assert any("-m recent" in reason for reason in model(page.read_text())["meta"]["inexact"])
    with Client(cluster[1]) as client, pytest.raises(InexactRun):
        statewall.dask.report(client, built[0], rules=rules)


def test_a_truncated_capture_makes_no_page_either(
        cluster: tuple[int, str], built: tuple[Path, Path], tmp_path: Path,
        capfd: pytest.CaptureFixture[str]) -> None:
    truncated = tmp_path / "truncated.pcap"
    whole = built[0].read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    results = []
    for engine in (["--engine", "single"], ["--engine", "dask", "--scheduler", cluster[1]]):
        page = tmp_path / f"{engine[1]}.html"
        code = main(["report", str(truncated), "-o", str(page), *engine])
        results.append((code, capfd.readouterr(), page.exists()))
    assert results[0] == results[1]
    assert results[0][0] == 3 and not results[0][2]


@pytest.mark.parametrize(("extra", "message"), [
    (["--rules-b", "{rules}"], "--rules-b is not available with --engine dask"),
    (["--nft-b", "{rules}"], "--nft-b is not available with --engine dask"),
    (["--conn", "3"], "--conn is not available"),
    (["-w", "{capture}.out"], "-w is not available"),
    (["--filter", "conn == 3"], "a filter on conn or master"),
    (["--workers", "0"], "--workers 0: expected"),
])
def test_what_the_engine_cannot_do_is_a_usage_error(
        built: tuple[Path, Path], tmp_path: Path, capfd: pytest.CaptureFixture[str],
        extra: list[str], message: str) -> None:
    capture, rules = built
    page = tmp_path / "page.html"
    code = main(["report", str(capture), "-o", str(page), "--engine", "dask",
                 *(a.format(rules=rules, capture=capture) for a in extra)])
    out, err = capfd.readouterr()
    assert (code, out) == (2, "") and err.startswith("statewall: ") and message in err
    assert err.count("\n") == 1 and not page.exists()


def test_the_library_refuses_what_needs_one_process(built: tuple[Path, Path]) -> None:
    with pytest.raises(ValueError, match="conn or master"):
        statewall.dask.report(None, built[0], filter="master > 0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^rules_b: not available"):
        statewall.dask.report(None, built[0], rules_b=built[1])  # type: ignore[arg-type]
