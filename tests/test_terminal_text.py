"""Ruleset text on the terminal: comments, LOG prefixes and chain names may hold
control characters (iptables-restore and the kernel take them as they are), and
every text output shows them escaped instead of sending them to the terminal.

The outputs are read as bytes from a real `statewall` process, so the lines the
core writes to file descriptor 1 itself are checked too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import statewall
from statewall import builder as b
from statewall.capture import write_pcap
from statewall.rules.compile import compile_ruleset
from statewall.rules.counters import format_counters_list, format_counters_save
from statewall.rules.parser import parse_ruleset

# ESC/OSC retitling the terminal and clearing it, BEL, TAB, DEL and the C1
# control CSI (U+009B), in a comment, a LOG prefix and a chain name; one
# ordinary comment with quotes and a backslash; a chain nothing reaches (lint).
CHAIN = "evil\x1b[2J\u009b7m"
COMMENT = "x\x1b]0;PWNED\x07\x1b[2J\tB\x7f\u009b31m"
PREFIX = "p\x1b[31m\x07: "
EVIL = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        f":{CHAIN} - [0:0]\n:orphan\x1b[5m - [0:0]\n"
        f'-A FORWARD -p udp -m comment --comment "{COMMENT}" -j {CHAIN}\n'
        '-A FORWARD -m comment --comment "plain \\"quoted\\" back\\\\slash" -j ACCEPT\n'
        f'-A {CHAIN} -j LOG --log-prefix "{PREFIX}"\n'
        f"-A {CHAIN} -j ACCEPT\nCOMMIT\n")
# Errors that quote the ruleset: a bad word, a missing chain to append to, a
# jump to a missing chain.
BAD = ("*filter\n-A FORWARD x\x1b]0;PWNED\x07\n-A nochain\x1b[2J -j ACCEPT\n"
       "-A FORWARD -j gone\x1b]0;PWNED\x07\nCOMMIT\n")


def unsafe(data: bytes) -> list[str]:
    """The control characters in `data` other than the newlines ending lines."""
    text = data.decode("utf-8")
    return sorted({f"U+{ord(c):04X}" for c in text
                   if (c < " " and c != "\n") or "\x7f" <= c <= "\x9f"})


def statewall_run(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    """`statewall ARGS` from this source tree, output as bytes."""
    src = str(Path(statewall.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src, "PYTHONWARNINGS": "ignore"}
    code = "import sys; from statewall.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)],
                          capture_output=True, timeout=120, env=env)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"evil": tmp_path / "evil.v4", "bad": tmp_path / "bad.v4",
             "capture": tmp_path / "udp.pcap"}
    paths["evil"].write_text(EVIL, encoding="utf-8")
    paths["bad"].write_text(BAD, encoding="utf-8")
    # A query answered 40 s later: NEW again under the default 30 s UDP
    # timeout, ESTABLISHED under 60 s (for `compare`).
    write_pcap(paths["capture"], [
        (1.0, b.ethernet(b.udp("192.0.2.1", "198.51.100.7", 40000, 53, b"q"))),
        (41.0, b.ethernet(b.udp("198.51.100.7", "192.0.2.1", 53, 40000, b"a")))])
    return paths


@pytest.mark.parametrize("extra", [(), ("--counters", "save"), ("--counters", "list"),
                                   ("--counters", "exact")])
def test_replay_text_escapes_the_rulesets_control_characters(
        files: dict[str, Path], extra: tuple[str, ...]) -> None:
    done = statewall_run("replay", files["capture"], "--rules", files["evil"], *extra)
    assert done.returncode == 0, done.stderr
    assert unsafe(done.stdout + done.stderr) == []
    out = done.stdout.decode()
    assert "by filter evil\\x1b[2J\\x9b7m #2 |" in out  # the per-packet lines
    if extra:
        assert 'x\\x1b]0;PWNED\\x07\\x1b[2J\\tB\\x7f\\x9b31m' in out
        assert '"p\\x1b[31m\\x07: "' in out


def test_jsonl_carries_the_text_as_it_is(files: dict[str, Path]) -> None:
    done = statewall_run("replay", files["capture"], "--rules", files["evil"],
                         "--format", "jsonl")
    assert done.returncode == 0 and unsafe(done.stdout) == []
    records = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [r["rule"]["chain"] for r in records] == [CHAIN, CHAIN]
    assert records[0]["reason"].endswith(f"rule 2 of filter {CHAIN}: -A {CHAIN} -j ACCEPT")
    assert records[0]["notes"][0].startswith(PREFIX)


def test_check_errors_and_warnings_are_escaped(files: dict[str, Path]) -> None:
    errors = statewall_run("check", files["bad"])
    warnings = statewall_run("check", files["evil"], "--lint")
    assert (errors.returncode, warnings.returncode) == (1, 0)
    assert unsafe(errors.stdout + errors.stderr + warnings.stdout + warnings.stderr) == []
    path = str(files["bad"])
    assert errors.stdout.decode().splitlines() == [
        f"{path}:2: Bad argument `x\\x1b]0;PWNED\\x07'",
        f"{path}:3: chain `nochain\\x1b[2J' does not exist",
        f"{path}:4: Chain 'gone\\x1b]0;PWNED\\x07' does not exist",
    ]
    assert "chain orphan\\x1b[5m of table filter is never reached" in warnings.stdout.decode()


def test_a_ruleset_error_is_one_escaped_line(files: dict[str, Path]) -> None:
    done = statewall_run("replay", files["capture"], "--rules", files["bad"])
    assert done.returncode == 3 and done.stdout == b""
    assert unsafe(done.stderr) == []
    assert done.stderr.decode() == (
        f"statewall: {files['bad']}:2: Bad argument `x\\x1b]0;PWNED\\x07'\n")


def test_diff_escapes_rule_names_and_reasons(files: dict[str, Path]) -> None:
    done = statewall_run("diff", files["capture"], "--rules", files["evil"],
                         "--sysctl-b", "nf_conntrack_udp_timeout=60")
    assert done.returncode == 1, done.stderr
    assert unsafe(done.stdout + done.stderr) == []
    assert "by filter evil\\x1b[2J\\x9b7m #2 |" in done.stdout.decode()


def _shown(text: str) -> str:
    """What the kernel's tools print, with the control characters of EVIL escaped."""
    for raw, shown in (("\x1b", "\\x1b"), ("\x07", "\\x07"), ("\r", "\\r"), ("\t", "\\t"),
                       ("\x7f", "\\x7f"), ("\u009b", "\\x9b")):
        text = text.replace(raw, shown)
    return text


def _kernel_output(*command: str) -> str:
    ns = f"sw-escape-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "iptables-restore"], input=EVIL.encode(),
                       check=True)
        done = subprocess.run(["ip", "netns", "exec", ns, *command], capture_output=True,
                              check=True)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)
    return done.stdout.decode()


@pytest.mark.usefixtures("kernel")
def test_counters_print_what_iptables_prints_with_controls_escaped() -> None:
    compiled = compile_ruleset(parse_ruleset(EVIL, "evil.v4"))
    saved = [line for line in _kernel_output("iptables-save", "-c").splitlines(keepends=True)
             if not line.startswith("#")]
    assert format_counters_save(compiled) == _shown("".join(saved))
    assert format_counters_list(compiled, "filter") == _shown(
        _kernel_output("iptables", "-L", "-v", "-n"))
    assert format_counters_list(compiled, "filter", exact=True) == _shown(
        _kernel_output("iptables", "-L", "-v", "-n", "-x"))
