"""The packet builder, checked against tcpdump and against checksums recomputed here
with an implementation independent of statewall's."""

from __future__ import annotations

import ipaddress
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statewall import builder as b
from statewall.capture import write_pcap

TCPDUMP = shutil.which("tcpdump")
needs_tcpdump = pytest.mark.skipif(TCPDUMP is None, reason="tcpdump is not installed")

V4, W4 = "192.0.2.1", "198.51.100.2"
V6, W6 = "2001:db8::1", "2001:db8::2"


def ones_sum(data: bytes) -> int:
    """RFC 1071 arithmetic written out byte pair by byte pair (independent of statewall)."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


def verifies(data: bytes) -> bool:
    return ones_sum(data) == 0xFFFF


def split(datagram: bytes) -> tuple[bytes, bytes, int]:
    """(pseudo-header, layer-4 bytes, protocol) for a datagram without IPv6 extension headers."""
    if datagram[0] >> 4 == 4:
        ihl = (datagram[0] & 15) * 4
        total = struct.unpack_from("!H", datagram, 2)[0]
        l4 = datagram[ihl:total]
        proto = datagram[9]
        pseudo = datagram[12:20] + struct.pack("!xBH", proto, len(l4))
    else:
        l4 = datagram[40:]
        proto = datagram[6]
        pseudo = datagram[8:40] + struct.pack("!I3xB", len(l4), proto)
    return pseudo, l4, proto


def l4_verifies(datagram: bytes) -> bool:
    pseudo, l4, _ = split(datagram)
    return verifies(pseudo + l4)


def tcpdump_text(tmp_path: Path, datagrams: list[bytes]) -> list[str]:
    """tcpdump -vv's text for each datagram, framed in Ethernet, one string per packet."""
    assert TCPDUMP is not None
    path = tmp_path / "built.pcap"
    write_pcap(path, [(float(i), b.ethernet(d)) for i, d in enumerate(datagrams)])
    out = subprocess.run([TCPDUMP, "-r", str(path), "-nn", "-vv", "-t"], capture_output=True,
                         text=True, check=True).stdout
    packets: list[str] = []
    for line in out.splitlines():
        if line.startswith(("IP ", "IP6 ")):
            packets.append(line)
        else:
            packets[-1] += " " + line.strip()
    assert len(packets) == len(datagrams)
    return packets


# --- Headers and checksums --------------------------------------------------------------


def test_ipv4_header_fields_and_checksum() -> None:
    d = b.ipv4(V4, W4, 17, b"x" * 12, ttl=9, ident=0x1234, df=True, tos=0x10,
               options=b"\x94\x04\0\0")
    assert d[0] == 0x46 and d[1] == 0x10
    assert struct.unpack_from("!HHHBB", d, 2) == (36, 0x1234, 0x4000, 9, 17)
    assert d[12:16] == bytes([192, 0, 2, 1]) and d[16:20] == bytes([198, 51, 100, 2])
    assert verifies(d[:24])
    assert not verifies(b.ipv4(V4, W4, 17, b"", bad_checksum=True)[:20])


def test_ipv4_fragment_fields() -> None:
    d = b.ipv4(V4, W4, 17, b"", mf=True, frag_offset=1480)
    assert struct.unpack_from("!H", d, 6)[0] == 0x2000 | 185
    with pytest.raises(ValueError, match="multiple of 8"):
        b.ipv4(V4, W4, 17, b"", frag_offset=100)


def test_tcp_syn_options_are_laid_out_as_linux_sends_them() -> None:
    d = b.tcp(V4, W4, 40000, 80, "S", seq=1000, mss=1460, sack_perm=True,
              timestamp=(7, 0), wscale=7)
    seg = d[20:]
    sport, dport, seq, ack, off_flags, window = struct.unpack_from("!HHIIHH", seg)
    assert (sport, dport, seq, ack, window) == (40000, 80, 1000, 0, 65535)
    assert off_flags == (10 << 12) | 0x02
    assert seg[20:40] == bytes.fromhex("020405b4 0402 080a 00000007 00000000 01 030307")
    assert l4_verifies(d)


@pytest.mark.parametrize("src,dst", [(V4, W4), (V6, W6)])
def test_tcp_flags_payload_and_checksums(src: str, dst: str) -> None:
    d = b.tcp(src, dst, 1, 2, "FSRPAUEC", seq=2**32 - 1, ack=5, urg=3, payload=b"hello",
              sack=[(1, 2)])
    pseudo, seg, proto = split(d)
    assert proto == 6 and seg[13] == 0xFF and seg.endswith(b"hello")
    assert struct.unpack_from("!I", seg, 4)[0] == 2**32 - 1
    assert seg[20:32] == bytes.fromhex("0101050a 00000001 00000002")
    assert verifies(pseudo + seg)
    assert not l4_verifies(b.tcp(src, dst, 1, 2, "A", payload=b"hello", bad_checksum=True))


def test_tcp_rejects_unknown_flags_mixed_families_and_long_options() -> None:
    with pytest.raises(ValueError, match="unknown TCP flag"):
        b.tcp(V4, W4, 1, 2, "SX")
    with pytest.raises(ValueError, match="same address family"):
        b.tcp(V4, W6, 1, 2)
    with pytest.raises(ValueError, match="40 allowed"):
        b.tcp(V4, W4, 1, 2, sack=[(i, i + 1) for i in range(5)])


@pytest.mark.parametrize("src,dst", [(V4, W4), (V6, W6)])
def test_udp_length_and_checksum(src: str, dst: str) -> None:
    d = b.udp(src, dst, 5353, 53, b"query")
    _, seg, proto = split(d)
    assert proto == 17 and struct.unpack_from("!HHH", seg) == (5353, 53, 13)
    assert l4_verifies(d)
    assert not l4_verifies(b.udp(src, dst, 5353, 53, b"query", bad_checksum=True))


def test_udp_checksum_never_zero_and_optional_over_ipv4() -> None:
    assert b.udp(V4, W4, 1, 2, b"x", no_checksum=True)[26:28] == b"\0\0"
    # Find a payload whose checksum computes to zero: it must go out as 0xffff.
    for word in range(0x10000):
        d = b.udp(V4, W4, 1, 2, struct.pack("!H", word))
        pseudo, seg, _ = split(d)
        if ones_sum(pseudo + seg[:6] + b"\0\0" + seg[8:]) == 0xFFFF:
            assert seg[6:8] == b"\xff\xff"
            break
    else:
        pytest.fail("no payload gives a zero checksum")


def test_udplite_partial_coverage() -> None:
    d = b.udplite(V6, W6, 7, 9, b"0123456789abcdef", coverage=12)
    pseudo, seg, proto = split(d)
    assert proto == 136 and struct.unpack_from("!H", seg, 4)[0] == 12
    assert verifies(pseudo + seg[:12])  # pseudo-header carries the full length
    full = b.udplite(V4, W4, 7, 9, b"abc")
    assert l4_verifies(full)


def test_icmp_echo_and_errors_quote_the_offending_datagram() -> None:
    echo = b.icmp_echo(V4, W4, 0x4242, 7, payload=b"ping")
    assert echo[20:22] == b"\x08\x00" and struct.unpack_from("!HH", echo, 24) == (0x4242, 7)
    assert verifies(echo[20:])
    reply = b.icmp_echo(W4, V4, 0x4242, 7, reply=True)
    assert reply[20] == 0
    offending = b.tcp(V4, W4, 1000, 25, "PA", payload=b"x" * 100, options=b"\x01" * 4)
    error = b.icmp_error(W4, V4, 3, 4, offending, mtu=1400)
    assert error[20:22] == b"\x03\x04" and struct.unpack_from("!HH", error, 24) == (0, 1400)
    assert error[28:] == offending[:28]  # 20-byte header + 8 bytes
    assert verifies(error[20:]) and verifies(error[:20])
    assert b.icmp_error(W4, V4, 11, 0, offending, quote_len=1000)[28:] == offending
    with pytest.raises(ValueError, match="icmpv6"):
        b.icmp_echo(V6, W6, 1, 1)


def test_icmpv6_echo_and_error_size_limit() -> None:
    echo = b.icmpv6_echo(V6, W6, 9, 3, payload=b"abc")
    assert echo[6] == 58 and echo[40] == 128 and l4_verifies(echo)
    assert not l4_verifies(b.icmpv6_echo(V6, W6, 9, 3, bad_checksum=True))
    big = b.udp(V6, W6, 1, 2, b"z" * 3000)
    error = b.icmpv6_error(W6, V6, 2, 0, big, mtu=1280)
    assert len(error) == 1280 and struct.unpack_from("!I", error, 44)[0] == 1280
    assert error[48:] == big[:1232] and l4_verifies(error)


# --- IPv6 extension headers and fragmentation ------------------------------------------


def test_ipv6_extension_header_chain() -> None:
    d = b.ipv6(V6, W6, 17, b"payload!", ext_headers=[b.hop_by_hop(), b.destination_options()],
               flow=0xABCDE, tclass=0x20, hop_limit=3)
    word, length, first, hops = struct.unpack_from("!IHBB", d)
    assert (word, length, first, hops) == (0x6200_0000 | 0xABCDE, 24, 0, 3)
    assert d[40] == 60 and d[41] == 0  # hop-by-hop -> destination options, 8 bytes
    assert d[48] == 17 and d[42:44] == b"\x01\x04"  # PadN filling the header
    assert d[56:] == b"payload!"


def reassemble_v4(fragments: list[bytes]) -> bytes:
    payload = bytearray()
    for frag in fragments:
        ihl = (frag[0] & 15) * 4
        offset = (struct.unpack_from("!H", frag, 6)[0] & 0x1FFF) * 8
        assert offset == len(payload)
        assert verifies(frag[:ihl])
        payload += frag[ihl:]
    return bytes(payload)


def test_ipv4_fragments_carry_offsets_flags_and_copied_options() -> None:
    options = b"\x94\x04\0\0" + b"\x07\x07\x04" + b"\0" * 4 + b"\0"  # router alert, RR
    whole = b.ipv4(V4, W4, 17, b.udp_segment(V4, W4, 1, 2, bytes(range(100))), ident=99,
                   options=options)
    frags = b.fragment(whole, 48)
    assert [len(f) for f in frags] == [32 + 48, 24 + 48, 24 + 12]
    assert [struct.unpack_from("!HH", f, 4) for f in frags] == [
        (99, 0x2000), (99, 0x2000 | 6), (99, 12)]
    assert frags[1][20:24] == b"\x94\x04\0\0"  # copied flag set; record route is not copied
    assert reassemble_v4(frags) == whole[32:]


def test_ipv6_fragments_go_after_the_unfragmentable_part() -> None:
    whole = b.ipv6(V6, W6, 17, b.udp_segment(V6, W6, 1, 2, bytes(100)),
                   ext_headers=[b.hop_by_hop(), b.destination_options()])
    frags = b.fragment(whole, 64, ident=0xDEAD)
    assert len(frags) == 2
    for i, frag in enumerate(frags):
        assert frag[6] == 0 and frag[40] == 44  # hop-by-hop, then the Fragment header
        nh, _, word, ident = struct.unpack_from("!BBHI", frag, 48)
        assert (nh, word, ident) == (60, i * 64 | (1 - i), 0xDEAD)
        assert struct.unpack_from("!H", frag, 4)[0] == len(frag) - 40
    assert frags[0][56:] + frags[1][56:] == whole[48:]
    with pytest.raises(ValueError, match="multiple of 8"):
        b.fragment(whole, 60)


# --- Link layer -------------------------------------------------------------------------


def test_ethernet_ethertype_vlans_and_padding() -> None:
    d4 = b.icmp_echo(V4, W4, 1, 1)
    frame = b.ethernet(d4, src_mac="00:11:22:33:44:55", dst_mac=b"\xff" * 6, pad=True)
    assert frame[:12] == b"\xff" * 6 + bytes.fromhex("001122334455")
    assert frame[12:14] == b"\x08\x00" and len(frame) == 60 and frame[14:42] == d4
    qinq = b.ethernet(b.udp(V6, W6, 1, 2), vlan=[100, 0x2000 | 7])
    assert qinq[12:22] == bytes.fromhex("88a8 0064 8100 2007 86dd")


# --- An independent decoder: tcpdump ---------------------------------------------------


@needs_tcpdump
def test_tcpdump_agrees_on_fields_and_checksums(tmp_path: Path) -> None:
    datagrams = [
        b.tcp(V4, W4, 40000, 80, "S", seq=1000, mss=1460, sack_perm=True, timestamp=(7, 0),
              wscale=7, ttl=33, ident=5, df=True),
        b.tcp(V6, W6, 80, 40000, "SA", seq=1, ack=1001, window=512, payload=b"abc"),
        b.udp(V4, W4, 4000, 4001, b"abc"),
        b.udp(V6, W6, 4000, 4001, b"abc"),
        b.icmp_echo(V4, W4, 7, 1, payload=b"ping"),
        b.icmp_error(W4, V4, 3, 3, b.udp(V4, W4, 4000, 4001, b"abc")),
        b.icmpv6_echo(V6, W6, 7, 1, reply=True),
        b.icmpv6_error(W6, V6, 1, 4, b.udp(V6, W6, 4000, 4001, b"abc")),
    ]
    text = tcpdump_text(tmp_path, datagrams)
    for line in text:
        assert "incorrect" not in line and "bad" not in line and "wrong" not in line, line
    assert "ttl 33, id 5, offset 0, flags [DF], proto TCP (6), length 60" in text[0]
    assert ("Flags [S], cksum" in text[0] and "(correct), seq 1000, win 65535, options "
            "[mss 1460,sackOK,TS val 7 ecr 0,nop,wscale 7], length 0") in text[0]
    assert "2001:db8::1.80 > 2001:db8::2.40000: Flags [S.]" in text[1]
    assert "(correct), seq 1:4, ack 1001, win 512, length 3" in text[1]
    assert "[udp sum ok] UDP, length 3" in text[2] and "[udp sum ok] UDP, length 3" in text[3]
    assert "ICMP echo request, id 7, seq 1, length 12" in text[4]
    assert "udp port 4001 unreachable" in text[5]
    assert "[icmp6 sum ok] ICMP6, echo reply, id 7, seq 1" in text[6]
    assert "[icmp6 sum ok] ICMP6, destination unreachable, unreachable port" in text[7]


@needs_tcpdump
def test_tcpdump_sees_deliberately_bad_checksums(tmp_path: Path) -> None:
    text = tcpdump_text(tmp_path, [
        b.ipv4(V4, W4, 59, b"", bad_checksum=True),
        b.tcp(V4, W4, 1, 2, "S", bad_checksum=True),
        b.udp(V6, W6, 4000, 4001, b"abc", bad_checksum=True),
        b.icmp_echo(V4, W4, 1, 2, bad_checksum=True),
        b.icmpv6_echo(V6, W6, 1, 2, bad_checksum=True),
    ])
    assert "bad cksum" in text[0]
    assert "incorrect" in text[1]
    assert "bad udp cksum" in text[2]
    assert "wrong icmp cksum" in text[3]
    assert "bad icmp6 cksum" in text[4]


@needs_tcpdump
def test_tcpdump_reads_fragments_and_vlan_tags(tmp_path: Path) -> None:
    v4 = b.fragment(b.udp(V4, W4, 4000, 4001, bytes(100), ident=77), 32)
    v6 = b.fragment(b.udp(V6, W6, 4000, 4001, bytes(100)), 64, ident=9)
    text = tcpdump_text(tmp_path, v4 + v6)
    assert ["offset 0, flags [+]" in text[0], "offset 32, flags [+]" in text[1],
            "offset 96, flags [none]" in text[3]] == [True, True, True]
    assert "frag (0x00000009:0|64)" in text[4] and "frag (0x00000009:64|44)" in text[5]
    path = tmp_path / "vlan.pcap"
    write_pcap(path, [(0.0, b.ethernet(v4[0], vlan=[5, 6]))])
    assert TCPDUMP is not None
    out = subprocess.run([TCPDUMP, "-r", str(path), "-nn", "-e"], capture_output=True,
                         text=True, check=True).stdout
    assert "802.1Q-QinQ (0x88a8)" in out and "vlan 5" in out and "vlan 6" in out


# --- Properties -------------------------------------------------------------------------


addresses = st.one_of(
    st.tuples(st.ip_addresses(v=4), st.ip_addresses(v=4)),
    st.tuples(st.ip_addresses(v=6), st.ip_addresses(v=6)),
)


@given(pair=addresses, sport=st.integers(0, 65535), dport=st.integers(0, 65535),
       payload=st.binary(max_size=64), seq=st.integers(0, 2**32 - 1))
def test_checksums_always_verify(pair: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address,
                                               ipaddress.IPv4Address | ipaddress.IPv6Address],
                                 sport: int, dport: int, payload: bytes, seq: int) -> None:
    src, dst = str(pair[0]), str(pair[1])
    assert l4_verifies(b.tcp(src, dst, sport, dport, "PA", seq=seq, payload=payload))
    assert l4_verifies(b.udp(src, dst, sport, dport, payload))
    assert not l4_verifies(b.udp(src, dst, sport, dport, payload, bad_checksum=True))
    assert not l4_verifies(b.tcp(src, dst, sport, dport, payload=payload, bad_checksum=True))
