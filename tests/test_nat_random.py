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


def test_a_single_port_is_no_random_choice(tmp_path: Path) -> None:
    """DNAT to one other port: the kernel draws a random offset into a range of
    one port, so every connection gets that port and the reason says nothing of
    chance (test_nat_kernel's port forward pins the port against the kernel)."""
    capture, rules = tmp_path / "forward.pcap", tmp_path / "nat.rules"
    rules.write_text(nat_table("-A PREROUTING -i wan -p tcp --dport 80 "
                               "-j DNAT --to-destination 192.168.1.2:8080"))
    write_pcap(capture, [(1.0 + n, b.ethernet(b.tcp(f"198.51.100.{20 + n}", "203.0.113.1",
                                                    40000, 80, "S", 1)))
                         for n in range(3)])
    for seed in (1, 2):
        for verdict in statewall.replay(capture, rules=rules, ifaces=IFACES, seed=seed):
            assert verdict.leaves is not None and verdict.leaves.dport == 8080
            assert not verdict.nat[0].random
            assert "DNAT 203.0.113.1:80 → 192.168.1.2:8080 by nat PREROUTING #1" in verdict.reason
            assert "random" not in verdict.reason
