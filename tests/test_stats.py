"""`conntrack -S` counters: what Linux 6.x counts, printed as conntrack-tools prints it.

Semantics from nf_conntrack_core.c (nf_conntrack_in, __nf_conntrack_alloc,
early_drop, nf_conntrack_handle_icmp) and checked against the live kernel
in the kernel-marked test: `found` and `insert` stay 0 on the packet path,
a tracker's refusal counts as `invalid`, an ICMP error-handler failure only
as `error`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from statewall import builder as b
from statewall.capture.writer import write_pcap
from statewall.cli import main
from statewall.decode import decode_datagram
from statewall.engine import Firewall

C, S = "10.99.1.1", "10.99.2.1"
T0 = 1_700_000_000.0


def mixed() -> list[tuple[bytes, int]]:
    """Datagrams and the side (0 client, 1 server) they arrive on."""
    return [
        (b.tcp(C, S, 1000, 80, "S", 100), 0),
        (b.tcp(S, C, 80, 1000, "SA", 500, 101), 1),
        (b.tcp(C, S, 1000, 80, "A", 101, 501), 0),
        (b.tcp(C, S, 1000, 80, "A", 101, 501, bad_checksum=True), 0),  # invalid
        (b.tcp(C, S, 1001, 80, "A", 101, 501, bad_checksum=True), 0),  # invalid
        (b.tcp(C, S, 1002, 80, "SA", 101, 501), 0),  # SYN/ACK cannot open: invalid
        (b.udp(C, S, 5000, 53, b"q"), 0),
        (b.icmp_error(S, C, 3, 3, b.udp(C, S, 5999, 53, b"q")), 1),  # unknown flow: error
        (b.icmp_error(S, C, 3, 3, b.udp(C, S, 5000, 53, b"q")), 1),  # RELATED: nothing
        (b.tcp(C, S, 1003, 80, "S", 1), 0),
        (b.tcp(S, C, 80, 1003, "RA", 0, 2), 1),  # RST before reply: deleted, not counted
        (b.tcp(C, S, 1000, 80, "S", 5000), 0),
    ]


def statewall_stats() -> dict[str, int]:
    firewall = Firewall()
    for i, (data, _side) in enumerate(mixed()):
        firewall.process(decode_datagram(data, index=i, ts=T0 + i * 0.001))
    return firewall.stats()


def test_counters_follow_the_kernel_semantics() -> None:
    stats = statewall_stats()
    names = ("found", "insert", "invalid", "error", "drop", "early_drop", "search_restart")
    assert tuple(stats[name] for name in names) == (0, 0, 3, 1, 0, 0, 0)


def test_stats_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = tmp_path / "m.pcap"
    write_pcap(capture, [(T0 + i, b.ethernet(d)) for i, (d, _) in enumerate(mixed())])
    assert main(["stats", str(capture)]) == 0
    assert capsys.readouterr().out == (
        "cpu=0   \tfound=0 invalid=3 insert=0 insert_failed=0 drop=0 early_drop=0 error=1 "
        "search_restart=0 clash_resolve=0 chaintoolong=0 \n")
    flood = tmp_path / "f.pcap"
    write_pcap(flood, [(T0 + i, b.ethernet(b.udp(C, S, 7000 + i, 53))) for i in range(5)])
    assert main(["stats", str(flood), "--sysctl", "nf_conntrack_max=2",
                 "--sysctl", "nf_conntrack_buckets=1"]) == 0
    # One chain: the 3rd flow evicts both others, the 4th fits, the 5th evicts two again.
    assert "early_drop=4 " in capsys.readouterr().out


def _sum(lines: list[str]) -> dict[str, int]:
    total: dict[str, int] = {}
    for line in lines:
        for name, value in re.findall(r"(\w+)=(\d+)", line):
            if name != "cpu":
                total[name] = total.get(name, 0) + int(value)
    return total


@pytest.mark.kernel
def test_counters_match_the_kernel(kernel: None) -> None:
    from statewall.oracle.kernel import KernelFirewall

    with KernelFirewall(None) as fw:
        for data, side in mixed():
            fw.send(data, side)
        kernel_total = _sum(fw.stats())
    ours = Firewall()
    for i, (data, _side) in enumerate(mixed()):
        ours.process(decode_datagram(data, index=i, ts=T0 + i * 0.001))
    assert kernel_total == _sum(ours.stat_lines("conntrack"))
