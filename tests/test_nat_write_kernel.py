"""What `replay -w` writes for translated packets, byte for byte against the kernel.

The oracle's firewall masquerades what goes from `swl` to `swr` (it owns
203.0.113.1 and 2001:db8:2::1 there); each datagram is injected on its side and
the frame that reaches the endpoint on the other side is what the kernel sent.
statewall replays the same datagrams with the same topology and writes them with
`-w`. The bytes must be the same but for what forwarding itself changes and
statewall does not model: TTL and hop limit (decremented), and with the TTL the
IPv4 header checksum, which both sides must still get right. With
nf_conntrack_checksum off, a segment whose checksum was wrong on arrival is
translated too: its checksum must stay wrong by the same amount in both.
"""

from __future__ import annotations

import ipaddress
import json
import select
import socket
import time
from pathlib import Path

import pytest
from conftest import nat_table

from statewall import builder as b
from statewall.capture import LINKTYPE_RAW, open_capture, write_pcap
from statewall.checksum import internet_checksum
from statewall.cli import EXIT_OK, main
from statewall.oracle import netns
from statewall.oracle.egress import ETH_HEADER, ETH_P_ALL, PACKET_IGNORE_OUTGOING, SOL_PACKET
from statewall.oracle.kernel import KernelFirewall

LAN4, WAN4, FAR4 = "192.0.2.10", "203.0.113.1", "198.51.100.20"
LAN6, WAN6, FAR6 = "2001:db8:1::10", "2001:db8:2::1", "2001:db8:3::20"
RULES = nat_table("-A POSTROUTING -o swr -j MASQUERADE") + """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
"""
ROUTES = ("addr add 192.0.2.1/24 dev swl", f"addr add {WAN4}/24 dev swr",
          "addr add 2001:db8:1::1/64 dev swl nodad", f"addr add {WAN6}/64 dev swr nodad")
IFACES = ["--iface", "swl=192.0.2.1/24,2001:db8:1::1/64",
          "--iface", f"swr={WAN4}/24,0.0.0.0/0,{WAN6}/64,::/0"]
SYSCTL = "nf_conntrack_checksum"
ARRIVAL_TIMEOUT = 1.0


def datagrams() -> list[tuple[bytes, int]]:
    """(datagram, side it enters on): connections from the left, their replies and
    errors from the right, the errors quoting what the kernel sent out."""
    quoted_udp = b.udp(WAN4, FAR4, 5353, 53, b"query")
    quoted_tcp6 = b.tcp(WAN6, FAR6, 40000, 443, "S", 1)
    quoted_tcp = b.tcp(WAN4, FAR4, 40000, 80, "S", 100)
    return [
        (b.tcp(LAN4, FAR4, 40000, 80, "S", 100, payload=b""), 0),
        (b.tcp(FAR4, WAN4, 80, 40000, "SA", 500, 101), 1),
        (b.tcp(LAN4, FAR4, 40000, 80, "A", 101, 501, payload=b"GET /", bad_checksum=True), 0),
        (b.udp(LAN4, FAR4, 5353, 53, b"query"), 0),
        (b.icmp_error(FAR4, WAN4, 3, 3, quoted_udp, quote_len=len(quoted_udp)), 1),
        (b.icmp_error(FAR4, WAN4, 3, 3, quoted_udp), 1),
        # 18 bytes of TCP: the checksum field but not the whole header.
        (b.icmp_error(FAR4, WAN4, 3, 3, quoted_tcp, quote_len=20 + 18), 1),
        # 6 bytes of TCP: the ports, too little for NAT to rewrite.
        (b.icmp_error(FAR4, WAN4, 3, 3, quoted_tcp, quote_len=20 + 6), 1),
        (b.udp(LAN4, FAR4, 6000, 7000, b"x", no_checksum=True), 0),
        (b.icmp_echo(LAN4, FAR4, 7, 1, payload=b"ping"), 0),
        (b.icmp_echo(FAR4, WAN4, 7, 1, reply=True, payload=b"ping"), 1),
        (b.tcp(LAN6, FAR6, 40000, 443, "S", 1), 0),
        (b.icmpv6_error(FAR6, WAN6, 1, 4, quoted_tcp6), 1),
        (b.udp(LAN6, FAR6, 5000, 53, b"q6"), 0),
        (b.icmpv6_echo(LAN6, FAR6, 9, 1, payload=b"ping6"), 0),
    ]


def chatter(datagram: bytes) -> bool:
    """The firewall's own IPv6 multicast (MLD, neighbour discovery), not a forwarded
    packet: nothing here is sent to a multicast address."""
    return datagram[:1] >= b"\x60" and datagram[24:25] == b"\xff"


def kernel_sends(items: list[tuple[bytes, int]]) -> list[bytes | None]:
    """What reaches the far endpoint for each datagram (None: nothing)."""
    sent: list[bytes | None] = []
    with KernelFirewall(RULES, RULES, {SYSCTL: 0}, routes=ROUTES) as kernel:
        assert kernel.topology is not None
        sockets = []
        for side in (0, 1):
            with netns.entered(kernel.topology.endpoint(side)):
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sockets.append(sock)
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            sock.bind((netns.ENDPOINT_IF, ETH_P_ALL))
        try:
            for datagram, side in items:
                far = sockets[1 - side]
                far.setblocking(False)
                while True:
                    try:
                        far.recv(65536)
                    except BlockingIOError:
                        break
                kernel.send(datagram, side)
                sent.append(arrival(far))
        finally:
            for sock in sockets:
                sock.close()
    return sent


def arrival(sock: socket.socket) -> bytes | None:
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            break
        datagram = sock.recv(65536)[ETH_HEADER:]
        if not chatter(datagram):
            return datagram
    return None


def statewall_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str], items: list[tuple[bytes, int]]
                     ) -> tuple[list[str], list[bytes]]:
    """The verdicts and the datagrams written."""
    capture, rules, out = tmp_path / "in.pcap", tmp_path / "rules", tmp_path / "out.pcapng"
    write_pcap(capture, [(1_700_000_000.0 + i, d) for i, (d, _) in enumerate(items)],
               linktype=LINKTYPE_RAW)
    rules.write_text(RULES)
    code = main(["replay", str(capture), "--rules", str(rules), "--rules6", str(rules),
                 *IFACES, "--sysctl", f"{SYSCTL}=0", "--format", "jsonl", "-w", str(out)])
    assert code == EXIT_OK
    verdicts = [json.loads(line)["verdict"] for line in capsys.readouterr().out.splitlines()
                if line.startswith("{")]
    with open_capture(out) as written:
        return verdicts, [frame.data for frame in written]


def normalised(datagram: bytes) -> bytes:
    """TTL (and the IPv4 header checksum) or hop limit zeroed, after checking the
    header checksum."""
    data = bytearray(datagram)
    if data[0] >> 4 == 4:
        header = data[:(data[0] & 15) * 4]
        assert internet_checksum(bytes(header)) == 0
        data[8] = 0
        data[10:12] = b"\0\0"
    else:
        data[7] = 0
    return bytes(data)


@pytest.mark.kernel
def test_written_packets_are_what_the_kernel_sends(
        kernel: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = datagrams()
    sent = kernel_sends(items)
    verdicts, ours = statewall_writes(tmp_path, capsys, items)
    assert len(verdicts) == len(ours) == len(items)
    # NAT drops the error whose quote is too short to rewrite; the rest go through.
    assert [n for n, d in enumerate(sent) if d is None] == [7]
    assert [n for n, v in enumerate(verdicts) if v != "ACCEPT"] == [7]
    for n, ((datagram, side), out, our_bytes) in enumerate(zip(items, sent, ours, strict=True)):
        if out is None:
            assert our_bytes == datagram, "a dropped packet is written as it arrived"
            continue
        # The kernel did translate: out with the router's address, back to the host's.
        v6 = datagram[0] >> 4 == 6
        src, dst = (out[8:24], out[24:40]) if v6 else (out[12:16], out[16:20])
        if side == 0:
            assert src == ipaddress.ip_address(WAN6 if v6 else WAN4).packed
        else:
            assert dst == ipaddress.ip_address(LAN6 if v6 else LAN4).packed
        assert normalised(our_bytes).hex() == normalised(out).hex(), f"datagram {n}"
