"""What-if comparisons: the same capture under two configurations.

The kernel-marked test takes the kernel's truth from `verify` run under
both settings and requires `compare` to list exactly the packets whose
kernel answer (ctstate or fate) changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from statewall import builder as b
from statewall.capture.writer import write_pcap
from statewall.cli import main
from statewall.compare import CompareResult, compare, flow_label
from statewall.config import Sysctls
from statewall.decode import decode_datagram
from statewall.decode.stream import read_packets
from statewall.engine import Firewall
from statewall.events import ConntrackEvent
from statewall.packet import Packet
from statewall.rules.hooks import IptablesEngine, compile_text

C, S = "10.0.0.1", "10.0.1.1"
T0 = 1_700_000_000.0
DROP_INVALID = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                "-A FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n")
Sink = Callable[[ConntrackEvent], None]


def side(knobs: dict[str, int], rules: str | None = DROP_INVALID) -> Callable[[Sink], Firewall]:
    def make(sink: Sink) -> Firewall:
        engine = IptablesEngine(compile_text(rules, "r", 4), None) if rules else None
        return Firewall(cfg=Sysctls().with_values(knobs), rules=engine, event_sink=sink)
    return make


def pairs(datagrams: list[bytes]) -> Iterator[tuple[Packet, Packet]]:
    for i, data in enumerate(datagrams):
        yield (decode_datagram(data, index=i, ts=T0 + i * 0.01),
               decode_datagram(data, index=i, ts=T0 + i * 0.01))


def out_of_window() -> list[bytes]:
    return [b.tcp(C, S, 1000, 80, "S", 100, window=1000),
            b.tcp(S, C, 80, 1000, "SA", 500, 101, window=1000),
            b.tcp(C, S, 1000, 80, "A", 101, 501, window=1000),
            b.tcp(C, S, 1000, 80, "PA", 900_000, 501, window=1000, payload=b"far away"),
            b.tcp(C, S, 1000, 80, "PA", 101, 501, window=1000, payload=b"fine")]


def test_be_liberal_changes_only_the_out_of_window_packet() -> None:
    result = compare(pairs(out_of_window()), side({}), side({"nf_conntrack_tcp_be_liberal": 1}))
    assert [d.number for d in result.differences] == [4]
    diff = result.differences[0]
    assert (diff.a.ctstate, diff.a.verdict) == ("INVALID", "DROP")
    assert (diff.b.ctstate, diff.b.verdict) == ("ESTABLISHED", "ACCEPT")
    assert diff.flow == "tcp 10.0.0.1:1000 <-> 10.0.1.1:80"
    assert result.summary_line().startswith("1 of 5 packets differ")


def test_small_table_shows_which_connections_are_evicted() -> None:
    datagrams = [b.udp(C, S, 5000 + i, 53, b"q") for i in range(6)]
    result: CompareResult = compare(pairs(datagrams), side({}, None),
                                    side({"nf_conntrack_max": 2, "nf_conntrack_buckets": 1},
                                         None))
    assert result.differences == []  # evictions change no verdict here
    assert result.evicted_a == []
    evicted_ports = [e.body.split("sport=")[1].split()[0] for e in result.evicted_b]
    assert evicted_ports == ["5001", "5000", "5003", "5002"]  # newest first in a chain


def test_flow_label_is_the_same_both_ways() -> None:
    there = decode_datagram(b.tcp(C, S, 1000, 80, "S", 1))
    back = decode_datagram(b.tcp(S, C, 80, 1000, "SA", 1, 2))
    assert flow_label(there) == flow_label(back)


def test_compare_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture, rules = tmp_path / "c.pcap", tmp_path / "r.rules"
    write_pcap(capture, [(T0 + i, b.ethernet(d)) for i, d in enumerate(out_of_window())])
    rules.write_text(DROP_INVALID)
    assert main(["compare", str(capture), "--rules", str(rules),
                 "--sysctl-b", "nf_conntrack_tcp_be_liberal=1"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "tcp 10.0.0.1:1000 <-> 10.0.1.1:80: 1 packets differ"
    assert out[2].startswith("      A: INVALID DROP by filter")
    assert out[3].startswith("      B: ESTABLISHED/ORIGINAL ACCEPT by filter")
    assert main(["compare", str(capture)]) == 2  # nothing to compare


@pytest.mark.kernel
@pytest.mark.shared
def test_be_liberal_differences_are_the_kernels(kernel: None, shared: Path) -> None:
    from statewall.oracle.verify import verify_capture

    path = shared / "traces" / "tcp-out-of-window-data-crafted.pcap"
    answers = []
    for liberal in (0, 1):
        run = verify_capture(path, DROP_INVALID, None, {"nf_conntrack_tcp_be_liberal": liberal})
        assert run.ok, run.disagreements
        answers.append({p.number: (p.kernel.ctstate, p.kernel.outcome) for p in run.packets})
    kernel_differs = sorted(n for n in answers[0] if answers[0][n] != answers[1][n])
    assert kernel_differs  # the capture does exercise the window check

    def both() -> Iterator[tuple[Packet, Packet]]:
        return zip(read_packets(path), read_packets(path), strict=True)

    result = compare(both(), side({}), side({"nf_conntrack_tcp_be_liberal": 1}))
    assert [d.number for d in result.differences] == kernel_differs
