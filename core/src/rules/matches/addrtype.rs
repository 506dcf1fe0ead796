//! addrtype match (xt_addrtype.c): the route type of the source or destination
//! address, from the machine's own networks (statewall's topology) instead
//! of a routing table lookup.

use crate::rules::context::RuleCtx;
use crate::rules::model::Net;

pub const UNSPEC: u16 = 1;
pub const UNICAST: u16 = 2;
pub const LOCAL: u16 = 4;
pub const BROADCAST: u16 = 8;
pub const MULTICAST: u16 = 32;

/// The networks of the simulated machine.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    pub local: Vec<Net>,
    pub ifaces: Vec<(String, Vec<Net>)>,
}

fn inside(nets: &[Net], family: u8, address: u128) -> bool {
    nets.iter()
        .any(|n| n.family == family && address & n.mask == n.addr & n.mask)
}

pub fn address_type(topo: &Topology, family: u8, address: u128, iface: Option<&str>) -> u16 {
    let loopback = if family == 4 {
        if address == 0 || address == 0xFFFF_FFFF {
            return BROADCAST;
        }
        if address >> 28 == 0xE {
            return MULTICAST;
        }
        address >> 24 == 127
    } else {
        if address == 0 {
            return UNSPEC;
        }
        if address >> 120 == 0xFF {
            return MULTICAST;
        }
        address == 1
    };
    // A named interface the topology does not know has no networks.
    const NONE: &[Net] = &[];
    let nets: Option<&[Net]> = iface.map(|name| {
        topo.ifaces
            .iter()
            .find(|(n, _)| n == name)
            .map_or(NONE, |(_, v)| v.as_slice())
    });
    let on_iface = nets.is_none_or(|n| inside(n, family, address));
    if (loopback && matches!(iface, None | Some("lo")))
        || (inside(&topo.local, family, address) && on_iface)
    {
        return LOCAL;
    }
    if family == 4 {
        let is_bcast = |n: &Net| {
            n.family == 4
                && n.mask != 0xFFFF_FFFF
                && n.mask != 0xFFFF_FFFE
                && address == (n.addr & n.mask) | (!n.mask & 0xFFFF_FFFF)
        };
        let hit = match nets {
            Some(list) => list.iter().any(is_bcast),
            None => topo.ifaces.iter().flat_map(|(_, v)| v).any(is_bcast),
        };
        if hit {
            return BROADCAST;
        }
    }
    UNICAST
}

#[allow(clippy::too_many_arguments)]
pub fn addrtype(
    ctx: &RuleCtx<'_>,
    topo: &Topology,
    smask: u16,
    sneg: bool,
    dmask: u16,
    dneg: bool,
    limit_in: bool,
    limit_out: bool,
) -> bool {
    let iface = if limit_in {
        ctx.iface_in
    } else if limit_out {
        ctx.iface_out
    } else {
        None
    };
    let pkt = ctx.pkt;
    if smask != 0 && (address_type(topo, pkt.family, pkt.src, iface) & smask != 0) == sneg {
        return false;
    }
    dmask == 0 || (address_type(topo, pkt.family, pkt.dst, iface) & dmask != 0) != dneg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        let topo = Topology {
            local: vec![Net {
                family: 4,
                addr: 0x0a00_0001,
                mask: 0xffff_ffff,
            }],
            ifaces: vec![(
                "eth0".into(),
                vec![Net {
                    family: 4,
                    addr: 0x0a00_0000,
                    mask: 0xffff_ff00,
                }],
            )],
        };
        assert_eq!(address_type(&topo, 4, 0x0a00_0001, None), LOCAL);
        assert_eq!(address_type(&topo, 4, 0x0a00_00ff, None), BROADCAST);
        assert_eq!(address_type(&topo, 4, 0x0a00_0002, None), UNICAST);
        assert_eq!(address_type(&topo, 4, 0xe000_0001, None), MULTICAST);
        assert_eq!(address_type(&topo, 4, 0x7f00_0001, Some("lo")), LOCAL);
        assert_eq!(address_type(&topo, 4, 0x0a00_0001, Some("eth1")), UNICAST);
        assert_eq!(address_type(&topo, 6, 1, None), LOCAL);
        assert_eq!(address_type(&topo, 6, 0, None), UNSPEC);
    }
}
