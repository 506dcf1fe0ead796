"""The Internet checksum (RFC 1071) and the pseudo-headers TCP, UDP and ICMPv6 use.

Why big integers instead of a loop over 16-bit words: since 2**16 leaves a
remainder of 1 when divided by 0xFFFF, the one's-complement sum of a
message's 16-bit words is congruent, modulo 0xFFFF, to the whole message
read as one big-endian integer. Python turns the bytes into an integer and
takes the remainder in C, two to three times faster than unpacking the
words and adding them up. The end-around-carry fold keeps that remainder
too, and only needs telling apart 0 (nothing but zero words) from 0xFFFF (a
non-zero sum that is a multiple of 0xFFFF), which `_fold` does.
"""

from __future__ import annotations

import struct

_PSEUDO4 = struct.Struct("!IIBBH")
_PSEUDO6_TAIL = struct.Struct("!IxxxB")
_WORDS_4 = struct.Struct("!6H")
_WORDS_6 = struct.Struct("!20H")


def _fold(total: int) -> int:
    """The 16-bit one's-complement fold of a non-negative sum of 16-bit words."""
    if total == 0:
        return 0
    return total % 0xFFFF or 0xFFFF


def _as_integer(data: bytes) -> int:
    """The message as one big-endian integer, an odd length padded with a zero byte."""
    value = int.from_bytes(data, "big")
    return value << 8 if len(data) & 1 else value


def internet_checksum(data: bytes, initial: int = 0) -> int:
    """One's-complement sum of 16-bit words, folded and inverted.

    `initial` is a non-negative, possibly unfolded sum to start from (a
    pseudo-header's, from `pseudo_header_sum`).
    """
    return ~_fold(initial + _as_integer(data)) & 0xFFFF


def pseudo_header_sum(family: int, src: int, dst: int, proto: int, length: int) -> int:
    """The unfolded sum of the IPv4 or IPv6 pseudo-header, to seed `internet_checksum`."""
    if family == 4:
        return sum(_WORDS_4.unpack(_PSEUDO4.pack(src, dst, 0, proto, length)))
    header = src.to_bytes(16, "big") + dst.to_bytes(16, "big") + _PSEUDO6_TAIL.pack(length, proto)
    return sum(_WORDS_6.unpack(header))


def l4_checksum_ok(family: int, src: int, dst: int, proto: int, segment: bytes) -> bool:
    """True when a TCP/UDP/UDP-Lite/ICMPv6 segment's checksum verifies (sum folds to 0xFFFF).

    Every packet's checksum passes through here, so no pseudo-header is
    built: modulo 0xFFFF its words add up to the addresses, protocol and
    length themselves, whatever the address width, which is also why
    `family` does not enter the sum.
    """
    length = len(segment)
    total = _as_integer(segment) + src + dst + proto + length
    return total != 0 and total % 0xFFFF == 0
