"""IPv4 and IPv6 header decoding, with the checks the kernel makes before netfilter.

`ip_rcv_core` and `ip6_rcv_core` drop a datagram before the PREROUTING hook
when its header is implausible: wrong version, IPv4 header length below 20
or beyond the packet, bad IPv4 header checksum, total/payload length larger
than what arrived, an IPv6 multicast source. Those become errors in layer
"ipv4"/"ipv6". Trailing link padding beyond the stated length is trimmed, as
`pskb_trim_rcsum` does, so `Packet.data` is exactly the datagram.

IPv6 extension headers are walked the way `ipv6_skip_exthdr` walks them
(hop-by-hop, routing, fragment, destination options, AH; stop at anything
else, fail at "no next header"). A walk that fails leaves an error in layer
"ipv6-ext": such a packet does reach netfilter but conntrack cannot find its
layer-4 header (`ipv6_get_l4proto`), so it is INVALID.

A quoted datagram (the one an ICMP error carries) is decoded leniently: it is
usually cut short, its checksum is not checked, and its stated length is
kept in `ip_len` without complaint. Its `error` is set only when the IP
header itself (with any IPv6 extension headers) cannot be read; a quoted
fragment keeps `fragment`, and judging the quoted layer-4 bytes is left to
the ICMP tracker.
"""

from __future__ import annotations

import struct

from statewall.decode.l4 import decode_l4, tcp_header
from statewall.packet import PROTO_TCP, DecodeError, FragmentInfo, Packet

_IPV4 = struct.Struct("!BBHHHBBHII")
_IPV6 = struct.Struct("!IHBB")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")

IP_MF = 0x2000
IP_OFFSET = 0x1FFF

NEXTHDR_HOP = 0
NEXTHDR_ROUTING = 43
NEXTHDR_FRAGMENT = 44
NEXTHDR_AUTH = 51
NEXTHDR_NONE = 59
NEXTHDR_DEST = 60
IPV6_EXT_HEADERS = frozenset(
    (NEXTHDR_HOP, NEXTHDR_ROUTING, NEXTHDR_FRAGMENT, NEXTHDR_AUTH, NEXTHDR_NONE, NEXTHDR_DEST)
)

# Error layers for which the kernel drops the datagram before any netfilter hook.
STACK_DROP_LAYERS = frozenset(("ipv4", "ipv6"))


def decode_datagram(
    data: bytes, *, index: int = 0, ts: float = 0.0, quoted: bool = False
) -> Packet:
    """Decode a bare IP datagram (version from its first nibble); never raises."""
    version = data[0] >> 4 if data else 0
    pkt = Packet(index, ts, b"", version if version in (4, 6) else 0)
    if version not in (4, 6):
        pkt.data = data
        cause = "empty datagram" if not data else f"not an IP packet (IP version {version})"
        pkt.error = DecodeError("ip", 0, cause)
        return pkt
    decode_into(pkt, data, 0, quoted)
    return pkt


def decode_into(pkt: Packet, buf: bytes, off: int, quoted: bool) -> None:
    """Fill `pkt` from the datagram that starts at `buf[off]` (family already chosen)."""
    if pkt.family == 4:
        decode_ipv4(pkt, buf, off, quoted)
    else:
        _ipv6(pkt, buf, off, quoted)


def _fail(pkt: Packet, layer: str, offset: int, cause: str) -> None:
    pkt.error = DecodeError(layer, offset, cause)


def decode_ipv4(pkt: Packet, buf: bytes, off: int, quoted: bool) -> None:
    """Fill `pkt` from the IPv4 datagram at `buf[off]` (the hot path: no dispatch)."""
    avail = len(buf) - off
    if avail < 20:
        pkt.data = buf[off:]
        _fail(pkt, "ipv4", off, f"truncated header: {avail} of 20 bytes")
        return
    vihl, tos, tot_len, ident, frag, ttl, proto, _csum, src, dst = _IPV4.unpack_from(buf, off)
    pkt.src = src
    pkt.dst = dst
    pkt.proto = proto
    pkt.ttl = ttl
    pkt.tos = tos
    pkt.ip_id = ident
    pkt.ip_len = tot_len
    ihl = (vihl & 15) << 2
    if vihl >> 4 != 4:
        pkt.data = buf[off:]
        _fail(pkt, "ipv4", off, f"IP version {vihl >> 4} in an IPv4 header")
        return
    if ihl < 20 or ihl > avail:
        pkt.data = buf[off:]
        _fail(pkt, "ipv4", off, f"bad header length {ihl} ({avail} bytes present)")
        return
    if quoted:
        end = off + tot_len if ihl <= tot_len < avail else len(buf)
    else:
        if int.from_bytes(buf[off:off + ihl], "big") % 0xFFFF:
            pkt.data = buf[off:]
            _fail(pkt, "ipv4", off + 10, "bad IPv4 header checksum")
            return
        if tot_len > avail or tot_len < ihl:
            pkt.data = buf[off:]
            _fail(pkt, "ipv4", off + 2, f"truncated datagram: {avail} of {tot_len} bytes"
                  if tot_len > avail else f"total length {tot_len} below header length {ihl}")
            return
        end = off + tot_len
    data = buf if off == 0 and end == len(buf) else buf[off:end]
    pkt.data = data
    pkt.l4_off = ihl
    if frag & (IP_MF | IP_OFFSET):
        pkt.fragment = FragmentInfo(ident, (frag & IP_OFFSET) << 3, bool(frag & IP_MF), proto, ihl)
        if frag & IP_OFFSET:
            pkt.payload_off = ihl
            return
    if proto == PROTO_TCP and not quoted and len(data) >= ihl + 20:
        tcp_header(pkt, data, ihl, len(data) - ihl, off)
    else:
        decode_l4(pkt, data, ihl, proto, off, quoted)


def _ipv6(pkt: Packet, buf: bytes, off: int, quoted: bool) -> None:
    avail = len(buf) - off
    if avail < 40:
        pkt.data = buf[off:]
        _fail(pkt, "ipv6", off, f"truncated header: {avail} of 40 bytes")
        return
    vtcfl, plen, nexthdr, hlim = _IPV6.unpack_from(buf, off)
    pkt.src = int.from_bytes(buf[off + 8:off + 24], "big")
    pkt.dst = int.from_bytes(buf[off + 24:off + 40], "big")
    pkt.tos = (vtcfl >> 20) & 0xFF
    pkt.ttl = hlim
    pkt.ip_len = plen + 40
    if vtcfl >> 28 != 6:
        pkt.data = buf[off:]
        _fail(pkt, "ipv6", off, f"IP version {vtcfl >> 28} in an IPv6 header")
        return
    if quoted:
        end = off + 40 + plen if 40 + plen < avail else len(buf)
    else:
        bad = _ipv6_rcv_check(pkt, plen, nexthdr, avail)
        if bad:
            pkt.data = buf[off:]
            _fail(pkt, "ipv6", off + 4, bad)
            return
        end = off + 40 + plen
    data = buf if off == 0 and end == len(buf) else buf[off:end]
    pkt.data = data
    _ipv6_exthdrs(pkt, data, nexthdr, off, quoted)


def _ipv6_rcv_check(pkt: Packet, plen: int, nexthdr: int, avail: int) -> str:
    """The reason ip6_rcv_core would drop this datagram, or ''."""
    if pkt.src >> 120 == 0xFF:
        return "multicast source address"
    if plen == 0 and nexthdr == NEXTHDR_HOP:
        return "jumbogram (payload length 0 with a hop-by-hop header) is not supported"
    if plen + 40 > avail:
        return f"truncated datagram: {avail} of {plen + 40} bytes"
    return ""


def _ipv6_exthdrs(pkt: Packet, data: bytes, nexthdr: int, base: int, quoted: bool) -> None:
    """Skip extension headers to the layer-4 header (`ipv6_skip_exthdr`)."""
    pos = 40
    size = len(data)
    while nexthdr in IPV6_EXT_HEADERS:
        if nexthdr == NEXTHDR_NONE:
            pkt.proto = nexthdr
            pkt.l4_off = pkt.payload_off = pos
            if not quoted:  # quoted: the ICMPv6 tracker names this case itself
                _fail(pkt, "ipv6-ext", base + pos,
                      "no next header (59): no layer-4 header to track")
            return
        if pos + 2 > size:
            break
        if nexthdr == NEXTHDR_FRAGMENT:
            if pos + 8 > size:
                break
            frag = _U16.unpack_from(data, pos + 2)[0]
            if pkt.fragment is None:
                ident = _U32.unpack_from(data, pos + 4)[0]
                pkt.ip_id = ident
                pkt.fragment = FragmentInfo(ident, frag & 0xFFF8, bool(frag & 1), data[pos], pos)
            if frag & 0xFFF8:
                pkt.proto = data[pos]
                pkt.l4_off = pkt.payload_off = pos + 8
                return
            hdrlen = 8
        elif nexthdr == NEXTHDR_AUTH:
            hdrlen = (data[pos + 1] + 2) << 2
        else:
            hdrlen = (data[pos + 1] + 1) << 3
        nexthdr = data[pos]
        pos += hdrlen
    pkt.proto = nexthdr
    if pos > size or nexthdr in IPV6_EXT_HEADERS:
        pkt.l4_off = pkt.payload_off = size
        _fail(pkt, "ipv6-ext", base + min(pos, size), "truncated extension header")
        return
    decode_l4(pkt, data, pos, nexthdr, base, quoted)
