"""What-if: the same capture through two machines, A and B.

The kernel-marked tests take the kernel's truth from `verify` run under
both sides and require `diff` to list exactly the packets whose kernel
answer changes: once for a sysctl, once for two real rulesets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from statewall import builder as b
from statewall.api import MachineOptions
from statewall.capture.writer import write_pcap
from statewall.cli import main
from statewall.diff import DiffResult, diff, flow_label

C, S = "10.0.0.1", "10.0.1.1"
T0 = 1_700_000_000.0
DROP_INVALID = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                "-A FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n")
WEB_ONLY = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"
            "-A FORWARD -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n")


def out_of_window() -> list[bytes]:
    return [b.tcp(C, S, 1000, 80, "S", 100, window=1000),
            b.tcp(S, C, 80, 1000, "SA", 500, 101, window=1000),
            b.tcp(C, S, 1000, 80, "A", 101, 501, window=1000),
            b.tcp(C, S, 1000, 80, "PA", 900_000, 501, window=1000, payload=b"far away"),
            b.tcp(C, S, 1000, 80, "PA", 101, 501, window=1000, payload=b"fine")]


def write(tmp_path: Path, datagrams: list[bytes], rules: dict[str, str]) -> Path:
    capture = tmp_path / "c.pcap"
    write_pcap(capture, [(T0 + i * 0.01, b.ethernet(d)) for i, d in enumerate(datagrams)])
    for name, text in rules.items():
        (tmp_path / name).write_text(text)
    return capture


def test_be_liberal_changes_only_the_out_of_window_packet(tmp_path: Path) -> None:
    capture = write(tmp_path, out_of_window(), {"r": DROP_INVALID})
    a = MachineOptions(rules=tmp_path / "r")
    result = diff(capture, a, MachineOptions(rules=tmp_path / "r",
                                             sysctls=(("nf_conntrack_tcp_be_liberal", 1),)))
    assert [d.frame for d in result.differences] == [4]
    d = result.differences[0]
    assert (d.a.ctstate, d.a.verdict) == ("INVALID", "DROP")
    assert (d.b.ctstate, d.b.verdict) == ("ESTABLISHED", "ACCEPT")
    assert d.flow == "tcp 10.0.0.1:1000 <-> 10.0.1.1:80"
    assert d.change == "filter FORWARD #1 -> filter FORWARD policy"
    assert result.summary_line().startswith("1 packet of 5 differ")


def test_small_table_shows_which_connections_are_evicted(tmp_path: Path) -> None:
    capture = write(tmp_path, [b.udp(C, S, 5000 + i, 53, b"q") for i in range(6)], {})
    small = (("nf_conntrack_max", 2), ("nf_conntrack_buckets", 1))
    result: DiffResult = diff(capture, MachineOptions(), MachineOptions(sysctls=small))
    assert result.differences == []  # evictions change no verdict here
    assert result.evicted_a == []
    evicted_ports = [e.body.split("sport=")[1].split()[0] for e in result.evicted_b]
    assert evicted_ports == ["5001", "5000", "5003", "5002"]  # newest first in a chain


def test_ruleset_against_ruleset_groups_by_change(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Old: drop INVALID, accept the rest. New: only the web. DNS and SSH now meet the
    FORWARD policy, dropped; the web stays accepted, by new rules instead of the policy."""
    flows = [b.udp(C, S, 4000 + i, 53, b"q") for i in range(5)]
    web = [b.tcp(C, S, 1000, 80, "S", 1), b.tcp(S, C, 80, 1000, "SA", 9, 2)]
    capture = write(tmp_path, [*flows, *web, b.tcp(C, S, 2000, 22, "S", 1)],
                    {"old": DROP_INVALID, "new": WEB_ONLY})
    code = main(["diff", str(capture), "--rules", str(tmp_path / "old"),
                 "--rules-b", str(tmp_path / "new")])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[0] == "filter FORWARD policy: ACCEPT -> DROP: 6 packets, 6 connections"
    assert out[1].startswith("  #1 10.0.0.1:4000 > 10.0.1.1:53 UDP")
    assert out[3].startswith("      B: NEW/ORIGINAL DROP by filter FORWARD policy")
    assert out[10] == "  ... 3 more packets"
    assert out[-1].startswith("8 packets of 8 differ in verdict, ctstate, deciding rule or "
                              "translation, "
                              "in 7 connections")
    assert "filter FORWARD policy -> filter FORWARD #2: 1 packet, 1 connection" in out
    assert "filter FORWARD policy -> filter FORWARD #1: 1 packet, 1 connection" in out
    code = main(["diff", str(capture), "--rules", str(tmp_path / "old"),
                 "--rules-b", str(tmp_path / "new"), "--format", "jsonl"])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["frame"] for r in records] == list(range(1, 9))
    assert [r["change"] for r in records].count("filter FORWARD policy: ACCEPT -> DROP") == 6
    assert all(r["a"]["frame"] == r["b"]["frame"] == r["frame"] for r in records)


def test_nothing_changes_and_nothing_to_compare(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    capture = write(tmp_path, out_of_window(), {"r": DROP_INVALID})
    rules = str(tmp_path / "r")
    assert main(["diff", str(capture), "--rules", rules, "--rules-b", rules]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("0 packets of 5 differ")
    assert main(["diff", str(capture)]) == 2
    assert "needs something to differ" in capsys.readouterr().err


def test_flow_label_is_the_same_both_ways(tmp_path: Path) -> None:
    capture = write(tmp_path, out_of_window()[:2], {})
    from statewall import replay

    there, back = replay(capture)
    assert flow_label(there) == flow_label(back) == "tcp 10.0.0.1:1000 <-> 10.0.1.1:80"


def _kernel_answers(path: Path, rules: str, knobs: dict[str, int]) -> dict[int, tuple[str, str]]:
    from statewall.oracle.verify import verify_capture

    run = verify_capture(path, rules, None, knobs)
    assert run.ok, run.disagreements
    return {p.number: (p.kernel.ctstate, p.kernel.outcome) for p in run.packets}


@pytest.mark.kernel
@pytest.mark.shared
def test_be_liberal_differences_are_the_kernels(kernel: None, shared: Path,
                                                tmp_path: Path) -> None:
    path = shared / "traces" / "tcp-out-of-window-data-crafted.pcap"
    answers = [_kernel_answers(path, DROP_INVALID, {"nf_conntrack_tcp_be_liberal": v})
               for v in (0, 1)]
    kernel_differs = sorted(n for n in answers[0] if answers[0][n] != answers[1][n])
    assert kernel_differs  # the capture does exercise the window check
    (tmp_path / "r").write_text(DROP_INVALID)
    a = MachineOptions(rules=tmp_path / "r")
    b_side = MachineOptions(rules=tmp_path / "r", sysctls=(("nf_conntrack_tcp_be_liberal", 1),))
    result = diff(path, a, b_side)
    assert [d.frame for d in result.differences] == kernel_differs


@pytest.mark.kernel
@pytest.mark.shared
def test_ruleset_diff_is_the_kernels(kernel: None, shared: Path, tmp_path: Path) -> None:
    """A real capture through two rulesets: `diff` lists exactly the packets whose
    kernel fate or ctstate differs between two `verify` runs, and what two separate
    replays say."""
    from statewall import replay

    path = shared / "traces" / "ftp-epsv-retr-ipv4.pcap"
    answers = [_kernel_answers(path, text, {}) for text in (DROP_INVALID, WEB_ONLY)]
    kernel_differs = sorted(n for n in answers[0] if answers[0][n] != answers[1][n])
    assert kernel_differs
    (tmp_path / "old").write_text(DROP_INVALID)
    (tmp_path / "new").write_text(WEB_ONLY)
    result = diff(path, MachineOptions(rules=tmp_path / "old"),
                  MachineOptions(rules=tmp_path / "new"))
    fate = [{p.frame: (p.ctstate, p.verdict) for p in replay(path, rules=tmp_path / side)}
            for side in ("old", "new")]
    separately = sorted(n for n in fate[0] if fate[0][n] != fate[1][n])
    assert separately == kernel_differs
    changed = {d.frame for d in result.differences
               if (d.a.ctstate, d.a.verdict) != (d.b.ctstate, d.b.verdict)}
    assert sorted(changed) == kernel_differs
