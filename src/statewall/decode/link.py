"""Link-layer framing: find where the IP datagram starts in a captured frame.

Each capture link type (pcap LINKTYPE_*) puts a different header in front of
the IP datagram. This module strips it, records what netfilter can see of it
(`-m mac` reads the Ethernet source, `-m pkttype` the packet type, `-i`/`-o`
the interface) and hands the rest to `decode.ip`. Frames that carry no IP
datagram (ARP, LLDP, STP...) come back with family 0 and a "link" error: the
kernel never shows them to the IPv4/IPv6 hooks at all.
"""

from __future__ import annotations

from statewall.decode.ip import decode_into, decode_ipv4
from statewall.packet import DecodeError, Packet

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_12 = 12
LINKTYPE_RAW_14 = 14
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

SUPPORTED_LINKTYPES = (
    LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW_12, LINKTYPE_RAW_14, LINKTYPE_RAW,
    LINKTYPE_LOOP, LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2,
)

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
# 802.1Q, 802.1ad (QinQ service tag) and the pre-standard 0x9100 QinQ tag.
VLAN_TAGS = frozenset((0x8100, 0x88A8, 0x9100))

# Linux cooked capture packet types (the kernel's PACKET_HOST ... PACKET_OUTGOING).
SLL_PKTTYPES = ("host", "broadcast", "multicast", "otherhost", "outgoing")

# Address-family values BSD-style loopback headers use for IPv4 and IPv6
# (IPv6 differs between NetBSD/OpenBSD 24, FreeBSD 28 and Darwin 30).
BSD_AF_INET = 2
BSD_AF_INET6 = frozenset((24, 28, 30))

_BROADCAST = b"\xff\xff\xff\xff\xff\xff"


def decode_frame(
    index: int, ts: float, data: bytes, linktype: int, iface: str | None = None
) -> Packet:
    """Decode one captured frame; never raises (bad input becomes `Packet.error`)."""
    if linktype == LINKTYPE_ETHERNET and len(data) >= 34 and data[12] == 8 and data[13] == 0:
        pkt = Packet(index, ts, b"", 4)  # the common case, Ethernet + untagged IPv4
        decode_ipv4(pkt, data, 14, False)
        _ethernet_addresses(pkt, data)
    elif linktype == LINKTYPE_ETHERNET:
        pkt = _ethernet(index, ts, data)
    elif linktype in (LINKTYPE_RAW, LINKTYPE_RAW_12, LINKTYPE_RAW_14):
        pkt = _by_version(index, ts, data, 0)
    elif linktype == LINKTYPE_LINUX_SLL:
        pkt = _sll(index, ts, data)
    elif linktype == LINKTYPE_LINUX_SLL2:
        pkt = _sll2(index, ts, data)
    elif linktype == LINKTYPE_IPV4:
        pkt = _fixed_family(index, ts, data, 0, 4)
    elif linktype == LINKTYPE_IPV6:
        pkt = _fixed_family(index, ts, data, 0, 6)
    elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        pkt = _null(index, ts, data)
    else:
        pkt = _not_ip(index, ts, data, 0, f"unsupported link type {linktype}")
    pkt.link_type = linktype
    pkt.frame_len = len(data)
    if iface is not None:
        if pkt.pkt_type == "outgoing":
            pkt.iface_out = iface
        else:
            pkt.iface_in = iface
    return pkt


def _not_ip(index: int, ts: float, data: bytes, off: int, cause: str) -> Packet:
    pkt = Packet(index, ts, b"", 0)
    pkt.error = DecodeError("link", off, cause)
    return pkt


def _truncated(index: int, ts: float, data: bytes, what: str, need: int) -> Packet:
    return _not_ip(index, ts, data, 0, f"truncated {what} header: {len(data)} of {need} bytes")


def _ethernet(index: int, ts: float, data: bytes) -> Packet:
    if len(data) < 14:
        return _truncated(index, ts, data, "Ethernet", 14)
    off = 12
    ethertype = data[12] << 8 | data[13]
    while ethertype in VLAN_TAGS:
        off += 4
        if len(data) < off + 2:
            return _not_ip(index, ts, data, off, "truncated VLAN tag")
        ethertype = data[off] << 8 | data[off + 1]
    pkt = _by_ethertype(index, ts, data, off + 2, ethertype)
    _ethernet_addresses(pkt, data)
    return pkt


def _ethernet_addresses(pkt: Packet, data: bytes) -> None:
    dst = data[0:6]
    pkt.link_dst = dst
    pkt.link_src = data[6:12]
    if data[0] & 1:
        pkt.pkt_type = "broadcast" if dst == _BROADCAST else "multicast"


def _by_ethertype(index: int, ts: float, data: bytes, off: int, ethertype: int) -> Packet:
    if ethertype == ETH_P_IP:
        return _fixed_family(index, ts, data, off, 4)
    if ethertype == ETH_P_IPV6:
        return _fixed_family(index, ts, data, off, 6)
    return _not_ip(index, ts, data, off - 2, f"not an IP packet (EtherType 0x{ethertype:04x})")


def _sll(index: int, ts: float, data: bytes) -> Packet:
    if len(data) < 16:
        return _truncated(index, ts, data, "Linux cooked (SLL)", 16)
    pkt = _cooked_payload(index, ts, data, 16, data[14] << 8 | data[15])
    pkttype = data[0] << 8 | data[1]
    hatype = data[2] << 8 | data[3]
    halen = data[4] << 8 | data[5]
    _cooked_meta(pkt, pkttype, hatype, halen, data, 6)
    return pkt


def _sll2(index: int, ts: float, data: bytes) -> Packet:
    if len(data) < 20:
        return _truncated(index, ts, data, "Linux cooked v2 (SLL2)", 20)
    pkt = _cooked_payload(index, ts, data, 20, data[0] << 8 | data[1])
    hatype = data[8] << 8 | data[9]
    _cooked_meta(pkt, data[10], hatype, data[11], data, 12)
    return pkt


def _cooked_payload(index: int, ts: float, data: bytes, off: int, proto: int) -> Packet:
    while proto in VLAN_TAGS:
        if len(data) < off + 4:
            return _not_ip(index, ts, data, off, "truncated VLAN tag")
        proto = data[off + 2] << 8 | data[off + 3]
        off += 4
    return _by_ethertype(index, ts, data, off, proto)


def _cooked_meta(pkt: Packet, pkttype: int, hatype: int, halen: int, data: bytes, at: int) -> None:
    """Record the packet type and, for Ethernet devices, the link-layer source."""
    pkt.pkt_type = SLL_PKTTYPES[pkttype] if pkttype < len(SLL_PKTTYPES) else f"type{pkttype}"
    if hatype == 1 and halen == 6:  # ARPHRD_ETHER: the address is the sender's MAC
        pkt.link_src = data[at:at + 6]


def _null(index: int, ts: float, data: bytes) -> Packet:
    if len(data) < 4:
        return _truncated(index, ts, data, "BSD loopback", 4)
    little = int.from_bytes(data[0:4], "little")
    big = int.from_bytes(data[0:4], "big")
    if BSD_AF_INET in (little, big):
        return _fixed_family(index, ts, data, 4, 4)
    if little in BSD_AF_INET6 or big in BSD_AF_INET6:
        return _fixed_family(index, ts, data, 4, 6)
    return _not_ip(index, ts, data, 0, f"not an IP packet (address family {little})")


def _by_version(index: int, ts: float, data: bytes, off: int) -> Packet:
    if len(data) <= off:
        return _not_ip(index, ts, data, off, "empty frame: no IP header")
    version = data[off] >> 4
    if version not in (4, 6):
        return _not_ip(index, ts, data, off, f"not an IP packet (IP version {version})")
    return _fixed_family(index, ts, data, off, version)


def _fixed_family(index: int, ts: float, data: bytes, off: int, family: int) -> Packet:
    pkt = Packet(index, ts, b"", family)
    decode_into(pkt, data, off, False)
    return pkt
