"""Every command README.md shows runs as shown.

The ```sh blocks and the complete `statewall ...` commands quoted in the text
run in a folder holding the files they name (capture.pcap, rules.v4, ...),
built here: a capture of a host (192.0.2.1) and of traffic it forwards, and
a stateful ruleset. Each must exit 0 (`diff`: 0 or 1, the README's "found
differences") and print no error. What needs a live interface (`tcpdump -w -
-i eth0 | statewall ...`) reads the capture from a file instead; `sudo` is
dropped, and `verify` runs only where the kernel oracle can (root, tools).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import kernel_problem

from statewall import builder as b
from statewall.capture import write_pcap
from statewall.capture.writer import write_pcapng

README = Path(__file__).resolve().parents[1] / "README.md"
HOST, CLIENT, WEB = "192.0.2.1", "198.51.100.7", "198.51.100.50"
SERVER = "203.0.113.10"  # the verify example's host
HOST6, CLIENT6 = "2001:db8::1", "2001:db8::7"
RULES = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -p tcp -m tcp --dport 80 -j ACCEPT
COMMIT
"""
RULES6 = RULES.replace("-p icmp", "-p ipv6-icmp")
NEW_RULES = RULES.replace("--dport 80 -j ACCEPT", "--dport 80 -j DROP")
# Runs a README command line with `statewall` being this tree's CLI.
PRELUDE = ('statewall() { "$PYTHON" -c "import sys; from statewall.cli import main; '
           'sys.exit(main())" "$@"; }\nset -o pipefail\n')
NO_CAPTURE_NEEDED = ("demo", "sysctl")


def traffic(host: str) -> list[bytes]:
    return [b.tcp(CLIENT, host, 40000, 22, "S", 100), b.tcp(host, CLIENT, 22, 40000, "SA", 9, 101),
            b.tcp(CLIENT, host, 40000, 22, "A", 101, 10), b.tcp(CLIENT, host, 40001, 23, "S", 5),
            b.udp(host, WEB, 5353, 53, b"q"), b.udp(WEB, host, 53, 5353, b"a"),
            b.tcp(CLIENT, WEB, 41000, 80, "S", 1), b.tcp(WEB, CLIENT, 80, 41000, "SA", 7, 2),
            b.tcp(CLIENT, WEB, 41000, 80, "A", 2, 8),
            b.icmpv6_echo(CLIENT6, HOST6, 3, 1), b.icmpv6_echo(HOST6, CLIENT6, 3, 1, reply=True)]


def make_inputs(folder: Path) -> None:
    frames = [(1_700_000_000.0 + i, b.ethernet(d)) for i, d in enumerate(traffic(HOST))]
    for name in ("capture.pcap", "cap.pcap"):
        write_pcap(folder / name, frames)
    write_pcap(folder / "server.pcap",
               [(1.0 + i, b.ethernet(d)) for i, d in enumerate(traffic(SERVER))])
    write_pcapng(folder / "capture.pcapng", [(ts, data, 0) for ts, data in frames],
                 [(1, "eth0")])
    for name in ("rules.v4", "r", "old.rules", "fw.rules"):
        (folder / name).write_text(RULES)
    (folder / "new.rules").write_text(NEW_RULES)
    (folder / "rules.v6").write_text(RULES6)


def statewall_part(line: str) -> str | None:
    """The runnable statewall command of a README line (None: not a statewall command)."""
    words = shlex.split(line, comments=True)
    if "statewall" not in words:
        return None
    text = shlex.join(words)
    # `A && statewall ...`: the statewall command alone (A installs or tests).
    text = text.split(" '&&' ")[-1] if " '&&' " in text else text
    # A live capture is read from a file instead: `... | statewall replay -`.
    text = re.sub(r"^tcpdump .*? '\|' ", "cat capture.pcap | ", text)
    text = text.replace(" '|' ", " | ").replace(" '>' ", " > ")
    return text.removeprefix("sudo ")


def readme_commands() -> list[str]:
    """The README's statewall commands: every line of its sh blocks, and the complete
    ones quoted in its text (no placeholder; a file it names or no capture needed)."""
    text = README.read_text()
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        commands += [c for line in block.splitlines() if (c := statewall_part(line))]
    for quoted in re.findall(r"`((?:sudo )?statewall [^`]+)`", text):
        words = shlex.split(quoted.removeprefix("sudo "))
        if any(w.isupper() and len(w) > 1 for w in words):
            continue  # a template: CAPTURE, FILE
        if words[1] in NO_CAPTURE_NEEDED or "--cleanup" in words:
            commands.append(shlex.join(words))
    return list(dict.fromkeys(commands))


def test_the_readme_commands_are_found() -> None:
    commands = readme_commands()
    assert "statewall demo" in commands and "statewall sysctl" in commands
    assert "cat capture.pcap | statewall replay - --rules r" in commands
    assert any(c.startswith("statewall replay capture.pcap --format jsonl > ") for c in commands)
    assert any(c.startswith("statewall verify server.pcap") for c in commands)
    assert len(commands) > 30


@pytest.mark.parametrize("command", readme_commands())
def test_a_readme_command_runs(command: str, tmp_path: Path) -> None:
    words = shlex.split(command.split(" | ")[-1])
    if words[1] == "verify" and (problem := kernel_problem()) is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"required under CI but unavailable: {problem}")
        pytest.skip(problem)
    make_inputs(tmp_path)
    done = subprocess.run(["bash", "-c", PRELUDE + command], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHON": sys.executable})
    allowed = (0, 1) if words[1] == "diff" else (0,)
    assert done.returncode in allowed, done.stderr
    errors = [line for line in done.stderr.splitlines()
              if not line.startswith("statewall: removed the namespaces of verify pid")]
    assert not errors, errors
    if " > " in command:  # what it wrote went to the file
        assert (tmp_path / command.rsplit(" > ", 1)[1]).read_text()
