//! Choosing the translated tuple (get_unique_tuple and its helpers in
//! nf_nat_core.c): keep the original when it fits the range and is free,
//! else reuse the mapping an earlier connection from the same source got,
//! else pick the address by a hash of the tuple and search the ports.
//!
//! The address choice is the kernel's own deterministic hash (jhash2), so a
//! pool of addresses hands out the same address the kernel would. Source
//! port searches start at a random offset in the kernel; here the offset
//! comes from the replay's seeded generator. Destination port searches start
//! at the bottom of the range, as the kernel's do.

use crate::conntrack::conn::Tuple;
use crate::nat::range::{NatRange, MAP_IPS, PERSISTENT, PROTO_OFFSET, PROTO_SPECIFIED, RANDOM_ALL};
use crate::nat::Manip;
use crate::packet::{PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP};

const PROTO_GRE: u8 = 47;
const PROTO_DCCP: u8 = 33;
const PROTO_UDPLITE: u8 = 136;

/// The most ports one search tries before it narrows (the kernel's bound
/// on work done in softirq).
const MAX_ATTEMPTS: u32 = 128;

/// What the selection asks of the conntrack table.
pub trait TupleSpace {
    /// nf_nat_used_tuple: would a connection with this original tuple
    /// clash with another entry (its reply tuple already in the table)?
    fn used(&mut self, tuple: &Tuple) -> bool;
    /// The translated sources (address, port) of live connections from the
    /// same original source, newest first (the kernel's bysource hash).
    fn source_maps(&mut self, orig: &Tuple) -> Vec<(u128, u16)>;
    /// get_random_u16.
    fn random_u16(&mut self) -> u16;
}

/// The connection the tuple is chosen for.
#[derive(Clone, Copy, Debug)]
pub struct Request<'r> {
    pub family: u8,
    pub proto: u8,
    pub zone: u16,
    pub has_master: bool,
    pub manip: Manip,
    pub range: &'r NatRange,
}

fn has_ports(proto: u8) -> bool {
    matches!(
        proto,
        PROTO_TCP | PROTO_UDP | PROTO_UDPLITE | PROTO_DCCP | PROTO_SCTP
    )
}

fn is_icmp(proto: u8) -> bool {
    proto == PROTO_ICMP || proto == PROTO_ICMPV6
}

/// l4proto_in_range: the manipulated port (ICMP: the id) lies in the range.
fn l4_in_range(tuple: &Tuple, proto: u8, manip: Manip, range: &NatRange) -> bool {
    let key = if is_icmp(proto) || manip == Manip::Src {
        tuple.sport
    } else {
        tuple.dport
    };
    if is_icmp(proto) || proto == PROTO_GRE || has_ports(proto) {
        (range.min_port..=range.max_port).contains(&key)
    } else {
        true
    }
}

/// in_range: would a source mapping to this tuple satisfy the range?
fn src_in_range(tuple: &Tuple, proto: u8, range: &NatRange) -> bool {
    let src = tuple.src;
    if range.flags & MAP_IPS != 0 && !(range.min_addr..=range.max_addr).contains(&src) {
        return false;
    }
    range.flags & PROTO_SPECIFIED == 0 || l4_in_range(tuple, proto, Manip::Src, range)
}

/// get_unique_tuple: the original-direction tuple the connection is to
/// look like after this manipulation. `orig` is the tuple as it stands
/// (the inverse of the current reply tuple).
pub fn unique_tuple(orig: &Tuple, req: &Request<'_>, space: &mut dyn TupleSpace) -> Tuple {
    let range = req.range;
    if req.manip == Manip::Src && range.flags & RANDOM_ALL == 0 {
        if src_in_range(orig, req.proto, range) {
            if !space.used(orig) {
                return *orig;
            }
        } else {
            for (address, port) in space.source_maps(orig) {
                let mut candidate = *orig;
                candidate.src = address;
                candidate.sport = port;
                if src_in_range(&candidate, req.proto, range) {
                    if !space.used(&candidate) {
                        return candidate;
                    }
                    break;
                }
            }
        }
    }
    let mut tuple = *orig;
    best_address(&mut tuple, req);
    if range.flags & RANDOM_ALL == 0 {
        if range.flags & PROTO_SPECIFIED != 0 {
            if range.flags & PROTO_OFFSET == 0
                && l4_in_range(&tuple, req.proto, req.manip, range)
                && (range.min_port == range.max_port || !space.used(&tuple))
            {
                return tuple;
            }
        } else if !space.used(&tuple) {
            return tuple;
        }
    }
    unique_port(&mut tuple, req, space);
    tuple
}

/// The 32-bit words of an address as the kernel's `nf_inet_addr.all[]`
/// holds them, in host order (IPv4 in word 0, the rest zero).
fn words(family: u8, address: u128) -> [u32; 4] {
    if family == 4 {
        [address as u32, 0, 0, 0]
    } else {
        [
            (address >> 96) as u32,
            (address >> 64) as u32,
            (address >> 32) as u32,
            address as u32,
        ]
    }
}

fn from_words(family: u8, w: [u32; 4]) -> u128 {
    if family == 4 {
        u128::from(w[0])
    } else {
        u128::from(w[0]) << 96 | u128::from(w[1]) << 64 | u128::from(w[2]) << 32 | u128::from(w[3])
    }
}

/// A word as the kernel reads it raw from network-order memory on a
/// little-endian machine (the oracle's x86-64).
fn raw(word: u32) -> u32 {
    word.swap_bytes()
}

/// find_best_ips_proto: the address within the range, by a hash of the
/// tuple's addresses (the same client gets the same address).
fn best_address(tuple: &mut Tuple, req: &Request<'_>) {
    let range = req.range;
    if range.flags & MAP_IPS == 0 {
        return;
    }
    if range.min_addr == range.max_addr {
        set_address(tuple, req.manip, range.min_addr);
        return;
    }
    let family = req.family;
    let last = if family == 4 { 0 } else { 3 };
    let src = words(family, tuple.src).map(raw);
    let dst = words(family, tuple.dst).map(raw);
    let persistent = range.flags & PERSISTENT != 0;
    let mut j = jhash2(
        &src,
        if persistent {
            0
        } else {
            dst[last] ^ u32::from(req.zone)
        },
    );
    let (min, max) = (words(family, range.min_addr), words(family, range.max_addr));
    let mut chosen = [0u32; 4];
    let mut full_range = false;
    for i in 0..=last {
        let (low, dist) = if full_range {
            (0, u32::MAX)
        } else {
            (min[i], max[i].wrapping_sub(min[i]).wrapping_add(1))
        };
        chosen[i] = low.wrapping_add(reciprocal_scale(j, dist));
        if chosen[i] != max[i] {
            full_range = true;
        }
        if !persistent {
            j ^= dst[i];
        }
    }
    set_address(tuple, req.manip, from_words(family, chosen));
}

fn set_address(tuple: &mut Tuple, manip: Manip, address: u128) {
    if manip == Manip::Src {
        tuple.src = address;
    } else {
        tuple.dst = address;
    }
}

fn reciprocal_scale(value: u32, range: u32) -> u32 {
    ((u64::from(value) * u64::from(range)) >> 32) as u32
}

/// nf_nat_l4proto_unique_tuple: search the port (ICMP: the id) range from
/// a random offset for a tuple no other entry uses.
fn unique_port(tuple: &mut Tuple, req: &Request<'_>, space: &mut dyn TupleSpace) {
    let range = req.range;
    let specified = range.flags & PROTO_SPECIFIED != 0;
    let icmp = is_icmp(req.proto);
    let (min, size): (u32, u32) = if icmp {
        if specified {
            let (lo, hi) = (u32::from(range.min_port), u32::from(range.max_port));
            (lo, hi.wrapping_sub(lo).wrapping_add(1))
        } else {
            (0, 65536)
        }
    } else if req.proto == PROTO_GRE {
        if !req.has_master {
            return;
        }
        if specified {
            let lo = u32::from(range.min_port);
            (
                lo,
                u32::from(range.max_port).wrapping_sub(lo).wrapping_add(1),
            )
        } else {
            (1, 65535)
        }
    } else if has_ports(req.proto) {
        if !specified {
            if req.manip == Manip::Dst {
                return;
            }
            match key_of(tuple, req) {
                port if port < 512 => (1, 511),
                port if port < 1024 => (600, 424),
                _ => (1024, 65535 - 1024 + 1),
            }
        } else {
            let (mut lo, mut hi) = (u32::from(range.min_port), u32::from(range.max_port));
            if hi < lo {
                std::mem::swap(&mut lo, &mut hi);
            }
            (lo, hi - lo + 1)
        }
    } else {
        return;
    };
    // Destination NAT searches from the bottom of the range, so a port
    // forward to a range is repeatable; source NAT (and any `--random`)
    // from a random offset. A range of one port draws nothing: no offset
    // could change the choice (and the reason does not call it random).
    let mut off: u16 = if range.flags & PROTO_OFFSET != 0 {
        key_of(tuple, req).wrapping_sub(range.base_port)
    } else if size <= 1 || (req.manip == Manip::Dst && range.flags & RANDOM_ALL == 0) {
        0
    } else {
        space.random_u16()
    };
    let mut attempts = size.min(MAX_ATTEMPTS);
    loop {
        for _ in 0..attempts {
            let key = (min + u32::from(off) % size.max(1)) as u16;
            set_key(tuple, req, key);
            if !space.used(tuple) {
                return;
            }
            off = off.wrapping_add(1);
        }
        if attempts >= size || attempts < 16 {
            return;
        }
        attempts /= 2;
        off = space.random_u16();
    }
}

fn key_of(tuple: &Tuple, req: &Request<'_>) -> u16 {
    if is_icmp(req.proto) || req.manip == Manip::Src {
        tuple.sport
    } else {
        tuple.dport
    }
}

fn set_key(tuple: &mut Tuple, req: &Request<'_>, key: u16) {
    if is_icmp(req.proto) || req.manip == Manip::Src {
        tuple.sport = key;
    } else {
        tuple.dport = key;
    }
}

/// The kernel's jhash2 (lookup3 over 32-bit words) of a 4-word address.
pub fn jhash2(key: &[u32; 4], initval: u32) -> u32 {
    let start = 0xdead_beef_u32.wrapping_add(4 << 2).wrapping_add(initval);
    let (mut a, mut b, mut c) = (start, start, start);
    a = a.wrapping_add(key[0]);
    b = b.wrapping_add(key[1]);
    c = c.wrapping_add(key[2]);
    mix(&mut a, &mut b, &mut c);
    a = a.wrapping_add(key[3]);
    finish(&mut a, &mut b, &mut c);
    c
}

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn finish(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Space {
        taken: Vec<Tuple>,
        maps: Vec<(u128, u16)>,
        next: u16,
    }

    impl TupleSpace for Space {
        fn used(&mut self, tuple: &Tuple) -> bool {
            self.taken.contains(tuple)
        }
        fn source_maps(&mut self, _orig: &Tuple) -> Vec<(u128, u16)> {
            self.maps.clone()
        }
        fn random_u16(&mut self) -> u16 {
            self.next
        }
    }

    const CLIENT: u128 = 0xC0A8_010A; // 192.168.1.10
    const SERVER: u128 = 0xC633_6414; // 198.51.100.20
    const WAN: u128 = 0xCB00_7101; // 203.0.113.1

    fn request(range: &NatRange, manip: Manip) -> Request<'_> {
        Request {
            family: 4,
            proto: PROTO_TCP,
            zone: 0,
            has_master: false,
            manip,
            range,
        }
    }

    #[test]
    fn masquerade_keeps_a_free_port_and_moves_a_taken_one() {
        let range = NatRange::to_address(WAN, &NatRange::default());
        let orig = Tuple::new(CLIENT, SERVER, 40000, 80);
        let mut space = Space {
            taken: vec![],
            maps: vec![],
            next: 7,
        };
        let got = unique_tuple(&orig, &request(&range, Manip::Src), &mut space);
        assert_eq!(got, Tuple::new(WAN, SERVER, 40000, 80));
        space.taken.push(got);
        let moved = unique_tuple(&orig, &request(&range, Manip::Src), &mut space);
        // 1024 + (7 % 64512): the search starts at the random offset.
        assert_eq!(moved, Tuple::new(WAN, SERVER, 1031, 80));
    }

    #[test]
    fn low_ports_stay_low() {
        let range = NatRange::to_address(WAN, &NatRange::default());
        let orig = Tuple::new(CLIENT, SERVER, 700, 80);
        let mut space = Space {
            taken: vec![Tuple::new(WAN, SERVER, 700, 80)],
            maps: vec![],
            next: 0,
        };
        let got = unique_tuple(&orig, &request(&range, Manip::Src), &mut space);
        let sport = got.sport;
        assert_eq!(sport, 600);
    }

    #[test]
    fn an_earlier_mapping_of_the_same_source_is_reused() {
        let range = NatRange {
            flags: MAP_IPS,
            min_addr: WAN,
            max_addr: WAN + 9,
            ..NatRange::default()
        };
        let orig = Tuple::new(CLIENT, SERVER, 40000, 80);
        let mut space = Space {
            taken: vec![],
            maps: vec![(WAN + 5, 40000)],
            next: 0,
        };
        let got = unique_tuple(&orig, &request(&range, Manip::Src), &mut space);
        let src = got.src;
        assert_eq!(src, WAN + 5);
    }

    #[test]
    fn dnat_to_a_port() {
        let range = NatRange {
            flags: MAP_IPS | PROTO_SPECIFIED,
            min_addr: CLIENT,
            max_addr: CLIENT,
            min_port: 8080,
            max_port: 8080,
            base_port: 0,
        };
        let orig = Tuple::new(SERVER, WAN, 5555, 80);
        let mut space = Space {
            taken: vec![],
            maps: vec![],
            next: 0,
        };
        let got = unique_tuple(&orig, &request(&range, Manip::Dst), &mut space);
        assert_eq!(got, Tuple::new(SERVER, CLIENT, 5555, 8080));
    }
}
