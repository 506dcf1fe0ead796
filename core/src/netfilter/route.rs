//! Which hooks a datagram traverses, and what the IP layer and routing drop
//! around them (ip_rcv_core, ip6_rcv_core, ip_route_input, ip6_route_input).
//!
//! A router by default: PREROUTING → FORWARD → POSTROUTING. With local
//! addresses (`--local`) statewall is also a host: packets to one go
//! PREROUTING → INPUT, packets from one OUTPUT → POSTROUTING. The special
//! addresses are handled as measured on Linux 6.18 forwarding between two
//! plain interfaces (no multicast routing daemon, route_localnet off): every
//! interface belongs to the all-hosts groups, and with forwarding on IPv6
//! also to all-routers; other groups are not joined.

use crate::netfilter::hooks::Hook;
use crate::packet::IfaceName;

/// An address block of either family (`--local`, `--iface NAME=CIDR`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Net {
    pub family: u8,
    pub address: u128,
    pub mask: u128,
}

impl Net {
    /// `address/prefix`, host bits cleared.
    pub fn new(family: u8, address: u128, prefix: u8) -> Self {
        let width: u32 = if family == 4 { 32 } else { 128 };
        let prefix = u32::from(prefix).min(width);
        let all = if width == 32 {
            u128::from(u32::MAX)
        } else {
            u128::MAX
        };
        // `checked_shr`: a shift by the full width (an IPv6 /128) is out of
        // range for u128 and would wrap to a shift by 0.
        let mask = all & !all.checked_shr(prefix).unwrap_or(0);
        Net {
            family,
            address: address & mask,
            mask,
        }
    }

    pub fn contains(&self, family: u8, address: u128) -> bool {
        self.family == family && address & self.mask == self.address
    }
}

/// An address an interface holds and the subnet it gives the interface
/// (`--iface wan=203.0.113.1/24`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub address: u128,
    pub net: Net,
}

/// Which addresses are the firewall's own and which interface leads where.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    pub local: Vec<Net>,
    pub interfaces: Vec<(IfaceName, Vec<Net>)>,
    /// The addresses the interfaces hold (also among `local`), in the order
    /// given, for MASQUERADE and REDIRECT.
    pub addresses: Vec<(IfaceName, Held)>,
}

impl Topology {
    pub fn is_local(&self, family: u8, address: u128) -> bool {
        self.local.iter().any(|net| net.contains(family, address))
    }

    /// The interface that leads to `address`, if the topology names one: the
    /// one with the longest prefix holding it, as a route lookup picks (the
    /// first given among equals).
    /// The first address of `family` the interface holds: REDIRECT's.
    pub fn address_of(&self, iface: &str, family: u8) -> Option<u128> {
        self.held(iface, family).next().map(|held| held.address)
    }

    /// The source address MASQUERADE takes leaving by `iface` towards `dst`
    /// (the routes here have no gateway: the next hop is `dst` itself).
    ///
    /// IPv4 as inet_select_addr picks it: among the interface's primary
    /// addresses (one on a subnet an earlier address already gives the
    /// interface is secondary), the first whose subnet holds the next hop,
    /// else the first. IPv6 as source address selection (RFC 6724) ends for
    /// the global addresses `--iface` gives, whose scope, label and flags
    /// tie: the longest prefix shared with `dst`, counted up to the
    /// address's own prefix length; among equals the address added last,
    /// which Linux lists first.
    pub fn masquerade_address(&self, iface: &str, family: u8, dst: u128) -> Option<u128> {
        // Called for every masqueraded connection: no allocation here.
        let mut held = self.held(iface, family);
        if family == 6 {
            let shared = |h: &Held| {
                (h.address ^ dst)
                    .leading_zeros()
                    .min(h.net.mask.count_ones())
            };
            // max_by_key keeps the last of equals: the address added last.
            return held.max_by_key(|h| shared(h)).map(|h| h.address);
        }
        let first = held.next()?;
        let is_primary =
            |n: usize, h: &Held| !self.held(iface, family).take(n).any(|e| e.net == h.net);
        std::iter::once(first)
            .chain(held)
            .enumerate()
            .find(|&(n, h)| h.net.contains(family, dst) && is_primary(n, h))
            .map_or(Some(first.address), |(_, h)| Some(h.address))
    }

    fn held<'a>(&'a self, iface: &'a str, family: u8) -> impl Iterator<Item = &'a Held> + 'a {
        self.addresses
            .iter()
            .filter(move |(name, held)| &**name == iface && held.net.family == family)
            .map(|(_, held)| held)
    }

    pub fn interface_for(&self, family: u8, address: u128) -> Option<&IfaceName> {
        self.interface_index_for(family, address)
            .map(|at| &self.interfaces[at].0)
    }

    /// `interface_for` as the interface's position in `interfaces` (a
    /// packet's walk keeps the position, not a counted reference).
    pub fn interface_index_for(&self, family: u8, address: u128) -> Option<usize> {
        let mut best: Option<(u128, usize)> = None;
        for (at, (_, nets)) in self.interfaces.iter().enumerate() {
            for net in nets.iter().filter(|net| net.contains(family, address)) {
                if best.is_none_or(|(mask, _)| net.mask > mask) {
                    best = Some((net.mask, at));
                }
            }
        }
        best.map(|(_, at)| at)
    }
}

/// The hooks of one path, in order.
pub type Path = &'static [Hook];

pub const PATH_FORWARD: Path = &[Hook::PreRouting, Hook::Forward, Hook::PostRouting];
pub const PATH_INPUT: Path = &[Hook::PreRouting, Hook::Input];
pub const PATH_OUTPUT: Path = &[Hook::Output, Hook::PostRouting];
/// Routing dropped the datagram after PREROUTING.
pub const PATH_PREROUTING_ONLY: Path = &[Hook::PreRouting];

const NOT_JOINED: &str = "dropped by routing: multicast group not joined and no multicast routing";
const LINK_LOCAL: &str = "dropped by routing: link-local addresses are never forwarded";
const MARTIAN: &str = "dropped by routing: martian source address";
const NO_ROUTE: &str =
    "dropped by routing: no route to the destination (no interface's network holds it)";

const V4_ALL_HOSTS: u128 = 0xE000_0001; // 224.0.0.1
const V4_BROADCAST: u128 = 0xFFFF_FFFF;
const V6_ALL_NODES: u128 = 0xff02 << 112 | 1; // ff02::1
const V6_ALL_ROUTERS: u128 = 0xff02 << 112 | 2; // ff02::2
const V6_LOOPBACK: u128 = 1;

/// Why the IPv6 receive path drops a datagram before PREROUTING (None if it does not).
pub fn stack_drop(family: u8, src: u128, dst: u128) -> Option<&'static str> {
    if family != 6 {
        return None;
    }
    if src >> 120 == 0xFF {
        return Some("dropped by the IPv6 layer before netfilter: multicast source address");
    }
    if dst >> 112 == 0xFF01 {
        return Some(
            "dropped by the IPv6 layer before netfilter: interface-local multicast from the wire",
        );
    }
    if src == V6_LOOPBACK || dst == V6_LOOPBACK {
        return Some("dropped by the IPv6 layer before netfilter: loopback address from the wire");
    }
    None
}

/// Why a datagram the machine sends itself never reaches OUTPUT (None if it
/// does): with interfaces given, a unicast destination that is neither local
/// nor held by an interface's network has no route, and the sending socket's
/// own route lookup fails (ENETUNREACH) before netfilter sees anything.
/// Multicast, broadcast and IPv6 link-local destinations pick their interface
/// otherwise and are left to the walk. `out`: the interface whose network
/// holds `dst`, which the caller looked up for the output interface anyway.
pub fn send_drop(
    topology: &Topology,
    family: u8,
    dst: u128,
    out: Option<usize>,
) -> Option<&'static str> {
    let special = if family == 4 {
        dst >> 28 == 0xE || dst == V4_BROADCAST
    } else {
        dst >> 120 == 0xFF || dst >> 118 == 0x3FA
    };
    let unroutable = !topology.interfaces.is_empty()
        && !special
        && !topology.is_local(family, dst)
        && out.is_none();
    unroutable.then_some(NOT_SENT)
}

const NOT_SENT: &str = "never sent: no route to the destination (no interface's network \
                        holds it), so the sender's route lookup fails before OUTPUT";

enum Route {
    Forward,
    Local,
    Drop(&'static str),
}

/// The hooks a received datagram (its source not the machine's) traverses
/// once PREROUTING has passed it, and why routing drops it (None when it does
/// not); `out` is the interface whose network holds `dst`, which the caller
/// looked up for the output interface anyway.
///
/// A routing drop happens after PREROUTING, so conntrack has already seen
/// the packet but never confirms its entry. With interfaces given, their
/// networks are the only routes: a destination none holds is unreachable
/// (ip_route_input_slow and ip6_route_input find no route, and the packet is
/// discarded before FORWARD). Without them every destination is forwarded.
pub fn route_received(
    topology: &Topology,
    family: u8,
    src: u128,
    dst: u128,
    out: Option<usize>,
) -> (Path, Option<&'static str>) {
    if topology.is_local(family, dst) {
        return (PATH_INPUT, None);
    }
    let route = if family == 4 {
        v4_route(src, dst)
    } else {
        v6_route(src, dst)
    };
    let routed = topology.interfaces.is_empty() || out.is_some();
    match route {
        Route::Forward if !routed => (PATH_PREROUTING_ONLY, Some(NO_ROUTE)),
        Route::Forward => (PATH_FORWARD, None),
        Route::Local => (PATH_INPUT, None),
        Route::Drop(why) => (PATH_PREROUTING_ONLY, Some(why)),
    }
}

fn v4_route(src: u128, dst: u128) -> Route {
    if src >> 28 == 0xE || src == V4_BROADCAST {
        return Route::Drop(MARTIAN);
    }
    if dst == V4_ALL_HOSTS || dst == V4_BROADCAST {
        return Route::Local;
    }
    if dst >> 28 == 0xE {
        return Route::Drop(NOT_JOINED);
    }
    if dst == 0 || src == 0 {
        return Route::Drop(MARTIAN);
    }
    Route::Forward
}

fn v6_route(src: u128, dst: u128) -> Route {
    if dst >> 120 == 0xFF {
        return if dst == V6_ALL_NODES || dst == V6_ALL_ROUTERS {
            Route::Local
        } else {
            Route::Drop(NOT_JOINED)
        };
    }
    if src == 0 {
        return Route::Drop(MARTIAN);
    }
    if src >> 118 == 0x3FA || dst >> 118 == 0x3FA {
        return Route::Drop(LINK_LOCAL);
    }
    Route::Forward
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole routing decision for a datagram from `src`, as the walk makes
    /// it: OUTPUT for the machine's own, else `route_received`.
    fn choose_path(
        topology: &Topology,
        family: u8,
        src: u128,
        dst: u128,
    ) -> (Path, Option<&'static str>) {
        if topology.is_local(family, src) {
            return (PATH_OUTPUT, None);
        }
        let out = topology.interface_index_for(family, dst);
        route_received(topology, family, src, dst, out)
    }

    const ROUTER: Topology = Topology {
        local: Vec::new(),
        interfaces: Vec::new(),
        addresses: Vec::new(),
    };

    #[test]
    fn router_paths_for_special_addresses() {
        let a = 0xC000_0201u128; // 192.0.2.1
        let b = 0xC633_6407u128; // 198.51.100.7
        assert_eq!(choose_path(&ROUTER, 4, a, b), (PATH_FORWARD, None));
        assert_eq!(choose_path(&ROUTER, 4, a, V4_BROADCAST), (PATH_INPUT, None));
        assert_eq!(
            choose_path(&ROUTER, 4, a, 0xE000_00FB),
            (PATH_PREROUTING_ONLY, Some(NOT_JOINED))
        );
        assert_eq!(
            choose_path(&ROUTER, 4, 0xE000_0001, b),
            (PATH_PREROUTING_ONLY, Some(MARTIAN))
        );
        assert_eq!(
            choose_path(&ROUTER, 4, 0, b),
            (PATH_PREROUTING_ONLY, Some(MARTIAN))
        );
        let fe80 = 0xfe80u128 << 112 | 1;
        let doc = 0x2001_0db8u128 << 96 | 1;
        assert_eq!(
            choose_path(&ROUTER, 6, fe80, doc),
            (PATH_PREROUTING_ONLY, Some(LINK_LOCAL))
        );
        assert_eq!(
            choose_path(&ROUTER, 6, doc, V6_ALL_NODES),
            (PATH_INPUT, None)
        );
        assert!(stack_drop(6, doc, V6_LOOPBACK).is_some());
        assert!(stack_drop(4, 1, 1).is_none());
    }

    #[test]
    fn host_paths_by_local_address() {
        let host = Topology {
            local: vec![Net::new(4, 0xC000_0201, 32)],
            interfaces: Vec::new(),
            addresses: Vec::new(),
        };
        assert_eq!(
            choose_path(&host, 4, 0xC000_0201, 0xC633_6407).0,
            PATH_OUTPUT
        );
        assert_eq!(
            choose_path(&host, 4, 0xC633_6407, 0xC000_0201).0,
            PATH_INPUT
        );
        assert_eq!(Net::new(4, 0xC000_02FF, 24).address, 0xC000_0200);
        // A host route holds its own address only, in both families.
        let host6 = Net::new(6, 0x2001_0db8 << 96 | 0x10, 128);
        assert!(host6.contains(6, 0x2001_0db8 << 96 | 0x10));
        assert!(!host6.contains(6, 0x2001_0db8 << 96 | 0x11));
        assert!(!Net::new(4, 0xC000_0201, 32).contains(4, 0xC000_0202));
        assert!(Net::new(6, 0, 0).contains(6, 7));
        let routes = Topology {
            local: Vec::new(),
            interfaces: vec![
                ("up".into(), vec![Net::new(4, 0, 0)]),
                ("lan".into(), vec![Net::new(4, 0xC000_0200, 24)]),
            ],
            addresses: Vec::new(),
        };
        let lan = routes.interface_for(4, 0xC000_0207).map(|n| n.to_string());
        assert_eq!(lan.as_deref(), Some("lan"));
        assert_eq!(Net::new(6, u128::MAX, 0).mask, 0);
    }

    #[test]
    fn with_interfaces_given_a_destination_none_holds_has_no_route() {
        let lan_only = Topology {
            interfaces: vec![("lan".into(), vec![Net::new(4, 0xC000_0200, 24)])],
            ..Topology::default()
        };
        let inside = 0xC000_0207; // 192.0.2.7
        let outside = 0xC633_6407; // 198.51.100.7
        assert_eq!(
            choose_path(&lan_only, 4, outside, inside),
            (PATH_FORWARD, None)
        );
        assert_eq!(
            choose_path(&lan_only, 4, inside, outside),
            (PATH_PREROUTING_ONLY, Some(NO_ROUTE))
        );
        // No IPv6 network given: no IPv6 route at all.
        let doc = 0x2001_0db8u128 << 96;
        assert_eq!(
            choose_path(&lan_only, 6, doc | 1, doc | 2),
            (PATH_PREROUTING_ONLY, Some(NO_ROUTE))
        );
        // The special destinations are decided before any route is looked up.
        assert_eq!(
            choose_path(&lan_only, 4, inside, V4_BROADCAST),
            (PATH_INPUT, None)
        );
        // Without interfaces the router forwards everything.
        assert_eq!(
            choose_path(&ROUTER, 4, inside, outside),
            (PATH_FORWARD, None)
        );
        // What the machine sends there never leaves its socket.
        assert_eq!(
            send_drop(
                &lan_only,
                4,
                outside,
                lan_only.interface_index_for(4, outside)
            ),
            Some(NOT_SENT)
        );
        assert_eq!(
            send_drop(
                &lan_only,
                4,
                inside,
                lan_only.interface_index_for(4, inside)
            ),
            None
        );
        assert_eq!(
            send_drop(
                &lan_only,
                4,
                0xE000_00FB,
                lan_only.interface_index_for(4, 0xE000_00FB)
            ),
            None
        );
        assert_eq!(send_drop(&ROUTER, 4, outside, None), None);
    }

    #[test]
    fn masquerade_takes_the_primary_address_on_the_next_hops_subnet() {
        let held = |address: u128, prefix: u8| {
            (
                IfaceName::from("wan"),
                Held {
                    address,
                    net: Net::new(4, address, prefix),
                },
            )
        };
        let wan = Topology {
            addresses: vec![
                held(0xCB00_7101, 24), // 203.0.113.1/24
                held(0xCB00_7102, 24), // 203.0.113.2/24: secondary
                held(0xC633_64FE, 24), // 198.51.100.254/24
            ],
            ..Topology::default()
        };
        let masquerade = |next_hop| wan.masquerade_address("wan", 4, next_hop);
        assert_eq!(masquerade(0xC633_641E), Some(0xC633_64FE)); // 198.51.100.30
        assert_eq!(masquerade(0xCB00_7109), Some(0xCB00_7101)); // 203.0.113.9
        assert_eq!(masquerade(0xC000_0209), Some(0xCB00_7101)); // 192.0.2.9: none
        assert_eq!(wan.address_of("wan", 4), Some(0xCB00_7101));
        assert_eq!(wan.masquerade_address("lan", 4, 0xC000_0209), None);
        let doc = |group: u128, host: u128| 0x2001_0db8u128 << 96 | group << 80 | host;
        let held6 = |address: u128| {
            (
                IfaceName::from("wan"),
                Held {
                    address,
                    net: Net::new(6, address, 64),
                },
            )
        };
        let wan6 = Topology {
            addresses: vec![held6(doc(2, 1)), held6(doc(3, 1))],
            ..Topology::default()
        };
        let masquerade6 = |dst| wan6.masquerade_address("wan", 6, dst);
        assert_eq!(masquerade6(doc(2, 0x20)), Some(doc(2, 1)));
        assert_eq!(masquerade6(doc(3, 0x30)), Some(doc(3, 1)));
        assert_eq!(masquerade6(doc(9, 0x20)), Some(doc(3, 1))); // a tie: the last added
    }
}
