"""Where the kernel's NAT picks at random, statewall picks from a generator seeded
with --seed: the same seed repeats the choice, and the reason says so."""

from __future__ import annotations

from pathlib import Path

from conftest import nat_table

import statewall
from statewall import builder as b
from statewall.capture import write_pcap

RULES = nat_table("-A POSTROUTING -o wan -j MASQUERADE")
IFACES = {"lan": "192.168.1.1/24", "wan": ["203.0.113.1/24", "0.0.0.0/0"]}


def moved_port(tmp_path: Path, seed: int) -> tuple[int | None, str, bool]:
    capture, rules = tmp_path / "clash.pcap", tmp_path / "nat.rules"
    rules.write_text(RULES)
    # Two LAN hosts, the same source port, the same server: one source port is free.
    write_pcap(capture, [(1.0, b.ethernet(b.tcp("192.168.1.10", "198.51.100.20", 40000, 80,
                                                "S", 1))),
                         (2.0, b.ethernet(b.tcp("192.168.1.11", "198.51.100.20", 40000, 80,
                                                "S", 1)))])
    first, second = statewall.replay(capture, rules=rules, ifaces=IFACES, seed=seed)
    assert first.leaves is not None and first.leaves.sport == 40000
    assert not first.nat[0].random
    assert second.leaves is not None
    return second.leaves.sport, second.reason, second.nat[0].random


def test_a_port_clash_moves_the_port_at_random_repeatably(tmp_path: Path) -> None:
    port, reason, random = moved_port(tmp_path, 1)
    assert port is not None and 1024 <= port <= 65535 and port != 40000
    assert random and "port picked at random, repeatable with --seed" in reason
    assert moved_port(tmp_path, 1)[0] == port
    assert {moved_port(tmp_path, seed)[0] for seed in range(2, 8)} - {port}
