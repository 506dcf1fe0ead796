"""`conntrack -E expect`: statewall's expectation events against the live kernel's.

The kernel-marked tests replay the helper scenarios and the shared FTP,
TFTP and IRC captures with `conntrack -E expect` listening in the firewall
namespace and compare both streams line by line. The kinds and ports they
pin were read off 6.18: a PORT gives [NEW], the data connection consuming
it [DESTROY]; a second PORT evicts the first (max_expected 1) before its
own [NEW]; the master's death destroys its expectations (expectations.md
§5, §6, §8).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from statewall import builder as b
from statewall.decode import decode_datagram
from statewall.engine import Firewall
from statewall.events import ConntrackEvent
from statewall.oracle.helper_scenarios import helper_scenarios
from statewall.oracle.normalise import normalise
from statewall.oracle.scenarios import (
    C4,
    S4,
    STATEFUL,
    STATEFUL_HELPERS_V4,
    STATEFUL_HELPERS_V6,
    Scenario,
)
from statewall.oracle.verify import Datagram, load_rule_engine, side_topology
from statewall.oracle.verify_events import (
    EventsComparison,
    comparable_kernel_expect_lines,
    compare_event_lines,
    packet_driven,
    split_event,
    verify_events,
    verify_events_capture,
)

T0 = 1_700_000_000.0
BODY = ("proto=6 src=10.20.2.1 dst=10.20.1.1 sport=0 dport=40004 mask-src=255.255.255.255 "
        "mask-dst=255.255.255.255 sport=0 dport=65535 master-src=10.20.1.1 "
        "master-dst=10.20.2.1 sport=40100 dport=21 class=0 helper=ftp")
TFTP_BODY = ("proto=17 src=10.20.2.1 dst=10.20.1.1 sport=0 dport=1069 mask-src=255.255.255.255 "
             "mask-dst=255.255.255.255 sport=0 dport=65535 master-src=10.20.1.1 "
             "master-dst=10.20.2.1 sport=1069 dport=69 class=0 helper=tftp")
TFTP_EXPIRY = ("[DESTROY] udp      17 src=10.20.1.1 dst=10.20.2.1 sport=1069 dport=69 [UNREPLIED] "
               "src=10.20.2.1 dst=10.20.1.1 sport=69 dport=1069")
SCENARIOS = [s for s in helper_scenarios() if s.rules_v4 or s.rules_v6]

# What `conntrack -E expect` showed on 6.18: (kind, expected dport) in order.
KERNEL_KINDS = {
    "ftp-active-port-ipv4": [("[NEW]", 40004), ("[DESTROY]", 40004)],
    "ftp-expect-limit": [("[NEW]", 40040), ("[DESTROY]", 40040), ("[NEW]", 40041),
                         ("[DESTROY]", 40041)],
    "ftp-master-death": [("[NEW]", 40050), ("[DESTROY]", 40050)],
    "ftp-expectation-clash": [("[NEW]", 40065)],
    "ftp-related-dropped": [("[NEW]", 40090), ("[DESTROY]", 40090)],
    "ftp-notrack-data": [("[NEW]", 40070)],
    "ftp-port-third-party": [],
    "irc-dcc-limit": [*(("[NEW]", 6000 + n) for n in range(8)), ("[DESTROY]", 6000),
                      ("[NEW]", 6008), ("[DESTROY]", 6001)],
    "tftp-read-ipv6": [("[NEW]", 1069), ("[DESTROY]", 1069)],
    "amanda-connect": [("[NEW]", 50100), ("[NEW]", 50101), ("[NEW]", 50102),
                       ("[DESTROY]", 50100)],
}
# Expectation events per shared capture with the helpers attached (6.18).
SHARED_COUNTS = {
    "ftp-active-port-download-ipv4.pcap": 6, "ftp-all-data-cmds-pasv-port-ipv4.pcap": 28,
    "ftp-epsv-eprt-internet-ipv6.pcap": 10, "ftp-epsv-retr-ipv4.pcap": 4,
    "ftp-passive-pasv-download-ipv4.pcap": 6, "ftp-passive-pasv-lan-ppa.pcap": 2,
    "ftp-pasv-and-port-internet-ipv4.pcap": 8, "irc-basic-freenode.pcap": 0,
    "irc-dcc-send-and-chat.pcapng": 4, "tftp-rrq-read.pcap": 2, "tftp-wrq-write.pcap": 2,
}


def kinds(lines: tuple[str, ...]) -> list[tuple[str, int]]:
    """(tag, the expected connection's dport) of each expectation line."""
    out = []
    for line in lines:
        words = line.split()
        out.append((words[0], int(words[6].removeprefix("dport="))))
    return out


# --- the comparison rules, without a kernel ----------------------------------------------


def test_the_timeout_of_an_expectation_line_is_its_second_word() -> None:
    assert split_event(f"[NEW] 300 {BODY}") == (f"[NEW] {BODY}", 300)
    kernel = [f"[DESTROY] 300 {BODY}"]
    assert compare_event_lines(kernel, [f"[DESTROY] 299 {BODY}"]).same
    assert not compare_event_lines(kernel, [f"[DESTROY] 298 {BODY}"]).same
    assert not compare_event_lines(kernel, [f"[NEW] 300 {BODY}"]).same


def test_timer_driven_kernel_destroys_are_left_out() -> None:
    conn = [f"[100.010000]\t{TFTP_EXPIRY}"]
    lines = comparable_kernel_expect_lines([
        f"[90.5  ]\t    [NEW] 300 {TFTP_BODY}",
        f"[100.5000  ]\t[DESTROY] 290 {TFTP_BODY}",  # beside its master's expiry
        f"[100.700000]\t    [NEW] 300 {TFTP_BODY}",
        f"[400.700000]\t[DESTROY] 0 {TFTP_BODY}",  # its own expiry
    ], conn, window=0.1)
    assert lines == [f"[NEW] 300 {TFTP_BODY}", f"[NEW] 300 {TFTP_BODY}"]


def test_a_destroy_away_from_the_master_expiry_is_kept() -> None:
    """Same master tuple, but the master that expired was an earlier one."""
    conn = [f"[10.000000]\t{TFTP_EXPIRY}"]
    destroy = f"[DESTROY] 250 {TFTP_BODY}"
    assert comparable_kernel_expect_lines([f"[60.000000]\t{destroy}"], conn) == [destroy]


def test_statewall_events_from_a_timer_are_not_packet_driven() -> None:
    """The master expires at T0+30 and its expectation goes with it, before packet 2."""
    request = b.udp(C4, S4, 1069, 69, b"\x00\x01report.txt\x00octet\x00")
    recorded: list[ConntrackEvent] = []
    firewall = Firewall(event_sink=recorded.append, auto_helpers=True)
    expect = []
    for ts in (T0, T0 + 100):
        before = len(recorded)
        firewall.process(decode_datagram(request, ts=ts))
        expect += [(e.kind, packet_driven(e, ts)) for e in recorded[before:] if e.expectation]
    assert expect == [("NEW", True), ("DESTROY", False), ("NEW", True)]


def test_a_helper_masters_destroy_event_does_not_name_the_helper() -> None:
    """ctnetlink sends the helper with NEW and UPDATE only (ctnetlink_conntrack_event)."""
    scenario = next(s for s in SCENARIOS if s.name == "ftp-master-death")
    events: list[ConntrackEvent] = []
    firewall = Firewall(event_sink=events.append,
                        rules=load_rule_engine(STATEFUL_HELPERS_V4, None))
    for n, data in enumerate(scenario.datagrams):
        firewall.process(decode_datagram(data, index=n, ts=T0 + n / 100))
    control = [e.line() for e in events if not e.expectation and "dport=21" in e.body]
    assert control[0].endswith("helper=ftp")
    destroy = next(line for line in control if line.startswith("[DESTROY]"))
    assert destroy.endswith("sport=21 dport=40160 [ASSURED]")


def test_the_summary_counts_both_streams() -> None:
    same = EventsComparison(("a",), ("a",), expectations=EventsComparison(("e",), ("e",)))
    assert same.same and same.summary_line() == "1 events agree, 1 expectation events agree"
    differ = EventsComparison(("a",), ("a",), expectations=compare_event_lines(["e"], []))
    assert not differ.same
    assert differ.summary_line() == "1 events agree, 1 of 1 expectation events differ"


# --- against the kernel ------------------------------------------------------------------


def verify_scenario_events(scenario: Scenario) -> EventsComparison:
    datagrams = [Datagram(n, d) for n, d in enumerate(scenario.datagrams, 1)]
    engine = None
    if scenario.statewall_rules is not None:
        topology = side_topology(normalise(list(scenario.datagrams)))
        engine = load_rule_engine(*scenario.statewall_rules, topology=topology)
    return verify_events(datagrams, scenario.rules_v4, scenario.rules_v6,
                         dict(scenario.sysctls), rule_engine=engine,
                         auto_helpers=scenario.auto_helpers, waits=dict(scenario.waits))


@pytest.mark.kernel
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_expectation_events_match_the_kernel(kernel: None, scenario: Scenario) -> None:
    result = verify_scenario_events(scenario)
    assert result.expectations is not None
    assert result.same, (result.mismatches, result.expectations.mismatches)
    if scenario.name in KERNEL_KINDS:
        assert kinds(result.expectations.kernel) == KERNEL_KINDS[scenario.name]


@pytest.mark.kernel
def test_an_active_ftp_expectation_line_by_line(kernel: None) -> None:
    scenario = next(s for s in SCENARIOS if s.name == "ftp-active-port-ipv4")
    result = verify_scenario_events(scenario)
    assert result.expectations is not None
    (new, created), (destroy, left) = map(split_event, result.expectations.kernel)
    # The [NEW] is sent in the jiffy of creation; the data SYN comes a tick later or not.
    assert (new, created) == (f"[NEW] {BODY}", 300)
    assert destroy == f"[DESTROY] {BODY}" and left in (299, 300)
    assert result.same


@pytest.mark.kernel
def test_a_master_that_expired_takes_its_expectation_along(kernel: None) -> None:
    """A TFTP request, its master expiring (UDP timeout 1 s), the same request again:
    the kernel reaps the old master on lookup and reports its expectation's DESTROY
    beside the master's expiry; statewall at the instant of expiry. Both are left
    out, the two [NEW]s agree."""
    request = b.udp(C4, S4, 1069, 69, b"\x00\x01report.txt\x00octet\x00")
    result = verify_events([Datagram(1, request), Datagram(2, request)], STATEFUL_HELPERS_V4,
                           None, {"nf_conntrack_udp_timeout": 1}, waits={2: 2.0})
    assert result.expectations is not None
    assert [split_event(line) for line in result.expectations.kernel] == [
        (f"[NEW] {TFTP_BODY}", 300), (f"[NEW] {TFTP_BODY}", 300)]
    assert result.same, result.expectations.mismatches


@pytest.mark.kernel
def test_a_statewall_without_helpers_is_caught(kernel: None) -> None:
    scenario = next(s for s in SCENARIOS if s.name == "ftp-active-port-ipv4")
    result = verify_events([Datagram(n, d) for n, d in enumerate(scenario.datagrams, 1)],
                           scenario.rules_v4, None, rule_engine=load_rule_engine(STATEFUL, None))
    assert result.expectations is not None
    assert len(result.expectations.kernel) == 2 and not result.expectations.statewall
    assert not result.same


@pytest.mark.kernel
@pytest.mark.shared
def test_shared_helper_captures_match_the_kernel(kernel: None, shared: Path) -> None:
    for name, count in SHARED_COUNTS.items():
        result = verify_events_capture(shared / "traces" / name, STATEFUL_HELPERS_V4,
                                       STATEFUL_HELPERS_V6)
        assert result.expectations is not None
        assert result.same, (name, result.mismatches[:3], result.expectations.mismatches[:3])
        assert len(result.expectations.kernel) == count, name
