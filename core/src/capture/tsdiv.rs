//! pcapng timestamps to seconds: the exact quotient `ticks / units` rounded
//! once to the nearest double (what Python's `int / int` gives, bit for bit).
//!
//! `ticks as f64 / units as f64` rounds twice once ticks pass 2^53 (any
//! nanosecond timestamp today), so the quotient is computed on integers here
//! and rounded once.

/// Timestamp units per second from `if_tsresol`: 10^e or 2^e (e < 128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Units {
    Pow10(u8),
    Pow2(u8),
}

/// 2^-k as a double (k < 1023, so it is a normal number and scaling is exact).
fn pow2_neg(k: u32) -> f64 {
    f64::from_bits(u64::from(1023 - k.min(1022)) << 52)
}

/// Correctly rounded `ticks / units`.
pub(crate) fn ticks_to_seconds(ticks: u64, units: Units) -> f64 {
    match units {
        // Converting ticks rounds once; scaling by a power of two is exact.
        Units::Pow2(e) => ticks as f64 * pow2_neg(u32::from(e)),
        Units::Pow10(e) => {
            if e <= 15 && ticks < 1 << 53 {
                // Both exact as doubles: IEEE division rounds once.
                return ticks as f64 / 10f64.powi(i32::from(e));
            }
            if ticks == 0 {
                return 0.0;
            }
            // ticks / 10^e = (ticks / 5^e) * 2^-e.
            let e32 = u32::from(e);
            if e <= 31 {
                let five = 5u128.pow(e32);
                let shift = ticks.leading_zeros() + 64; // numerator fills 128 bits
                let num = u128::from(ticks) << shift;
                let (q, r) = (num / five, num % five);
                // q has at least 55 significant bits, so folding a non-zero
                // remainder into its lowest bit settles ties correctly.
                let q = q | u128::from(r != 0);
                q as f64 * pow2_neg(shift + e32)
            } else {
                slow_div(ticks, e32)
            }
        }
    }
}

/// ticks / 10^e for absurd resolutions (e >= 32): bitwise long division on a
/// small fixed-width integer. Not a hot path.
fn slow_div(ticks: u64, e: u32) -> f64 {
    const LIMBS: usize = 8; // 512 bits > 10^127
    type Big = [u64; LIMBS];
    fn bits(x: &Big) -> u32 {
        for i in (0..LIMBS).rev() {
            if x[i] != 0 {
                return 64 * i as u32 + 64 - x[i].leading_zeros();
            }
        }
        0
    }
    fn ge(a: &Big, b: &Big) -> bool {
        for i in (0..LIMBS).rev() {
            if a[i] != b[i] {
                return a[i] > b[i];
            }
        }
        true
    }
    fn sub(a: &mut Big, b: &Big) {
        let mut borrow = false;
        for i in 0..LIMBS {
            let (d, o1) = a[i].overflowing_sub(b[i]);
            let (d, o2) = d.overflowing_sub(u64::from(borrow));
            a[i] = d;
            borrow = o1 || o2;
        }
    }
    fn shl1(a: &mut Big, bit: u64) {
        let mut carry = bit;
        for limb in a.iter_mut() {
            let next = *limb >> 63;
            *limb = (*limb << 1) | carry;
            carry = next;
        }
    }
    let mut d: Big = [0; LIMBS];
    d[0] = 1;
    for _ in 0..e {
        let mut carry = 0u128;
        for limb in d.iter_mut() {
            let v = u128::from(*limb) * 10 + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
    }
    let nbits = 64 - ticks.leading_zeros();
    // numerator = ticks * 2^k with a 55- or 56-bit quotient.
    let k = bits(&d) + 55 - nbits;
    let mut r: Big = [0; LIMBS];
    let mut q: u64 = 0;
    for i in (0..nbits + k).rev() {
        let bit = if i >= k { (ticks >> (i - k)) & 1 } else { 0 };
        shl1(&mut r, bit);
        q <<= 1;
        if ge(&r, &d) {
            sub(&mut r, &d);
            q |= 1;
        }
    }
    let sticky = r.iter().any(|&l| l != 0);
    (q | u64::from(sticky)) as f64 * pow2_neg(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    // (ticks, units, Python's `ticks / units` as f64 bits), from CPython 3.11.
    include!("tsdiv_vectors.rs");

    #[test]
    fn quotients_match_python_bit_for_bit() {
        for &(ticks, units, bits) in VECTORS {
            let got = ticks_to_seconds(ticks, units);
            assert_eq!(
                got.to_bits(),
                bits,
                "{ticks} / {units:?}: {got:e} vs {:e}",
                f64::from_bits(bits)
            );
        }
    }
}
