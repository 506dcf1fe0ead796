"""The Internet checksum against RFC 1071's definition and published examples.

`reference` below is RFC 1071 section 4.1 word by word (16-bit big-endian
words, end-around carry, complement); the module computes the same thing by
another route, so every case compares the two or checks a published value.
"""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from statewall.checksum import internet_checksum, l4_checksum_ok, pseudo_header_sum


def reference(data: bytes, initial: int = 0) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = initial
    for (word,) in struct.iter_unpack("!H", data):
        total += word
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pseudo_header(family: int, src: int, dst: int, proto: int, length: int) -> bytes:
    if family == 4:
        return struct.pack("!IIBBH", src, dst, 0, proto, length)
    return src.to_bytes(16, "big") + dst.to_bytes(16, "big") + struct.pack("!IxxxB", length, proto)


def with_checksum(family: int, src: int, dst: int, proto: int, segment: bytes, at: int) -> bytes:
    """`segment` with the correct checksum at byte `at` (found with the reference)."""
    blank = segment[:at] + b"\x00\x00" + segment[at + 2:]
    value = reference(pseudo_header(family, src, dst, proto, len(blank)) + blank)
    return blank[:at] + struct.pack("!H", value) + blank[at + 2:]


def test_rfc1071_worked_example() -> None:
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0xFFFF - 0xDDF2


def test_ipv4_header_example_verifies_and_recomputes() -> None:
    header = bytes.fromhex("450000730000400040 11b861c0a80001c0a800c7".replace(" ", ""))
    assert internet_checksum(header) == 0
    assert internet_checksum(header[:10] + b"\x00\x00" + header[12:]) == 0xB861


def test_zero_words_and_multiples_of_ffff_fold_differently() -> None:
    # Nothing but zeros sums to 0 (checksum ffff); a non-zero multiple of ffff
    # folds to ffff (checksum 0): the two one's-complement zeros.
    assert internet_checksum(b"") == 0xFFFF
    assert internet_checksum(bytes(6)) == 0xFFFF
    assert internet_checksum(b"\xff\xff") == 0
    assert internet_checksum(b"\x80\x00\x7f\xff") == 0
    assert internet_checksum(b"\x00\x00", 0xFFFF) == 0


def test_odd_length_pads_with_a_zero_byte() -> None:
    assert internet_checksum(b"\x12\x34\x56") == reference(b"\x12\x34\x56\x00")
    assert internet_checksum(b"\x01") == 0xFEFF


@given(st.binary(max_size=300), st.integers(min_value=0, max_value=0xFFFFF))
def test_matches_rfc1071_word_by_word(data: bytes, initial: int) -> None:
    assert internet_checksum(data, initial) == reference(data, initial)


@given(st.sampled_from((4, 6)), st.integers(min_value=0), st.integers(min_value=0),
       st.sampled_from((6, 17, 58, 136)), st.integers(min_value=0, max_value=0xFFFF))
def test_pseudo_header_sum_is_the_sum_of_its_words(
    family: int, src: int, dst: int, proto: int, length: int
) -> None:
    bits = 32 if family == 4 else 128
    src, dst = src % (1 << bits), dst % (1 << bits)
    header = pseudo_header(family, src, dst, proto, length)
    words = sum(word for (word,) in struct.iter_unpack("!H", header))
    assert pseudo_header_sum(family, src, dst, proto, length) == words


SRC4, DST4 = 0xC0000201, 0xC6336407
SRC6, DST6 = 0x20010DB8 << 96 | 1, 0x20010DB8 << 96 | 2


def tcp_segment(payload: bytes) -> bytes:
    return struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, 5 << 4, 0x02, 65535, 0, 0) + payload


def test_l4_checksum_ok_accepts_correct_and_rejects_corrupt_segments() -> None:
    for family, src, dst in ((4, SRC4, DST4), (6, SRC6, DST6)):
        for payload in (b"", b"x", b"hello", bytes(31)):
            good = with_checksum(family, src, dst, 6, tcp_segment(payload), 16)
            assert l4_checksum_ok(family, src, dst, 6, good)
            flipped = good[:4] + bytes((good[4] ^ 1,)) + good[5:]
            assert not l4_checksum_ok(family, src, dst, 6, flipped)
            # The pseudo-header counts too: another address or protocol fails.
            assert not l4_checksum_ok(family, src + 1, dst, 6, good)
            assert not l4_checksum_ok(family, src, dst, 17, good)


def test_l4_checksum_ok_treats_ffff_and_zero_fields_as_one_value() -> None:
    # One's complement has two zeros: a checksum field of 0000 where ffff was
    # computed (or the reverse) still verifies, as in the kernel.
    for payload in (bytes(2), b"\x01\x02"):
        good = with_checksum(4, SRC4, DST4, 6, tcp_segment(payload), 16)
        value = struct.unpack_from("!H", good, 16)[0]
        if value in (0, 0xFFFF):
            other = good[:16] + struct.pack("!H", value ^ 0xFFFF) + good[18:]
            assert l4_checksum_ok(4, SRC4, DST4, 6, other)


@given(st.sampled_from((4, 6)), st.binary(min_size=8, max_size=200),
       st.sampled_from((6, 17, 58)), st.integers(min_value=0))
def test_l4_checksum_ok_matches_the_reference(family: int, segment: bytes, proto: int,
                                             seed: int) -> None:
    bits = 32 if family == 4 else 128
    src, dst = seed % (1 << bits), (seed * 7919) % (1 << bits)
    expected = reference(pseudo_header(family, src, dst, proto, len(segment)) + segment) == 0
    assert l4_checksum_ok(family, src, dst, proto, segment) == expected
    fixed = with_checksum(family, src, dst, proto, segment, 6)
    assert l4_checksum_ok(family, src, dst, proto, fixed)
