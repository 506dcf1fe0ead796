"""Layer-4 headers: the parts conntrack's trackers and iptables matches read.

Ports go into `sport`/`dport` following the tuple convention of
`Packet` (ICMP: identifier and type << 8 | code; GRE version 1: the PPTP call
id as destination, as `gre_pkt_to_tuple` does; anything else 0/0). TCP
options are read the way `tcp_options` and `tcp_sack` in
nf_conntrack_proto_tcp.c read them: a malformed option list ends the parse
quietly instead of failing the packet. Checksums are left to the trackers,
which verify them only when nf_conntrack_checksum asks.

In a quoted datagram only the bytes conntrack needs for a tuple are required
(4 for port-based protocols, 8 for ICMP); the rest is taken if present.
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
        _gre(pkt, data, off, avail, base)


def _short(pkt: Packet, layer: str, at: int, have: int, need: int, quoted: bool) -> None:
    what = "quoted header truncated" if quoted else "truncated header"
    pkt.error = DecodeError(layer, at, f"{what}: {max(have, 0)} of {need} bytes")


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
        _short(pkt, "tcp", base + off, avail, hlen, False)
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
        if avail < 4:
            _short(pkt, "tcp", base + off, avail, 4, True)
        pkt.payload_off = len(data)
        return
    _short(pkt, "tcp", base + off, avail, 20, False)


def _ports(
    pkt: Packet, data: bytes, off: int, avail: int, base: int, quoted: bool, proto: int
) -> None:
    need = 4 if quoted else _MIN_HEADER[proto]
    if avail >= 4:
        pkt.sport, pkt.dport = _PORTS.unpack_from(data, off)
    if avail < need:
        _short(pkt, _NAMES[proto], base + off, avail, need, quoted)
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
        _short(pkt, layer, base + off, avail, 8, quoted)
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
    is_error = itype in ICMP_ERROR_TYPES if proto == PROTO_ICMP else itype < 128
    if is_error and not quoted:
        from statewall.decode.ip import decode_datagram

        pkt.inner = decode_datagram(data[off + 8:], index=pkt.index, ts=pkt.ts, quoted=True)


def _gre(pkt: Packet, data: bytes, off: int, avail: int, base: int) -> None:
    """GRE keys as conntrack sees them: only version 1 (PPTP) has a tuple part."""
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
