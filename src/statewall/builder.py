"""Crafting IP datagrams with correct lengths and checksums, for scenarios and the kernel oracle.

Every function returns plain `bytes`: a whole IP datagram (IPv4 or IPv6,
chosen by the address family of `src`), except `ethernet`, which frames one.
Checksums are right unless a `bad_checksum` flag asks otherwise, so a packet
the tests build is a packet the kernel accepts, and a deliberately broken one
differs from it in exactly one field.

Layer-4 functions take the IP-level knobs most scenarios need (`ttl`, `ident`,
`df`, `tos`) as keywords; for anything rarer, build the segment with
`tcp_segment` / `udp_segment` and wrap it with `ipv4` or `ipv6` directly.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence

from statewall.checksum import internet_checksum, pseudo_header_sum

PROTO_HOPOPTS = 0
PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ROUTING = 43
PROTO_FRAGMENT = 44
PROTO_ICMPV6 = 58
PROTO_NONE = 59
PROTO_DSTOPTS = 60
PROTO_UDPLITE = 136

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8

TCP_FLAG_LETTERS = "FSRPAUEC"  # bit 0 (FIN) to bit 7 (CWR), as scapy spells them

ICMP_ECHOREPLY = 0
ICMP_DEST_UNREACH = 3
ICMP_ECHO = 8
ICMP_TIME_EXCEEDED = 11
ICMPV6_DEST_UNREACH = 1
ICMPV6_PKT_TOOBIG = 2
ICMPV6_TIME_EXCEED = 3
ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129

# An ICMPv6 error must fit the IPv6 minimum MTU (RFC 4443 2.4(c)).
IPV6_MIN_MTU = 1280

# IPv6 extension headers that stay in front of the Fragment header (RFC 8200 4.5).
_UNFRAGMENTABLE = (PROTO_HOPOPTS, PROTO_ROUTING)

ExtHeader = tuple[int, bytes]  # (header type, body after the next-header and length bytes)


def _address(text: str) -> tuple[int, int]:
    """(family, integer) of an IPv4 or IPv6 address in text form."""
    addr = ipaddress.ip_address(text)
    return addr.version, int(addr)


def _spoil(checksum: int) -> int:
    """A wrong checksum: never the right one nor its one's-complement twin, never zero."""
    bad = checksum ^ 1
    return bad if bad else checksum ^ 2


def _with_checksum(segment: bytes, at: int, checksum: int) -> bytes:
    return segment[:at] + struct.pack("!H", checksum) + segment[at + 2:]


# --- IP -------------------------------------------------------------------------------


def ipv4(
    src: str, dst: str, proto: int, payload: bytes, *,
    ttl: int = 64, ident: int = 0, df: bool = False, mf: bool = False,
    frag_offset: int = 0, tos: int = 0, options: bytes = b"",
    total_length: int | None = None, bad_checksum: bool = False,
) -> bytes:
    """An IPv4 datagram. `frag_offset` is in bytes (a multiple of 8); `options` are
    padded with end-of-options bytes to a 4-byte boundary. `total_length`
    overrides the header's length field (for malformed-packet tests)."""
    if frag_offset % 8 or not 0 <= frag_offset < 65536:
        raise ValueError(f"fragment offset {frag_offset} is not a multiple of 8 below 65536")
    options += b"\0" * (-len(options) & 3)
    if len(options) > 40:
        raise ValueError(f"{len(options)} bytes of IPv4 options exceed the 40 allowed")
    ihl = 5 + len(options) // 4
    length = ihl * 4 + len(payload) if total_length is None else total_length
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | (frag_offset >> 3)
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x40 | ihl, tos, length, ident, flags, ttl, proto, 0,
        _v4_bytes(src), _v4_bytes(dst),
    ) + options
    checksum = internet_checksum(header)
    if bad_checksum:
        checksum = _spoil(checksum)
    return _with_checksum(header, 10, checksum) + payload


def _v4_bytes(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def ipv6(
    src: str, dst: str, next_header: int, payload: bytes, *,
    hop_limit: int = 64, flow: int = 0, tclass: int = 0,
    ext_headers: Sequence[ExtHeader] = (), payload_length: int | None = None,
) -> bytes:
    """An IPv6 datagram; `ext_headers` are chained in order in front of `payload`.

    Each extension header is `(type, body)`, body being what follows the
    next-header and length bytes (see `hop_by_hop`, `destination_options`,
    `routing`, `fragment_header`).
    """
    chain = _chain(ext_headers, next_header)
    first = ext_headers[0][0] if ext_headers else next_header
    body = chain + payload
    length = len(body) if payload_length is None else payload_length
    word = (6 << 28) | (tclass << 20) | (flow & 0xFFFFF)
    return (
        struct.pack("!IHBB", word, length, first, hop_limit)
        + ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed + body
    )


def _chain(ext_headers: Sequence[ExtHeader], last: int) -> bytes:
    out = []
    for i, (_, body) in enumerate(ext_headers):
        following = ext_headers[i + 1][0] if i + 1 < len(ext_headers) else last
        out.append(_ext_header(following, body))
    return b"".join(out)


def _ext_header(next_header: int, body: bytes) -> bytes:
    """An extension header padded to 8-byte units (the Fragment header is exactly 8)."""
    body += b"\0" * (-(len(body) + 2) & 7)
    return struct.pack("!BB", next_header, (len(body) + 2) // 8 - 1) + body


def hop_by_hop(options: bytes = b"") -> ExtHeader:
    """A Hop-by-Hop Options header; `options` is padded with PadN as needed."""
    return PROTO_HOPOPTS, _pad_options(options)


def destination_options(options: bytes = b"") -> ExtHeader:
    return PROTO_DSTOPTS, _pad_options(options)


def routing(
    addresses: Sequence[str], *, routing_type: int = 0, segments_left: int = 0
) -> ExtHeader:
    """A Routing header listing `addresses` (type 0 layout; the kernel drops type 0)."""
    body = struct.pack("!BBI", routing_type, segments_left, 0)
    return PROTO_ROUTING, body + b"".join(ipaddress.IPv6Address(a).packed for a in addresses)


def fragment_header(offset: int, more: bool, ident: int) -> ExtHeader:
    """A Fragment header: `offset` in bytes (a multiple of 8)."""
    if offset % 8:
        raise ValueError(f"fragment offset {offset} is not a multiple of 8")
    return PROTO_FRAGMENT, struct.pack("!HI", offset | int(more), ident)


def _pad_options(options: bytes) -> bytes:
    room = -(len(options) + 2) & 7
    if room == 1:
        return options + b"\0"  # Pad1
    if room:
        return options + bytes((1, room - 2)) + b"\0" * (room - 2)  # PadN
    return options


def ip(
    src: str, dst: str, proto: int, payload: bytes, *,
    ttl: int = 64, ident: int = 0, df: bool = False, tos: int = 0,
) -> bytes:
    """IPv4 or IPv6 by the family of `src` (`ident` and `df` apply to IPv4 only)."""
    if _address(src)[0] == 4:
        return ipv4(src, dst, proto, payload, ttl=ttl, ident=ident, df=df, tos=tos)
    return ipv6(src, dst, proto, payload, hop_limit=ttl, tclass=tos)


# --- TCP ------------------------------------------------------------------------------


def tcp_flags(flags: str | int) -> int:
    """Flag bits from scapy letters ("SA", "FPA"...) or an integer passed through."""
    if isinstance(flags, int):
        return flags
    bits = 0
    for letter in flags:
        at = TCP_FLAG_LETTERS.find(letter)
        if at < 0:
            raise ValueError(f"unknown TCP flag {letter!r} (use letters of {TCP_FLAG_LETTERS})")
        bits |= 1 << at
    return bits


def tcp_options(
    *, mss: int | None = None, wscale: int | None = None, sack_perm: bool = False,
    sack: Sequence[tuple[int, int]] = (), timestamp: tuple[int, int] | None = None,
) -> bytes:
    """Options laid out as Linux sends them: MSS, SACK-permitted + timestamps, window
    scale, then SACK blocks, each group padded with NOPs to 4-byte alignment."""
    out = b""
    if mss is not None:
        out += struct.pack("!BBH", 2, 4, mss)
    if timestamp is not None:
        lead = b"\x04\x02" if sack_perm else b"\x01\x01"
        out += lead + struct.pack("!BBII", 8, 10, *timestamp)
    elif sack_perm:
        out += b"\x01\x01\x04\x02"
    if wscale is not None:
        out += struct.pack("!BBBB", 1, 3, 3, wscale)
    if sack:
        out += struct.pack("!BBBB", 1, 1, 5, 2 + 8 * len(sack))
        out += b"".join(struct.pack("!II", left, right) for left, right in sack)
    return out


def tcp_segment(
    src: str, dst: str, sport: int, dport: int, flags: str | int = "S",
    seq: int = 0, ack: int = 0, window: int = 65535, *,
    mss: int | None = None, wscale: int | None = None, sack_perm: bool = False,
    sack: Sequence[tuple[int, int]] = (), timestamp: tuple[int, int] | None = None,
    options: bytes = b"", payload: bytes = b"", urg: int = 0, bad_checksum: bool = False,
) -> bytes:
    """A TCP header and payload, checksummed for `src` and `dst`.

    `options` (raw bytes) follow the named options; the total is padded with
    end-of-option-list bytes to a 4-byte boundary.
    """
    opts = tcp_options(mss=mss, wscale=wscale, sack_perm=sack_perm, sack=sack,
                       timestamp=timestamp) + options
    opts += b"\0" * (-len(opts) & 3)
    if len(opts) > 40:
        raise ValueError(f"{len(opts)} bytes of TCP options exceed the 40 allowed")
    offset = (5 + len(opts) // 4) << 12
    header = struct.pack("!HHIIHHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                         offset | tcp_flags(flags), window, 0, urg)
    segment = header + opts + payload
    return _checksummed(src, dst, PROTO_TCP, segment, 16, bad_checksum)


def _checksummed(
    src: str, dst: str, proto: int, segment: bytes, at: int, bad: bool, covered: int = -1
) -> bytes:
    """Fill the checksum at offset `at`, over the pseudo-header and the first `covered` bytes."""
    family, src_int = _address(src)
    family_dst, dst_int = _address(dst)
    if family != family_dst:
        raise ValueError(f"{src} and {dst} are not of the same address family")
    data = segment if covered < 0 else segment[:covered]
    seed = pseudo_header_sum(family, src_int, dst_int, proto, len(segment))
    checksum = internet_checksum(data, seed)
    if checksum == 0 and proto in (PROTO_UDP, PROTO_UDPLITE):
        checksum = 0xFFFF  # zero means "no checksum" to UDP
    if bad:
        checksum = _spoil(checksum)
    return _with_checksum(segment, at, checksum)


def tcp(
    src: str, dst: str, sport: int, dport: int, flags: str | int = "S",
    seq: int = 0, ack: int = 0, window: int = 65535, *,
    mss: int | None = None, wscale: int | None = None, sack_perm: bool = False,
    sack: Sequence[tuple[int, int]] = (), timestamp: tuple[int, int] | None = None,
    options: bytes = b"", payload: bytes = b"", urg: int = 0, bad_checksum: bool = False,
    ttl: int = 64, ident: int = 0, df: bool = False, tos: int = 0,
) -> bytes:
    """A whole TCP datagram (IPv4 or IPv6 by the address family)."""
    segment = tcp_segment(src, dst, sport, dport, flags, seq, ack, window, mss=mss,
                          wscale=wscale, sack_perm=sack_perm, sack=sack, timestamp=timestamp,
                          options=options, payload=payload, urg=urg, bad_checksum=bad_checksum)
    return ip(src, dst, PROTO_TCP, segment, ttl=ttl, ident=ident, df=df, tos=tos)


# --- UDP and UDP-Lite -----------------------------------------------------------------


def udp_segment(
    src: str, dst: str, sport: int, dport: int, payload: bytes = b"", *,
    length: int | None = None, bad_checksum: bool = False, no_checksum: bool = False,
) -> bytes:
    """A UDP header and payload. `no_checksum` leaves the field zero (legal over IPv4 only);
    `length` overrides the header's length field."""
    size = 8 + len(payload) if length is None else length
    segment = struct.pack("!HHHH", sport, dport, size, 0) + payload
    if no_checksum:
        return segment
    return _checksummed(src, dst, PROTO_UDP, segment, 6, bad_checksum)


def udp(
    src: str, dst: str, sport: int, dport: int, payload: bytes = b"", *,
    length: int | None = None, bad_checksum: bool = False, no_checksum: bool = False,
    ttl: int = 64, ident: int = 0, df: bool = False, tos: int = 0,
) -> bytes:
    """A whole UDP datagram (IPv4 or IPv6 by the address family)."""
    segment = udp_segment(src, dst, sport, dport, payload, length=length,
                          bad_checksum=bad_checksum, no_checksum=no_checksum)
    return ip(src, dst, PROTO_UDP, segment, ttl=ttl, ident=ident, df=df, tos=tos)


def udplite(
    src: str, dst: str, sport: int, dport: int, payload: bytes = b"", *,
    coverage: int = 0, bad_checksum: bool = False,
    ttl: int = 64, ident: int = 0, df: bool = False, tos: int = 0,
) -> bytes:
    """A whole UDP-Lite datagram (RFC 3828). The length field holds the checksum
    coverage; 0 means the whole datagram, otherwise it must be at least 8."""
    segment = struct.pack("!HHHH", sport, dport, coverage, 0) + payload
    covered = -1 if coverage == 0 else coverage
    segment = _checksummed(src, dst, PROTO_UDPLITE, segment, 6, bad_checksum, covered)
    return ip(src, dst, PROTO_UDPLITE, segment, ttl=ttl, ident=ident, df=df, tos=tos)


# --- ICMP -----------------------------------------------------------------------------


def icmp(
    src: str, dst: str, type: int, code: int, rest_of_header: bytes = b"\0" * 4,
    payload: bytes = b"", *, bad_checksum: bool = False,
    ttl: int = 64, ident: int = 0, df: bool = False, tos: int = 0,
) -> bytes:
    """A whole ICMP (IPv4) datagram; `rest_of_header` is the type-specific second word."""
    if _address(src)[0] != 4:
        raise ValueError(f"{src} is IPv6: use icmpv6() for ICMPv6")
    message = struct.pack("!BBH", type, code, 0) + rest_of_header + payload
    checksum = internet_checksum(message)
    if bad_checksum:
        checksum = _spoil(checksum)
    message = _with_checksum(message, 2, checksum)
    return ipv4(src, dst, PROTO_ICMP, message, ttl=ttl, ident=ident, df=df, tos=tos)


def icmp_echo(
    src: str, dst: str, ident: int, seq: int, *, reply: bool = False, code: int = 0,
    payload: bytes = b"", bad_checksum: bool = False, ttl: int = 64,
) -> bytes:
    """An ICMP echo request (or reply); `ident` is the echo identifier, not the IP ID."""
    return icmp(src, dst, ICMP_ECHOREPLY if reply else ICMP_ECHO, code,
                struct.pack("!HH", ident, seq), payload, bad_checksum=bad_checksum, ttl=ttl)


def icmp_error(
    src: str, dst: str, type: int, code: int, quoted: bytes, *,
    quote_len: int | None = None, mtu: int = 0, rest_of_header: bytes | None = None,
    bad_checksum: bool = False, ttl: int = 64,
) -> bytes:
    """An ICMP error quoting `quoted` (the offending datagram).

    By default it quotes the IP header plus 8 bytes, the minimum RFC 792 asks
    for; `quote_len` quotes that many bytes instead (Linux quotes up to 576
    bytes in all). `mtu` fills the next-hop MTU of "fragmentation needed".
    """
    if quote_len is None:
        quote_len = (quoted[0] & 0x0F) * 4 + 8 if quoted else 0
    rest = struct.pack("!HH", 0, mtu) if rest_of_header is None else rest_of_header
    return icmp(src, dst, type, code, rest, quoted[:quote_len], bad_checksum=bad_checksum,
                ttl=ttl)


# --- ICMPv6 ---------------------------------------------------------------------------


def icmpv6(
    src: str, dst: str, type: int, code: int, body: bytes = b"", *,
    bad_checksum: bool = False, hop_limit: int = 64,
    ext_headers: Sequence[ExtHeader] = (),
) -> bytes:
    """A whole ICMPv6 datagram; `body` is everything after the checksum."""
    if _address(src)[0] != 6:
        raise ValueError(f"{src} is IPv4: use icmp() for ICMP")
    message = struct.pack("!BBH", type, code, 0) + body
    message = _checksummed(src, dst, PROTO_ICMPV6, message, 2, bad_checksum)
    return ipv6(src, dst, PROTO_ICMPV6, message, hop_limit=hop_limit, ext_headers=ext_headers)


def icmpv6_echo(
    src: str, dst: str, ident: int, seq: int, *, reply: bool = False, code: int = 0,
    payload: bytes = b"", bad_checksum: bool = False, hop_limit: int = 64,
) -> bytes:
    """An ICMPv6 echo request (or reply)."""
    kind = ICMPV6_ECHO_REPLY if reply else ICMPV6_ECHO_REQUEST
    return icmpv6(src, dst, kind, code, struct.pack("!HH", ident, seq) + payload,
                  bad_checksum=bad_checksum, hop_limit=hop_limit)


def icmpv6_error(
    src: str, dst: str, type: int, code: int, quoted: bytes, *,
    quote_len: int | None = None, mtu: int = 0, pointer: int = 0,
    bad_checksum: bool = False, hop_limit: int = 64,
) -> bytes:
    """An ICMPv6 error quoting as much of `quoted` as fits in 1280 bytes (RFC 4443),
    or `quote_len` bytes. `mtu` (packet too big) or `pointer` (parameter problem)
    fill the second word."""
    if quote_len is None:
        quote_len = IPV6_MIN_MTU - 40 - 8
    word = mtu if type == ICMPV6_PKT_TOOBIG else pointer
    return icmpv6(src, dst, type, code, struct.pack("!I", word) + quoted[:quote_len],
                  bad_checksum=bad_checksum, hop_limit=hop_limit)


# --- Fragmentation --------------------------------------------------------------------


def fragment(datagram: bytes, payload_size: int, *, ident: int = 1) -> list[bytes]:
    """Split a datagram into fragments carrying `payload_size` bytes each (the last
    carries the rest). IPv4 uses the datagram's own ID, flags and options (only
    the options marked "copied" repeat after the first fragment); IPv6 inserts a
    Fragment header with identification `ident` after the unfragmentable part."""
    if payload_size < 8 or payload_size % 8:
        raise ValueError(f"fragment payload size {payload_size} is not a positive multiple of 8")
    version = datagram[0] >> 4 if datagram else 0
    if version == 4:
        return _fragment_v4(datagram, payload_size)
    if version == 6:
        return _fragment_v6(datagram, payload_size, ident)
    raise ValueError(f"not an IP datagram (version {version})")


def _fragment_v4(datagram: bytes, size: int) -> list[bytes]:
    ihl = (datagram[0] & 0x0F) * 4
    total, flags = struct.unpack_from("!H2xH", datagram, 2)
    base, more = (flags & 0x1FFF) * 8, bool(flags & 0x2000)
    options = datagram[20:ihl]
    later_options = _copied_options(options)
    payload = datagram[ihl:total]
    out = []
    for start in range(0, len(payload), size):
        chunk = payload[start:start + size]
        last = start + size >= len(payload)
        opts = options if start == 0 else later_options
        opts += b"\0" * (-len(opts) & 3)
        word = (flags & 0x4000) | (0x2000 if more or not last else 0) | ((base + start) >> 3)
        header = bytearray(datagram[:20] + opts)
        header[0] = 0x40 | len(header) // 4
        struct.pack_into("!H", header, 2, len(header) + len(chunk))
        struct.pack_into("!H", header, 6, word)
        struct.pack_into("!H", header, 10, 0)
        struct.pack_into("!H", header, 10, internet_checksum(bytes(header)))
        out.append(bytes(header) + chunk)
    return out


def _copied_options(options: bytes) -> bytes:
    """The IPv4 options whose "copied" bit asks for them in every fragment."""
    out = b""
    pos = 0
    while pos < len(options):
        kind = options[pos]
        if kind == 0:
            break
        if kind == 1:
            size = 1
        elif pos + 1 < len(options):
            size = max(options[pos + 1], 2)
        else:
            break
        if kind & 0x80:
            out += options[pos:pos + size]
        pos += size
    return out


def _fragment_v6(datagram: bytes, size: int, ident: int) -> list[bytes]:
    length = struct.unpack_from("!H", datagram, 4)[0]
    next_at, pos = 6, 40  # where the Fragment header's type goes; end of the unfragmentable part
    header_at, walk, next_header = 6, 40, datagram[6]
    while next_header in (PROTO_HOPOPTS, PROTO_ROUTING, PROTO_DSTOPTS):
        header_at = walk
        walk += (datagram[walk + 1] + 1) * 8
        if next_header != PROTO_DSTOPTS:  # destination options stay only before a routing header
            next_at, pos = header_at, walk
        next_header = datagram[header_at]
    unfrag = bytearray(datagram[:pos])
    inner = unfrag[next_at]
    unfrag[next_at] = PROTO_FRAGMENT
    body = datagram[pos:40 + length]
    out = []
    for start in range(0, len(body), size):
        chunk = body[start:start + size]
        more = start + size < len(body)
        struct.pack_into("!H", unfrag, 4, len(unfrag) - 40 + 8 + len(chunk))
        frag = _ext_header(inner, fragment_header(start, more, ident)[1])
        out.append(bytes(unfrag) + frag + chunk)
    return out


# --- Link layer -----------------------------------------------------------------------


def ethernet(
    datagram: bytes, *, src_mac: str | bytes = "02:00:00:00:00:01",
    dst_mac: str | bytes = "02:00:00:00:00:02", vlan: int | Sequence[int] | None = None,
    ethertype: int | None = None, pad: bool = False,
) -> bytes:
    """An Ethernet II frame around `datagram`, EtherType from its IP version.

    `vlan` adds an 802.1Q tag (a VLAN ID, or a whole TCI to set the priority
    bits); a sequence of several, outermost first, makes a QinQ stack whose
    outer tags use the 802.1ad TPID 0x88a8. `pad` pads to the 60-byte minimum
    frame, as a NIC would on the wire.
    """
    if ethertype is None:
        version = datagram[0] >> 4 if datagram else 0
        if version not in (4, 6):
            raise ValueError(f"cannot infer the EtherType of IP version {version}")
        ethertype = ETH_P_IP if version == 4 else ETH_P_IPV6
    tags = [] if vlan is None else [vlan] if isinstance(vlan, int) else list(vlan)
    frame = _mac(dst_mac) + _mac(src_mac)
    for i, tci in enumerate(tags):
        tpid = ETH_P_8021Q if i == len(tags) - 1 else ETH_P_8021AD
        frame += struct.pack("!HH", tpid, tci)
    frame += struct.pack("!H", ethertype) + datagram
    if pad and len(frame) < 60:
        frame += b"\0" * (60 - len(frame))
    return frame


def _mac(mac: str | bytes) -> bytes:
    raw = mac if isinstance(mac, bytes) else bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"{mac!r} is not a 6-byte MAC address")
    return raw
