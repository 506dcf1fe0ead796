//! Which partition of a partitioned run a packet belongs to.
//!
//! Connection tracking only ever relates packets between the same two
//! hosts: both directions of a connection, a helper's expected data
//! connection (with the default helper parameters, see the README), and an
//! ICMP error, which belongs to the connection it quotes. So packets are
//! partitioned by the unordered pair of host addresses of the connection
//! they belong to: the quoted datagram's for an ICMP error, the packet's
//! own otherwise. A fragment carries its datagram's addresses, so every
//! fragment of a datagram lands in the same partition (an ICMP error that
//! arrives in fragments goes with its fragments: `strays` notices when its
//! quoted pair lies elsewhere). Packets that are not IP go to partition 0.
//!
//! The key is a fixed hash (no per-process seed), so every worker and the
//! driver compute the same partition for a packet.
//!
//! The driver places every packet once (`index`) and gives each partition
//! the list of its own packets' records with the clock at each (`wire`);
//! the partition reads those records by offset (`source`).

pub mod index;
pub mod source;
pub mod wire;

use crate::packet::Packet;

/// SplitMix64's finaliser: a fixed, well-mixed 64-bit hash step.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A hash of the unordered address pair (and family).
pub fn pair_hash(family: u8, a: u128, b: u128) -> u64 {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let mut h = mix(u64::from(family));
    for half in [
        low as u64,
        (low >> 64) as u64,
        high as u64,
        (high >> 64) as u64,
    ] {
        h = mix(h ^ half);
    }
    h
}

/// The addresses whose pair places `pkt`: the quoted datagram's for an
/// unfragmented ICMP error, the packet's own otherwise; None: not IP.
fn placing_pair(pkt: &Packet<'_>) -> Option<(u8, u128, u128)> {
    if pkt.family == 0 {
        return None;
    }
    match pkt.inner.as_deref() {
        Some(inner) if pkt.fragment.is_none() && inner.family != 0 => {
            Some((inner.family, inner.src, inner.dst))
        }
        _ => Some((pkt.family, pkt.src, pkt.dst)),
    }
}

/// The partition (0..parts) of a decoded packet.
pub fn partition_of(pkt: &Packet<'_>, parts: u32) -> u32 {
    match placing_pair(pkt) {
        None => 0,
        Some((family, a, b)) => (pair_hash(family, a, b) % u64::from(parts.max(1))) as u32,
    }
}

/// Whether `pkt` is a fragment of an ICMP error whose quoted pair would
/// place it in another partition than its fragments: the error then misses
/// its connection, which a single process would have found.
pub fn strays(pkt: &Packet<'_>, parts: u32) -> bool {
    let Some(inner) = pkt.inner.as_deref() else {
        return false;
    };
    pkt.fragment.is_some()
        && inner.family != 0
        && partition_of(pkt, parts)
            != (pair_hash(inner.family, inner.src, inner.dst) % u64::from(parts.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pair_is_unordered_and_the_family_counts() {
        assert_eq!(pair_hash(4, 1, 2), pair_hash(4, 2, 1));
        assert_ne!(pair_hash(4, 1, 2), pair_hash(6, 1, 2));
        assert_ne!(pair_hash(4, 1, 2), pair_hash(4, 1, 3));
    }

    #[test]
    fn not_ip_goes_to_partition_zero() {
        let pkt = Packet::new(0, 0.0, &[], 0);
        assert_eq!(partition_of(&pkt, 4), 0);
    }

    #[test]
    fn an_icmp_error_goes_with_the_pair_it_quotes() {
        let mut inner = Packet::new(0, 0.0, &[], 4);
        (inner.src, inner.dst) = (10, 20);
        let mut error = Packet::new(1, 0.0, &[], 4);
        (error.src, error.dst) = (30, 10);
        error.inner = Some(Box::new(inner));
        let mut plain = Packet::new(2, 0.0, &[], 4);
        (plain.src, plain.dst) = (20, 10);
        for parts in 1..64 {
            assert_eq!(partition_of(&error, parts), partition_of(&plain, parts));
            assert!(!strays(&error, parts));
        }
    }
}

#[cfg(test)]
mod index_tests;
