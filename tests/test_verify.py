"""`statewall verify`: statewall and the live kernel on the same datagrams.

The kernel-marked tests run every scenario of oracle/scenarios.py and every
shared capture through both and require full agreement, except for what
tests/known_differences.md lists (that list is meant to become empty; an
entry that no longer disagrees fails too, so it cannot go stale). The
scenario tests also check the kernel's own answers, so a scenario keeps
showing what its name says. The rest tests the comparison without a kernel.
"""

from __future__ import annotations

import argparse
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from statewall import builder
from statewall.capture.writer import write_pcap
from statewall.config import Sysctls
from statewall.decode import decode_datagram
from statewall.engine import Firewall
from statewall.oracle import cli_verify, verify
from statewall.oracle.kernel import KernelObservation
from statewall.oracle.netns import OracleError
from statewall.oracle.scenarios import (
    STATEFUL,
    STATEFUL_HELPERS_V4,
    STATEFUL_HELPERS_V6,
    Scenario,
    all_scenarios,
)
from statewall.oracle.verify import (
    LOOPBACK,
    NOT_IP,
    Datagram,
    VerifyResult,
    compare_packet,
    compare_tables,
    is_loopback,
    load_rule_engine,
    select,
    table_entry,
    verify_capture,
    verify_datagrams,
)
from statewall.packet import Packet
from statewall.rules.errors import RulesetError
from statewall.verdict import PacketVerdict

KNOWN = Path(__file__).with_name("known_differences.md")
SHARED = Path(__file__).resolve().parents[2] / "shared"
CAPTURES = sorted(p.name for p in (SHARED / "traces").glob("*.pcap*")) if SHARED.is_dir() \
    else ["(no shared captures)"]
LOOPBACK_CAPTURE = "large-loopback-echo-741-connections.pcap"


# --- known differences ------------------------------------------------------------------


@dataclass
class Known:
    """What known_differences.md admits for one capture or scenario."""

    packets: set[int] = field(default_factory=set)
    table: bool = False


def known_differences(text: str) -> dict[str, Known]:
    """`## NAME` headings; `- packets #1-3, #7: why` and `- table: why` bullets."""
    out: dict[str, Known] = {}
    current: Known | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = out.setdefault(line[3:].strip(), Known())
        elif current is not None and line.startswith("- packets "):
            spans = line[len("- packets "):].split(":", 1)[0]
            for a, b in re.findall(r"#(\d+)(?:-(\d+))?", spans):
                current.packets.update(range(int(a), int(b or a) + 1))
        elif current is not None and line.startswith("- table:"):
            current.table = True
    return out


def assert_agrees_or_known(name: str, result: VerifyResult) -> None:
    known = known_differences(KNOWN.read_text()).get(name, Known())
    wrong = [cli_verify.disagreement_line(p) for p in result.disagreements
             if p.number not in known.packets]
    assert not wrong, f"{name}: statewall and the kernel disagree:\n" + "\n".join(wrong)
    stale = sorted(known.packets - {p.number for p in result.disagreements})
    assert not stale, f"{name}: known_differences.md lists {stale}, which now agree: remove them"
    table = [f"kernel only: {e}" for e in result.table.only_kernel]
    table += [f"statewall only: {e}" for e in result.table.only_statewall]
    assert known.table or not table, f"{name}: final tables differ:\n" + "\n".join(table)
    assert not known.table or table, f"{name}: tables now agree: remove the table entry"


def test_known_differences_parse() -> None:
    parsed = known_differences("# t\n\n## a.pcap\n- packets #1-3, #7: routing\n- table: x\n"
                               "## scenario:b\n- packets #2: y\n")
    assert parsed["a.pcap"] == Known({1, 2, 3, 7}, True)
    assert parsed["scenario:b"] == Known({2}, False)
    assert all(name.startswith("scenario:") or name in CAPTURES or not SHARED.is_dir()
               for name in known_differences(KNOWN.read_text()))


# --- the comparison, without a kernel ---------------------------------------------------

C, S = "10.30.1.1", "10.30.2.1"


def _verdict(verdict: str, ctstate: str | None, ctdir: str | None) -> PacketVerdict:
    return PacketVerdict(0, 0.0, verdict, ctstate, ctdir, (), None, "because", "summary")


def _obs(ctstate: str | None, ctdir: str | None, outcome: str,
         routed: str | None = "FORWARD") -> KernelObservation:
    return KernelObservation(1.0, ctstate, ctdir, outcome, routed)


@pytest.mark.parametrize(("kernel", "ours"), [
    (_obs("NEW", "ORIGINAL", "forwarded"), _verdict("ACCEPT", "NEW", "ORIGINAL")),
    (_obs("NEW", "ORIGINAL", "local", "INPUT"), _verdict("ACCEPT", "NEW", "ORIGINAL")),
    (_obs(None, None, "held", None), _verdict("STOLEN", None, None)),
    (_obs("INVALID", None, "dropped"), _verdict("DROP", "INVALID", None)),
    (_obs("NEW", "ORIGINAL", "dropped"), _verdict("REJECT", "NEW", "ORIGINAL")),
])
def test_fates_that_agree(kernel: KernelObservation, ours: PacketVerdict) -> None:
    assert compare_packet(3, kernel, ours).agree


def test_differences_are_named() -> None:
    got = compare_packet(4, _obs("ESTABLISHED", "REPLY", "forwarded"),
                         _verdict("DROP", "ESTABLISHED", "ORIGINAL"))
    assert got.differences == ("ctdir", "fate")
    assert got.kernel_answer() == "ESTABLISHED/REPLY forwarded"
    assert got.statewall_answer() == "ESTABLISHED/ORIGINAL DROP"
    unrouted = compare_packet(5, _obs("NEW", "ORIGINAL", "dropped", None),
                              _verdict("ACCEPT", "NEW", "ORIGINAL"))
    assert unrouted.differences == ("fate",) and "routing" in unrouted.note
    unknown = compare_packet(6, _obs("NEW", "ORIGINAL", "forwarded"),
                             _verdict("UNKNOWN", "NEW", "ORIGINAL"))
    assert unknown.differences == ("fate",)


KERNEL_LINE = ("tcp      6 431999 ESTABLISHED src=10.30.1.1 dst=10.30.2.1 sport=1 dport=2 "
               "src=10.30.2.1 dst=10.30.1.1 sport=2 dport=1 [ASSURED] mark=0 use=1")


def test_table_entries_ignore_use_mark_zone_and_split_the_timeout() -> None:
    key, timeout = table_entry(KERNEL_LINE)
    assert timeout == 431999 and "use=" not in key and "mark=" not in key
    assert table_entry(KERNEL_LINE.replace("mark=0", "mark=5 zone=3")) == (key, timeout)


def test_tables_compare_as_sets_with_one_second_of_slack() -> None:
    later = KERNEL_LINE.replace("431999", "432000")
    udp = ("udp      17 29 src=10.30.1.1 dst=10.30.2.1 sport=5 dport=53 [UNREPLIED] "
           "src=10.30.2.1 dst=10.30.1.1 sport=53 dport=5 mark=0 use=1")
    assert compare_tables([KERNEL_LINE, udp], [udp, later]).same
    far = compare_tables([KERNEL_LINE], [KERNEL_LINE.replace("431999", "431997")])
    assert not far.same and far.only_kernel[0].startswith("tcp 6 431999 ESTABLISHED")
    assert far.only_statewall[0].startswith("tcp 6 431997 ESTABLISHED")
    twice = compare_tables([udp, udp], [udp])
    assert not twice.same and len(twice.only_kernel) == 1 and not twice.only_statewall


def test_selection_skips_non_ip_and_loopback() -> None:
    normal = builder.udp(C, S, 1, 2)
    lo4 = builder.udp("127.0.0.1", "127.0.0.1", 1, 2)
    lo6 = builder.udp("::1", "::1", 1, 2)
    chosen, skipped = select([(1, 4, normal), (2, 0, b"\x08\x06arp"), (3, 4, lo4), (4, 6, lo6)])
    assert [d.number for d in chosen] == [1]
    assert [(s.number, s.reason) for s in skipped] == [(2, NOT_IP), (3, LOOPBACK), (4, LOOPBACK)]
    assert is_loopback(builder.udp(C, "127.3.4.5", 1, 2)) and not is_loopback(normal)
    kept, _ = select([(1, 4, lo4), (2, 6, lo6)], keep_loopback=True)
    assert [d.number for d in kept] == [1]


def test_nothing_to_compare_needs_no_kernel_and_says_why(tmp_path: Path) -> None:
    capture = tmp_path / "lo.pcap"
    frames = [(1.0, builder.ethernet(builder.tcp("127.0.0.1", "127.0.0.1", 5, 7000, "S")))] * 3
    write_pcap(capture, frames)
    result = verify_capture(capture, STATEFUL)
    out = io.StringIO()
    cli_verify.render_text(result, out)
    assert out.getvalue().splitlines() == [
        f"not compared: 3 packets (#1-3): {LOOPBACK}", "0/0 packets agree, tables same"]


def test_ranges() -> None:
    assert cli_verify.ranges([7, 1, 2, 3, 9, 10]) == "#1-3, #7, #9-10"


def test_rule_engine_seam_drops_invalid_like_the_kernel() -> None:
    assert load_rule_engine(None, None) is None
    with pytest.raises(RulesetError, match="bad.rules:2"):
        load_rule_engine("*filter\n-A FORWARD --bogus\nCOMMIT\n", None, v4_source="bad.rules")
    firewall = Firewall(cfg=Sysctls(), rules=load_rule_engine(STATEFUL, None))
    stray = decode_datagram(builder.tcp(S, C, 80, 1000, "SA", 5, 6), ts=1.0)
    verdict = firewall.process(stray)
    assert (verdict.ctstate, verdict.verdict) == ("INVALID", "DROP")
    assert verdict.rule is not None and verdict.rule.number == 1


def test_scenarios_are_well_formed() -> None:
    scenarios = all_scenarios()
    assert len({s.name for s in scenarios}) == len(scenarios)
    for s in scenarios:
        assert len(s.expect) == len(s.datagrams), s.name
        assert all(d[0] >> 4 in (4, 6) for d in s.datagrams), s.name


# --- the command ------------------------------------------------------------------------


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="statewall")
    cli_verify.add_verify_command(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def _write_inputs(tmp_path: Path, datagrams: list[bytes]) -> tuple[str, str]:
    capture, rules = tmp_path / "in.pcap", tmp_path / "rules.v4"
    write_pcap(capture, [(1.0 + i, builder.ethernet(d)) for i, d in enumerate(datagrams)])
    rules.write_text(STATEFUL)
    return str(capture), str(rules)


def test_command_exit_4_when_the_kernel_oracle_cannot_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def missing() -> None:
        raise OracleError("missing conntrack: apt-get install conntrack")

    monkeypatch.setattr(cli_verify, "check_prerequisites", missing)
    capture, rules = _write_inputs(tmp_path, [builder.udp(C, S, 1, 2)])
    args = _parse(["verify", capture, "--rules", rules])
    assert args.handler(args) == 4
    assert "apt-get install conntrack" in capsys.readouterr().err


def test_command_exit_3_for_a_bad_ruleset(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    capture, rules = _write_inputs(tmp_path, [builder.udp(C, S, 1, 2)])
    Path(rules).write_text("*filter\n-A FORWARD -m nosuchmatch\nCOMMIT\n")
    args = _parse(["verify", capture, "--rules", rules])
    assert args.handler(args) == 3
    assert "rules.v4:2" in capsys.readouterr().err


def test_verify_needs_a_capture_unless_cleaning_up(
        capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse(["verify", "--rules", "rules.v4"])
    with pytest.raises(SystemExit) as stopped:
        args.handler(args)
    assert stopped.value.code == 2
    assert "required: capture (or --cleanup alone)" in capsys.readouterr().err


def test_cleanup_needs_root(monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli_verify.os, "geteuid", lambda: 1000)
    args = _parse(["verify", "--cleanup"])
    assert args.handler(args) == 4
    assert capsys.readouterr() == ("", "statewall: cleaning up needs root (network namespaces)\n")


# --- against the kernel -----------------------------------------------------------------


def run_scenario(scenario: Scenario) -> VerifyResult:
    datagrams = [Datagram(n, d) for n, d in enumerate(scenario.datagrams, 1)]
    return verify_datagrams(datagrams, scenario.rules_v4, scenario.rules_v6,
                            dict(scenario.sysctls), waits=dict(scenario.waits))


@pytest.mark.kernel
@pytest.mark.parametrize("scenario", all_scenarios(), ids=lambda s: s.name)
def test_scenario(kernel: None, scenario: Scenario) -> None:
    result = run_scenario(scenario)
    assert tuple(p.kernel_answer() for p in result.packets) == scenario.expect
    for pattern in scenario.table_has:
        assert any(re.search(pattern, e) for e in result.table.kernel), \
            f"no kernel entry matches {pattern!r}: {result.table.kernel}"
    assert_agrees_or_known(f"scenario:{scenario.name}", result)


@pytest.mark.kernel
@pytest.mark.shared
@pytest.mark.parametrize("name", CAPTURES)
def test_shared_capture(kernel: None, shared: Path, name: str) -> None:
    result = verify_capture(shared / "traces" / name, STATEFUL_HELPERS_V4, STATEFUL_HELPERS_V6)
    if name == LOOPBACK_CAPTURE:
        assert not result.packets and {s.reason for s in result.skipped} == {LOOPBACK}
        return
    assert not any(s.reason == LOOPBACK for s in result.skipped)
    assert_agrees_or_known(name, result)


@pytest.mark.kernel
@pytest.mark.shared
def test_loopback_capture_compared_anyway(kernel: None, shared: Path) -> None:
    """The oracle forwards 127/8 (route_localnet=1): 741 connections agree too."""
    result = verify_capture(shared / "traces" / LOOPBACK_CAPTURE, STATEFUL_HELPERS_V4,
                            keep_loopback=True)
    assert len(result.packets) == 82582 and not result.skipped
    assert_agrees_or_known(f"loopback:{LOOPBACK_CAPTURE}", result)


@pytest.mark.kernel
def test_command_reports_agreement_and_disagreement(
        tmp_path: Path, kernel: None, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    handshake = [builder.tcp(C, S, 1000, 80, "S", 1), builder.tcp(S, C, 80, 1000, "SA", 9, 2),
                 builder.tcp(C, S, 1000, 80, "A", 2, 10)]
    capture, rules = _write_inputs(tmp_path, handshake)
    args = _parse(["verify", capture, "--rules", rules])
    assert args.handler(args) == 0
    assert capsys.readouterr().out == "3/3 packets agree, tables same\n"

    class Forgetful(Firewall):
        """A statewall that judges every packet on a machine that has seen nothing else."""

        def process(self, pkt: Packet) -> PacketVerdict:
            fresh = Firewall(cfg=self.cfg, rules=self.rules, topology=self.topology)
            return fresh.process(pkt)

    monkeypatch.setattr(verify, "Firewall", Forgetful)
    args = _parse(["verify", capture, "--rules", rules, "--format", "jsonl"])
    assert args.handler(args) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith('{"type":"packet","packet":2,')
    assert '"kernel":{"ctstate":"ESTABLISHED","ctdir":"REPLY","outcome":"forwarded"' in lines[0]
    assert '"statewall":{"ctstate":"INVALID"' in lines[0]
    assert lines[-1] == ('{"type":"summary","agree":1,"compared":3,"not_compared":0,'
                         '"tables":"differ"}')
