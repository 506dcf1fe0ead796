"""RELATED against the live kernel: helpers, expectations and their tables.

The kernel-marked tests run every scenario of oracle/helper_scenarios.py
(and the seeds' FTP examples) through `verify` and require: the kernel
gives the scenario's answers (so each scenario keeps showing what its name
says), the kernel's `conntrack -L expect` at the named moments matches the
scenario, and statewall agrees with the kernel on every packet, the final
conntrack table and every expectation snapshot (both listings).

Expectation expiry cannot be waited for within a test (FTP, IRC and TFTP
expectations live 300 s, Amanda's 180 s, all fixed by read-only module
parameters), so it is tested on statewall alone against expectations.md §7.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from statewall import builder
from statewall.capture.writer import write_pcap
from statewall.config import Sysctls
from statewall.decode import decode_datagram
from statewall.engine import Firewall
from statewall.oracle import cli_verify
from statewall.oracle.egress import addresses
from statewall.oracle.helper_scenarios import (
    CLIENT,
    SERVER,
    Tcp,
    amanda,
    ftp_active,
    helper_scenarios,
)
from statewall.oracle.scenarios import (
    C4,
    S4,
    STATEFUL,
    STATEFUL_HELPERS_V4,
    Scenario,
    all_scenarios,
    seed_ftp_active,
    seed_ftp_passive,
    verify_scenario,
)
from statewall.oracle.verify import (
    Datagram,
    ExpectComparison,
    TableComparison,
    VerifyResult,
    compare_expectations,
    expect_entry,
    expectation_lines,
    load_rule_engine,
    verify_datagrams,
)
from statewall.verdict import PacketVerdict

SCENARIOS = [*helper_scenarios(), seed_ftp_active(), seed_ftp_passive()]

LISTED = ("299 proto=6 src=10.30.2.1 dst=10.30.1.1 sport=0 dport=40000 mask-src=255.255.255.255 "
          "mask-dst=255.255.255.255 sport=0 dport=65535 master-src=10.30.1.1 "
          "master-dst=10.30.2.1 sport=46182 dport=21 class=0 helper=ftp")
PROC = "299 l3proto = 2 proto=6 src=10.30.2.1 dst=10.30.1.1 sport=0 dport=40000 ftp"


# --- comparing expectation tables, without a kernel -------------------------------------


def test_expect_entry_splits_the_signed_timeout_and_keeps_the_rest_exact() -> None:
    assert expect_entry(PROC + "\n") == (PROC[4:], 299)
    assert expect_entry("-1 " + PROC[4:]) == (PROC[4:], -1)  # live kernel, just expired
    assert expect_entry("garbage") == ("garbage", None)


def test_expectations_compare_as_sets_with_one_second_of_slack() -> None:
    assert compare_expectations([LISTED], [LISTED.replace("299", "300", 1)]).same
    far = compare_expectations([LISTED], [LISTED.replace("299", "297", 1)])
    assert not far.same and far.only_kernel == (LISTED,)
    assert far.only_statewall == (LISTED.replace("299", "297", 1),)


def test_proc_lines_must_agree_byte_for_byte() -> None:
    assert not compare_expectations([PROC], [PROC.replace(" ftp", "  ftp")]).same
    assert compare_expectations([PROC + "\n"], [PROC]).same


def _result(*snapshots: ExpectComparison) -> VerifyResult:
    return VerifyResult(expectations=list(snapshots))


def _snapshot(after: int | None, kernel: list[str], ours: list[str]) -> ExpectComparison:
    listing = compare_expectations(kernel, ours)
    return ExpectComparison(after, listing, TableComparison((), (), (), ()))


def test_summary_mentions_expectations_only_when_there_is_something_to_say() -> None:
    assert _result().summary_line() == "0/0 packets agree, tables same"
    assert _result(_snapshot(None, [], [])).summary_line() == "0/0 packets agree, tables same"
    asked = _result(_snapshot(3, [], []), _snapshot(None, [], []))
    assert asked.summary_line().endswith("tables same, expectations same") and asked.ok
    missing = _result(_snapshot(3, [LISTED], []), _snapshot(None, [], []))
    assert missing.summary_line().endswith("tables same, expectations differ")
    assert not missing.ok
    assert expectation_lines(missing) == [
        f"expectations after #3: only in the kernel (conntrack -L expect): {LISTED}"]


def test_egress_compares_addresses_only() -> None:
    v4 = builder.udp(C4, S4, 1, 2, b"x", ttl=9)
    assert addresses(v4) == addresses(builder.udp(C4, S4, 7, 8, b"other", ttl=1))
    assert addresses(v4) != addresses(builder.udp(S4, C4, 1, 2, b"x"))
    assert len(addresses(builder.udp("fd20:1::1", "fd20:2::1", 1, 2))) == 32
    assert addresses(b"") == b"" and addresses(b"\x08\x06") == b""


def test_helper_scenarios_are_well_formed() -> None:
    names = [s.name for s in (*all_scenarios(), *SCENARIOS)]
    assert len(set(names)) == len(names) - 2  # the two seeds appear in both lists
    for s in SCENARIOS:
        assert len(s.expect) == len(s.datagrams), s.name
        assert all(1 <= n <= len(s.datagrams) for n, _ in s.expect_seen), s.name
        assert all(d[0] >> 4 in (4, 6) for d in s.datagrams), s.name


# --- expiry, statewall alone ------------------------------------------------------------


def _replay(packets: list[bytes], times: list[float], rules: str = STATEFUL_HELPERS_V4,
            ) -> tuple[Firewall, list[PacketVerdict]]:
    firewall = Firewall(cfg=Sysctls(), rules=load_rule_engine(rules, None))
    verdicts = [firewall.process(decode_datagram(p, index=i, ts=t))
                for i, (p, t) in enumerate(zip(packets, times, strict=True))]
    return firewall, verdicts


@pytest.mark.parametrize(("delay", "state"), [(299.5, "RELATED"), (300.0, "NEW"), (301.0, "NEW")])
def test_ftp_expectation_expires_300_seconds_after_the_port_command(delay: float,
                                                                    state: str) -> None:
    """expectations.md §2 and §7: 300 s from insertion, gone at nominal expiry."""
    packets = list(ftp_active(4, "PORT").datagrams[:-2])  # up to the data SYN
    times = [100.0 + n for n in range(len(packets) - 1)]
    announced = times[-2]  # the PORT command; the server's 200 reply follows
    firewall, verdicts = _replay(packets, [*times, announced + delay])
    assert verdicts[-1].ctstate == state
    assert not firewall.expectations(announced + delay)
    before, _ = _replay(packets[:-1], times)
    assert [e.timeout for e in before.expectations(announced + 299.5)] \
        == [0]  # listed with 0 during its last second
    assert not before.expectations(announced + 300.0)


def test_amanda_expectations_live_180_seconds_and_the_master_300() -> None:
    """helpers.md §4: expectations 180 s; every reply pushes the master to 300 s."""
    scenario = amanda()
    request, reply, syn = scenario.datagrams[:3]
    firewall, verdicts = _replay([request, reply, syn], [10.0, 10.5, 10.5 + 179.9])
    assert verdicts[2].ctstate == "RELATED"
    assert [e.dport for e in firewall.expectations(190.0)] == [50101, 50102]
    assert not firewall.expectations(190.5)
    master = next(c for c in firewall.connections(190.5) if c.orig_dport == 10080)
    assert master.expires == pytest.approx(310.5)
    late = Tcp(C4, S4, 40401, 50101).handshake()[0]
    _, after = _replay([request, reply, late], [10.0, 10.5, 10.5 + 180.5])
    assert after[2].ctstate == "NEW"


def test_a_rst_alone_keeps_the_expectation_in_statewall_too() -> None:
    """expectations.md §8: only the master's destruction removes its expectations."""
    ctl = Tcp(C4, S4, 40500, 21)
    packets = [*ctl.handshake(), *ctl.talk(((SERVER, b"220 hi\r\n"), (CLIENT, b"USER a\r\n"))),
               ctl.send(CLIENT, b"PORT 10,20,1,1,156,64\r\n"), ctl.rst(CLIENT)]
    firewall, _ = _replay(packets, [1.0 + n for n in range(len(packets))])
    assert [e.dport for e in firewall.expectations(8.0)] == [40000]


# --- against the kernel -----------------------------------------------------------------


def _kernel_listing_matches(scenario: Scenario, result: VerifyResult) -> None:
    snapshots = {snap.after: snap for snap in result.expectations}
    for after, patterns in scenario.expect_seen:
        listed = snapshots[after].listing.kernel
        assert len(listed) == len(patterns) and all(
            any(re.search(p, line) for line in listed) for p in patterns), \
            f"{scenario.name}: after #{after} the kernel lists {listed}, expected {patterns}"


def _disagreements(result: VerifyResult) -> list[str]:
    lines = [cli_verify.disagreement_line(p) for p in result.disagreements]
    lines += [f"table: only in the kernel: {e}" for e in result.table.only_kernel]
    lines += [f"table: only in statewall: {e}" for e in result.table.only_statewall]
    return lines + expectation_lines(result)


@pytest.mark.kernel
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_helper_scenario(kernel: None, scenario: Scenario) -> None:
    result = verify_scenario(scenario)
    assert tuple(p.kernel_answer() for p in result.packets) == scenario.expect
    _kernel_listing_matches(scenario, result)
    for pattern in scenario.table_has:
        assert any(re.search(pattern, e) for e in result.table.kernel), \
            f"no kernel entry matches {pattern!r}: {result.table.kernel}"
    wrong = _disagreements(result)
    assert not wrong, f"{scenario.name}: statewall and the kernel disagree:\n" + "\n".join(wrong)
    assert result.summary_line().endswith("tables same, expectations same")


@pytest.mark.kernel
def test_a_statewall_without_helpers_is_caught(kernel: None) -> None:
    """The comparison can fail: statewall without the raw CT rule expects nothing."""
    scenario = ftp_active(4, "PORT")
    datagrams = [Datagram(n, d) for n, d in enumerate(scenario.datagrams, 1)]
    port = next(n for n, seen in scenario.expect_seen if seen)
    result = verify_datagrams(datagrams, scenario.rules_v4, None, expect_after=[port],
                              rule_engine=load_rule_engine(STATEFUL, None))
    assert result.summary_line().endswith("tables differ, expectations differ")
    snapshot = result.expectations[0]
    assert snapshot.after == port and not snapshot.listing.statewall
    assert snapshot.listing.only_kernel and snapshot.proc.only_kernel
    assert [p.number for p in result.disagreements] == [port + 2]  # the data SYN


@pytest.mark.kernel
def test_command_reports_expectations(tmp_path: Path, kernel: None,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    scenario = ftp_active(4, "EPRT")
    capture, rules = tmp_path / "ftp.pcap", tmp_path / "rules.v4"
    write_pcap(capture, [(1.0 + i, builder.ethernet(d)) for i, d in enumerate(scenario.datagrams)])
    rules.write_text(STATEFUL_HELPERS_V4)
    parser = argparse.ArgumentParser(prog="statewall")
    cli_verify.add_verify_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["verify", str(capture), "--rules", str(rules), "--limit", "10"])
    assert args.handler(args) == 0
    # Cut before the data SYN: the expectation is still there at the end.
    assert capsys.readouterr().out == "10/10 packets agree, tables same, expectations same\n"
