"""The Dask engine against its oracle, the single-process run: byte for byte.

Every shared capture, bench's capture (bench/generate.py, smaller) and a
capture built here (many host pairs, ICMP errors quoting their connections,
fragments, a clock that steps back, FTP data connections through the
helper) go through `replay`, `table` and `conns` once in this process and
once on a dask.distributed LocalCluster of 1, 2 and 4 single-threaded
worker processes; the outputs must be the same bytes. One cluster per size
serves the whole module (`--scheduler` points the commands at it).
Then what partitioning cannot keep exact: refused without --inexact (exit 5,
naming the rules), marked with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from statewall import builder as b
from statewall.capture import LINKTYPE_RAW
from statewall.capture.writer import write_pcap
from statewall.cli import main

REPO = Path(__file__).resolve().parents[1]
SHARED_TRACES = REPO.parent / "shared" / "traces"
CAPTURE_NAMES = sorted(p.name for p in SHARED_TRACES.glob("*.pcap*")) or ["(no captures)"]
# Each worker count runs these; 2 workers run every command (ALL_COMMANDS).
COMMANDS = (["replay", "--format", "jsonl"], ["replay", "--summary-only"], ["table"])
ALL_COMMANDS = (*COMMANDS, ["replay"], ["table", "--format", "json"], ["conns"],
                ["conns", "--format", "jsonl"])
FTP_HELPER = """*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p tcp --dport 21 -j CT --helper ftp
-A PREROUTING -p udp --dport 69 -j CT --helper tftp
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -p tcp --syn -j ACCEPT
-A FORWARD -p udp -j ACCEPT
-A FORWARD -p icmp -j ACCEPT
-A FORWARD -p ipv6-icmp -j ACCEPT
COMMIT
"""


@pytest.fixture(scope="module", params=(1, 2, 4), ids=lambda n: f"{n}workers")
def cluster(request: pytest.FixtureRequest) -> Iterator[tuple[int, str]]:
    with LocalCluster(n_workers=request.param, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=50) as local:
        yield request.param, local.scheduler_address


def run(capfd: pytest.CaptureFixture[bytes], argv: list[str]) -> tuple[int, bytes, bytes]:
    code = main(argv)
    out, err = capfd.readouterr()
    return code, out, err


def same_output(capfd: pytest.CaptureFixture[bytes], cluster: tuple[int, str],
                capture: Path | list[str], *extra: str,
                commands: tuple[list[str], ...] | None = None) -> None:
    workers, address = cluster
    captures = capture if isinstance(capture, list) else [str(capture)]
    for command in commands or (ALL_COMMANDS if workers == 2 else COMMANDS):
        argv = [command[0], *captures, *command[1:], *extra]
        single = run(capfd, argv)
        partitioned = run(capfd, [*argv, "--engine", "dask", "--scheduler", address])
        assert partitioned[:2] == single[:2], (command, single[2], partitioned[2])
        assert single[1] or command[0] != "replay", "nothing written: a vacuous comparison"


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_shared_captures_give_the_single_runs_bytes(
        shared: Path, cluster: tuple[int, str], capfdbinary: pytest.CaptureFixture[bytes],
        name: str) -> None:
    same_output(capfdbinary, cluster, shared / "traces" / name)


@pytest.mark.parametrize("name", [n for n in CAPTURE_NAMES if n.startswith(("ftp", "tftp"))]
                         or ["(no captures)"])
def test_helpers_data_connections_meet_their_masters(
        shared: Path, cluster: tuple[int, str], capfdbinary: pytest.CaptureFixture[bytes],
        tmp_path: Path, name: str) -> None:
    rules = tmp_path / "helpers.v4"
    rules.write_text(FTP_HELPER)
    rules6 = tmp_path / "helpers.v6"
    rules6.write_text(FTP_HELPER.replace("-p icmp -j", "-p udp -j"))
    same_output(capfdbinary, cluster, shared / "traces" / name,
                "--rules", str(rules), "--rules6", str(rules6),
                commands=(["replay", "--format", "jsonl"], ["conns"]))


def test_several_captures_give_the_single_runs_bytes(
        shared: Path, cluster: tuple[int, str], capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    traces = shared / "traces"
    same_output(capfdbinary, cluster, [str(traces / "tcp-*.pcap*"),
                                       str(traces / "icmp-port-unreachable-dns-mixed.pcap"),
                                       str(traces / "ftp-epsv-eprt-internet-ipv6.pcap")])


def built_capture(path: Path) -> Path:
    """Many host pairs interleaved in time: TCP sessions, UDP flows and the ICMP
    errors that quote them, fragmented pings, FTP with its active data
    connection, and one packet stamped earlier than the one before it."""
    frames: list[tuple[float, bytes]] = []
    servers = [f"198.51.100.{n}" for n in range(1, 4)]
    for i in range(40):
        client, server = f"192.0.2.{i + 1}", servers[i % 3]
        t = 1.0 + i * 0.01
        sport = 40000 + i
        frames += [
            (t, b.tcp(client, server, sport, 80, "S", 1000, 0)),
            (t + 0.3, b.tcp(server, client, 80, sport, "SA", 5000, 1001)),
            (t + 0.6, b.tcp(client, server, sport, 80, "A", 1001, 5001)),
            (t + 0.9, b.tcp(client, server, sport, 80, "FA", 1001, 5001)),
        ]
        query = b.udp(client, server, 50000 + i, 53, payload=b"q" * 20)
        frames += [(t + 0.1, query),
                   (t + 0.2, b.icmp_error("203.0.113.9", client, 3, 3, query))]
        if i % 5 == 0:
            ping = b.icmp_echo(client, server, i, 1, payload=bytes(range(256)) * 6)
            frames += [(t + 0.4 + k * 0.001, f) for k, f in enumerate(b.fragment(ping, 512, ident=i))]
    frames.sort(key=lambda f: f[0])
    frames.insert(len(frames) // 2, (frames[len(frames) // 2][0] - 0.5,
                                     b.udp("192.0.2.1", servers[1], 50000, 53, payload=b"late")))
    client, server = "192.0.2.200", "198.51.100.200"
    ctl = [(b.tcp(client, server, 46000, 21, "S", 1, 0)),
           (b.tcp(server, client, 21, 46000, "SA", 100, 2)),
           (b.tcp(client, server, 46000, 21, "A", 2, 101)),
           (b.tcp(server, client, 21, 46000, "PA", 101, 2, payload=b"220 hi\r\n")),
           # The helper reads a command only after a line it has seen end.
           (b.tcp(client, server, 46000, 21, "PA", 2, 109, payload=b"USER a\r\n")),
           (b.tcp(client, server, 46000, 21, "PA", 10, 109,
                  payload=b"PORT 192,0,2,200,156,64\r\n")),
           (b.tcp(server, client, 20, 40000, "S", 500, 0))]
    frames += [(10.0 + k * 0.01, f) for k, f in enumerate(ctl)]
    write_pcap(path, frames, linktype=LINKTYPE_RAW)
    return path


def test_a_built_capture_gives_the_single_runs_bytes(
        cluster: tuple[int, str], capfdbinary: pytest.CaptureFixture[bytes],
        tmp_path: Path) -> None:
    rules = tmp_path / "helpers.v4"
    rules.write_text(FTP_HELPER)
    capture = built_capture(tmp_path / "built.pcap")
    same_output(capfdbinary, cluster, capture, "--rules", str(rules))
    same_output(capfdbinary, cluster, capture, "--limit", "150",
                commands=(["replay"], ["table", "--at", "5"], ["conns", "--format", "tsv"]))
    # The capture holds what the comparison is meant to cover.
    code, out, _ = run(capfdbinary, ["replay", str(capture), "--rules", str(rules)])
    data = [line for line in out.splitlines() if b"198.51.100.200:20 > 192.0.2.200:40000" in line]
    assert code == 0 and b"frag" in out.lower()
    assert len(data) == 1 and b"RELATED/ORIGINAL" in data[0]


def test_compressed_and_truncated_captures_give_the_single_runs_bytes_and_error(
        cluster: tuple[int, str], capfdbinary: pytest.CaptureFixture[bytes],
        tmp_path: Path) -> None:
    import gzip

    whole = built_capture(tmp_path / "built.pcap").read_bytes()
    compressed = tmp_path / "built.pcap.gz"
    compressed.write_bytes(gzip.compress(whole))
    truncated = tmp_path / "truncated.pcap"
    truncated.write_bytes(whole[: len(whole) * 2 // 3])
    for capture in (compressed, truncated):
        for command in (["replay", "--format", "jsonl"], ["replay"], ["table"], ["conns"]):
            argv = [command[0], str(capture), *command[1:]]
            single = run(capfdbinary, argv)
            partitioned = run(capfdbinary, [*argv, "--engine", "dask", "--scheduler", cluster[1]])
            assert partitioned == single
            assert single[0] == (3 if capture == truncated else 0)


def test_benchs_capture_gives_the_single_runs_bytes(
        cluster: tuple[int, str], capfdbinary: pytest.CaptureFixture[bytes],
        tmp_path: Path) -> None:
    capture = tmp_path / "bench.pcap"
    subprocess.run([sys.executable, str(REPO / "bench" / "generate.py"), "--connections", "2000",
                    "--out", str(capture)], check=True, capture_output=True)
    same_output(capfdbinary, cluster, capture, "--rules", str(REPO / "bench" / "rules" /
                                                              "stateful.v4"))


@pytest.mark.parametrize("command", [["replay", "--format", "jsonl"], ["replay"],
                                     ["conns", "--format", "tsv"]])
def test_a_local_cluster_of_the_commands_own_gives_the_single_runs_bytes(
        capfdbinary: pytest.CaptureFixture[bytes], tmp_path: Path, command: list[str]) -> None:
    """Without --scheduler: the command's own cluster, whose workers hand their
    output over in files."""
    rules = tmp_path / "helpers.v4"
    rules.write_text(FTP_HELPER)
    argv = [command[0], str(built_capture(tmp_path / "built.pcap")), *command[1:],
            "--rules", str(rules)]
    single = run(capfdbinary, argv)
    assert run(capfdbinary, [*argv, "--engine", "dask", "--workers", "2"]) == single
    assert single[1] and not list(Path(tempfile.gettempdir()).glob("statewall-dask-*"))


def test_the_library_gives_the_single_runs_bytes(cluster: tuple[int, str],
                                                 tmp_path: Path) -> None:
    import statewall
    import statewall.dask

    capture = built_capture(tmp_path / "built.pcap")
    single = statewall.load_firewall().replay_file(str(capture), "jsonl")
    expected = b"".join(single)
    with Client(cluster[1]) as client:
        partitioned = statewall.dask.replay(client, capture, fmt="jsonl")
    assert partitioned.output == expected
    assert partitioned.totals_lines == single.totals_lines()
    assert partitioned.partitions == cluster[0]


RECENT = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p tcp --syn -m recent --name syn --update --seconds 60 --hitcount 3 -j DROP
-A FORWARD -p tcp --syn -m recent --name syn --set
COMMIT
"""
MASQUERADE = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
"""


def test_a_recent_match_is_refused_without_inexact_and_marked_with_it(
        cluster: tuple[int, str], capfdbinary: pytest.CaptureFixture[bytes],
        tmp_path: Path) -> None:
    rules = tmp_path / "recent.v4"
    rules.write_text(RECENT)
    capture = built_capture(tmp_path / "built.pcap")
    argv = ["replay", str(capture), "--rules", str(rules), "--engine", "dask",
            "--scheduler", cluster[1]]
    code, out, err = run(capfdbinary, argv)
    assert code == 5 and out == b""
    assert err.count(b"\n") == 1 and f"{rules}:5: -m recent".encode() in err
    code, out, err = run(capfdbinary, [*argv, "--inexact"])
    assert code == 0 and b"inexact: " in out and b"-m recent" in err


def test_nat_is_refused(cluster: tuple[int, str], capfdbinary: pytest.CaptureFixture[bytes],
                        tmp_path: Path) -> None:
    rules = tmp_path / "nat.v4"
    rules.write_text(MASQUERADE)
    code, out, err = run(capfdbinary, [
        "table", str(built_capture(tmp_path / "built.pcap")), "--rules", str(rules),
        "--iface", "wan=203.0.113.1/24,0.0.0.0/0", "--engine", "dask",
        "--scheduler", cluster[1]])
    assert code == 5 and out == b"" and f"{rules}:6: NAT".encode() in err


def test_a_table_limit_within_reach_is_refused_after_the_run(
        cluster: tuple[int, str], capfdbinary: pytest.CaptureFixture[bytes],
        tmp_path: Path) -> None:
    capture = built_capture(tmp_path / "built.pcap")
    argv = ["table", str(capture), "--sysctl", "nf_conntrack_max=50", "--engine", "dask",
            "--scheduler", cluster[1]]
    code, out, err = run(capfdbinary, argv)
    assert (code, out) == (5, b"") and b"nf_conntrack_max=50" in err
    code, out, err = run(capfdbinary, [*argv, "--inexact"])
    assert code == 0 and b"nf_conntrack_max=50" in err
    # Far from the limit, the summed peaks prove it out of reach: exact, not refused.
    code, _, err = run(capfdbinary, [*argv[:2], "--sysctl", "nf_conntrack_max=1000", *argv[4:]])
    assert (code, err) == (0, b"")


@pytest.mark.parametrize(("argv", "message"), [
    (["replay", "-"], b"not standard input"),
    (["replay", "{capture}", "--filter", "conn == 3"], b"a filter on conn or master"),
    (["table", "{capture}", "--filter", "master > 0"], b"a filter on conn or master"),
    (["replay", "{capture}", "--conn", "3"], b"--conn is not available"),
    (["replay", "{capture}", "-w", "{capture}.out"], b"-w is not available"),
    (["replay", "{capture}", "--counters"], b"--counters is not available"),
    (["table", "{capture}", "--expectations"], b"--expectations is not available"),
    (["replay", "{capture}", "--workers", "0"], b"--workers 0: expected"),
])
def test_what_the_engine_cannot_do_is_a_usage_error(
        capfdbinary: pytest.CaptureFixture[bytes], tmp_path: Path, argv: list[str],
        message: bytes) -> None:
    capture = built_capture(tmp_path / "built.pcap")
    code, out, err = run(capfdbinary, [*(a.format(capture=capture) for a in argv),
                                       "--engine", "dask"])
    assert (code, out) == (2, b"") and err.startswith(b"statewall: ") and message in err
    assert err.count(b"\n") == 1


def test_statewall_works_without_dask(tmp_path: Path) -> None:
    capture = built_capture(tmp_path / "built.pcap")
    hide = ("import sys; sys.modules['dask'] = sys.modules['distributed'] = None; "
            "from statewall.cli import main; raise SystemExit(main(sys.argv[1:]))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    plain = subprocess.run([sys.executable, "-c", hide, "replay", str(capture),
                            "--summary-only"], capture_output=True, env=env)
    assert plain.returncode == 0 and b"packets" in plain.stdout
    dask = subprocess.run([sys.executable, "-c", hide, "replay", str(capture),
                           "--engine", "dask"], capture_output=True, env=env)
    assert dask.returncode == 4
    assert dask.stderr == (b"statewall: --engine dask needs dask and distributed: "
                           b"pip install 'statewall[dask]'\n")
