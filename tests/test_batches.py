"""Results in bulk: `Firewall.replay_batches` yields columnar batches that say
exactly what the per-packet values say, and a broken capture still hands over
every packet read before its error."""

from __future__ import annotations

from pathlib import Path

import pytest

from statewall import builder as b
from statewall.capture import CaptureError
from statewall.capture.writer import write_pcap
from statewall.decode.stream import read_packets
from statewall.engine import VERDICTS, Firewall
from statewall.rules.hooks import IptablesEngine, compile_text

C, S = "192.0.2.10", "198.51.100.20"
RULES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -p tcp --dport 80 -j ACCEPT
COMMIT
"""


def frames() -> list[tuple[float, bytes]]:
    packets = [
        b.tcp(C, S, 40000, 80, "S", 100),
        b.tcp(S, C, 80, 40000, "SA", 500, 101),
        b.tcp(C, S, 40000, 80, "A", 101, 501),
        b.tcp(C, S, 40001, 22, "S", 7),  # dropped by the policy
        b.tcp(C, S, 40002, 80, "SF", 1),  # INVALID
        b.udp(C, S, 5000, 53, b"q"),  # dropped by the policy
    ]
    return [(1_700_000_000.0 + i * 0.25, b.ethernet(p)) for i, p in enumerate(packets)]


def firewall() -> Firewall:
    return Firewall(rules=IptablesEngine(compile_text(RULES, "t.rules", 4), None))


def test_batch_rows_equal_the_per_packet_results(tmp_path: Path) -> None:
    capture = tmp_path / "t.pcap"
    write_pcap(capture, frames())
    batches = list(firewall().replay_batches(str(capture)))
    one_by_one = firewall()
    expected = [one_by_one.process(p) for p in read_packets(capture)]
    rows = [batch.row(i) for batch in batches for i in range(len(batch))]
    assert [r.verdict for r in rows] == ["ACCEPT", "ACCEPT", "ACCEPT", "DROP", "DROP", "DROP"]
    assert rows == [
        type(v)(v.index, v.ts, v.verdict, v.ctstate, v.ctdir, v.status, v.rule, v.reason,
                v.summary, v.proto, v.tcp_state, v.conn) for v in expected]
    batch = batches[0]
    assert [VERDICTS[v] for v in batch.verdict] == [r.verdict for r in rows]
    assert batch.ctinfo.tolist() == [2, 3, 0, 2, 5, 2]  # NEW, reply, ESTABLISHED ... INVALID
    assert memoryview(batch.ts).format == "d" and len(memoryview(batch.index)) == 6
    assert [str(rule) for rule in batch.rules] == [
        "filter FORWARD #3", "filter FORWARD #2", "filter FORWARD policy",
        "filter FORWARD #1"]


def test_a_broken_capture_gives_its_packets_then_its_error(tmp_path: Path) -> None:
    capture = tmp_path / "cut.pcap"
    write_pcap(capture, frames())
    data = capture.read_bytes()
    capture.write_bytes(data[:-10])  # the last record loses its tail
    fw = firewall()
    seen = 0
    with pytest.raises(CaptureError, match="truncated"):
        for batch in fw.replay_batches(str(capture)):
            seen += len(batch)
    assert seen == 5
