"""How `verify` wires the kernel's firewall: its interfaces, routes and own addresses.

Without `--local` and `--iface` the oracle's firewall is a plain router
(netns.py): two interfaces, `swl` where connections start and `swr`, no
address and no route, and statewall is told which addresses sit behind
which interface (`side_topology`).

With them the firewall is the machine statewall models:

* `--iface NAME=CIDR`: the firewall's two interfaces take the names given
  (the first two; one given leaves the other `swr`, or `swl` if taken), and
  each network becomes a route through its interface, so the firewall's own
  lookups (rpfilter, what it sends) find them. A datagram enters on the
  interface that routes its source (longest prefix, the first given among
  equals, as statewall looks it up); one no route holds enters where
  `assign_sides` puts it. The firewall then routes by destination, as
  statewall does: a packet leaves by the interface whose route holds its
  (translated) destination, the one it came in by included; a destination
  no route holds is unreachable, and routing drops the packet after
  PREROUTING (its conntrack entry is never confirmed).
* `--local ADDR_OR_CIDR`: a local route in the firewall (`ip route add local`,
  through the interface whose network holds it, else `lo`), and a policy
  rule that looks local addresses up before the forwarding rules, so what
  is sent to them is delivered: PREROUTING, then INPUT. Datagrams from a
  local address are sent by the firewall itself (KernelFirewall.send_local):
  OUTPUT, then POSTROUTING, out of the interface its route picks. Without
  `--iface` the addresses behind each side become host routes for that.
  A datagram from one local address to another would loop back through
  `lo` into PREROUTING, a second pass statewall does not model: it is not
  compared.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from statewall.oracle.normalise import assign_sides, parse
from statewall.topology import Interface, Network, Topology

DEFAULT_IFS = ("swl", "swr")
SENT = -1  # the place of a datagram the firewall sends itself
NOT_SENT = -2  # the place of a datagram that is not compared
LOCAL_TO_LOCAL = ("from one local address to another (the kernel loops it back through lo, "
                  "a second pass statewall does not model)")
LOCAL_RULE_PREF = 50  # before the forwarding rules (netns.py: 100, 101)


@dataclass(frozen=True)
class Wiring:
    """The firewall's interfaces, statewall's view of them, the kernel's routes
    (`ip` command lines) and each datagram's place: the side it enters on, or
    SENT (by the firewall) or NOT_SENT."""

    firewall_ifs: tuple[str, str]
    topology: Topology
    routes: tuple[str, ...]
    places: tuple[int, ...]


def interface_names(ifaces: Sequence[tuple[str, Sequence[Network]]]) -> tuple[str, str]:
    """The firewall's two interface names: those given first, the defaults after."""
    names = [name for name, _ in ifaces]
    if len(names) > 2:
        raise ValueError(f"verify's firewall has two interfaces; --iface names {len(names)}")
    for default in DEFAULT_IFS:
        if len(names) < 2 and default not in names:
            names.append(default)
    return names[0], names[1]


def interface_for(topology: Topology, address: ipaddress.IPv4Address | ipaddress.IPv6Address
                  ) -> str | None:
    """The interface whose network holds `address` with the longest prefix (the first
    given among equals), as statewall's core looks it up."""
    best: tuple[int, str] | None = None
    for name, nets in topology.interfaces:
        for net in nets:
            if address in net and (best is None or net.prefixlen > best[0]):
                best = (net.prefixlen, name)
    return None if best is None else best[1]


def side_topology(datagrams: Sequence[bytes], names: tuple[str, str] = DEFAULT_IFS,
                  local: Sequence[Network] = ()) -> Topology:
    """statewall's view of the router: which addresses sit behind which interface
    (the sides `assign_sides` picks), the `local` ones left out and made local."""
    behind: tuple[set[str], set[str]] = (set(), set())
    for data, side in zip(datagrams, assign_sides(datagrams), strict=True):
        view = parse(data)
        if view is None:
            continue
        make = ipaddress.IPv4Address if view.family == 4 else ipaddress.IPv6Address
        for address, where in ((view.src, side), (view.dst, 1 - side)):
            ip = make(address)
            if not any(ip in net for net in local):
                behind[where].add(f"{ip}/{ip.max_prefixlen}")
    interfaces = tuple(
        (name, tuple(ipaddress.ip_network(net) for net in sorted(nets)))
        for name, nets in zip(names, behind, strict=True))
    return Topology(tuple(local), interfaces)


def wire(datagrams: Sequence[bytes], local: Sequence[Network],
         ifaces: Sequence[tuple[str, Sequence[Network]]],
         addresses: Sequence[tuple[str, Interface]] = ()) -> Wiring:
    """The wiring of a firewall with `local` addresses, `ifaces` routes and the
    `addresses` its interfaces hold (which MASQUERADE and REDIRECT use)."""
    names = interface_names(ifaces)
    if ifaces:
        topology = Topology(tuple(local), tuple((name, tuple(nets)) for name, nets in ifaces),
                            tuple(addresses))
    else:
        topology = side_topology(datagrams, names, local)
    sides = assign_sides(datagrams)
    places = tuple(_place(data, side, topology, names) for data, side in zip(datagrams, sides,
                                                                             strict=True))
    routes = _routes(topology, bool(ifaces))
    if ifaces:
        routes += _by_destination(names)
    return Wiring(names, topology, tuple(routes), places)


def _place(data: bytes, side: int, topology: Topology, names: tuple[str, str]) -> int:
    view = parse(data)
    if view is None:
        return side
    make = ipaddress.IPv4Address if view.family == 4 else ipaddress.IPv6Address
    src, dst = make(view.src), make(view.dst)
    from_local = any(src in net for net in topology.local)
    if from_local:
        return NOT_SENT if any(dst in net for net in topology.local) else SENT
    name = interface_for(topology, src)
    return names.index(name) if name in names else side


def _by_destination(names: tuple[str, str]) -> list[str]:
    """With `--iface` routes the firewall routes by destination, as statewall does (a
    port forward back into the interface it came from, hairpin NAT, goes back out
    there): the router's rules that send everything out of the other interface
    (netns.py) go, so a destination no route holds has none."""
    return [f"{family}rule del pref {100 + side}"
            for family in ("", "-6 ") for side in range(len(names))]


def _routes(topology: Topology, given: bool) -> list[str]:
    """`ip` commands: the interfaces' addresses, a route per interface network (the
    first given wins a network given twice), then each local network's local route
    (an interface's address has its own) and policy rule."""
    commands = [f"addr add {held} dev {name}" for name, held in topology.addresses]
    held = {ipaddress.ip_network(i.ip) for _, i in topology.addresses}
    routed: set[Network] = set()
    for name, nets in topology.interfaces:
        for net in nets:
            if net not in routed:
                routed.add(net)
                # `replace`: an interface address has put its network's route there.
                commands.append(f"route replace {net} dev {name}")
    for net in topology.local:
        through = interface_for(topology, net.network_address) if given else None
        if net not in held:
            commands.append(f"route add local {net} dev {through or 'lo'} table local")
        family = "-6 " if net.version == 6 else ""
        commands.append(f"{family}rule add to {net} lookup local pref {LOCAL_RULE_PREF}")
    return commands
