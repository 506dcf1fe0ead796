"""Source NAT remembers each source's mapping (the kernel's bysource hash):
a new connection from an address and port already translated keeps that
translation whatever its destination (nf_nat_core's get_unique_tuple, step
1), while a new source gets an address from the range by a hash of its
addresses (find_best_ips_proto), so different destinations spread it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from statewall import builder as b
from statewall.capture.writer import write_pcap
from statewall.cli import EXIT_OK, main

RULES = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o wan -j SNAT --to-source 203.0.113.10-203.0.113.20
COMMIT
"""
SERVERS = [f"198.51.100.{n}" for n in range(1, 9)]


def translated(tmp_path: Path, capsys: pytest.CaptureFixture[str],
               syns: list[tuple[str, int, str]]) -> list[tuple[str, int]]:
    """Where each SYN (client, port, server) leaves the router."""
    rules = tmp_path / "snat.v4"
    rules.write_text(RULES)
    capture = tmp_path / "syns.pcap"
    write_pcap(capture, [(1.0 + i, b.ethernet(b.tcp(client, server, port, 80, "S")))
                         for i, (client, port, server) in enumerate(syns)])
    code = main(["replay", str(capture), "--rules", str(rules), "--format", "jsonl",
                 "--iface", "lan=192.0.2.1/24", "--iface", "wan=203.0.113.1/24,0.0.0.0/0"])
    assert code == EXIT_OK
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [(r["leaves"]["src"], r["leaves"]["sport"]) for r in records]


def test_a_translated_source_keeps_its_mapping(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    leaves = translated(tmp_path, capsys, [("192.0.2.10", 40000, s) for s in SERVERS])
    assert len(set(leaves)) == 1
    assert leaves[0][1] == 40000


def test_new_sources_spread_over_the_range(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    # The same destinations from as many addresses: nothing to remember, the
    # hash of each pair picks the address.
    leaves = translated(tmp_path, capsys,
                        [(f"192.0.2.{10 + i}", 40000, s) for i, s in enumerate(SERVERS)])
    assert len({address for address, _ in leaves}) > 1
