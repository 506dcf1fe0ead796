"""`replay -w` writes packets as they leave: translated by NAT, with the checksums
the kernel leaves (valid where they were valid), the link-layer header kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import nat_table

from statewall import builder as b
from statewall.capture import LINKTYPE_ETHERNET, open_capture, write_pcapng
from statewall.checksum import internet_checksum, l4_checksum_ok
from statewall.cli import EXIT_OK, main
from statewall.decode.stream import read_packets
from statewall.packet import Packet

START = 1_700_000_000.0
LAN4, WAN4, FAR4 = "192.0.2.10", "203.0.113.1", "198.51.100.20"
LAN6, WAN6, FAR6 = "2001:db8:1::10", "2001:db8:2::1", "2001:db8:3::20"
RULES = nat_table("-A POSTROUTING -o wan -j MASQUERADE") + """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
"""
IFACES = ["--iface", "lan=192.0.2.1/24,2001:db8:1::1/64",
          "--iface", f"wan={WAN4}/24,0.0.0.0/0,{WAN6}/64,::/0"]


def ip_int(text: str) -> int:
    import ipaddress

    return int(ipaddress.ip_address(text))


def masquerade_capture() -> list[bytes]:
    """A LAN host's traffic through a masquerading router, both directions: what
    arrives on each side, before translation."""
    quoted_udp4 = b.udp(WAN4, FAR4, 5353, 53, b"query")
    quoted_tcp6 = b.tcp(WAN6, FAR6, 40000, 443, "A", 1, 1, payload=b"data")
    datagrams = [
        b.tcp(LAN4, FAR4, 40000, 80, "S", 100),
        b.tcp(FAR4, WAN4, 80, 40000, "SA", 500, 101),
        b.udp(LAN4, FAR4, 5353, 53, b"query"),
        b.icmp_error(FAR4, WAN4, 3, 3, quoted_udp4, quote_len=len(quoted_udp4)),
        b.udp(LAN4, FAR4, 6000, 7000, no_checksum=True),
        b.icmp_echo(LAN4, FAR4, 7, 1),
        b.icmp_echo(FAR4, WAN4, 7, 1, reply=True),
        b.tcp(LAN6, FAR6, 40000, 443, "S", 1),
        b.tcp(FAR6, WAN6, 443, 40000, "SA", 9, 2),
        b.icmpv6_error(FAR6, WAN6, 1, 4, quoted_tcp6),
        b.udp(LAN6, FAR6, 5000, 53, b"q6"),
    ]
    return [b.ethernet(d, pad=True) for d in datagrams]


def checksums_valid(pkt: Packet) -> None:
    """Every checksum of a written packet verifies (ICMP errors: their quote's too,
    for as much of it as is quoted)."""
    if pkt.family == 4:
        assert internet_checksum(pkt.data[:pkt.l4_off]) == 0
    segment = pkt.data[pkt.l4_off:]
    if pkt.proto == 1:
        assert internet_checksum(segment) == 0
    elif not (pkt.proto == 17 and pkt.family == 4 and segment[6:8] == b"\0\0"):
        assert l4_checksum_ok(pkt.family, pkt.src, pkt.dst, pkt.proto, segment)


@pytest.fixture()
def written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[list[bytes], Path]:
    capture, rules, out = tmp_path / "home.pcapng", tmp_path / "home.rules", tmp_path / "out.pcapng"
    frames = masquerade_capture()
    write_pcapng(capture, [(START + i / 100, frame, 0) for i, frame in enumerate(frames)],
                 [(LINKTYPE_ETHERNET, "any")])
    rules.write_text(RULES)
    code = main(["replay", str(capture), "--rules", str(rules), "--rules6", str(rules),
                 *IFACES, "--summary-only", "-w", str(out)])
    assert code == EXIT_OK, capsys.readouterr()
    return frames, out


def test_packets_are_written_as_they_leave(written: tuple[list[bytes], Path]) -> None:
    _, out = written
    pkts = list(read_packets(out))
    addressing = [(p.src, p.dst, p.sport, p.dport) for p in pkts]
    lan4, wan4, far4 = ip_int(LAN4), ip_int(WAN4), ip_int(FAR4)
    lan6, wan6, far6 = ip_int(LAN6), ip_int(WAN6), ip_int(FAR6)
    assert addressing[:3] == [(wan4, far4, 40000, 80), (far4, lan4, 80, 40000),
                              (wan4, far4, 5353, 53)]
    assert addressing[3][:2] == (far4, lan4)
    assert addressing[4] == (wan4, far4, 6000, 7000)
    assert [(p.src, p.dst, p.icmp_id) for p in pkts[5:7]] == [(wan4, far4, 7), (far4, lan4, 7)]
    assert addressing[7:9] == [(wan6, far6, 40000, 443), (far6, lan6, 443, 40000)]
    assert addressing[9][:2] == (far6, lan6)
    assert addressing[10] == (wan6, far6, 5000, 53)
    for pkt in pkts:
        assert pkt.error is None
        checksums_valid(pkt)
    # The errors were translated back: they quote what the LAN host sent.
    for error, quoted in ((pkts[3], (lan4, far4, 5353, 53)), (pkts[9], (lan6, far6, 40000, 443))):
        assert error.inner is not None
        inner = error.inner
        assert (inner.src, inner.dst, inner.sport, inner.dport) == quoted
        if inner.family == 4:
            assert internet_checksum(inner.data[:inner.l4_off]) == 0
        # The whole quoted segment is there: its checksum was kept valid.
        assert l4_checksum_ok(inner.family, inner.src, inner.dst, inner.proto,
                              inner.data[inner.l4_off:])


def test_udp_without_checksum_keeps_none(written: tuple[list[bytes], Path]) -> None:
    _, out = written
    pkt = list(read_packets(out))[4]
    assert pkt.data[pkt.l4_off + 6:pkt.l4_off + 8] == b"\0\0"


def test_link_layer_and_padding_are_kept(written: tuple[list[bytes], Path]) -> None:
    frames, out = written
    with open_capture(out) as capture:
        data = [frame.data for frame in capture]
    assert len(data) == len(frames)
    for before, after in zip(frames, data, strict=True):
        assert len(after) == len(before)
        assert after[:14] == before[:14]
    # The UDP datagram without payload is padded to 60 bytes on the wire.
    assert data[4][14 + 28:] == frames[4][14 + 28:] == b"\0" * (60 - 14 - 28)
    # What NAT does not touch stays: TTL, sequence numbers, flags, window...
    assert data[0][14 + 8] == frames[0][14 + 8] == 64
    assert data[0][14 + 24:14 + 36] == frames[0][14 + 24:14 + 36]


def test_a_rewritten_ftp_command_is_written_as_it_leaves(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A NAT helper's rewrite is in the written bytes: the longer PORT command, its
    lengths and checksums, and the later segment's shifted sequence number."""
    capture, rules, out = tmp_path / "ftp.pcapng", tmp_path / "ftp.rules", tmp_path / "out.pcapng"
    raw = "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" \
          "-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n"
    rules.write_text(raw + RULES)
    c, s = 0x1000_0000, 0x7000_0000
    port = b"PORT 192,0,2,10,156,64\r\n"
    datagrams = [b.tcp(LAN4, FAR4, 40100, 21, "S", c),
                 b.tcp(FAR4, WAN4, 21, 40100, "SA", s, c + 1),
                 b.tcp(LAN4, FAR4, 40100, 21, "A", c + 1, s + 1),
                 b.tcp(LAN4, FAR4, 40100, 21, "PA", c + 1, s + 1, payload=b"USER a\r\n"),
                 b.tcp(LAN4, FAR4, 40100, 21, "PA", c + 9, s + 1, payload=port),
                 b.tcp(LAN4, FAR4, 40100, 21, "PA", c + 9 + len(port), s + 1,
                       payload=b"QUIT\r\n")]
    frames = [b.ethernet(d, pad=True) for d in datagrams]
    write_pcapng(capture, [(START + i / 100, frame, 0) for i, frame in enumerate(frames)],
                 [(LINKTYPE_ETHERNET, "any")])
    code = main(["replay", str(capture), "--rules", str(rules), *IFACES, "--summary-only",
                 "-w", str(out)])
    assert code == EXIT_OK, capsys.readouterr()
    pkts = list(read_packets(out))
    assert pkts[4].payload == b"PORT 203,0,113,1,156,64\r\n"
    assert pkts[5].seq == c + 9 + len(port) + 1
    for pkt in pkts:
        assert pkt.error is None
        checksums_valid(pkt)
