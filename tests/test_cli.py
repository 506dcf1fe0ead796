"""The `statewall` command as a user meets it: output formats, exit codes, messages.

Captures are built in each test (statewall.builder + statewall.capture.writer).
Expected connection states are the kernel's: a UDP query is NEW/ORIGINAL,
its answer ESTABLISHED/REPLY; an unreplied UDP entry lives
nf_conntrack_udp_timeout (30 s) after its last packet; a mid-stream ACK is
picked up as NEW only with nf_conntrack_tcp_loose=1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from statewall import builder as b
from statewall.capture import LINKTYPE_ETHERNET, CaptureError, write_pcap, write_pcapng
from statewall.cli import EXIT_INPUT, EXIT_OK, EXIT_USAGE, main

START = 1_700_000_000.0
CLIENT = "192.0.2.1"
OTHER_CLIENT = "192.0.2.2"
THIRD_CLIENT = "192.0.2.3"
SERVER = "198.51.100.7"
PCAP_HEADER_LEN = 24
PCAP_RECORD_HEADER_LEN = 16

Frames = list[tuple[float, bytes]]


def dns_exchange() -> Frames:
    """A UDP query and its answer, 0.5 s apart."""
    return [
        (START, b.ethernet(b.udp(CLIENT, SERVER, 40000, 53, b"query"))),
        (START + 0.5, b.ethernet(b.udp(SERVER, CLIENT, 53, 40000, b"answer"))),
    ]


def three_flows() -> Frames:
    """A at 0 s (never answered), B at 10 s answered at 10.5 s, C at 40 s."""
    return [
        (START, b.ethernet(b.udp(CLIENT, SERVER, 1000, 53, b"a"))),
        (START + 10.0, b.ethernet(b.udp(OTHER_CLIENT, SERVER, 2000, 53, b"b"))),
        (START + 10.5, b.ethernet(b.udp(SERVER, OTHER_CLIENT, 53, 2000, b"b!"))),
        (START + 40.0, b.ethernet(b.udp(THIRD_CLIENT, SERVER, 3000, 53, b"c"))),
    ]


def pcap(tmp_path: Path, frames: Frames, name: str = "capture.pcap") -> Path:
    path = tmp_path / name
    write_pcap(path, frames)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def packet_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("#")]


def jsonl(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


# -- replay --------------------------------------------------------------------

def test_replay_text_one_line_per_packet_then_totals(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "replay", pcap(tmp_path, dns_exchange()))
    assert (code, err) == (EXIT_OK, "")
    lines = packet_lines(out)
    assert len(lines) == 2
    assert lines[0].startswith("#1 ") and "| NEW/ORIGINAL" in lines[0]
    assert lines[1].startswith("#2 ") and "| ESTABLISHED/REPLY" in lines[1]
    assert "2 packets; 1 connection seen" in out


def test_replay_summary_only_prints_the_totals_of_every_packet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = pcap(tmp_path, three_flows())
    _, full, _ = run(capsys, "replay", capture)
    code, out, _ = run(capsys, "replay", capture, "--summary-only")
    assert code == EXIT_OK
    assert packet_lines(out) == []
    assert out.splitlines() == full.splitlines()[len(packet_lines(full)):]
    assert out.startswith(f"{len(three_flows())} packets; ")
    code, _, err = run(capsys, "replay", capture, "--summary-only", "--no-summary")
    assert code == EXIT_USAGE and "nothing to print" in err


def test_replay_jsonl_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "replay", pcap(tmp_path, dns_exchange()), "--format", "jsonl")
    assert (code, err) == (EXIT_OK, "")
    records = jsonl(out)  # every line is one JSON object: no totals in this format
    assert len(records) == 2
    for index, record in enumerate(records):
        assert list(record) == ["v", "index", "frame", "ts", "verdict", "ctstate", "ctdir",
                                "status", "rule", "reason", "summary", "proto", "src", "dst",
                                "sport", "dport", "tcp_state", "conn", "notes"]
        assert (record["v"], record["index"], record["frame"]) == (2, index, index + 1)
        assert record["proto"] == 17
        assert record["verdict"] == "ACCEPT" and record["rule"] is None
        assert isinstance(record["reason"], str) and record["reason"]
        assert isinstance(record["status"], list)
    assert records[0]["ts"] == pytest.approx(START)
    assert records[1]["ts"] == pytest.approx(START + 0.5)
    assert (records[0]["ctstate"], records[0]["ctdir"]) == ("NEW", "ORIGINAL")
    assert (records[1]["ctstate"], records[1]["ctdir"]) == ("ESTABLISHED", "REPLY")
    assert "SEEN_REPLY" in records[1]["status"]  # type: ignore[operator]
    assert "SEEN_REPLY" not in records[0]["status"]  # type: ignore[operator]
    assert [(r["src"], r["sport"], r["dst"], r["dport"]) for r in records] == [
        (CLIENT, 40000, SERVER, 53), (SERVER, 53, CLIENT, 40000)]


OWNER_RULES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A OUTPUT -p udp -m owner --uid-owner 0 -j ACCEPT
COMMIT
*mangle
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -p udp -m owner ! --socket-exists -j DROP
COMMIT
*raw
:PREROUTING ACCEPT [0:0]
-A PREROUTING -m rpfilter --invert -j DROP
COMMIT
"""


def test_replay_owner_and_rpfilter_without_allow_unknown(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = pcap(tmp_path, dns_exchange())
    rules = tmp_path / "rules.v4"
    rules.write_text(OWNER_RULES)
    note = f"{rules}:13: note: rpfilter: no --iface routes given"
    # A router: both packets are forwarded, have no socket, and `! --socket-exists` holds.
    code, out, _ = run(capsys, "replay", capture, "--rules", rules, "--summary-only")
    assert code == EXIT_OK and "verdicts: DROP 2" in out
    assert "fate undetermined" not in out and out.splitlines()[-1].startswith(note)
    # A host sending the query itself: which socket sent it, the capture does not say.
    code, out, _ = run(capsys, "replay", capture, "--rules", rules, "--local", CLIENT)
    lines = out.splitlines()
    assert "UNKNOWN" in packet_lines(out)[0] and "which local socket" in packet_lines(out)[0]
    at = lines.index("rules that can leave a packet's fate undetermined (UNKNOWN):")
    assert lines[at + 1:at + 3] == [
        f"  IPv4 filter OUTPUT #1 (line 5): {OWNED}",
        f"  IPv4 mangle POSTROUTING #1 (line 9): {OWNED}"]


OWNED = "for packets the machine sends itself (owner)"


def test_replay_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = pcap(tmp_path, three_flows())
    code, out, _ = run(capsys, "replay", capture, "--format", "jsonl", "--limit", "2")
    assert code == EXIT_OK
    assert [r["index"] for r in jsonl(out)] == [0, 1]
    code, out, _ = run(capsys, "replay", capture, "--limit", "1")
    assert code == EXIT_OK and len(packet_lines(out)) == 1


def test_replay_sysctl_changes_the_outcome(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mid-stream ACK: picked up (NEW) with tcp_loose=1, INVALID with tcp_loose=0."""
    stray_ack = b.tcp(CLIENT, SERVER, 40000, 80, "A", 1000, 2000)
    capture = pcap(tmp_path, [(START, b.ethernet(stray_ack))])
    _, out, _ = run(capsys, "replay", capture, "--format", "jsonl")
    assert jsonl(out)[0]["ctstate"] == "NEW"
    code, out, _ = run(capsys, "replay", capture, "--format", "jsonl",
                       "--sysctl", "nf_conntrack_tcp_loose=0")
    assert code == EXIT_OK and jsonl(out)[0]["ctstate"] == "INVALID"


# -- exit codes and messages -----------------------------------------------------

def test_unknown_sysctl_is_usage_error_with_hint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = pcap(tmp_path, dns_exchange())
    code, out, err = run(capsys, "replay", capture, "--sysctl", "nf_conntrack_udp_timout=10")
    assert code == EXIT_USAGE and out == ""
    assert "nf_conntrack_udp_timout" in err and "did you mean" in err
    assert "nf_conntrack_udp_timeout" in err.split("did you mean", 1)[1]
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_sysctl_value_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "sysctl", "--sysctl", "nf_conntrack_udp_timeout=soon")
    assert code == EXIT_USAGE and out == "" and "soon" in err


def test_unknown_option_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["replay", "x.pcap", "--no-such-option"])
    assert stopped.value.code == EXIT_USAGE
    assert "--no-such-option" in capsys.readouterr().err


@pytest.mark.parametrize("limit", ["-1", "0"])
def test_limit_below_one_is_usage_error(
        limit: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "replay", pcap(tmp_path, dns_exchange()), "--limit", limit)
    assert (code, out) == (EXIT_USAGE, "")
    assert err == f"statewall: --limit {limit}: expected a number of packets (1 or more)\n"


def test_bad_at_is_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "table", pcap(tmp_path, dns_exchange()), "--at", "noon")
    assert code == EXIT_USAGE and out == "" and "--at" in err


def truncated_pcap(tmp_path: Path) -> tuple[Path, int]:
    """Three records, the last cut short; returns the file and where that record starts."""
    frames = three_flows()[:3]
    path = pcap(tmp_path, frames, "cut.pcap")
    whole = path.read_bytes()
    path.write_bytes(whole[:-5])
    offset = PCAP_HEADER_LEN + sum(PCAP_RECORD_HEADER_LEN + len(f) for _, f in frames[:2])
    return path, offset


def test_truncated_capture_prints_packets_then_one_error_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, offset = truncated_pcap(tmp_path)
    code, out, err = run(capsys, "replay", path)
    assert code == EXIT_INPUT
    assert len(packet_lines(out)) == 2  # both complete packets, then the totals
    assert "2 packets" in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert "cut.pcap" in lines[0] and f"byte {offset}" in lines[0] and "packet #" in lines[0]


def test_truncated_capture_jsonl_keeps_complete_packets(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = truncated_pcap(tmp_path)
    code, out, err = run(capsys, "replay", path, "--format", "jsonl")
    assert code == EXIT_INPUT and [r["index"] for r in jsonl(out)] == [0, 1]
    assert "cut.pcap" in err


def test_truncation_message_numbers_packets_like_the_replay(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = truncated_pcap(tmp_path)
    _, _, err = run(capsys, "replay", path)
    assert "packet #3" in err


def test_truncated_pcapng(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cut.pcapng"
    frames = [(ts, frame, 0) for ts, frame in three_flows()]
    write_pcapng(path, frames, [(LINKTYPE_ETHERNET, "eth0")])
    whole = path.read_bytes()
    last_block = 32 + len(frames[-1][1]) + (-len(frames[-1][1]) & 3)
    path.write_bytes(whole[:-7])
    code, out, err = run(capsys, "replay", path, "--format", "jsonl")
    assert code == EXIT_INPUT and len(jsonl(out)) == 3
    assert "cut.pcapng" in err and f"byte {len(whole) - last_block}" in err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "replay", tmp_path / "nowhere.pcap")
    assert code == EXIT_INPUT and out == ""  # nothing was read: no totals either
    assert "nowhere.pcap" in err and "Traceback" not in err


def test_unknown_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "notes.pcap"
    junk.write_bytes(b"these are my notes, not packets\n")
    code, out, err = run(capsys, "replay", junk)
    assert code == EXIT_INPUT and out == ""
    assert "notes.pcap" in err and len(err.strip().splitlines()) == 1


def test_debug_lets_the_exception_through(tmp_path: Path) -> None:
    with pytest.raises(CaptureError):
        main(["replay", str(tmp_path / "nowhere.pcap"), "--debug"])


# -- table ---------------------------------------------------------------------

def test_table_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = pcap(tmp_path, dns_exchange())
    at = "10.5"  # 10 s after the answer: 30 - 10 = 20 s left
    code, proc, _ = run(capsys, "table", capture, "--at", at)
    assert code == EXIT_OK
    assert proc.splitlines() == [
        "ipv4     2 udp      17 20 src=192.0.2.1 dst=198.51.100.7 sport=40000 dport=53 "
        "src=198.51.100.7 dst=192.0.2.1 sport=53 dport=40000 mark=0 zone=0 use=2"
    ]
    code, listing, _ = run(capsys, "table", capture, "--at", at, "--format", "conntrack")
    assert code == EXIT_OK
    assert listing.splitlines() == [
        "udp      17 20 src=192.0.2.1 dst=198.51.100.7 sport=40000 dport=53 "
        "src=198.51.100.7 dst=192.0.2.1 sport=53 dport=40000 mark=0 use=1"
    ]


def table_sources(capsys: pytest.CaptureFixture[str], capture: Path, *extra: str) -> list[str]:
    code, out, _ = run(capsys, "table", capture, *extra)
    assert code == EXIT_OK
    return [line.split()[5] for line in out.splitlines()]  # the original source address


def test_table_at_excludes_later_packets_and_expired_entries(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = pcap(tmp_path, three_flows())
    src = {name: f"src={addr}" for name, addr in
           (("A", CLIENT), ("B", OTHER_CLIENT), ("C", THIRD_CLIENT))}
    assert table_sources(capsys, capture, "--at", "5") == [src["A"]]
    # A (unreplied, 30 s) expired at 30; B was answered at 10.5 (until 40.5); C is later.
    assert table_sources(capsys, capture, "--at", "35") == [src["B"]]
    assert table_sources(capsys, capture, "--at", str(START + 35)) == [src["B"]]
    assert table_sources(capsys, capture, "--at", "45") == [src["C"]]
    # Without --at: the moment of the last packet (40 s), when B has 0.5 s left.
    assert table_sources(capsys, capture) == [src["B"], src["C"]]
    _, out, _ = run(capsys, "table", capture, "--at", "35")
    assert out.split()[4] == "5"  # B: 40.5 - 35 seconds left


def test_table_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = pcap(tmp_path, three_flows())
    assert table_sources(capsys, capture, "--limit", "1") == [f"src={CLIENT}"]


def test_table_of_a_truncated_capture_is_still_printed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = truncated_pcap(tmp_path)
    code, out, err = run(capsys, "table", path)
    assert code == EXIT_INPUT and "cut.pcap" in err
    assert [line.split()[5] for line in out.splitlines()] == [f"src={CLIENT}",
                                                             f"src={OTHER_CLIENT}"]


# -- sysctl and demo ---------------------------------------------------------------

def test_sysctl_prints_defaults_and_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "sysctl")
    assert (code, err) == (EXIT_OK, "")
    lines = out.splitlines()  # `sysctl -a` style, so a dump can be diffed against a machine
    assert "net.netfilter.nf_conntrack_tcp_loose = 1" in lines
    assert "net.netfilter.nf_conntrack_udp_timeout = 30" in lines
    assert "net.ipv4.ipfrag_time = 30" in lines
    code, out, _ = run(capsys, "sysctl", "--sysctl", "nf_conntrack_tcp_loose=0")
    assert code == EXIT_OK and "net.netfilter.nf_conntrack_tcp_loose = 0" in out.splitlines()


def test_demo_shows_every_state_it_promises(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "demo")
    assert code == EXIT_OK
    lines = packet_lines(out)
    for state in ("NEW/", "ESTABLISHED/", "RELATED/", "| INVALID |", "| STOLEN |"):
        assert any(state in line for line in lines), state
    assert "conntrack table at the end" in out


def test_demo_jsonl_states(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "demo", "--format", "jsonl")
    assert code == EXIT_OK
    records = jsonl(out)
    assert [r["index"] for r in records] == list(range(len(records)))
    assert {"NEW", "ESTABLISHED", "RELATED", "INVALID"} <= {r["ctstate"] for r in records}
    stolen = [r for r in records if r["verdict"] == "STOLEN"]
    assert stolen and all(r["ctstate"] is None and "frag" in str(r["summary"]) for r in stolen)


# -- the installed command -------------------------------------------------------------

def installed_command() -> str:
    beside = Path(sys.executable).parent / "statewall"
    found = str(beside) if beside.exists() else shutil.which("statewall")
    if found is None:
        pytest.skip("the statewall entry point is not installed (pip install -e .)")
    return found


def test_installed_entry_point(tmp_path: Path) -> None:
    command = installed_command()
    capture = pcap(tmp_path, dns_exchange())
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([command, "replay", str(capture), "--format", "jsonl"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert (done.returncode, done.stderr) == (EXIT_OK, "")
    assert [r["ctstate"] for r in jsonl(done.stdout)] == ["NEW", "ESTABLISHED"]
    missing = str(tmp_path / "nowhere.pcap")
    quiet = subprocess.run([command, "replay", missing], capture_output=True, text=True,
                           timeout=60, env=env)
    loud = subprocess.run([command, "replay", missing, "--debug"], capture_output=True,
                          text=True, timeout=60, env=env)
    assert quiet.returncode == EXIT_INPUT and "Traceback" not in quiet.stderr
    assert loud.returncode != EXIT_OK and "Traceback" in loud.stderr


def test_host_ruleset_without_local_gets_a_hint(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Without --local every packet is forwarded, as through a router: a ruleset whose
    filtering is all in INPUT then decides nothing, and the summary says so."""
    rules = tmp_path / "host.v4"
    rules.write_text("*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                     "-A INPUT -p udp -m udp --dport 53 -j ACCEPT\nCOMMIT\n")
    capture = pcap(tmp_path, dns_exchange())
    code, out, _ = run(capsys, "replay", capture, "--rules", str(rules), "--summary-only")
    assert code == EXIT_OK
    assert out.splitlines()[-1] == ("hint: every packet went through FORWARD (no --local "
                                    "address), but the ruleset's filtering is in INPUT: is "
                                    "this a host? use --local ADDR")
    code, out, _ = run(capsys, "replay", capture, "--rules", str(rules), "--local", SERVER,
                       "--summary-only")
    assert "hint:" not in out
