"""The `conntrack -E` stream: one message per packet, formats, expiry, expectations.

Expected lines are the kernel's own (conntrack-core.md §11, observed on
6.18, and the kernel-marked test at the end, which compares statewall's
events with `conntrack -E` for every shared capture).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from statewall import builder as b
from statewall.capture.writer import write_pcap
from statewall.cli import main
from statewall.decode import decode_datagram
from statewall.engine import Firewall
from statewall.events import ConntrackEvent
from statewall.oracle.verify_events import (
    comparable_kernel_lines,
    compare_event_lines,
    verify_events,
    verify_events_capture,
)

C, S = "10.99.1.1", "10.99.2.1"
T0 = 1_700_000_000.0
FLOW = "src=10.99.1.1 dst=10.99.2.1 sport=60346 dport=5003"
REPLY = "src=10.99.2.1 dst=10.99.1.1 sport=5003 dport=60346"


def events_of(packets: Sequence[tuple[float, bytes]], **kw: object) -> list[ConntrackEvent]:
    out: list[ConntrackEvent] = []
    firewall = Firewall(event_sink=out.append, **kw)  # type: ignore[arg-type]
    for i, (ts, data) in enumerate(packets):
        firewall.process(decode_datagram(data, index=i, ts=ts))
    return out


def tcp(flags: str, seq: int, ack: int = 0, reply: bool = False) -> bytes:
    if reply:
        return b.tcp(S, C, 5003, 60346, flags, seq, ack)
    return b.tcp(C, S, 60346, 5003, flags, seq, ack)


def test_handshake_and_close_give_the_observed_lines() -> None:
    packets = [(T0, tcp("S", 100)), (T0 + 0.001, tcp("SA", 500, 101, True)),
               (T0 + 0.002, tcp("A", 101, 501)), (T0 + 0.003, tcp("FA", 101, 501)),
               (T0 + 0.004, tcp("FA", 501, 102, True)), (T0 + 0.005, tcp("A", 102, 502))]
    lines = [e.line() for e in events_of(packets)]
    assert lines[:3] == [
        f"    [NEW] tcp      6 120 SYN_SENT {FLOW} [UNREPLIED] {REPLY}",
        f" [UPDATE] tcp      6 60 SYN_RECV {FLOW} {REPLY}",
        f" [UPDATE] tcp      6 432000 ESTABLISHED {FLOW} {REPLY} [ASSURED]",
    ]
    assert [line.split()[3:5] for line in lines[3:]] == [
        ["120", "FIN_WAIT"], ["30", "LAST_ACK"], ["120", "TIME_WAIT"]]


def test_packets_that_change_nothing_report_nothing() -> None:
    packets = [(T0, tcp("S", 100)), (T0 + 0.5, tcp("S", 100))]  # a retransmitted SYN
    assert [e.kind for e in events_of(packets)] == ["NEW"]


def test_update_without_a_state_change_carries_no_state() -> None:
    """Mid-stream pickup: SEEN_REPLY and ASSURED alone are not PROTOINFO events."""
    packets = [(T0, tcp("A", 100, 500)), (T0 + 0.001, tcp("A", 500, 100, True)),
               (T0 + 0.002, tcp("A", 100, 500))]
    lines = [e.line() for e in events_of(packets)]
    assert lines == [
        f"    [NEW] tcp      6 300 ESTABLISHED {FLOW} [UNREPLIED] {REPLY}",
        f" [UPDATE] tcp      6 300 {FLOW} {REPLY}",
        f" [UPDATE] tcp      6 432000 {FLOW} {REPLY} [ASSURED]",
    ]


def test_rst_before_any_reply_destroys_the_unreplied_entry_at_once() -> None:
    packets = [(T0, tcp("S", 100)), (T0 + 0.5, tcp("RA", 0, 101, True))]
    lines = [e.line() for e in events_of(packets)]
    assert lines == [f"    [NEW] tcp      6 120 SYN_SENT {FLOW} [UNREPLIED] {REPLY}",
                     f"[DESTROY] tcp      6 119 CLOSE {FLOW} [UNREPLIED] {REPLY}"]


def test_a_dropped_first_packet_leaves_no_event() -> None:
    from statewall.rules.hooks import IptablesEngine, compile_text

    rules = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
             "-A FORWARD -p tcp --dport 5003 -j DROP\nCOMMIT\n")
    engine = IptablesEngine(compile_text(rules, "t.rules", 4), None)
    assert events_of([(T0, tcp("S", 100))], rules=engine) == []


def test_expiry_destroy_has_no_timeout_and_the_time_of_expiry() -> None:
    query, again = b.udp(C, S, 5555, 53, b"q"), b.udp(C, S, 5555, 53, b"r")
    events = events_of([(T0, query), (T0 + 100, again)])
    assert [(e.kind, e.ts) for e in events] == [("NEW", T0), ("DESTROY", T0 + 30),
                                                ("NEW", T0 + 100)]
    assert events[1].line() == ("[DESTROY] udp      17 src=10.99.1.1 dst=10.99.2.1 sport=5555 "
                                "dport=53 [UNREPLIED] src=10.99.2.1 dst=10.99.1.1 sport=53 "
                                "dport=5555")


def test_timestamps_prefix_as_conntrack_minus_o_timestamp() -> None:
    event = events_of([(T0 + 0.25, b.udp(C, S, 5555, 53, b"q"))])[0]
    assert event.line(timestamps=True).startswith("[1700000000.250000]\t    [NEW] udp      17 30 ")


def test_tftp_request_reports_the_expectation() -> None:
    request = b.udp(C, S, 1234, 69, b"\x00\x01file\x00octet\x00")
    events = events_of([(T0, request), (T0 + 400, b.udp(C, S, 1235, 9, b"x"))],
                       auto_helpers=True)
    expect = [e for e in events if e.expectation]
    assert [e.line() for e in expect] == [
        "    [NEW] 300 proto=17 src=10.99.2.1 dst=10.99.1.1 sport=0 dport=1234 "
        "mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 "
        "master-src=10.99.1.1 master-dst=10.99.2.1 sport=1234 dport=69 class=0 helper=tftp",
        "[DESTROY] 270 proto=17 src=10.99.2.1 dst=10.99.1.1 sport=0 dport=1234 "
        "mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 "
        "master-src=10.99.1.1 master-dst=10.99.2.1 sport=1234 dport=69 class=0 helper=tftp",
    ]
    # The master expired unanswered at T0+30 and took its expectation along
    # (expectations.md §8), 270 s before the expectation's own end.
    assert [e.ts for e in expect] == [T0, T0 + 30]
    times = [e.ts for e in events]
    assert times == sorted(times)


def test_events_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = tmp_path / "e.pcap"
    write_pcap(capture, [(T0, b.ethernet(tcp("S", 100))),
                         (T0 + 0.001, b.ethernet(tcp("SA", 500, 101, True)))])
    assert main(["events", str(capture), "--timestamps"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"[1700000000.000000]\t    [NEW] tcp      6 120 SYN_SENT {FLOW} [UNREPLIED] "
                   f"{REPLY}",
                   f"[1700000000.001000]\t [UPDATE] tcp      6 60 SYN_RECV {FLOW} {REPLY}"]


def test_event_comparison_rules() -> None:
    kernel = comparable_kernel_lines([
        "[1.000001]\t    [NEW] udp      17 30 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 [UNREPLIED] "
        "src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1",
        "[9.000001]\t[DESTROY] udp      17 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 [UNREPLIED] "
        "src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1"])
    assert len(kernel) == 1  # the expiry is not comparable
    ours = kernel[0].replace(" 30 ", " 29 ")
    assert compare_event_lines(kernel, [ours]).same
    assert not compare_event_lines(kernel, [kernel[0].replace(" 30 ", " 28 ")]).same
    assert not compare_event_lines(kernel, []).same


@pytest.mark.kernel
@pytest.mark.shared
def test_events_match_the_kernel_on_every_shared_capture(kernel: None, shared: Path) -> None:
    for path in sorted((shared / "traces").glob("*.pcap*")):
        result = verify_events_capture(path, None)
        assert result.same, (path.name, result.mismatches[:3])


@pytest.mark.kernel
def test_connmark_change_alone_is_an_update_event(kernel: None) -> None:
    """CONNMARK changing the mark on an otherwise uneventful packet raises UPDATE (IPCT_MARK)."""
    from statewall.oracle.verify import Datagram

    rules = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
             "-A FORWARD -p udp -m conntrack --ctstate ESTABLISHED --ctdir ORIGINAL "
             "-j CONNMARK --set-mark 5\nCOMMIT\n")
    packets = [b.udp("192.0.2.1", "198.51.100.2", 4000, 53, payload=b"q"),
               b.udp("198.51.100.2", "192.0.2.1", 53, 4000, payload=b"a"),
               b.udp("192.0.2.1", "198.51.100.2", 4000, 53, payload=b"q2"),
               b.udp("192.0.2.1", "198.51.100.2", 4000, 53, payload=b"q3")]
    result = verify_events([Datagram(i + 1, d) for i, d in enumerate(packets)], rules)
    assert result.same, result.mismatches
    assert len(result.kernel) == 3 and result.kernel[-1].endswith("mark=5")
