//! The Internet checksum (RFC 1071) and the pseudo-headers TCP, UDP, UDP-Lite
//! and ICMPv6 cover.
//!
//! Why 64-bit words: 2^16 leaves a remainder of 1 when divided by 0xFFFF, and
//! so does 2^64. The one's-complement sum of a message's 16-bit words is
//! therefore congruent, modulo 0xFFFF, to the sum of its big-endian 64-bit
//! words with the carry out of bit 63 added back in. That reads eight bytes
//! per addition instead of two. The only thing the final fold has to keep
//! apart is "nothing but zero words" (sum 0) from "a non-zero multiple of
//! 0xFFFF" (sum 0xFFFF): an end-around-carry sum never returns to zero once
//! a non-zero word has been added, so that distinction survives.

/// Add two partial sums with end-around carry (2^64 is 1 modulo 0xFFFF).
#[inline]
pub fn add_carry(a: u64, b: u64) -> u64 {
    let (sum, carry) = a.overflowing_add(b);
    sum + u64::from(carry)
}

/// A partial sum of `data`, congruent modulo 0xFFFF to the one's-complement
/// sum of its 16-bit words (an odd length padded with a zero byte), and zero
/// only when every byte is zero.
#[inline]
pub fn ones_sum(data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    let mut acc = 0u64;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        acc = add_carry(acc, u64::from_be_bytes(word));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        // The tail starts at a multiple of 8: zero padding behind it is the
        // same as padding an odd byte and adding zero words.
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        acc = add_carry(acc, u64::from_be_bytes(word));
    }
    acc
}

/// The 16-bit one's-complement fold of a partial sum (0 stays 0).
#[inline]
pub fn fold(total: u64) -> u16 {
    if total == 0 {
        return 0;
    }
    match total % 0xFFFF {
        0 => 0xFFFF,
        r => r as u16,
    }
}

/// One's-complement sum of 16-bit words, folded and inverted.
///
/// `initial` is a partial sum to start from (a pseudo-header's, from
/// `pseudo_header_sum`).
pub fn internet_checksum(data: &[u8], initial: u64) -> u16 {
    !fold(add_carry(initial, ones_sum(data)))
}

/// The sum of the 16-bit words of the IPv4 or IPv6 pseudo-header (not
/// folded), to seed `internet_checksum`.
pub fn pseudo_header_sum(family: u8, src: u128, dst: u128, proto: u8, length: u32) -> u64 {
    let words = |value: u128, count: u32| -> u64 {
        (0..count)
            .map(|i| ((value >> (16 * i)) & 0xFFFF) as u64)
            .sum()
    };
    if family == 4 {
        words(src, 2) + words(dst, 2) + u64::from(proto) + u64::from(length & 0xFFFF)
    } else {
        words(src, 8)
            + words(dst, 8)
            + u64::from(length >> 16)
            + u64::from(length & 0xFFFF)
            + u64::from(proto)
    }
}

/// A checksum field updated for some of the bytes it covers changing from
/// `old` to `new` (even lengths), the way the kernel's `csum_replace*`
/// helpers do it (RFC 1624, eqn. 3): the complement of the field, minus
/// the old words, plus the new ones, folded and complemented.
///
/// Nothing but the difference enters, so a field that was wrong on arrival
/// stays wrong by the same amount. The field is widened to 32 bits before
/// it is complemented, as the kernel's is: that sum is never zero, so the
/// result is never 0xFFFF (a field of 0xFFFF comes out as 0).
pub fn replace(check: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut total = u64::from(!u32::from(check));
    total = add_carry(total, !ones_sum(old));
    total = add_carry(total, ones_sum(new));
    !fold(total)
}

/// True when a TCP/UDP/UDP-Lite/ICMPv6 segment's checksum verifies (its sum,
/// pseudo-header included, folds to 0xFFFF).
///
/// No pseudo-header is laid out: modulo 0xFFFF its words add up to the
/// addresses, protocol and length themselves, whatever the address width,
/// which is also why `family` does not enter the sum.
pub fn l4_checksum_ok(family: u8, src: u128, dst: u128, proto: u8, segment: &[u8]) -> bool {
    let _ = family;
    let mut total = ones_sum(segment);
    for part in [
        (src >> 64) as u64,
        src as u64,
        (dst >> 64) as u64,
        dst as u64,
        u64::from(proto),
        segment.len() as u64,
    ] {
        total = add_carry(total, part);
    }
    verifies(total)
}

/// Whether a partial sum (pseudo-header and data included) is that of a
/// verifying checksum: a non-zero multiple of 0xFFFF, i.e. it folds to 0xFFFF.
#[inline]
pub fn verifies(total: u64) -> bool {
    total != 0 && total % 0xFFFF == 0
}

/// True when an IPv4 header's checksum verifies (what `ip_rcv_core` checks).
#[inline]
pub fn ipv4_header_ok(header: &[u8]) -> bool {
    ones_sum(header) % 0xFFFF == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 1071 section 4.1, word by word.
    fn reference(data: &[u8], initial: u64) -> u16 {
        let mut total = initial;
        for pair in data.chunks(2) {
            let hi = u64::from(pair[0]) << 8;
            total += hi | pair.get(1).map_or(0, |&b| u64::from(b));
        }
        while total >> 16 != 0 {
            total = (total & 0xFFFF) + (total >> 16);
        }
        !(total as u16)
    }

    fn pseudo_header(family: u8, src: u128, dst: u128, proto: u8, length: u32) -> Vec<u8> {
        let mut out = Vec::new();
        if family == 4 {
            out.extend_from_slice(&(src as u32).to_be_bytes());
            out.extend_from_slice(&(dst as u32).to_be_bytes());
            out.extend_from_slice(&[0, proto]);
            out.extend_from_slice(&(length as u16).to_be_bytes());
        } else {
            out.extend_from_slice(&src.to_be_bytes());
            out.extend_from_slice(&dst.to_be_bytes());
            out.extend_from_slice(&length.to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, proto]);
        }
        out
    }

    fn with_checksum(
        family: u8,
        src: u128,
        dst: u128,
        proto: u8,
        seg: &[u8],
        at: usize,
    ) -> Vec<u8> {
        let mut blank = seg.to_vec();
        blank[at] = 0;
        blank[at + 1] = 0;
        let mut all = pseudo_header(family, src, dst, proto, blank.len() as u32);
        all.extend_from_slice(&blank);
        let value = reference(&all, 0);
        blank[at..at + 2].copy_from_slice(&value.to_be_bytes());
        blank
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc1071_worked_example() {
        assert_eq!(
            internet_checksum(&hex("0001f203f4f5f6f7"), 0),
            0xFFFF - 0xDDF2
        );
    }

    #[test]
    fn ipv4_header_example_verifies_and_recomputes() {
        let header = hex("45000073000040004011b861c0a80001c0a800c7");
        assert_eq!(internet_checksum(&header, 0), 0);
        assert!(ipv4_header_ok(&header));
        let mut blank = header.clone();
        blank[10] = 0;
        blank[11] = 0;
        assert_eq!(internet_checksum(&blank, 0), 0xB861);
    }

    #[test]
    fn zero_words_and_multiples_of_ffff_fold_differently() {
        assert_eq!(internet_checksum(b"", 0), 0xFFFF);
        assert_eq!(internet_checksum(&[0; 6], 0), 0xFFFF);
        assert_eq!(internet_checksum(b"\xff\xff", 0), 0);
        assert_eq!(internet_checksum(b"\x80\x00\x7f\xff", 0), 0);
        assert_eq!(internet_checksum(b"\x00\x00", 0xFFFF), 0);
    }

    #[test]
    fn odd_length_pads_with_a_zero_byte() {
        assert_eq!(
            internet_checksum(b"\x12\x34\x56", 0),
            reference(b"\x12\x34\x56\x00", 0)
        );
        assert_eq!(internet_checksum(b"\x01", 0), 0xFEFF);
    }

    const SRC4: u128 = 0xC0000201;
    const DST4: u128 = 0xC6336407;
    const SRC6: u128 = (0x20010DB8 << 96) | 1;
    const DST6: u128 = (0x20010DB8 << 96) | 2;

    fn tcp_segment(payload: &[u8]) -> Vec<u8> {
        let mut seg = vec![
            0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff,
        ];
        seg.extend_from_slice(&[0, 0, 0, 0]);
        seg.extend_from_slice(payload);
        seg
    }

    #[test]
    fn l4_checksum_ok_accepts_correct_and_rejects_corrupt_segments() {
        for (family, src, dst) in [(4, SRC4, DST4), (6, SRC6, DST6)] {
            for payload in [&b""[..], b"x", b"hello", &[0; 31]] {
                let good = with_checksum(family, src, dst, 6, &tcp_segment(payload), 16);
                assert!(l4_checksum_ok(family, src, dst, 6, &good));
                let mut flipped = good.clone();
                flipped[4] ^= 1;
                assert!(!l4_checksum_ok(family, src, dst, 6, &flipped));
                assert!(!l4_checksum_ok(family, src + 1, dst, 6, &good));
                assert!(!l4_checksum_ok(family, src, dst, 17, &good));
            }
        }
    }

    #[test]
    fn l4_checksum_ok_treats_ffff_and_zero_fields_as_one_value() {
        for payload in [&[0u8, 0][..], b"\x01\x02"] {
            let good = with_checksum(4, SRC4, DST4, 6, &tcp_segment(payload), 16);
            let value = u16::from_be_bytes([good[16], good[17]]);
            if value == 0 || value == 0xFFFF {
                let mut other = good.clone();
                other[16..18].copy_from_slice(&(value ^ 0xFFFF).to_be_bytes());
                assert!(l4_checksum_ok(4, SRC4, DST4, 6, &other));
            }
        }
    }

    proptest! {
        #[test]
        fn matches_rfc1071_word_by_word(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            initial in 0u64..0xFFFFF,
        ) {
            prop_assert_eq!(internet_checksum(&data, initial), reference(&data, initial));
        }

        #[test]
        fn pseudo_header_sum_is_the_sum_of_its_words(
            v6 in any::<bool>(), src in any::<u128>(), dst in any::<u128>(),
            proto in prop::sample::select(vec![6u8, 17, 58, 136]), length in 0u32..0x10000,
        ) {
            let family = if v6 { 6 } else { 4 };
            let (src, dst) = if v6 { (src, dst) } else { (src & 0xFFFF_FFFF, dst & 0xFFFF_FFFF) };
            let header = pseudo_header(family, src, dst, proto, length);
            let words: u64 = header.chunks(2).map(|w| u64::from(u16::from_be_bytes([w[0], w[1]]))).sum();
            prop_assert_eq!(pseudo_header_sum(family, src, dst, proto, length), words);
        }

        #[test]
        fn l4_checksum_ok_matches_the_reference(
            v6 in any::<bool>(), segment in proptest::collection::vec(any::<u8>(), 8..200),
            proto in prop::sample::select(vec![6u8, 17, 58]), seed in any::<u128>(),
        ) {
            let family = if v6 { 6 } else { 4 };
            let mask = if v6 { u128::MAX } else { 0xFFFF_FFFF };
            let (src, dst) = (seed & mask, seed.wrapping_mul(7919) & mask);
            let mut all = pseudo_header(family, src, dst, proto, segment.len() as u32);
            all.extend_from_slice(&segment);
            let expected = reference(&all, 0) == 0;
            prop_assert_eq!(l4_checksum_ok(family, src, dst, proto, &segment), expected);
            let fixed = with_checksum(family, src, dst, proto, &segment, 6);
            prop_assert!(l4_checksum_ok(family, src, dst, proto, &fixed));
        }
    }
}
