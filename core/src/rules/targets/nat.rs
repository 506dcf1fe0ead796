//! nat targets (xt_nat.c, xt_MASQUERADE.c, xt_REDIRECT.c, xt_NETMAP.c): the
//! rule hands its range to the NAT core, which binds the connection after
//! the chain; the chain ends in ACCEPT.

use std::net::IpAddr;

use crate::nat::{NatKind, NatRange};
use crate::rules::context::{Effects, Outcome};
use crate::rules::targets::Step;

pub fn nat(kind: NatKind, range: NatRange, fx: &mut Effects) -> Step {
    fx.nat = Some((kind, range));
    Step::Verdict(Outcome::Accept)
}

/// An address as the core holds it (IPv4 in the low 32 bits).
pub fn address(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_the_range_over_and_accepts() {
        let mut fx = Effects::default();
        let range = NatRange {
            flags: crate::nat::range::MAP_IPS,
            min_addr: 1,
            max_addr: 1,
            ..NatRange::default()
        };
        let step = nat(NatKind::Dnat, range, &mut fx);
        assert_eq!(step, Step::Verdict(Outcome::Accept));
        assert_eq!(fx.nat, Some((NatKind::Dnat, range)));
    }
}
