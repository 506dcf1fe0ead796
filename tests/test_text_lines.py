"""The text lines of `replay` and `demo`: how a rule is cited, `--explain`, the
notes under a packet, and colour (`--color`, NO_COLOR, terminals only)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

import statewall
from statewall.capture import LINKTYPE_RAW
from statewall.capture.writer import write_pcap
from statewall.cli import main
from statewall.demo import DEMO_RULES, demo_frames

FTP_RULES = """*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -p tcp -m tcp --dport 21 -j LOG --log-prefix "ftp-ctl: "
-A FORWARD -p tcp -m tcp --dport 21 -j ACCEPT
COMMIT
"""
RED = "\x1b[1;31m"


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> str:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    return out


def packets(out: str) -> dict[str, list[str]]:
    """Each packet's line (by its `#N`) with the indented lines under it."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in out.splitlines():
        if line.startswith("#"):
            current = found.setdefault(line.split()[0], [])
            current.append(line)
        elif line.startswith(" " * 20) and current:
            current.append(line)
        else:
            current = []
    return found


def test_a_rule_is_cited_once_by_its_number(capsys: pytest.CaptureFixture[str]) -> None:
    lines = packets(run(capsys, "demo"))
    assert lines["#1"] == [lines["#1"][0]]  # no line under it without --explain
    assert lines["#1"][0].endswith(
        "| NEW/ORIGINAL [CONFIRMED] | ACCEPT by filter FORWARD #3 | SYN in NONE: NONE → SYN_SENT")
    assert lines["#6"][0].endswith(
        "| INVALID | DROP by filter FORWARD #1 | SEQ beyond the receiver's window "
        "(seq 10001019 > max 66536)")
    assert "| DROP by filter FORWARD policy | ACK in NONE" in lines["#10"][0]
    assert not lines["#10"][0].endswith("policy DROP of filter FORWARD")
    # The reassembly note stays; only the rule's own text goes.
    assert lines["#21"][0].endswith("ACCEPT by filter FORWARD #5 | ICMP query or reply "
                                    "(nf_conntrack_icmp_timeout) (datagram reassembled from "
                                    "fragments, completed by packet #21)")
    assert not any(" rule " in line for line in lines["#21"] + lines["#1"])


def test_jsonl_keeps_the_rules_text_in_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    records = [json.loads(line) for line in run(capsys, "demo", "--format", "jsonl").splitlines()]
    assert records[0]["reason"] == (
        "SYN in NONE: NONE → SYN_SENT; rule 3 of filter FORWARD: -A FORWARD -s 192.0.2.0/24 "
        "-p tcp -m tcp --syn -m conntrack --ctstate NEW -j ACCEPT")
    assert records[9]["reason"].endswith("; policy DROP of filter FORWARD")


def test_explain_prints_the_deciding_rule_under_the_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    lines = packets(run(capsys, "demo", "--explain"))
    rule = " " * 20 + "rule: "
    assert lines["#1"][1:] == [
        rule + "-A FORWARD -s 192.0.2.0/24 -p tcp -m tcp --syn -m conntrack --ctstate NEW "
               "-j ACCEPT"]
    assert lines["#6"][1:] == [rule + "-A FORWARD -m conntrack --ctstate INVALID -j DROP"]
    assert lines["#10"][1:] == [rule + "-P FORWARD DROP"]
    assert lines["#19"][1:] == []  # a queued fragment: no rule decided


@pytest.fixture
def ftp(shared: Path, tmp_path: Path) -> tuple[Path, Path]:
    rules = tmp_path / "ftp.rules"
    rules.write_text(FTP_RULES)
    return shared / "traces" / "ftp-active-port-download-ipv4.pcap", rules


def test_notes_follow_their_packet(capsys: pytest.CaptureFixture[str],
                                   ftp: tuple[Path, Path]) -> None:
    capture, rules = ftp
    out = run(capsys, "replay", capture, "--rules", rules)
    lines = packets(out)
    records = [json.loads(line) for line in
               run(capsys, "replay", capture, "--rules", rules, "--format", "jsonl").splitlines()]
    # Every packet shows exactly the notes its jsonl record holds, in order.
    for record in records:
        shown = lines[f"#{record['frame']}"][1:]
        assert shown == [" " * 20 + "note: " + note for note in record["notes"]]
    assert lines["#13"][1] == (" " * 20 + "note: ftp: PORT command, expecting TCP "
                               "172.23.0.2:any → 172.23.0.3:44671")
    assert lines["#1"][1].startswith(" " * 20 + "note: ftp-ctl: IN= OUT= SRC=172.23.0.3 ")
    assert sum(len(v) - 1 for v in lines.values()) == sum(len(r["notes"]) for r in records) == 4


def test_explain_and_notes_with_a_filter_and_a_connection(
        capsys: pytest.CaptureFixture[str], ftp: tuple[Path, Path]) -> None:
    capture, rules = ftp
    out = run(capsys, "replay", capture, "--rules", rules, "--explain", "--no-summary",
              "--filter", "frame in {1, 13}")
    rule, note = " " * 20 + "rule: ", " " * 20 + "note: "
    lines = out.splitlines()
    assert [line[:len(rule)] if line.startswith(" ") else line.split()[0]
            for line in lines] == ["#1", rule, note, "#13", rule, note]
    assert lines[1] == rule + "-A FORWARD -p tcp -m tcp --dport 21 -j ACCEPT"
    assert lines[4] == rule + "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"
    out = run(capsys, "replay", capture, "--rules", rules, "--explain", "--no-summary",
              "--conn", "2")
    shown = packets(out)
    assert "#16" in shown and "#1" not in shown  # the data connection alone
    assert all(len(v) == 2 and v[1].startswith(rule) for v in shown.values())


# -- colour -----------------------------------------------------------------------------

def cli_output(*args: str, env: dict[str, str] | None = None,
              terminal: bool = False) -> str:
    """`statewall ARGS` from this source tree; `terminal`: its stdout is a pseudo-terminal."""
    src = str(Path(statewall.__file__).resolve().parents[1])
    environ = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    environ.update(PYTHONPATH=src, **(env or {}))
    command = [sys.executable, "-m", "statewall", *args]
    if not terminal:
        done = subprocess.run(command, capture_output=True, env=environ, timeout=120, check=True)
        return done.stdout.decode()
    leader, follower = pty.openpty()
    with subprocess.Popen(command, stdout=follower, stderr=subprocess.DEVNULL, env=environ) as proc:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=120) == 0
    os.close(leader)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_color_always_marks_drops_and_invalid() -> None:
    lines = packets(cli_output("demo", "--color", "always"))
    assert f"| {RED}INVALID\x1b[0m | {RED}DROP\x1b[0m by filter FORWARD #1 |" in lines["#6"][0]
    assert f"| NEW/ORIGINAL | {RED}DROP\x1b[0m by filter FORWARD policy |" in lines["#10"][0]
    assert "\x1b" not in lines["#1"][0]  # an accepted packet stays plain


def test_no_color_into_a_pipe_or_when_asked() -> None:
    assert "\x1b" not in cli_output("demo")  # auto, into a pipe
    assert "\x1b" not in cli_output("demo", "--color", "never", terminal=True)


def test_auto_colours_a_terminal_unless_no_color_is_set() -> None:
    assert f"{RED}DROP" in cli_output("demo", terminal=True)
    assert "\x1b" not in cli_output("demo", env={"NO_COLOR": "1"}, terminal=True)
    # NO_COLOR set but empty counts as unset (no-color.org).
    assert f"{RED}DROP" in cli_output("demo", env={"NO_COLOR": ""}, terminal=True)
    # An explicit request wins over NO_COLOR.
    assert f"{RED}DROP" in cli_output("demo", "--color", "always", env={"NO_COLOR": "1"})


def test_the_readme_shows_what_demo_prints(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for command in ("demo", "demo --explain"):
        block = readme.split(f"```\n$ statewall {command}\n", 1)[1].split("```", 1)[0]
        printed = run(capsys, *command.split()).splitlines()
        shown = block.splitlines()
        assert shown and all(line in printed for line in shown), command
        # A packet's indented lines come with it, as printed.
        for at, line in enumerate(shown[:-1]):
            if shown[at + 1].startswith(" "):
                assert printed[printed.index(line) + 1] == shown[at + 1]


@pytest.fixture
def demo_capture(tmp_path: Path) -> Path:
    """The demo's capture as a file."""
    capture = tmp_path / "demo.pcap"
    write_pcap(capture, demo_frames(), linktype=LINKTYPE_RAW)
    return capture


def test_conns_colours_drops_only_when_asked(tmp_path: Path, demo_capture: Path) -> None:
    capture, rules = demo_capture, tmp_path / "demo.rules"
    rules.write_text(DEMO_RULES)
    web = cli_output("conns", str(capture), "--rules", str(rules), "--color", "always")
    first = web.splitlines()[0]
    assert f"| ACCEPT 8, {RED}DROP\x1b[0m 1 |" in first
    assert f"first drop: #6 {RED}DROP\x1b[0m by filter FORWARD #1: SEQ beyond" in first
    assert "\x1b" not in cli_output("conns", str(capture), "--rules", str(rules))


def test_explain_with_jsonl_is_a_usage_error(demo_capture: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["replay", str(demo_capture), "--explain", "--format", "jsonl"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == ("statewall: --explain shapes the text lines; jsonl's reason holds the "
                   "rule's text already\n")
