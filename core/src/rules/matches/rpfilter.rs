//! rpfilter match (ipt_rpfilter.c, ip6t_rpfilter.c): would the reply to the
//! source leave through the interface the packet came in on? The routes are
//! the topology's interface networks (longest prefix wins).

use crate::rules::context::RuleCtx;
use crate::rules::matches::addrtype::Topology;
use crate::rules::matches::Hit;

fn reply_interface(topo: &Topology, family: u8, address: u128) -> Option<&str> {
    let mut best: Option<(u128, &str)> = None;
    for (name, nets) in &topo.ifaces {
        for n in nets {
            if n.family == family
                && address & n.mask == n.addr & n.mask
                && best.is_none_or(|(m, _)| n.mask > m)
            {
                best = Some((n.mask, name));
            }
        }
    }
    best.map(|(_, name)| name)
}

pub fn rpfilter(
    ctx: &RuleCtx<'_>,
    topo: &Topology,
    loose: bool,
    accept_local: bool,
    invert: bool,
) -> Hit {
    let pkt = ctx.pkt;
    let special = ctx.iface_in == Some("lo")
        || (pkt.family == 4
            && pkt.src == 0
            && (pkt.dst == 0xFFFF_FFFF || pkt.dst >> 8 == 0xE0_0000));
    if special {
        return Hit::from(!invert);
    }
    let local = topo
        .local
        .iter()
        .any(|n| n.family == pkt.family && pkt.src & n.mask == n.addr & n.mask);
    if local {
        return Hit::from(accept_local != invert);
    }
    match reply_interface(topo, pkt.family, pkt.src) {
        None => Hit::Undecided("rpfilter: no --iface route covers the source address".into()),
        Some(iface) => Hit::from((loose || Some(iface) == ctx.iface_in) != invert),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::model::Net;
    use crate::rules::testpkt;

    #[test]
    fn reply_routes() {
        let topo = Topology {
            local: vec![Net {
                family: 4,
                addr: 0x0a00_0002,
                mask: 0xffff_ffff,
            }],
            ifaces: vec![
                (
                    "eth0".into(),
                    vec![Net {
                        family: 4,
                        addr: 0x0a00_0000,
                        mask: 0xffff_ff00,
                    }],
                ),
                (
                    "eth1".into(),
                    vec![Net {
                        family: 4,
                        addr: 0,
                        mask: 0,
                    }],
                ),
            ],
        };
        let data = testpkt::udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        let pkt = testpkt::decode(&data);
        let mut ctx = testpkt::ctx(&pkt);
        ctx.iface_in = Some("eth0");
        assert_eq!(rpfilter(&ctx, &topo, false, false, false), Hit::Yes);
        ctx.iface_in = Some("eth1");
        assert_eq!(rpfilter(&ctx, &topo, false, false, false), Hit::No);
        assert_eq!(rpfilter(&ctx, &topo, true, false, false), Hit::Yes);
        let empty = Topology::default();
        assert!(matches!(
            rpfilter(&ctx, &empty, false, false, false),
            Hit::Undecided(_)
        ));
        ctx.iface_in = Some("lo");
        assert_eq!(rpfilter(&ctx, &empty, false, false, true), Hit::No);
    }
}
