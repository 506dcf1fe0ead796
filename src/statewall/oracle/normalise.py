"""Make captured datagrams fit for injection into the live kernel.

Captures are full of checksums a NIC was meant to fill in later (offload) and
of TTLs that a forwarding hop would expire. The oracle wants the kernel to
judge connection tracking, not those accidents, so before injection:

* the TTL / hop limit becomes 64 (the firewall decrements it; an expired one
  would be answered with ICMP time exceeded instead of being forwarded);
* the IPv4 header checksum is recomputed (ip_rcv drops a bad one before
  conntrack ever sees the packet);
* the TCP, UDP, UDP-Lite, ICMP and ICMPv6 checksums are recomputed, because
  conntrack marks a bad one INVALID (nf_conntrack_checksum=1). For fragments
  the checksum is computed over the reassembled payload and written into the
  fragment that carries the layer-4 header. An ICMP error is checksummed as
  opaque bytes, so the datagram it quotes stays exactly as captured.

What cannot be repaired is left alone and reported by the kernel as it is: a
datagram shorter than its length field says, overlapping fragments (the
kernel discards those datagrams), fragments whose siblings are missing, a
UDP-Lite coverage out of range. An IPv4 UDP checksum of zero ("none") stays
zero. The header parsing here is deliberately minimal and independent of the
main decoder.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from statewall.checksum import internet_checksum, pseudo_header_sum

HOP_LIMIT = 64
ICMP, TCP, UDP, ICMPV6, UDPLITE = 1, 6, 17, 58, 136
CHECKSUM_OFFSET = {ICMP: 2, TCP: 16, UDP: 6, ICMPV6: 2, UDPLITE: 6}
MIN_HEADER = {ICMP: 4, TCP: 18, UDP: 8, ICMPV6: 4, UDPLITE: 8}
_IPV6_EXTENSIONS = {0, 43, 60, 51}  # hop-by-hop, routing, destination options, AH
_IPV6_FRAGMENT = 44


@dataclass(frozen=True)
class IpView:
    """Where things are in one datagram, as far as normalisation needs to know."""

    family: int
    src: int
    dst: int
    proto: int  # layer-4 protocol, or the fragment header's next header
    l4_off: int  # start of layer 4, or of the fragmentable part of a fragment
    end: int  # end of the datagram by its length field
    truncated: bool  # the bytes stop before `end`
    frag_ident: int | None = None  # set for fragments only
    frag_offset: int = 0
    frag_more: bool = False

    @property
    def is_fragment(self) -> bool:
        return self.frag_ident is not None


def parse(data: bytes) -> IpView | None:
    """A minimal IPv4/IPv6 header walk; None when the bytes are not a usable datagram."""
    if len(data) >= 20 and data[0] >> 4 == 4:
        return _parse_ipv4(data)
    if len(data) >= 40 and data[0] >> 4 == 6:
        return _parse_ipv6(data)
    return None


def _parse_ipv4(data: bytes) -> IpView | None:
    ihl = (data[0] & 0x0F) * 4
    total, ident, frag = struct.unpack_from("!HHH", data, 2)
    if ihl < 20 or ihl > len(data) or total < ihl:
        return None
    src, dst = struct.unpack_from("!II", data, 12)
    offset, more = (frag & 0x1FFF) * 8, bool(frag & 0x2000)
    fragment = ident if (offset or more) else None
    return IpView(4, src, dst, data[9], ihl, total, len(data) < total,
                  fragment, offset, more)


def _parse_ipv6(data: bytes) -> IpView | None:
    payload_len = struct.unpack_from("!H", data, 4)[0]
    if payload_len == 0:
        return None  # jumbogram: nothing to normalise beyond the hop limit
    src = int.from_bytes(data[8:24], "big")
    dst = int.from_bytes(data[24:40], "big")
    end = 40 + payload_len
    proto, offset = data[6], 40
    while proto in _IPV6_EXTENSIONS or proto == _IPV6_FRAGMENT:
        if offset + 8 > min(len(data), end):
            return None
        if proto == _IPV6_FRAGMENT:
            frag, ident = struct.unpack_from("!HI", data, offset + 2)
            return IpView(6, src, dst, data[offset], offset + 8, end, len(data) < end,
                          ident, frag & 0xFFF8, bool(frag & 1))
        proto, offset = data[offset], offset + _extension_length(proto, data[offset + 1])
    return IpView(6, src, dst, proto, offset, end, len(data) < end)


def _extension_length(proto: int, length_field: int) -> int:
    return (length_field + 2) * 4 if proto == 51 else (length_field + 1) * 8


def skip_extensions(proto: int, payload: bytes) -> tuple[int, int] | None:
    """(layer-4 protocol, offset) after the extension headers that open `payload`."""
    offset = 0
    while proto in _IPV6_EXTENSIONS:
        if offset + 8 > len(payload):
            return None
        proto, offset = payload[offset], offset + _extension_length(proto, payload[offset + 1])
    return proto, offset


def is_fragment(datagram: bytes) -> bool:
    """True for an IPv4 fragment or an IPv6 datagram with a fragment header."""
    view = parse(datagram)
    return view is not None and view.is_fragment


def l4_checksum(family: int, src: int, dst: int, proto: int, segment: bytes) -> int | None:
    """The checksum `segment` should carry, or None to leave its field alone."""
    if proto not in CHECKSUM_OFFSET or len(segment) < MIN_HEADER[proto]:
        return None
    at = CHECKSUM_OFFSET[proto]
    if proto == UDP and family == 4 and segment[at : at + 2] == b"\0\0":
        return None
    blank = bytearray(segment)
    blank[at : at + 2] = b"\0\0"
    covered = len(blank)
    if proto == UDPLITE:
        coverage = struct.unpack_from("!H", blank, 4)[0] or len(blank)
        if coverage < 8 or coverage > len(blank):
            return None
        covered = coverage
    seed = 0 if proto == ICMP else pseudo_header_sum(family, src, dst, proto, len(blank))
    value = internet_checksum(bytes(blank[:covered]), seed)
    return 0xFFFF if value == 0 and proto in (UDP, UDPLITE) else value


def _reset_hop_limit(buf: bytearray, view: IpView) -> None:
    if view.family == 6:
        buf[7] = HOP_LIMIT
        return
    buf[8] = HOP_LIMIT
    buf[10:12] = b"\0\0"
    buf[10:12] = struct.pack("!H", internet_checksum(bytes(buf[: view.l4_off])))


def _write_checksum(buf: bytearray, view: IpView, proto: int, l4_at: int,
                    segment: bytes) -> None:
    value = l4_checksum(view.family, view.src, view.dst, proto, segment)
    at = l4_at + CHECKSUM_OFFSET.get(proto, 0)
    if value is not None and at + 2 <= len(buf):
        buf[at : at + 2] = struct.pack("!H", value)


@dataclass
class _Piece:
    index: int
    offset: int
    data: bytes


@dataclass
class _Datagram:
    """The fragments seen so far of one datagram (same addresses, protocol, ident)."""

    pieces: list[_Piece] = field(default_factory=list)
    total: int | None = None  # payload length, known once the last fragment arrived

    def payload(self) -> bytes | None:
        """The reassembled payload once complete; None while incomplete or overlapping."""
        if self.total is None:
            return None
        out = bytearray(self.total)
        covered = 0
        seen: set[tuple[int, int]] = set()
        for piece in sorted(self.pieces, key=lambda p: p.offset):
            span = (piece.offset, len(piece.data))
            if span in seen:
                continue
            if piece.offset != covered:
                return None
            seen.add(span)
            out[piece.offset : piece.offset + len(piece.data)] = piece.data
            covered += len(piece.data)
        return bytes(out) if covered == self.total else None


def normalise(datagrams: Sequence[bytes]) -> list[bytes]:
    """Copies of `datagrams` with hop limits reset and checksums recomputed."""
    out = [bytearray(d) for d in datagrams]
    pending: dict[tuple[int, int, int, int, int], _Datagram] = {}
    for index, buf in enumerate(out):
        view = parse(bytes(buf))
        if view is None:
            continue
        _reset_hop_limit(buf, view)
        if view.truncated:
            continue
        if not view.is_fragment:
            segment = bytes(buf[view.l4_off : view.end])
            _write_checksum(buf, view, view.proto, view.l4_off, segment)
        else:
            _add_fragment(out, pending, index, view)
    return [bytes(b) for b in out]


def _add_fragment(out: list[bytearray], pending: dict[tuple[int, int, int, int, int], _Datagram],
                  index: int, view: IpView) -> None:
    assert view.frag_ident is not None
    proto = view.proto if view.family == 4 else 0
    key = (view.family, view.src, view.dst, proto, view.frag_ident)
    datagram = pending.setdefault(key, _Datagram())
    data = bytes(out[index][view.l4_off : view.end])
    datagram.pieces.append(_Piece(index, view.frag_offset, data))
    if not view.frag_more:
        datagram.total = view.frag_offset + len(data)
    payload = datagram.payload()
    if payload is None:
        return
    del pending[key]
    _checksum_reassembled(out, datagram, view, payload)


def _checksum_reassembled(out: list[bytearray], datagram: _Datagram, view: IpView,
                          payload: bytes) -> None:
    """Compute over the whole payload, then patch every copy of the first fragment."""
    proto, l4_in_payload = view.proto, 0
    if view.family == 6:
        found = skip_extensions(view.proto, payload)
        if found is None:
            return
        proto, l4_in_payload = found
    segment = payload[l4_in_payload:]
    for piece in datagram.pieces:
        if piece.offset == 0:
            buf = out[piece.index]
            first = parse(bytes(buf))
            if first is not None:
                _write_checksum(buf, first, proto, first.l4_off + l4_in_payload, segment)


def assign_sides(datagrams: Sequence[bytes]) -> list[int]:
    """The side (0 = left, 1 = right) to inject each datagram on.

    The first datagram's source goes left and its destination right; later
    datagrams follow the addresses already placed, and a new address takes
    the side opposite its peer. A datagram whose source and destination were
    both placed on the same side (e.g. two clients talking to each other) is
    sent from its source's side: the firewall still forwards it out of the
    other interface, only the direction of that conversation is arbitrary.
    Datagrams that cannot be parsed go left.
    """
    known: dict[tuple[int, int], int] = {}
    sides: list[int] = []
    for data in datagrams:
        view = parse(data)
        if view is None:
            sides.append(0)
            continue
        src, dst = (view.family, view.src), (view.family, view.dst)
        if src in known:
            side = known[src]
        elif dst in known:
            side = 1 - known[dst]
        else:
            side = 0
        known.setdefault(src, side)
        known.setdefault(dst, 1 - side)
        sides.append(side)
    return sides
