"""Choosing what a replay shows: `--filter`, `--conn`, `-w`, and `-` as the capture.

The filter is checked against the unfiltered run itself: for each
expression, the filtered jsonl must be exactly the records a Python
predicate picks from the full run's jsonl, and the totals must not change.
Written pcapng files are read back by tcpdump, whose view of the selected
input packets they must reproduce line for line.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from statewall import builder as b
from statewall.capture import LINKTYPE_ETHERNET, LINKTYPE_RAW, write_pcap, write_pcapng
from statewall.cli import EXIT_OK, EXIT_USAGE, main
from statewall.demo import DEMO_RULES, demo_frames
from statewall.select import FilterError, parse_filter

START = 1_700_000_000.0
Record = dict[str, Any]
needs_tcpdump = pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def demo(tmp_path: Path) -> tuple[Path, Path]:
    """The demo capture and its ruleset: every state, drops, rules and policies."""
    capture, rules = tmp_path / "demo.pcap", tmp_path / "demo.rules"
    write_pcap(capture, demo_frames(), linktype=LINKTYPE_RAW)
    rules.write_text(DEMO_RULES)
    return capture, rules


def records(out: str) -> list[Record]:
    return [json.loads(line) for line in out.splitlines()]


def totals(out: str) -> list[str]:
    return [line for line in out.splitlines() if not line.startswith("#")]


SELECTIONS: list[tuple[str, Callable[[Record], bool]]] = [
    ("verdict == DROP", lambda r: r["verdict"] == "DROP"),
    ("verdict != ACCEPT", lambda r: r["verdict"] != "ACCEPT"),
    ("ctstate in {NEW, related}", lambda r: r["ctstate"] in ("NEW", "RELATED")),
    ("not ctstate", lambda r: r["ctstate"] is None),
    # `!=` is `not ==`: packets without a state pass it.
    ("ctstate != ESTABLISHED", lambda r: r["ctstate"] != "ESTABLISHED"),
    ("ctdir == REPLY", lambda r: r["ctdir"] == "REPLY"),
    ("status ~ ASSURED", lambda r: "ASSURED" in r["status"]),
    ("status contains {SEEN_REPLY, CONFIRMED} && !(status ~ ASSURED)",
     lambda r: {"SEEN_REPLY", "CONFIRMED"} <= set(r["status"]) and "ASSURED" not in r["status"]),
    ("proto == icmp", lambda r: r["proto"] == 1),
    ("proto in {6, UDP}", lambda r: r["proto"] in (6, 17)),
    ("conn >= 2 and conn < 4", lambda r: r["conn"] is not None and 2 <= r["conn"] < 4),
    ("conn", lambda r: r["conn"] is not None),
    ('rule == "filter FORWARD 1"',
     lambda r: r["rule"] == {"table": "filter", "chain": "FORWARD", "number": 1}),
    ('rule == "filter FORWARD #2"',
     lambda r: r["rule"] == {"table": "filter", "chain": "FORWARD", "number": 2}),
    ('rule in {"filter FORWARD rule 2", "filter FORWARD policy", "filter INPUT #9"}',
     lambda r: r["rule"] in ({"table": "filter", "chain": "FORWARD", "number": 2},
                             {"table": "filter", "chain": "FORWARD", "number": 0})),
    ("rule.chain == FORWARD and rule.number > 1",
     lambda r: r["rule"] is not None and r["rule"]["number"] > 1),
    ("not rule", lambda r: r["rule"] is None),
    ("tcp_state == TIME_WAIT or tcp_state == established",
     lambda r: r["tcp_state"] in ("TIME_WAIT", "ESTABLISHED")),
    ('reason ~ "window"', lambda r: "window" in r["reason"]),
    ('reason matches "^INVALID: ICMP .* unknown"',
     lambda r: re.search("^INVALID: ICMP .* unknown", r["reason"]) is not None),
    ("frame <= 3 || frame == 0x12", lambda r: r["index"] + 1 <= 3 or r["index"] + 1 == 18),
    ("summary ~ '[S]' and (ctstate == NEW or verdict == DROP)",
     lambda r: "[S]" in r["summary"] and (r["ctstate"] == "NEW" or r["verdict"] == "DROP")),
]


@pytest.mark.parametrize(("expr", "wanted"), SELECTIONS, ids=[e for e, _ in SELECTIONS])
def test_filter_keeps_exactly_the_records_it_names(
        demo: tuple[Path, Path], capsys: pytest.CaptureFixture[str], expr: str,
        wanted: Callable[[Record], bool]) -> None:
    capture, rules = demo
    code, out, _ = run(capsys, "replay", capture, "--rules", rules, "--format", "jsonl")
    assert code == EXIT_OK
    everything = records(out)
    expected = [r for r in everything if wanted(r)]
    assert 0 < len(expected) < len(everything), "the expression must choose"
    code, out, err = run(capsys, "replay", capture, "--rules", rules, "--format", "jsonl",
                         "--filter", expr)
    assert (code, err) == (EXIT_OK, "")
    assert records(out) == expected


def test_filter_leaves_the_totals_counting_every_packet(
        demo: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    capture, rules = demo
    _, full, _ = run(capsys, "replay", capture, "--rules", rules)
    _, only, _ = run(capsys, "replay", capture, "--rules", rules, "--filter", "verdict == DROP")
    shown = [line for line in only.splitlines() if line.startswith("#")]
    assert shown and all("| DROP" in line for line in shown)
    assert len(shown) < len([line for line in full.splitlines() if line.startswith("#")])
    assert totals(only) == totals(full)


def addressed(tmp_path: Path) -> Path:
    """IPv4 and IPv6 flows, ICMP, and a datagram in three fragments."""
    frames = [
        b.udp("192.0.2.1", "198.51.100.7", 40000, 53, b"q"),         # 1
        b.udp("198.51.100.7", "192.0.2.1", 53, 40000, b"a"),         # 2
        b.tcp("10.1.2.3", "203.0.113.9", 1234, 443, "S", 1),         # 3
        b.udp("2001:db8::1", "2001:db8:1::2", 5353, 53, b"q"),       # 4
        b.icmp_echo("192.0.2.200", "198.51.100.7", 7, 1),            # 5
        *b.fragment(b.udp("192.0.2.5", "198.51.100.7", 999, 53, b"x" * 64), 32),  # 6, 7, 8
    ]
    path = tmp_path / "addressed.pcap"
    write_pcap(path, [(START + i, data) for i, data in enumerate(frames)], linktype=LINKTYPE_RAW)
    return path


@pytest.mark.parametrize(("expr", "frames"), [
    ("src in 192.0.2.0/24", [1, 5, 6, 7, 8]),
    ("dst == 192.0.2.1", [2]),
    ("src == 2001:db8::/32 or dst in {10.0.0.0/8, 203.0.113.0/24}", [3, 4]),
    ("src in ::/0", [4]),
    ("sport == 53", [2]),
    # ICMP and later fragments have no ports: only `!=` (not ==) admits them.
    ("sport", [1, 2, 3, 4, 6]),
    ("not sport", [5, 7, 8]),
    ("dport != 53", [2, 3, 5, 7, 8]),
    ("dport >= 443 and proto == tcp", [3]),
])
def test_address_and_port_fields_are_the_packets_own(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], expr: str, frames: list[int]) -> None:
    code, out, err = run(capsys, "replay", addressed(tmp_path), "--format", "jsonl",
                         "--filter", expr)
    assert (code, err) == (EXIT_OK, "")
    assert [r["index"] + 1 for r in records(out)] == frames


@pytest.mark.parametrize(("expr", "column", "message"), [
    ("verdict = DROP", 9, "`=` is not an operator"),
    ("verdict == DROPPED", 12, "verdict is one of ACCEPT"),
    ("verdict == DROP and", 20, "expected a field name, found the end of the expression"),
    ("(verdict == DROP", 17, "expected `)`"),
    ("bogus == 1", 1, "unknown field 'bogus'"),
    ("sport < 70000", 9, "sport 70000 is out of range"),
    ("src in 10.0.0.300/8", 8, "not an address or a network"),
    ("status == ASSURED", 8, "status takes ~ (contains)"),
    ('reason matches "(unclosed"', 16, "bad regular expression"),
    ('reason ~ "open', 10, "has no closing"),
    ("proto == tcpx", 10, "unknown protocol 'tcpx'"),
    ('rule == "filter"', 9, 'a rule is "TABLE CHAIN NUMBER"'),
    ("verdict == DROP extra", 17, "expected `and`, `or` or the end"),
    ("", 1, "expected a test"),
])
def test_filter_errors_name_the_column(
        demo: tuple[Path, Path], capsys: pytest.CaptureFixture[str], expr: str, column: int,
        message: str) -> None:
    code, out, err = run(capsys, "replay", demo[0], "--filter", expr)
    assert (code, out) == (EXIT_USAGE, "")
    assert err.startswith(f"statewall: --filter: at column {column}: ")
    assert message in err
    assert err.count("\n") == 1


def test_parse_filter_is_plain_data() -> None:
    node = parse_filter("not (verdict == DROP) and dport in {80, 443}")
    assert node == {"op": "all", "of": [
        {"op": "not", "of": {"op": "name_in", "field": "verdict", "values": ["DROP"]}},
        {"op": "num_in", "field": "dport", "values": [80, 443]}]}
    assert json.loads(json.dumps(node)) == node
    with pytest.raises(FilterError) as info:
        parse_filter("mark == 1")  # not a field of a packet
    assert info.value.column == 1


# -- --conn ----------------------------------------------------------------------

@pytest.mark.shared
def test_conn_follows_a_connection_and_the_ones_it_expected(
        shared: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from statewall.engine import Firewall

    trace = shared / "traces" / "ftp-passive-pasv-download-ipv4.pcap"
    firewall = Firewall(auto_helpers=True)
    for _ in firewall.replay_file(str(trace), "summary"):
        pass
    masters = {c.conn: c.master for c in firewall.connections()}
    children = {conn for conn, master in masters.items() if master == 1}
    assert children, "the control connection expected data connections"
    _, out, _ = run(capsys, "replay", trace, "--auto-helpers", "--format", "jsonl")
    everything = records(out)
    for followed, family in ((1, {1, *children}), (min(children), {min(children)})):
        code, out, err = run(capsys, "replay", trace, "--auto-helpers", "--format", "jsonl",
                             "--conn", str(followed))
        assert (code, err) == (EXIT_OK, "")
        assert records(out) == [r for r in everything if r["conn"] in family]


@pytest.mark.parametrize("value", ["0", "x", "-3", "4294967296"])
def test_conn_refuses_what_is_not_a_connection_number(
        demo: tuple[Path, Path], capsys: pytest.CaptureFixture[str], value: str) -> None:
    code, out, err = run(capsys, "replay", demo[0], "--conn", value)
    assert (code, out) == (EXIT_USAGE, "")
    assert err.startswith(f"statewall: --conn {value}") and err.count("\n") == 1


# -- standard input --------------------------------------------------------------

def cli(argv: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    code = "import sys; from statewall.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *argv], input=stdin,
                          capture_output=True, check=False)


@pytest.mark.parametrize("compress", [False, True])
def test_dash_reads_the_capture_from_a_pipe(
        tmp_path: Path, demo: tuple[Path, Path], compress: bool) -> None:
    capture, rules = demo
    ng = tmp_path / "demo.pcapng"
    write_pcapng(ng, [(ts, data, 0) for ts, data in demo_frames()], [(LINKTYPE_RAW, "eth0")],
                 nanosecond=True)
    data = ng.read_bytes()
    from_file = cli(["replay", str(ng), "--rules", str(rules)])
    piped = cli(["replay", "-", "--rules", str(rules)],
                gzip.compress(data) if compress else data)
    assert piped.returncode == from_file.returncode == EXIT_OK
    assert piped.stdout == from_file.stdout and piped.stdout.count(b"\n#") > 10


def test_dash_names_standard_input_in_errors(demo: tuple[Path, Path]) -> None:
    data = demo[0].read_bytes()
    cut = cli(["replay", "-", "--format", "jsonl"], data[:-7])
    assert cut.returncode == 3
    assert cut.stderr.decode().startswith("statewall: standard input: truncated packet record")
    assert len(cut.stdout.splitlines()) == len(list(demo_frames())) - 1
    table = cli(["table", "-"], b"not a capture")
    assert table.returncode == 3
    assert table.stderr.decode().startswith("statewall: standard input: not a pcap")


# -- -w --------------------------------------------------------------------------

def tcpdump_lines(path: Path, frames: list[int] | None = None) -> list[str]:
    """tcpdump's line per packet (absolute sequence numbers, nanosecond times), only
    `frames` (1-based) if given."""
    out = subprocess.run(["tcpdump", "-r", str(path), "-n", "-S", "-tt", "--nano", "-e"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    return out if frames is None else [out[n - 1] for n in frames]


@needs_tcpdump
def test_write_keeps_the_selected_packets_as_captured(
        demo: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture, rules = demo
    dropped = tmp_path / "dropped.pcapng"
    code, out, err = run(capsys, "replay", capture, "--rules", rules, "--format", "jsonl",
                         "--filter", "verdict == DROP", "-w", dropped)
    assert (code, err) == (EXIT_OK, "")
    frames = [r["index"] + 1 for r in records(out)]
    assert frames
    assert tcpdump_lines(dropped) == tcpdump_lines(capture, frames)


@needs_tcpdump
def test_write_keeps_interfaces_and_nanoseconds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "two.pcapng"
    frames = [(START + 0.123456789 + i, b.ethernet(b.udp("192.0.2.1", "198.51.100.7",
                                                         1000 + i, 53, b"q")), i % 2)
              for i in range(6)]
    write_pcapng(source, frames, [(LINKTYPE_ETHERNET, "inside"), (LINKTYPE_ETHERNET, "outside")],
                 nanosecond=True)
    out_path = tmp_path / "odd.pcapng"
    code, _, err = run(capsys, "replay", source, "--summary-only", "--filter", "sport >= 1003",
                       "-w", out_path)
    assert (code, err) == (EXIT_OK, "")
    assert tcpdump_lines(out_path) == tcpdump_lines(source, [4, 5, 6])
    from statewall.capture import open_capture

    with open_capture(out_path) as written:
        assert [f.iface for f in written] == ["outside", "inside", "outside"]


def test_write_without_a_filter_copies_every_packet(
        demo: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from statewall.capture import open_capture

    copy = tmp_path / "copy.pcapng"
    code, _, _ = run(capsys, "replay", demo[0], "--summary-only", "-w", copy)
    assert code == EXIT_OK
    with open_capture(demo[0]) as original, open_capture(copy) as written:
        assert [(f.ts, f.data, f.linktype) for f in written] == \
            [(f.ts, f.data, f.linktype) for f in original]


def test_write_to_an_impossible_place_is_one_line(
        demo: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "replay", demo[0], "-w", tmp_path / "missing" / "x.pcapng")
    assert code == 3 and out == ""
    assert err.startswith("statewall: ") and "cannot write: No such file or directory" in err
    assert err.count("\n") == 1


# -- table -----------------------------------------------------------------------

@pytest.mark.parametrize(("options", "message"), [
    (["--sport", "53"], "--sport: needs -p with a protocol that has ports"),
    (["-p", "icmp", "--dport", "1"], "--dport: needs -p with a protocol that has ports"),
    (["--state", "ESTABLISHED"], "--state: needs -p tcp or -p sctp"),
    (["-p", "tcp", "--state", "established"], "--state 'established': a TCP state is one of"),
    (["-p", "256"], "-p 256: a protocol number is 0-255"),
    (["-u", "CONFIRMED"], "--status 'CONFIRMED': expected one of"),
    (["-m", "0x1/zz"], "--mark '0x1/zz': expected VALUE[/MASK]"),
    (["-m", "4294967296"], "a mark is 32 bits"),
    (["--zone", "65536"], "--zone 65536: out of range (0-65535)"),
    (["-s", "10.0.0.0/8", "-d", "2001:db8::1"], "an ipv6 address, but the family is ipv4"),
    (["-s", "host"], "--src 'host': expected an address"),
    (["--filter", "verdict == DROP"], "--filter: at column 1: unknown field 'verdict'"),
    (["--expectations", "-p", "tcp"], "select connections, not expectations"),
])
def test_table_filter_errors_are_one_line(
        demo: tuple[Path, Path], capsys: pytest.CaptureFixture[str], options: list[str],
        message: str) -> None:
    code, out, err = run(capsys, "table", demo[0], *options)
    assert (code, out) == (EXIT_USAGE, "")
    assert err.startswith("statewall: ") and message in err and err.count("\n") == 1


def test_table_filter_and_json_describe_the_same_entries(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = addressed(tmp_path)
    code, out, _ = run(capsys, "table", capture, "--format", "json")
    assert code == EXIT_OK
    every = json.loads(out)
    assert [e["orig"]["src"] for e in every] == [
        "192.0.2.1", "10.1.2.3", "2001:db8::1", "192.0.2.200", "192.0.2.5"]
    first = every[0]
    assert first == {
        "id": 1, "family": "ipv4", "proto": 17, "state": None, "timeout": first["timeout"],
        "orig": {"src": "192.0.2.1", "dst": "198.51.100.7", "sport": 40000, "dport": 53},
        "reply": {"src": "198.51.100.7", "dst": "192.0.2.1", "sport": 53, "dport": 40000},
        "status": ["SEEN_REPLY", "CONFIRMED"], "mark": 0, "zone": 0, "helper": None,
        "master": None}
    assert every[1]["state"] == "SYN_SENT"
    assert every[3]["orig"] == {"src": "192.0.2.200", "dst": "198.51.100.7", "type": 8,
                                "code": 0, "id": 7}
    code, out, _ = run(capsys, "table", capture, "--format", "json",
                       "--filter", "src in 192.0.2.0/24 and not status ~ SEEN_REPLY")
    assert [e["id"] for e in json.loads(out)] == [4, 5]
    code, out, _ = run(capsys, "table", capture, "--format", "conntrack", "-f", "ipv6")
    assert out.count("\n") == 1 and "src=2001:db8::1 " in out


# -- events and stats ------------------------------------------------------------

def first_field(line: str, name: str) -> str | None:
    match = re.search(rf" {name}=(\S+)", line)
    return match.group(1) if match else None


EVENT_SELECTIONS: list[tuple[str, Callable[[str], bool]]] = [
    ("event == UPDATE", lambda line: line.startswith(" [UPDATE]")),
    ("event in {NEW, UPDATE} and dport == 21008",
     lambda line: not line.startswith("[DESTROY]") and first_field(line, "dport") == "21008"),
    ("status ~ ASSURED", lambda line: "[ASSURED]" in line),
    ("src == 172.23.0.3 and not sport == 41790",
     lambda line: first_field(line, "src") == "172.23.0.3" and first_field(line, "sport") != "41790"),
]


@pytest.mark.shared
@pytest.mark.parametrize(("expr", "wanted"), EVENT_SELECTIONS, ids=[e for e, _ in EVENT_SELECTIONS])
def test_events_filter_keeps_exactly_the_events_it_names(
        shared: Path, capsys: pytest.CaptureFixture[str], expr: str,
        wanted: Callable[[str], bool]) -> None:
    trace = shared / "traces" / "ftp-passive-pasv-download-ipv4.pcap"
    code, out, _ = run(capsys, "events", trace, "--auto-helpers")
    everything = out.splitlines()
    expected = [line for line in everything if wanted(line)]
    assert code == EXIT_OK and 0 < len(expected) < len(everything)
    code, out, err = run(capsys, "events", trace, "--auto-helpers", "--filter", expr)
    assert (code, err) == (EXIT_OK, "")
    assert out.splitlines() == expected


@pytest.mark.shared
def test_events_json_carries_the_text_lines(
        shared: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = shared / "traces" / "ftp-passive-pasv-download-ipv4.pcap"
    _, text, _ = run(capsys, "events", trace, "--auto-helpers", "--expectations", "--timestamps")
    code, out, err = run(capsys, "events", trace, "--auto-helpers", "--expectations",
                         "--format", "json")
    assert (code, err) == (EXIT_OK, "")
    objects = [json.loads(line) for line in out.splitlines()]
    assert len(objects) == len(text.splitlines()) > 0
    for obj, line in zip(objects, text.splitlines(), strict=True):
        stamp, tag_and_body = line.split("\t", 1)
        assert stamp == f"[{obj['ts']:.6f}]"
        assert tag_and_body == f"[{obj['event']}] {obj['text']}".rjust(len(tag_and_body))
        assert obj["expectation"] == ("proto=" in obj["text"])
    # Expectation events carry only their type and their master's number.
    code, out, _ = run(capsys, "events", trace, "--auto-helpers", "--expectations",
                       "--format", "json", "--filter", "conn == 1 and not proto")
    assert {json.loads(line)["expectation"] for line in out.splitlines()} == {True}


def test_events_filter_errors_name_the_option(
        demo: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "events", demo[0], "--filter", "verdict == DROP")
    assert (code, out) == (EXIT_USAGE, "")
    assert err.startswith("statewall: --filter: at column 1: unknown field 'verdict'")


def test_stats_json_holds_the_counters_conntrack_s_prints(
        demo: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    capture, rules = demo
    _, text, _ = run(capsys, "stats", capture, "--rules", rules)
    code, out, err = run(capsys, "stats", capture, "--rules", rules, "--format", "json")
    assert (code, err) == (EXIT_OK, "")
    counters = json.loads(out)
    printed = dict(pair.split("=") for pair in text.split() if "=" in pair)
    shared_names = set(printed) & set(counters)
    assert {"found", "invalid", "insert", "drop", "error"} <= shared_names
    assert all(counters[name] == int(printed[name]) for name in shared_names)
    assert counters["invalid"] > 0 and counters["entries"] > 0


def test_diff_refuses_standard_input(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "diff", "-", "--sysctl-b", "nf_conntrack_tcp_loose=0")
    assert (code, out) == (EXIT_USAGE, "")
    assert err == "statewall: diff reads the capture twice: give a file, not - (standard input)\n"
