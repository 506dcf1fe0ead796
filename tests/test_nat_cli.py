"""The command line around NAT: the hint when MASQUERADE has no address to take,
and `statewall demo --router`."""

from __future__ import annotations

from pathlib import Path

import pytest

from statewall import builder as b
from statewall.capture import write_pcap
from statewall.cli import main
from statewall.demo import ROUTER_RULES


def test_masquerade_without_an_interface_address_is_hinted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules, capture = tmp_path / "router.rules", tmp_path / "c.pcap"
    rules.write_text(ROUTER_RULES)
    write_pcap(capture, [(1.0, b.ethernet(b.udp("192.168.1.10", "198.51.100.20", 1, 53)))])
    common = ["replay", str(capture), "--rules", str(rules)]
    assert main([*common, "--iface", "lan=192.168.1.0/24", "--iface", "wan=0.0.0.0/0"]) == 0
    out = capsys.readouterr().out
    assert "DROP by nat POSTROUTING #1 | UDP: no reply seen yet" in out
    assert "MASQUERADE: interface wan has no IPv4 address" in out
    assert out.endswith("hint: the IPv4 nat table uses MASQUERADE, which takes an interface's "
                        "address, and no interface has one: give it with --iface "
                        "NAME=ADDRESS/PREFIX (packets it matched were dropped)\n")
    assert main([*common, "--iface", "lan=192.168.1.1/24",
                 "--iface", "wan=203.0.113.1/24,0.0.0.0/0"]) == 0
    out = capsys.readouterr().out
    assert "MASQUERADE 192.168.1.10:1 → 203.0.113.1:1 by nat POSTROUTING #1" in out
    assert "hint:" not in out


def test_the_router_demo_shows_the_translated_table(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--router"]) == 0
    out = capsys.readouterr().out
    assert "DNAT 203.0.113.1:8080 → 192.168.1.20:80 by nat PREROUTING #1" in out
    table = out.split("conntrack -L at the end:\n", 1)[1]
    assert "src=198.51.100.99 dst=203.0.113.1 sport=51000 dport=8080 src=192.168.1.20" in table


def test_diff_sees_a_port_forward_moved_to_another_host(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new, capture = tmp_path / "old", tmp_path / "new", tmp_path / "c.pcap"
    old.write_text(ROUTER_RULES)
    new.write_text(ROUTER_RULES.replace("192.168.1.20:80", "192.168.1.21:80"))
    write_pcap(capture, [(1.0, b.ethernet(b.tcp("198.51.100.99", "203.0.113.1", 5000, 8080,
                                                "S", 1))),
                         (2.0, b.ethernet(b.udp("192.168.1.10", "198.51.100.20", 1, 53)))])
    code = main(["diff", str(capture), "--rules", str(old), "--rules-b", str(new),
                 "--iface", "lan=192.168.1.1/24", "--iface", "wan=203.0.113.1/24,0.0.0.0/0"])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[0] == ("filter FORWARD #3: leaves as 198.51.100.99:5000 > 192.168.1.20:80 -> "
                      "198.51.100.99:5000 > 192.168.1.21:80: 1 packet, 1 connection")
    assert out[-1].startswith("1 packet of 2 differs")


@pytest.mark.kernel
def test_verify_loads_ipsets_into_both_firewalls(
        kernel: None, made: list[str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    rules, sets, capture = tmp_path / "r", tmp_path / "sets", tmp_path / "c.pcap"
    rules.write_text("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
                     ":OUTPUT ACCEPT [0:0]\n"
                     "-A FORWARD -m set --match-set blocked src -j DROP\nCOMMIT\n")
    sets.write_text("create blocked hash:ip family inet hashsize 1024 maxelem 65536\n"
                    "add blocked 198.51.100.7\n")
    write_pcap(capture, [(1.0, b.ethernet(b.udp("198.51.100.7", "203.0.113.9", 1, 53))),
                         (2.0, b.ethernet(b.udp("198.51.100.8", "203.0.113.9", 1, 53)))])
    assert main(["verify", str(capture), "--rules", str(rules), "--ipset", str(sets)]) == 0
    assert capsys.readouterr().out == "2/2 packets agree, tables same\n"
