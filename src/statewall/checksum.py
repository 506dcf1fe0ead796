"""The Internet checksum (RFC 1071) and the pseudo-headers TCP, UDP and ICMPv6 use."""

from __future__ import annotations

import struct


def internet_checksum(data: bytes, initial: int = 0) -> int:
    """One's-complement sum of 16-bit words, folded and inverted."""
    if len(data) % 2:
        data += b"\x00"
    total: int = initial + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pseudo_header_sum(family: int, src: int, dst: int, proto: int, length: int) -> int:
    """The unfolded sum of the IPv4 or IPv6 pseudo-header, to seed `internet_checksum`."""
    if family == 4:
        header = struct.pack("!IIBBH", src, dst, 0, proto, length)
    else:
        header = src.to_bytes(16, "big") + dst.to_bytes(16, "big") + struct.pack("!IxxxB", length, proto)
    return sum(struct.unpack(f"!{len(header) // 2}H", header))


def l4_checksum_ok(family: int, src: int, dst: int, proto: int, segment: bytes) -> bool:
    """True when a TCP/UDP/UDP-Lite/ICMPv6 segment's checksum verifies (sum folds to zero)."""
    return internet_checksum(segment, pseudo_header_sum(family, src, dst, proto, len(segment))) == 0
