"""The table under load and over time: nf_conntrack_max, early drop, GC, expiry.

Facts from conntrack-core.md §7 and §8 (nf_conntrack_core.c: __nf_conntrack_alloc,
early_drop, early_drop_list, gc_worker). nf_conntrack_max is global and
read-only inside a network namespace, so early drop cannot be checked
against the live kernel here (it needs a disposable VM, spec fact 15):
these tests pin the spec's rules, on captures built in code, and assert
only what holds whatever the kernel's random hash puts in which bucket.
Expiry by the capture clock is checked against the kernel elsewhere
(verify); here long idle gaps are replayed directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from ctharness import IPS_ASSURED

from statewall import builder as b
from statewall.capture.writer import write_pcap
from statewall.cli import main
from statewall.config import Sysctls
from statewall.decode import decode_datagram
from statewall.engine import Firewall
from statewall.events import CAUSE_EARLY_DROP, CAUSE_GC_EARLY_DROP, ConntrackEvent
from statewall.verdict import PacketVerdict

CLIENT, SERVER, FLOODER = "10.0.0.1", "10.0.1.1", "10.9.9.9"
T0 = 1_700_000_000.0


def replay(packets: Sequence[tuple[float, bytes]], **knobs: int
           ) -> tuple[Firewall, list[PacketVerdict], list[ConntrackEvent]]:
    events: list[ConntrackEvent] = []
    firewall = Firewall(cfg=Sysctls().with_values(knobs), event_sink=events.append)
    verdicts = [firewall.process(decode_datagram(data, index=i, ts=ts))
                for i, (ts, data) in enumerate(packets)]
    return firewall, verdicts, events


def handshake(sport: int, at: float, client: str = CLIENT) -> list[tuple[float, bytes]]:
    return [(at, b.tcp(client, SERVER, sport, 80, "S", 100)),
            (at + 0.001, b.tcp(SERVER, client, 80, sport, "SA", 500, 101)),
            (at + 0.002, b.tcp(client, SERVER, sport, 80, "A", 101, 501))]


def syn(sport: int, at: float) -> tuple[float, bytes]:
    return at, b.tcp(FLOODER, SERVER, sport, 80, "S", 1)


def assured_pair(at: float = T0) -> list[tuple[float, bytes]]:
    return handshake(1000, at) + handshake(1001, at + 0.01)


def test_syn_flood_evicts_only_unassured_entries() -> None:
    flood = [syn(2000 + i, T0 + 1 + i * 0.01) for i in range(40)]
    firewall, verdicts, events = replay(assured_pair() + flood, nf_conntrack_max=4,
                                        nf_conntrack_buckets=4)
    assert all(v.verdict == "ACCEPT" and v.ctstate == "NEW" for v in verdicts[6:])
    live = firewall.connections()
    assert len(live) <= 4
    assert sum(1 for c in live if c.status & IPS_ASSURED) == 2
    evicted = [e for e in events if e.cause == CAUSE_EARLY_DROP]
    assert evicted and all("sport=20" in e.body and "[ASSURED]" not in e.body for e in evicted)
    assert firewall.stats()["early_drop"] == len(evicted)
    assert firewall.stats()["drop"] == 0


def test_eviction_destroy_event_keeps_its_timeout_column() -> None:
    """Early drop deletes a live entry: ctnetlink still sends the time it had left."""
    flood = [syn(2000 + i, T0 + 1 + i * 0.01) for i in range(8)]
    _, _, events = replay(assured_pair() + flood, nf_conntrack_max=3, nf_conntrack_buckets=1)
    evicted = [e for e in events if e.cause == CAUSE_EARLY_DROP]
    assert evicted
    assert all(e.line().startswith("[DESTROY] tcp      6 119 SYN_SENT ") for e in evicted)


def test_full_table_of_assured_entries_drops_the_new_connection() -> None:
    firewall, verdicts, events = replay(assured_pair() + [syn(3000, T0 + 5)],
                                        nf_conntrack_max=2)
    last = verdicts[-1]
    assert last.verdict == "DROP"
    assert "conntrack table full, no entry could be evicted (nf_conntrack_max=2)" in last.reason
    assert last.conn is None
    assert len(firewall.connections()) == 2
    assert firewall.stats()["drop"] == 1 and firewall.stats()["early_drop"] == 0
    assert not [e for e in events if e.ts == T0 + 5]  # no entry, so no event


def test_existing_connections_still_pass_when_the_table_is_full() -> None:
    data = (T0 + 6, b.tcp(CLIENT, SERVER, 1000, 80, "PA", 101, 501, payload=b"GET /"))
    _, verdicts, _ = replay(assured_pair() + [syn(3000, T0 + 5), data], nf_conntrack_max=2)
    assert verdicts[-1].verdict == "ACCEPT" and verdicts[-1].ctstate == "ESTABLISHED"


def test_an_invalid_packet_also_needs_room_when_the_table_is_full() -> None:
    """TCP validates after allocation (tcp_error runs in nf_conntrack_tcp_packet)."""
    bad = (T0 + 5, b.tcp(FLOODER, SERVER, 3000, 80, "S", 1, bad_checksum=True))
    full, verdicts, _ = replay(assured_pair() + [bad], nf_conntrack_max=2)
    assert verdicts[-1].verdict == "DROP" and full.stats()["drop"] == 1
    _, roomy, _ = replay(assured_pair() + [bad], nf_conntrack_max=3)
    assert roomy[-1].ctstate == "INVALID" and roomy[-1].verdict == "ACCEPT"


def test_unlimited_table_when_max_is_zero() -> None:
    flood = [syn(2000 + i, T0 + 1 + i * 0.01) for i in range(20)]
    firewall, verdicts, _ = replay(flood, nf_conntrack_max=0)
    assert len(firewall.connections()) == 20 and firewall.stats()["early_drop"] == 0


def _closing(sport: int, at: float) -> list[tuple[float, bytes]]:
    """An ASSURED connection left in FIN_WAIT: evictable by the GC (tcp_can_early_drop)."""
    return handshake(sport, at) + [
        (at + 0.003, b.tcp(CLIENT, SERVER, sport, 80, "FA", 101, 501))]


def test_gc_early_drop_mode_after_a_table_full_drop() -> None:
    """§7.3: after a drop the GC kills evictable ASSURED entries while count >= 95 %."""
    packets: list[tuple[float, bytes]] = []
    for i in range(96):
        packets += handshake(10000 + i, T0 + i * 0.01)
    for i in range(4):
        packets += _closing(20000 + i, T0 + 2 + i * 0.01)
    packets += [syn(3000, T0 + 10), syn(3001, T0 + 10.5), syn(3002, T0 + 12)]
    firewall, verdicts, events = replay(packets, nf_conntrack_max=100)
    assert [v.verdict for v in verdicts[-3:]] == ["DROP", "DROP", "ACCEPT"]
    gc_kills = [e for e in events if e.cause == CAUSE_GC_EARLY_DROP]
    assert len(gc_kills) == 4 and all("FIN_WAIT" in e.body for e in gc_kills)
    assert all(e.ts == T0 + 11 for e in gc_kills)  # its earliest run, 1 s after the drop
    assert firewall.stats()["drop"] == 2 and firewall.stats()["early_drop"] == 0
    states = sorted(c.state for c in firewall.connections())
    assert states == ["ESTABLISHED"] * 96 + ["SYN_SENT"]


def test_gc_early_drop_never_runs_below_100_entries() -> None:
    """nf_conntrack_max / 100 * 95 in integers is 0 below 100: the mode does nothing."""
    packets = handshake(1000, T0) + _closing(1001, T0 + 0.1)
    packets += [syn(3000, T0 + 5), syn(3001, T0 + 20)]
    _, verdicts, events = replay(packets, nf_conntrack_max=2)
    assert [v.verdict for v in verdicts[-2:]] == ["DROP", "DROP"]
    assert not [e for e in events if e.cause == CAUSE_GC_EARLY_DROP]


# --- timeouts over long captures -------------------------------------------------------


def test_entries_expire_by_the_capture_clock_across_long_idle_gaps() -> None:
    query = b.udp(CLIENT, SERVER, 5000, 53, b"q")
    answer = b.udp(SERVER, CLIENT, 53, 5000, b"a")
    gap = 3 * 24 * 3600.0
    packets = [(T0, query), (T0 + 0.1, answer), (T0 + 29, query), (T0 + 29 + 121, query),
               (T0 + gap, query)]
    firewall, verdicts, events = replay(packets)
    assert [v.ctstate for v in verdicts] == ["NEW", "ESTABLISHED", "ESTABLISHED", "NEW", "NEW"]
    destroys = [e for e in events if e.kind == "DESTROY"]
    # Refreshed to 120 s (udp_timeout_stream) at T0+29, expired at T0+149, not before.
    assert [e.ts for e in destroys] == [T0 + 29 + 120, T0 + 150 + 30]
    assert all(e.cause == "timeout" for e in destroys)
    assert destroys[0].line() == ("[DESTROY] udp      17 src=10.0.0.1 dst=10.0.1.1 sport=5000 "
                                  "dport=53 src=10.0.1.1 dst=10.0.0.1 sport=53 dport=5000 [ASSURED]")


def test_expired_entries_free_their_room_without_early_drop() -> None:
    packets = [(T0, b.udp(CLIENT, SERVER, 5000 + i, 53, b"q")) for i in range(2)]
    packets.append((T0 + 31, b.udp(CLIENT, SERVER, 6000, 53, b"q")))
    firewall, verdicts, _ = replay(packets, nf_conntrack_max=2)
    assert verdicts[-1].ctstate == "NEW" and verdicts[-1].verdict == "ACCEPT"
    assert firewall.stats()["early_drop"] == 0 and firewall.count == 1


def test_established_tcp_lives_five_days_by_default() -> None:
    packets = handshake(1000, T0)
    late = b.tcp(CLIENT, SERVER, 1000, 80, "PA", 101, 501, payload=b"x")
    _, alive, _ = replay([*packets, (T0 + 431999, late)])
    _, dead, _ = replay([*packets, (T0 + 432001, late)])
    assert alive[-1].ctstate == "ESTABLISHED"
    assert dead[-1].ctstate == "NEW"  # picked up again mid-stream (nf_conntrack_tcp_loose=1)


def _write(path: Path, packets: Sequence[tuple[float, bytes]]) -> str:
    write_pcap(path, [(ts, b.ethernet(data)) for ts, data in packets])
    return str(path)


@pytest.mark.parametrize(("at", "expected"), [("0.05", 1), ("29.9", 1), ("30.5", 0),
                                              ("100", 1), ("131", 0)])
def test_table_at_any_instant(tmp_path: Path, capsys: pytest.CaptureFixture[str], at: str,
                              expected: int) -> None:
    packets = [(T0, b.udp(CLIENT, SERVER, 5000, 53, b"q")),
               (T0 + 100, b.udp(CLIENT, SERVER, 5001, 53, b"q"))]
    capture = _write(tmp_path / "gap.pcap", packets)
    assert main(["table", capture, "--at", at]) == 0
    assert len(capsys.readouterr().out.splitlines()) == expected
