//! rpfilter match (ipt_rpfilter.c, ip6t_rpfilter.c): would the reply to the
//! source leave through the interface the packet came in on?
//!
//! How this works. The kernel looks the source address up in the routing
//! table as a destination, from the machine itself, and the packet passes
//! when the route found is a unicast route through the interface it came in
//! on (`--loose`: through any interface). With `--accept-local` a local
//! route counts too: IPv4 still wants it through the input interface
//! (unless loose), IPv6 does not. No route, a broadcast or an anycast route
//! never pass. `--invert` flips the answer. Packets from loopback pass, as
//! do IPv4 packets from 0.0.0.0 to a broadcast or link-local multicast
//! address and IPv6 packets from `::`.
//!
//! statewall's routing table is the topology:
//! * local routes come first (the kernel's local table): each `--local`
//!   block, through the interface whose network holds it, and 127.0.0.0/8
//!   through lo. The IPv4 broadcast address of an `--iface` network
//!   (prefix 1 to 30) and the IPv6 subnet-router anycast address (the
//!   network's own address, prefix 1 to 126) are not unicast: the networks
//!   are taken as subnets the machine is attached to, as addrtype takes them.
//! * then each `--iface NAME=CIDR` is a route through NAME. The longest
//!   prefix wins; a prefix given for several interfaces is a multipath
//!   route, any of whose interfaces is the way back. An IPv6 link-local
//!   source is looked up among the routes through the input interface only.
//! * without any `--iface`, a default route through every interface: every
//!   source that is not local passes, strict or loose.
//!
//! There is no policy routing, so `--validmark` (the packet's mark in the
//! lookup) changes nothing.

use crate::rules::context::RuleCtx;
use crate::rules::matches::addrtype::Topology;
use crate::rules::matches::Hit;
use crate::rules::model::Net;

pub const LOCAL_IFACE_UNKNOWN: &str = "rpfilter: no --iface network holds this local \
     source address, so its interface (which a strict --accept-local check compares) is unknown";

/// What the reverse lookup found.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    NoRoute,
    /// A broadcast or anycast route: never the way back.
    NotUnicast,
    /// Whether the route leaves through the input interface.
    Unicast(bool),
    /// Whether the local route's interface is the input interface (None: unknown).
    Local(Option<bool>),
}

fn covers(n: &Net, family: u8, address: u128) -> bool {
    n.family == family && address & n.mask == n.addr & n.mask
}

/// The host bits of a network of this family (all ones for /0).
fn host_bits(n: &Net) -> u128 {
    let all = if n.family == 4 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    !n.mask & all
}

/// A broadcast (IPv4) or subnet-router anycast (IPv6) address of an attached subnet.
fn not_unicast(topo: &Topology, family: u8, address: u128) -> bool {
    if family == 4 && address >> 24 == 127 {
        return address == 0x7FFF_FFFF; // lo's 127.0.0.1/8
    }
    topo.ifaces.iter().flat_map(|(_, nets)| nets).any(|n| {
        let host = host_bits(n);
        let subnet = n.mask != 0 && host > 1 && covers(n, family, address);
        subnet && address & host == if family == 4 { host } else { 0 }
    })
}

/// The interface whose network holds `address` (longest prefix).
fn holder(topo: &Topology, family: u8, address: u128) -> Option<&str> {
    let mut best: Option<(u128, &str)> = None;
    for (name, nets) in &topo.ifaces {
        for n in nets.iter().filter(|n| covers(n, family, address)) {
            if best.is_none_or(|(mask, _)| n.mask > mask) {
                best = Some((n.mask, name));
            }
        }
    }
    best.map(|(_, name)| name)
}

/// Among the routes covering `address` (only those through `iface` when
/// `only_iface`), those of the longest prefix: does one go through `iface`?
/// None when no route covers it.
fn main_route(
    topo: &Topology,
    family: u8,
    address: u128,
    iface: Option<&str>,
    only_iface: bool,
) -> Option<bool> {
    let mut best: Option<(u128, bool)> = None;
    for (name, nets) in &topo.ifaces {
        let here = Some(name.as_str()) == iface;
        if only_iface && !here {
            continue;
        }
        for n in nets.iter().filter(|n| covers(n, family, address)) {
            best = match best {
                Some((mask, through)) if n.mask == mask => Some((mask, through || here)),
                Some((mask, _)) if n.mask < mask => best,
                _ => Some((n.mask, here)),
            };
        }
    }
    best.map(|(_, through)| through)
}

fn reverse_route(topo: &Topology, family: u8, src: u128, iface_in: Option<&str>) -> Found {
    if not_unicast(topo, family, src) {
        return Found::NotUnicast;
    }
    if family == 4 && src >> 24 == 127 {
        // Local through lo, and packets that came in on lo passed already.
        return Found::Local(Some(false));
    }
    if topo.local.iter().any(|n| covers(n, family, src)) {
        return Found::Local(holder(topo, family, src).map(|name| Some(name) == iface_in));
    }
    if topo.ifaces.is_empty() {
        return Found::Unicast(true);
    }
    let link_local = family == 6 && src >> 118 == 0x3FA;
    match main_route(topo, family, src, iface_in, link_local) {
        None => Found::NoRoute,
        Some(through) => Found::Unicast(through),
    }
}

/// Loopback input and the sources that have no route yet (DHCP, DAD): the
/// reverse path check lets them pass.
fn special(ctx: &RuleCtx<'_>) -> bool {
    let pkt = ctx.pkt;
    ctx.iface_in == Some("lo")
        || (pkt.family == 4
            && pkt.src == 0
            && (pkt.dst == 0xFFFF_FFFF || pkt.dst >> 8 == 0xE0_0000))
        || (pkt.family == 6 && pkt.src == 0)
}

/// nft `fib saddr . iif oif`: whether the route back to the source leaves
/// through the input interface (a local source routes through lo: no).
pub fn back_through_iif(ctx: &RuleCtx<'_>, topo: &Topology) -> bool {
    if special(ctx) {
        return true;
    }
    matches!(
        reverse_route(topo, ctx.pkt.family, ctx.pkt.src, ctx.iface_in),
        Found::Unicast(true)
    )
}

pub fn rpfilter(
    ctx: &RuleCtx<'_>,
    topo: &Topology,
    loose: bool,
    accept_local: bool,
    invert: bool,
) -> Hit {
    let pkt = ctx.pkt;
    if special(ctx) {
        return Hit::from(!invert);
    }
    let pass = match reverse_route(topo, pkt.family, pkt.src, ctx.iface_in) {
        Found::NoRoute | Found::NotUnicast => Some(false),
        Found::Unicast(through) => Some(loose || through),
        Found::Local(_) if !accept_local => Some(false),
        Found::Local(_) if loose || pkt.family == 6 => Some(true),
        Found::Local(through) => through,
    };
    match pass {
        Some(pass) => Hit::from(pass != invert),
        None => Hit::Undecided(LOCAL_IFACE_UNKNOWN.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testpkt;

    fn v4(addr: [u8; 4], prefix: u32) -> Net {
        let mask = if prefix == 0 {
            0
        } else {
            u128::from(u32::MAX << (32 - prefix))
        };
        Net {
            family: 4,
            addr: u128::from(u32::from_be_bytes(addr)) & mask,
            mask,
        }
    }

    fn v6(addr: u128, prefix: u32) -> Net {
        let mask = if prefix == 0 {
            0
        } else {
            u128::MAX << (128 - prefix)
        };
        Net {
            family: 6,
            addr: addr & mask,
            mask,
        }
    }

    /// eth0: 10.0.0.0/24 and fd00:1::/64; eth1: 192.168.0.0/16, the default
    /// route and 10.9.0.0/16, which eth2 shares; the machine owns 10.0.0.2
    /// and fd00:1::2.
    fn topo() -> Topology {
        Topology {
            local: vec![v4([10, 0, 0, 2], 32), v6(0xfd00_0001 << 96 | 2, 128)],
            ifaces: vec![
                (
                    "eth0".into(),
                    vec![v4([10, 0, 0, 0], 24), v6(0xfd00_0001 << 96, 64)],
                ),
                (
                    "eth1".into(),
                    vec![
                        v4([192, 168, 0, 0], 16),
                        v4([0, 0, 0, 0], 0),
                        v4([10, 9, 0, 0], 16),
                    ],
                ),
                ("eth2".into(), vec![v4([10, 9, 0, 0], 16)]),
            ],
        }
    }

    /// (strict, loose, strict --accept-local) for a source arriving on `iface`.
    fn answers(topo: &Topology, src: [u8; 4], iface: &str) -> [Hit; 3] {
        let data = testpkt::udp4(src, [198, 51, 100, 1], 1, 2);
        let pkt = testpkt::decode(&data);
        let mut ctx = testpkt::ctx(&pkt);
        ctx.iface_in = Some(iface);
        [
            rpfilter(&ctx, topo, false, false, false),
            rpfilter(&ctx, topo, true, false, false),
            rpfilter(&ctx, topo, false, true, false),
        ]
    }

    const YES: [Hit; 3] = [Hit::Yes, Hit::Yes, Hit::Yes];
    const NO: [Hit; 3] = [Hit::No, Hit::No, Hit::No];

    #[test]
    fn ipv4_reverse_routes() {
        let t = topo();
        assert_eq!(answers(&t, [10, 0, 0, 1], "eth0"), YES);
        // The longest prefix is eth0's: strict fails on eth1, loose passes.
        assert_eq!(
            answers(&t, [10, 0, 0, 1], "eth1"),
            [Hit::No, Hit::Yes, Hit::No]
        );
        // Through the default route.
        assert_eq!(answers(&t, [8, 8, 8, 8], "eth1"), YES);
        // A prefix two interfaces share is the way back through either.
        assert_eq!(answers(&t, [10, 9, 1, 1], "eth2"), YES);
        assert_eq!(answers(&t, [10, 9, 1, 1], "eth1"), YES);
        // eth0's broadcast address, and lo's.
        assert_eq!(answers(&t, [10, 0, 0, 255], "eth0"), NO);
        assert_eq!(answers(&t, [127, 255, 255, 255], "eth0"), NO);
        // Local: only with --accept-local, and strict wants its interface.
        assert_eq!(
            answers(&t, [10, 0, 0, 2], "eth0"),
            [Hit::No, Hit::No, Hit::Yes]
        );
        assert_eq!(answers(&t, [10, 0, 0, 2], "eth1"), NO);
        assert_eq!(answers(&t, [127, 0, 0, 1], "eth0"), NO);
        // Loopback passes whatever the source.
        assert_eq!(answers(&t, [10, 0, 0, 2], "lo"), YES);
    }

    #[test]
    fn no_route_fails_and_no_routes_at_all_pass() {
        let mut t = topo();
        t.ifaces[1].1.remove(1);
        assert_eq!(answers(&t, [8, 8, 8, 8], "eth1"), NO);
        let bare = Topology {
            local: vec![v4([10, 0, 0, 2], 32)],
            ifaces: Vec::new(),
        };
        assert_eq!(answers(&bare, [8, 8, 8, 8], "eth1"), YES);
        let [strict, loose, local] = answers(&bare, [10, 0, 0, 2], "eth0");
        assert_eq!((strict, loose), (Hit::No, Hit::No));
        assert_eq!(local, Hit::Undecided(LOCAL_IFACE_UNKNOWN.into()));
    }

    #[test]
    fn dhcp_discover_and_invert() {
        let t = Topology::default();
        let data = testpkt::udp4([0, 0, 0, 0], [255, 255, 255, 255], 68, 67);
        let pkt = testpkt::decode(&data);
        let mut ctx = testpkt::ctx(&pkt);
        ctx.iface_in = Some("eth0");
        assert_eq!(rpfilter(&ctx, &t, false, false, false), Hit::Yes);
        assert_eq!(rpfilter(&ctx, &t, false, false, true), Hit::No);
    }

    fn answer6(topo: &Topology, src: u128, iface: &str, loose: bool, local: bool) -> Hit {
        let data = testpkt::udp4([10, 0, 0, 1], [198, 51, 100, 1], 1, 2);
        let mut pkt = testpkt::decode(&data);
        pkt.family = 6;
        pkt.src = src;
        pkt.dst = 0x2001_0db8 << 96 | 1;
        let mut ctx = testpkt::ctx(&pkt);
        ctx.iface_in = Some(iface);
        rpfilter(&ctx, topo, loose, local, false)
    }

    #[test]
    fn ipv6_reverse_routes() {
        let t = topo();
        let net = 0xfd00_0001u128 << 96;
        assert_eq!(answer6(&t, net | 7, "eth0", false, false), Hit::Yes);
        assert_eq!(answer6(&t, net | 7, "eth1", false, false), Hit::No);
        assert_eq!(answer6(&t, net | 7, "eth1", true, false), Hit::Yes);
        // The subnet-router anycast address.
        assert_eq!(answer6(&t, net, "eth0", true, true), Hit::No);
        // Local: --accept-local alone decides, whatever the interface.
        assert_eq!(answer6(&t, net | 2, "eth1", false, false), Hit::No);
        assert_eq!(answer6(&t, net | 2, "eth1", false, true), Hit::Yes);
        // No IPv6 route but eth0's: nothing else comes back.
        assert_eq!(
            answer6(&t, 0x2001_0db8 << 96 | 9, "eth1", true, false),
            Hit::No
        );
        assert_eq!(answer6(&t, 0, "eth1", false, false), Hit::Yes);
    }

    #[test]
    fn ipv6_link_local_sources_use_the_input_interface_only() {
        let mut t = topo();
        let link = 0xfe80u128 << 112;
        t.ifaces[0].1.push(v6(link, 64));
        t.ifaces[1].1.push(v6(0, 0));
        assert_eq!(answer6(&t, link | 5, "eth0", false, false), Hit::Yes);
        // The default route covers it too, but not through eth2.
        assert_eq!(answer6(&t, link | 5, "eth2", true, false), Hit::No);
        assert_eq!(answer6(&t, link | 5, "eth1", false, false), Hit::Yes);
    }
}
