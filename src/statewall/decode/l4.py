"""Layer-4 headers: the parts conntrack's trackers and iptables matches read.

Ports go into `sport`/`dport` following the tuple convention of
`Packet` (ICMP: identifier and type << 8 | code; GRE version 1: the PPTP call
id as destination, as `gre_pkt_to_tuple` does; anything else 0/0). TCP
options are read the way `tcp_options` and `tcp_sack` in
nf_conntrack_proto_tcp.c read them: a malformed option list ends the parse
quietly instead of failing the packet. Checksums are left to the trackers,
which verify them only when nf_conntrack_checksum asks.

A quoted datagram (inside an ICMP error or an ICMPv6 redirect) never fails at
layer 4: whatever part of its header was quoted is read, and the ICMP
tracker judges whether that is enough for a tuple (4 bytes for port-based
protocols, 8 for ICMP), as `nf_conntrack_inet_error` does.
"""

from __future__ import annotations

import struct

from statewall.packet import (
    PROTO_GRE,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_SCTP,
    PROTO_TCP,
    PROTO_UDP,
    PROTO_UDPLITE,
    DecodeError,
    Packet,
    TcpOptions,
)

_TCP = struct.Struct("!HHIIBBH")
_PORTS = struct.Struct("!HH")
_TS_ALIGNED = struct.Struct("!III")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")

TCPOPT_EOL = 0
TCPOPT_NOP = 1
TCPOPT_MSS = 2
TCPOPT_WINDOW = 3
TCPOPT_SACK_PERM = 4
TCPOPT_SACK = 5
TCPOPT_TIMESTAMP = 8
_NOP_NOP_TS = 0x0101080A

# ICMP types whose body quotes the offending datagram (the kernel's icmp_is_err).
ICMP_ERROR_TYPES = frozenset((3, 4, 5, 11, 12))
GRE_PROTO_PPP = 0x880B

# ICMPv6 redirect: the 40-byte message (header, target, destination), then
# the first option; a Redirected Header option (type 4) carries the packet
# 8 bytes further on.
ICMPV6_REDIRECT = 137
REDIRECT_MSG_LEN = 40
ND_OPT_REDIRECT_HDR = 4
REDIRECT_QUOTE_OFFSET = REDIRECT_MSG_LEN + 8

# Minimum header sizes the trackers insist on (skb_header_pointer sizes).
_MIN_HEADER = {PROTO_UDP: 8, PROTO_UDPLITE: 8, PROTO_SCTP: 12}
_NAMES = {PROTO_UDP: "udp", PROTO_UDPLITE: "udplite", PROTO_SCTP: "sctp"}


def decode_l4(pkt: Packet, data: bytes, off: int, proto: int, base: int, quoted: bool) -> None:
    """Fill the layer-4 fields of `pkt` from `data[off:]`; `base` only shifts error offsets."""
    pkt.l4_off = off
    pkt.payload_off = off
    avail = len(data) - off
    if proto == PROTO_TCP:
        if avail >= 20 and not quoted:
            tcp_header(pkt, data, off, avail, base)
        else:
            _tcp_partial(pkt, data, off, avail, base, quoted)
    elif proto in _MIN_HEADER:
        _ports(pkt, data, off, avail, base, quoted, proto)
    elif proto in (PROTO_ICMP, PROTO_ICMPV6):
        _icmp(pkt, data, off, avail, base, quoted, proto)
    elif proto == PROTO_GRE:
        _gre(pkt, data, off, avail, base, quoted)


def _short(pkt: Packet, layer: str, at: int, have: int, need: int) -> None:
    pkt.error = DecodeError(layer, at, f"truncated header: {max(have, 0)} of {need} bytes")


def tcp_header(pkt: Packet, data: bytes, off: int, avail: int, base: int) -> None:
    """A complete TCP header (at least 20 bytes present); the common case."""
    sport, dport, seq, ack, doff, flags, window = _TCP.unpack_from(data, off)
    pkt.sport = sport
    pkt.dport = dport
    pkt.seq = seq
    pkt.ack = ack
    pkt.tcp_flags = flags
    pkt.window = window
    hlen = (doff >> 4) << 2
    if hlen < 20:
        pkt.error = DecodeError("tcp", base + off + 12, f"bad data offset: header length {hlen}")
        return
    if hlen > avail:
        _short(pkt, "tcp", base + off, avail, hlen)
        return
    pkt.payload_off = off + hlen
    if hlen > 20:
        pkt.tcp_options = parse_tcp_options(data, off + 20, off + hlen)


def _tcp_partial(
    pkt: Packet, data: bytes, off: int, avail: int, base: int, quoted: bool
) -> None:
    """A TCP header cut short: keep what is there (ports, sequence number)."""
    if avail >= 4:
        pkt.sport, pkt.dport = _PORTS.unpack_from(data, off)
    if avail >= 8:
        pkt.seq = _U32.unpack_from(data, off + 4)[0]
    if avail >= 14:
        pkt.tcp_flags = data[off + 13]
    if quoted:
        pkt.payload_off = len(data)
        return
    _short(pkt, "tcp", base + off, avail, 20)


def _ports(
    pkt: Packet, data: bytes, off: int, avail: int, base: int, quoted: bool, proto: int
) -> None:
    if avail >= 4:
        pkt.sport, pkt.dport = _PORTS.unpack_from(data, off)
    if avail < _MIN_HEADER[proto] and not quoted:
        _short(pkt, _NAMES[proto], base + off, avail, _MIN_HEADER[proto])
        return
    pkt.payload_off = min(off + _MIN_HEADER[proto], len(data))


def _icmp(
    pkt: Packet, data: bytes, off: int, avail: int, base: int, quoted: bool, proto: int
) -> None:
    layer = "icmp" if proto == PROTO_ICMP else "icmpv6"
    if avail < 8:
        if avail >= 2:
            pkt.icmp_type = data[off]
            pkt.icmp_code = data[off + 1]
        if not quoted:
            _short(pkt, layer, base + off, avail, 8)
        return
    itype = data[off]
    code = data[off + 1]
    ident = _U16.unpack_from(data, off + 4)[0]
    pkt.icmp_type = itype
    pkt.icmp_code = code
    pkt.icmp_id = ident
    pkt.sport = ident
    pkt.dport = itype << 8 | code
    pkt.payload_off = off + 8
    if quoted:
        return
    if proto == PROTO_ICMP:
        start = off + 8 if itype in ICMP_ERROR_TYPES else 0
    elif itype < 128:
        start = off + 8
    else:
        start = _redirected_header(data, off, itype)
    if start:
        from statewall.decode.ip import decode_datagram

        pkt.inner = decode_datagram(data[start:], index=pkt.index, ts=pkt.ts, quoted=True)


def _redirected_header(data: bytes, off: int, itype: int) -> int:
    """Where an ICMPv6 redirect's quoted packet starts, or 0 if it has none.

    `nf_conntrack_icmpv6_redirect` looks only at the first option after the
    40-byte redirect message; when that is a Redirected Header option, the
    packet it carries (after the option's own 8 bytes) is what the redirect
    is about. Code, hop limit and source are the tracker's checks, not ours.
    """
    if itype != ICMPV6_REDIRECT or len(data) - off < REDIRECT_QUOTE_OFFSET:
        return 0
    if data[off + REDIRECT_MSG_LEN] != ND_OPT_REDIRECT_HDR:
        return 0
    return off + REDIRECT_QUOTE_OFFSET


def _gre(pkt: Packet, data: bytes, off: int, avail: int, base: int, quoted: bool) -> None:
    """GRE keys as conntrack sees them (`gre_pkt_to_tuple`): only version 1 has a tuple part.

    Version 1 shorter than 8 bytes keeps keys 0/0. Version 1 carrying
    anything but PPP has no tuple: an error for a packet of its own, but in a
    quoted datagram that judgement is left to the ICMP tracker.
    """
    if avail < 4:
        return
    flags = data[off]
    version = data[off + 1] & 7
    if version == 1:
        hlen = 8 + 4 * (((flags & 0x10) != 0) + ((data[off + 1] & 0x80) != 0))
    else:
        hlen = 4 + 4 * (((flags & 0xC0) != 0) + ((flags & 0x20) != 0) + ((flags & 0x10) != 0))
    pkt.payload_off = min(off + hlen, len(data))
    if version != 1 or avail < 8:
        return
    protocol = _U16.unpack_from(data, off + 2)[0]
    if protocol != GRE_PROTO_PPP:
        if quoted:
            return
        pkt.error = DecodeError(
            "gre", base + off + 2, f"GRE version 1 carrying protocol 0x{protocol:04x}, not PPP"
        )
        return
    pkt.dport = _U16.unpack_from(data, off + 6)[0]


def parse_tcp_options(data: bytes, pos: int, end: int) -> TcpOptions:
    """Read MSS, window scale, SACK-permitted, SACK blocks and timestamps.

    Mirrors the stopping rules of the kernel's option walk: end-of-list, a
    length below 2 or an option running past the header stops the parse and
    keeps what was read so far. Like `tcp_sack`, only the first well-formed
    SACK option counts.
    """
    if end - pos == 12:
        lead, tsval, tsecr = _TS_ALIGNED.unpack_from(data, pos)
        if lead == _NOP_NOP_TS:
            return TcpOptions(None, None, False, (), (tsval, tsecr))
    mss: int | None = None
    wscale: int | None = None
    sack_perm = False
    sack: tuple[tuple[int, int], ...] = ()
    stamp: tuple[int, int] | None = None
    while pos < end:
        kind = data[pos]
        if kind == TCPOPT_EOL:
            break
        if kind == TCPOPT_NOP:
            pos += 1
            continue
        if end - pos < 2:
            break
        size = data[pos + 1]
        if size < 2 or size > end - pos:
            break
        if kind == TCPOPT_MSS and size == 4:
            mss = _U16.unpack_from(data, pos + 2)[0]
        elif kind == TCPOPT_WINDOW and size == 3:
            wscale = data[pos + 2]
        elif kind == TCPOPT_SACK_PERM and size == 2:
            sack_perm = True
        elif kind == TCPOPT_SACK and not sack and size >= 10 and (size - 2) % 8 == 0:
            sack = _sack_blocks(data, pos + 2, pos + size)
        elif kind == TCPOPT_TIMESTAMP and size == 10:
            stamp = (_U32.unpack_from(data, pos + 2)[0], _U32.unpack_from(data, pos + 6)[0])
        pos += size
    return TcpOptions(mss, wscale, sack_perm, sack, stamp)


def _sack_blocks(data: bytes, pos: int, end: int) -> tuple[tuple[int, int], ...]:
    return tuple(
        (_U32.unpack_from(data, p)[0], _U32.unpack_from(data, p + 4)[0])
        for p in range(pos, end, 8)
    )
