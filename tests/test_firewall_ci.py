"""Firewall CI: statewall.testing's assertions, and the README's test file run as written.

The verdicts asserted are the kernel's for a host (INPUT for its own address): an
ESTABLISHED/RELATED accept, the web port open, everything else to the INPUT policy.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from statewall import builder as b
from statewall.capture import LINKTYPE_RAW, write_pcap
from statewall.testing import VerdictError, assert_accepted, assert_dropped, assert_verdicts

ROOT = Path(__file__).resolve().parent.parent
HOST, CLIENT = "192.0.2.1", "198.51.100.7"
T0 = 1_700_000_000.0
RULES = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT
COMMIT
"""


def web() -> list[bytes]:
    return [b.tcp(CLIENT, HOST, 40000, 80, "S", 1), b.tcp(HOST, CLIENT, 80, 40000, "SA", 9, 2),
            b.tcp(CLIENT, HOST, 40000, 80, "A", 2, 10)]


def ssh_scan() -> list[bytes]:
    return [b.tcp(CLIENT, HOST, 2000 + i, 22, "S", 1) for i in range(8)]


def files(folder: Path, rules: str = RULES) -> Path:
    (folder / "captures").mkdir(exist_ok=True)
    (folder / "rules.v4").write_text(rules)
    for name, datagrams in (("web", web()), ("ssh-scan", ssh_scan()),
                            ("mixed", web()[:1] + ssh_scan()[:1])):
        write_pcap(folder / "captures" / f"{name}.pcap",
                   [(T0 + i, d) for i, d in enumerate(datagrams)], linktype=LINKTYPE_RAW)
    return folder


def test_assertions_pass_and_fail(tmp_path: Path) -> None:
    files(tmp_path)
    rules, local = tmp_path / "rules.v4", [HOST]
    assert len(assert_accepted(tmp_path / "captures" / "web.pcap", rules=rules, local=local)) == 3
    assert_dropped(tmp_path / "captures" / "ssh-scan.pcap", rules=rules, local=local)
    with pytest.raises(VerdictError) as failure:
        assert_accepted(tmp_path / "captures" / "ssh-scan.pcap", rules=rules, local=local)
    lines = str(failure.value).splitlines()
    assert lines[0].endswith("ssh-scan.pcap: 8 of 8 packets not accepted:")
    assert lines[1] == (f"  #1 {CLIENT}:2000 > {HOST}:22 TCP [S] seq=1 ack=0 win=65535: "
                        "NEW DROP by filter INPUT policy | SYN in NONE: NONE → SYN_SENT; "
                        "policy DROP of filter INPUT")
    assert lines[-1] == "  ... and 3 more"
    with pytest.raises(VerdictError, match="no packet is 9"):
        assert_verdicts(tmp_path / "captures" / "web.pcap", {9: "ACCEPT"}, rules=rules)
    with pytest.raises(VerdictError, match=r"#2 DROP"):
        assert_verdicts(tmp_path / "captures" / "web.pcap",
                        {1: "accept", f"tcp {HOST}:80 <-> {CLIENT}:40000": "DROP"},
                        rules=rules, local=local)
    with pytest.raises(VerdictError, match="select chose none"):
        assert_dropped(tmp_path / "captures" / "web.pcap", select=lambda p: False)


def _readme_block(language: str, first_line: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return next(block for block in blocks if block.startswith(first_line))


def _pytest(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "test_firewall.py"], cwd=folder, capture_output=True, text=True,
                          check=False)


def test_the_readme_test_file_runs(tmp_path: Path) -> None:
    files(tmp_path)
    (tmp_path / "test_firewall.py").write_text(
        _readme_block("python", "from statewall.testing import"))
    (tmp_path / "pytest.ini").write_text(_readme_block("ini", "[pytest]"))
    done = _pytest(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
    # The same suite against a ruleset that opens SSH: two tests fail, naming the rule.
    files(tmp_path, RULES.replace("--dport 80", "--dport 22"))
    done = _pytest(tmp_path)
    assert done.returncode == 1
    assert "3 failed" in done.stdout  # the web is now closed, SSH open, the flow accepted
    assert "NEW ACCEPT by filter INPUT #2" in done.stdout
