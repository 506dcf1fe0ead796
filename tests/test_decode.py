"""Decoding: link layers, IPv4/IPv6 header checks, extension headers, layer 4.

Expected values follow the kernel: ip_rcv_core / ip6_rcv_core checks, the
ipv6_skip_exthdr walk, tcp_options / tcp_sack parsing and the tuple layout
conntrack builds (ICMP id and type << 8 | code, PPTP call id).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statewall.capture import open_capture
from statewall.decode import SUPPORTED_LINKTYPES, decode_datagram, decode_frame, parse_tcp_options
from statewall.packet import ACK, SYN, Packet, TcpOptions

SRC4 = bytes([192, 0, 2, 1])
DST4 = bytes([198, 51, 100, 7])
SRC6 = bytes.fromhex("20010db8000000000000000000000001")
DST6 = bytes.fromhex("20010db8000000000000000000000002")
MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


# -- builders ---------------------------------------------------------------

def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(payload: bytes, proto: int = 6, *, frag: int = 0, ident: int = 0x1234,
         options: bytes = b"", ttl: int = 64, tos: int = 0, tot_len: int | None = None,
         src: bytes = SRC4, dst: bytes = DST4) -> bytes:
    ihl = 5 + len(options) // 4
    length = ihl * 4 + len(payload) if tot_len is None else tot_len
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, length, ident, frag, ttl, proto, 0,
                      src, dst) + options
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def ipv6(payload: bytes, nexthdr: int, *, src: bytes = SRC6, dst: bytes = DST6,
         hlim: int = 64, tclass: int = 0, plen: int | None = None) -> bytes:
    length = len(payload) if plen is None else plen
    return struct.pack("!IHBB", 6 << 28 | tclass << 20, length, nexthdr, hlim) + src + dst + payload


def tcp(sport: int = 40000, dport: int = 80, flags: int = SYN, seq: int = 1000, ack: int = 0,
        window: int = 65535, options: bytes = b"", data: bytes = b"") -> bytes:
    doff = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags, window, 0, 0) \
        + options + data


def udp(sport: int = 5353, dport: int = 53, data: bytes = b"") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def ether(payload: bytes, ethertype: int = 0x0800, dst: bytes = MAC_B, src: bytes = MAC_A,
          tags: tuple[int, ...] = ()) -> bytes:
    head = dst + src
    for tpid in tags:
        head += struct.pack("!HH", tpid, 100)
    return head + struct.pack("!H", ethertype) + payload


def ext(nexthdr: int, body_len8: int = 0) -> bytes:
    """A hop-by-hop/destination/routing header of (body_len8 + 1) * 8 bytes."""
    return bytes([nexthdr, body_len8]) + bytes(6 + 8 * body_len8)


def frag6(nexthdr: int, offset: int, more: bool, ident: int) -> bytes:
    return struct.pack("!BBHI", nexthdr, 0, offset | int(more), ident)


# -- link layers ------------------------------------------------------------

def test_ethernet_ipv4_tcp_fields() -> None:
    frame = ether(ipv4(tcp(flags=SYN | ACK, seq=7, ack=9, window=512), ttl=33, tos=0x10))
    pkt = decode_frame(3, 1.5, frame, 1, iface="eth0")
    assert pkt.error is None
    assert (pkt.family, pkt.proto, pkt.sport, pkt.dport) == (4, 6, 40000, 80)
    assert (pkt.src, pkt.dst) == (0xC0000201, 0xC6336407)
    assert (pkt.tcp_flags, pkt.seq, pkt.ack, pkt.window) == (SYN | ACK, 7, 9, 512)
    assert (pkt.ttl, pkt.tos, pkt.ip_id, pkt.index, pkt.ts) == (33, 0x10, 0x1234, 3, 1.5)
    assert (pkt.l4_off, pkt.payload_off, pkt.ip_len) == (20, 40, 40)
    assert pkt.link_src == MAC_A and pkt.link_dst == MAC_B
    assert pkt.iface_in == "eth0" and pkt.pkt_type == "host"
    assert pkt.frame_len == len(frame) and pkt.link_type == 1


def test_ethernet_padding_is_trimmed() -> None:
    datagram = ipv4(udp(), 17)
    pkt = decode_frame(0, 0.0, ether(datagram) + bytes(18), 1)
    assert pkt.error is None and pkt.data == datagram


@pytest.mark.parametrize("tags", [(0x8100,), (0x88A8, 0x8100), (0x9100, 0x8100)])
def test_vlan_and_qinq_tags_are_skipped(tags: tuple[int, ...]) -> None:
    pkt = decode_frame(0, 0.0, ether(ipv4(udp(), 17), tags=tags), 1)
    assert pkt.error is None and (pkt.proto, pkt.dport) == (17, 53)


def test_broadcast_and_multicast_destinations() -> None:
    bcast = decode_frame(0, 0.0, ether(ipv4(udp(), 17), dst=b"\xff" * 6), 1)
    mcast = decode_frame(0, 0.0, ether(ipv4(udp(), 17), dst=bytes.fromhex("01005e000001")), 1)
    assert (bcast.pkt_type, mcast.pkt_type) == ("broadcast", "multicast")


def test_non_ip_frame_is_not_tracked() -> None:
    pkt = decode_frame(0, 0.0, ether(bytes(28), ethertype=0x0806), 1)
    assert pkt.family == 0 and pkt.error is not None
    assert pkt.error.layer == "link"
    assert pkt.error.cause == "not an IP packet (EtherType 0x0806)"


def test_truncated_ethernet_header() -> None:
    pkt = decode_frame(0, 0.0, bytes(10), 1)
    assert pkt.error is not None and pkt.error.cause == "truncated Ethernet header: 10 of 14 bytes"


@pytest.mark.parametrize(
    ("code", "name"), [(0, "host"), (1, "broadcast"), (2, "multicast"), (3, "otherhost"),
                       (4, "outgoing")])
def test_linux_cooked_v1_packet_types(code: int, name: str) -> None:
    head = struct.pack("!HHH8sH", code, 1, 6, MAC_A + b"\0\0", 0x0800)
    pkt = decode_frame(0, 0.0, head + ipv4(udp(), 17), 113, iface="any")
    assert pkt.error is None and pkt.pkt_type == name and pkt.link_src == MAC_A
    assert (pkt.iface_out if name == "outgoing" else pkt.iface_in) == "any"


def test_linux_cooked_v2() -> None:
    head = struct.pack("!HHIHBB8s", 0x86DD, 0, 2, 1, 4, 6, MAC_A + b"\0\0")
    pkt = decode_frame(0, 0.0, head + ipv6(udp(), 17), 276, iface="eth1")
    assert pkt.error is None and (pkt.family, pkt.dport) == (6, 53)
    assert pkt.pkt_type == "outgoing" and pkt.iface_out == "eth1" and pkt.iface_in is None


@pytest.mark.parametrize("linktype", [101, 12, 14])
def test_raw_ip_picks_version_from_first_nibble(linktype: int) -> None:
    assert decode_frame(0, 0.0, ipv4(udp(), 17), linktype).family == 4
    assert decode_frame(0, 0.0, ipv6(udp(), 17), linktype).family == 6


def test_ipv4_and_ipv6_link_types() -> None:
    assert decode_frame(0, 0.0, ipv4(udp(), 17), 228).error is None
    assert decode_frame(0, 0.0, ipv6(udp(), 17), 229).error is None
    wrong = decode_frame(0, 0.0, ipv6(udp(), 17), 228)
    assert wrong.error is not None and wrong.error.layer == "ipv4"


@pytest.mark.parametrize("linktype", [0, 108])
@pytest.mark.parametrize("order", ["little", "big"])
@pytest.mark.parametrize(("af", "family"), [(2, 4), (24, 6), (28, 6), (30, 6)])
def test_bsd_loopback_families(linktype: int, order: str, af: int, family: int) -> None:
    datagram = ipv4(udp(), 17) if family == 4 else ipv6(udp(), 17)
    pkt = decode_frame(0, 0.0, af.to_bytes(4, order) + datagram, linktype)  # type: ignore[arg-type]
    assert pkt.error is None and pkt.family == family


def test_unsupported_link_type_is_an_error() -> None:
    pkt = decode_frame(0, 0.0, ipv4(udp(), 17), 147)
    assert pkt.error is not None and pkt.error.layer == "link" and pkt.family == 0


# -- IPv4 -------------------------------------------------------------------

def test_bad_ipv4_header_checksum_is_dropped_by_ip_rcv() -> None:
    bad = bytearray(ipv4(udp(), 17))
    bad[10] ^= 0xFF
    pkt = decode_datagram(bytes(bad))
    assert pkt.error is not None
    assert (pkt.error.layer, pkt.error.cause) == ("ipv4", "bad IPv4 header checksum")


def test_ipv4_shorter_than_total_length() -> None:
    pkt = decode_datagram(ipv4(udp(data=bytes(20)), 17)[:-5])
    assert pkt.error is not None and pkt.error.cause == "truncated datagram: 43 of 48 bytes"


def test_ipv4_total_length_below_header_length() -> None:
    pkt = decode_datagram(ipv4(udp(), 17, tot_len=12))
    assert pkt.error is not None and pkt.error.layer == "ipv4"


def test_ipv4_header_length_beyond_packet() -> None:
    data = bytearray(ipv4(b"", 17))
    data[0] = 0x4F  # IHL 60 bytes but only 20 present
    pkt = decode_datagram(bytes(data))
    assert pkt.error is not None and pkt.error.layer == "ipv4"


def test_ipv4_options_are_skipped() -> None:
    options = b"\x07\x07\x04" + bytes(4) + b"\x00"  # record route, end of list
    pkt = decode_datagram(ipv4(udp(), 17, options=options))
    assert pkt.error is None and (pkt.l4_off, pkt.dport) == (28, 53)
    assert pkt.data[20:28] == options


def test_ipv4_first_fragment_has_ports_and_fragment_info() -> None:
    pkt = decode_datagram(ipv4(udp(data=bytes(16)), 17, frag=0x2000, ident=77))
    assert pkt.fragment is not None and pkt.fragment.more and pkt.fragment.offset == 0
    assert (pkt.fragment.ident, pkt.fragment.unfrag_len, pkt.dport) == (77, 20, 53)


def test_ipv4_later_fragment_has_no_layer4_decoding() -> None:
    pkt = decode_datagram(ipv4(bytes(16), 17, frag=3))
    assert pkt.fragment is not None and pkt.fragment.offset == 24 and not pkt.fragment.more
    assert (pkt.sport, pkt.dport, pkt.l4_off, pkt.error) == (0, 0, 20, None)


def test_df_alone_is_not_a_fragment() -> None:
    assert decode_datagram(ipv4(udp(), 17, frag=0x4000)).fragment is None


# -- IPv6 -------------------------------------------------------------------

def test_ipv6_extension_headers_are_walked_to_layer4() -> None:
    # hop-by-hop -> destination (16 bytes) -> routing -> fragment -> destination -> TCP
    payload = ext(60) + ext(43, 1) + ext(44) + frag6(60, 0, False, 5) + ext(6) + tcp()
    pkt = decode_datagram(ipv6(payload, 0))
    assert pkt.error is None and pkt.proto == 6 and pkt.l4_off == 40 + 8 + 16 + 8 + 8 + 8
    assert pkt.fragment is not None and pkt.fragment.unfrag_len == 72
    assert pkt.sport == 40000 and pkt.ip_id == 5


def test_ipv6_authentication_header_length_in_32bit_words() -> None:
    ah = bytes([17, 4]) + bytes(22)  # (4 + 2) * 4 = 24 bytes
    pkt = decode_datagram(ipv6(ah + udp(), 51))
    assert pkt.error is None and (pkt.proto, pkt.l4_off, pkt.dport) == (17, 64, 53)


def test_ipv6_esp_stops_the_walk() -> None:
    pkt = decode_datagram(ipv6(ext(50) + bytes(16), 0))
    assert pkt.error is None and (pkt.proto, pkt.l4_off) == (50, 48)


def test_ipv6_no_next_header_cannot_be_tracked() -> None:
    pkt = decode_datagram(ipv6(ext(59), 60))
    assert pkt.error is not None and pkt.error.layer == "ipv6-ext"


def test_ipv6_truncated_extension_header() -> None:
    pkt = decode_datagram(ipv6(bytes([6, 3]) + bytes(6), 0))  # claims 32 bytes, has 8
    assert pkt.error is not None and pkt.error.layer == "ipv6-ext"


def test_ipv6_later_fragment_stops_at_fragment_header() -> None:
    pkt = decode_datagram(ipv6(frag6(17, 1448, True, 0xABCDEF01) + bytes(32), 44))
    assert pkt.fragment is not None and pkt.fragment.offset == 1448 and pkt.fragment.more
    assert (pkt.proto, pkt.l4_off, pkt.sport, pkt.error) == (17, 48, 0, None)


def test_ipv6_truncated_datagram_and_multicast_source() -> None:
    short = decode_datagram(ipv6(udp(), 17, plen=100))
    mcast = decode_datagram(ipv6(udp(), 17, src=bytes.fromhex("ff02" + "00" * 13 + "01")))
    assert short.error is not None and short.error.layer == "ipv6"
    assert mcast.error is not None and mcast.error.cause == "multicast source address"


def test_ipv6_jumbogram_is_rejected_with_a_cause() -> None:
    pkt = decode_datagram(ipv6(ext(17) + udp(), 0, plen=0))
    assert pkt.error is not None and "jumbogram" in pkt.error.cause


def test_ipv6_hop_limit_and_traffic_class() -> None:
    pkt = decode_datagram(ipv6(udp(), 17, hlim=9, tclass=0xB8))
    assert (pkt.ttl, pkt.tos, pkt.ip_len) == (9, 0xB8, 48)


# -- layer 4 ----------------------------------------------------------------

def test_tcp_options_all_kinds() -> None:
    opts = (b"\x02\x04\x05\xb4" b"\x01\x03\x03\x07" b"\x04\x02"
            + b"\x08\x0a" + struct.pack("!II", 5, 6) + b"\x01\x01\x00\x00")
    pkt = decode_datagram(ipv4(tcp(options=opts)))
    assert pkt.tcp_options == TcpOptions(1460, 7, True, (), (5, 6))
    assert pkt.payload_off == 20 + 20 + len(opts)


def test_tcp_sack_blocks_and_aligned_timestamp() -> None:
    sack = b"\x01\x01\x05\x12" + struct.pack("!IIII", 10, 20, 30, 40)
    assert parse_tcp_options(sack, 0, len(sack)).sack_blocks == ((10, 20), (30, 40))
    stamp = b"\x01\x01\x08\x0a" + struct.pack("!II", 1, 2)
    assert parse_tcp_options(stamp, 0, 12).timestamp == (1, 2)


@pytest.mark.parametrize(
    "opts",
    [b"\x03\x03\x07\x00" b"\x04\x02\x00\x00",  # EOL ends the list
     b"\x03\x01\x07\x01" b"\x04\x02\x00\x00",  # length below 2 ("silly option")
     b"\x01\x01\x01\x03"],  # window scale running past the header
)
def test_malformed_option_lists_stop_the_parse(opts: bytes) -> None:
    pkt = decode_datagram(ipv4(tcp(options=opts)))
    assert pkt.error is None and pkt.tcp_options is not None
    assert not pkt.tcp_options.sack_perm and pkt.tcp_options.wscale in (None, 7)


def test_only_first_sack_option_counts() -> None:
    two = (b"\x05\x0a" + struct.pack("!II", 1, 2) + b"\x05\x0a" + struct.pack("!II", 3, 4)
           + b"\x00\x00\x00\x00")
    assert parse_tcp_options(two, 0, len(two)).sack_blocks == ((1, 2),)


def test_tcp_truncated_header() -> None:
    pkt = decode_datagram(ipv4(tcp()[:12]))
    assert pkt.error is not None
    assert (pkt.error.layer, pkt.error.offset, pkt.error.cause) == (
        "tcp", 20, "truncated header: 12 of 20 bytes")


def test_tcp_bad_data_offset() -> None:
    short = bytearray(tcp())
    short[12] = 0x40  # 16-byte header
    long = bytearray(tcp())
    long[12] = 0x80  # 32-byte header, 20 present
    assert decode_datagram(ipv4(bytes(short))).error is not None
    err = decode_datagram(ipv4(bytes(long))).error
    assert err is not None and err.cause == "truncated header: 20 of 32 bytes"


@pytest.mark.parametrize(("proto", "layer", "need"), [(17, "udp", 8), (136, "udplite", 8),
                                                      (132, "sctp", 12), (1, "icmp", 8)])
def test_short_layer4_headers(proto: int, layer: str, need: int) -> None:
    pkt = decode_datagram(ipv4(bytes(6), proto))
    assert pkt.error is not None
    assert (pkt.error.layer, pkt.error.cause) == (layer, f"truncated header: 6 of {need} bytes")


def test_sctp_and_udplite_ports() -> None:
    sctp = decode_datagram(ipv4(struct.pack("!HHII", 3868, 3869, 1, 0), 132))
    lite = decode_datagram(ipv4(udp(1, 2), 136))
    assert (sctp.sport, sctp.dport, sctp.error) == (3868, 3869, None)
    assert (lite.sport, lite.dport, lite.error) == (1, 2, None)


def test_icmp_echo_tuple_parts() -> None:
    pkt = decode_datagram(ipv4(struct.pack("!BBHHH", 8, 0, 0, 0x4242, 1) + bytes(8), 1))
    assert (pkt.icmp_type, pkt.icmp_code, pkt.icmp_id) == (8, 0, 0x4242)
    assert (pkt.sport, pkt.dport) == (0x4242, 8 << 8)


def test_icmp_error_quotes_a_truncated_datagram() -> None:
    quoted = ipv4(udp(data=bytes(100)), 17, src=DST4, dst=SRC4)[:28]
    pkt = decode_datagram(ipv4(struct.pack("!BBHI", 3, 3, 0, 0) + quoted, 1))
    assert pkt.error is None and pkt.dport == 3 << 8 | 3 and pkt.inner is not None
    inner = pkt.inner
    assert inner.error is None and (inner.proto, inner.sport, inner.dport) == (17, 5353, 53)
    assert inner.ip_len == 128 and len(inner.data) == 28  # the stated length is kept
    assert (inner.src, inner.dst) == (pkt.dst, pkt.src)


def test_icmp_error_quoting_too_little_layer4() -> None:
    quoted = ipv4(udp(), 17)[:22]
    pkt = decode_datagram(ipv4(struct.pack("!BBHI", 3, 3, 0, 0) + quoted, 1))
    # The quoted IP header is sound, so the decoder reports no error: conntrack
    # itself counts the layer-4 bytes it needs (4 for UDP ports) and decides.
    assert pkt.inner is not None and pkt.inner.error is None
    assert len(pkt.inner.data) - pkt.inner.l4_off == 2


def test_icmp_error_quoting_a_later_fragment() -> None:
    quoted = ipv4(bytes(8), 17, frag=10)
    pkt = decode_datagram(ipv4(struct.pack("!BBHI", 11, 1, 0, 0) + quoted, 1))
    assert pkt.inner is not None and pkt.inner.fragment is not None
    assert pkt.inner.fragment.offset == 80


def test_icmpv6_error_inner_and_echo() -> None:
    quoted = ipv6(tcp(), 6, src=DST6, dst=SRC6)[:48]
    err = decode_datagram(ipv6(struct.pack("!BBHI", 1, 4, 0, 0) + quoted, 58))
    echo = decode_datagram(ipv6(struct.pack("!BBHHH", 128, 0, 0, 7, 1), 58))
    assert err.inner is not None and (err.inner.sport, err.inner.dport) == (40000, 80)
    assert err.inner.seq == 1000
    assert (echo.sport, echo.dport, echo.inner) == (7, 128 << 8, None)


def test_gre_pptp_call_id_and_plain_gre() -> None:
    pptp = struct.pack("!BBHHH", 0x30, 0x81, 0x880B, 0, 0x5566) + bytes(8)
    plain = struct.pack("!BBH", 0, 0, 0x0800) + ipv4(udp(), 17)
    other = struct.pack("!BBHHH", 0x30, 0x81, 0x0800, 0, 1)
    p1, p0, bad = (decode_datagram(ipv4(x, 47)) for x in (pptp, plain, other))
    assert (p1.sport, p1.dport, p1.error) == (0, 0x5566, None) and p1.payload_off == 36
    assert (p0.sport, p0.dport, p0.error, p0.payload_off) == (0, 0, None, 24)
    assert bad.error is not None and bad.error.layer == "gre"


def test_generic_protocol_has_zero_ports() -> None:
    pkt = decode_datagram(ipv4(bytes(12), 89))
    assert (pkt.proto, pkt.sport, pkt.dport, pkt.error, pkt.l4_off) == (89, 0, 0, None, 20)


# -- fuzz -------------------------------------------------------------------

@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(SUPPORTED_LINKTYPES + (147,)))
def test_decode_frame_never_raises(data: bytes, linktype: int) -> None:
    pkt = decode_frame(0, 0.0, data, linktype)
    assert pkt.frame_len == len(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=120), st.sampled_from([1, 6, 17, 58, 47, 132, 0, 44]))
def test_decode_frame_never_raises_on_plausible_headers(tail: bytes, proto: int) -> None:
    for frame in (ether(ipv4(tail, proto)), ether(ipv6(tail, proto), 0x86DD),
                  ether(ipv4(tail, proto)[:30]), ether(ipv6(tail, proto, plen=len(tail) + 4))):
        assert decode_frame(0, 0.0, frame, 1) is not None


# -- shared captures ----------------------------------------------------------

def decoded(path: Path) -> list[Packet]:
    """Every frame of a capture, read with statewall's own reader and decoded."""
    with open_capture(path) as frames:
        return [decode_frame(f.index, f.ts, f.data, f.linktype, f.iface) for f in frames]


@pytest.mark.shared
@pytest.mark.parametrize("name", ["icmp-port-unreachable-dns-mixed.pcap",
                                  "ipv6-mixed-dns-icmp6-errors-tcp.pcap",
                                  "ftp-epsv-eprt-internet-ipv6.pcap",
                                  "icmp-time-exceeded-traceroute-icmp.pcapng",
                                  "large-mixed-lan-1kxun.pcap"])
def test_shared_traces_decode(name: str, shared: Path) -> None:
    packets = decoded(shared / "traces" / name)
    assert packets
    for pkt in packets:
        assert pkt.error is None or pkt.error.layer in ("link", "ipv4") or pkt.inner is not None
        if pkt.inner is not None:
            assert pkt.inner.family == pkt.family


@pytest.mark.shared
def test_shared_icmp_errors_have_quoted_tuples(shared: Path) -> None:
    packets = decoded(shared / "traces" / "icmp-port-unreachable-orphan-plus-tcp.pcap")
    errors = [p for p in packets if p.proto == 1 and p.icmp_type == 3]
    assert errors
    for pkt in errors:
        assert pkt.inner is not None and pkt.inner.error is None
        assert pkt.inner.dst == pkt.src or pkt.inner.src == pkt.dst
