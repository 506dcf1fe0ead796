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
