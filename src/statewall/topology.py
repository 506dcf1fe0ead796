"""Which addresses are the simulated machine's own and which interface leads where.

Given on the command line as `--local CIDR` and `--iface NAME=CIDR`; the
core routes with it (a packet to a local address goes to INPUT, one from a
local address starts at OUTPUT, the others are forwarded) and the rules use
it (addrtype, rpfilter). An interface given with an address of its own
(`--iface wan=203.0.113.1/24`, host bits set) holds that address: it is local,
and MASQUERADE and REDIRECT take it as the interface's address.
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass(frozen=True)
class Topology:
    """Which addresses are the firewall's own and which interface leads where."""

    local: tuple[Network, ...] = ()
    interfaces: tuple[tuple[str, tuple[Network, ...]], ...] = ()
    #: Addresses the interfaces hold (also in `local`), in the order given.
    addresses: tuple[tuple[str, Interface], ...] = ()

    @classmethod
    def build(cls, local: Iterable[str],
              interfaces: Iterable[tuple[str, Iterable[str]]]) -> Topology:
        """From `--local` and `--iface` texts (ValueError on a bad address)."""
        routes = []
        addresses: list[tuple[str, Interface]] = []
        for name, texts in interfaces:
            held = tuple(ipaddress.ip_interface(text.strip()) for text in texts)
            routes.append((name, tuple(i.network for i in held)))
            addresses.extend((name, i) for i in held if i.ip != i.network.network_address)
        own = tuple(ipaddress.ip_network(i.ip) for _, i in addresses)
        return cls(parse_networks(local) + own, tuple(routes), tuple(addresses))


def parse_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(text.strip(), strict=False) for text in texts)


def add_topology_options(parser: argparse.ArgumentParser) -> None:
    """--local and --iface, with the same meaning for every command that takes them."""
    parser.add_argument("--local", action="append", default=[], metavar="ADDR_OR_CIDR",
                        help="an address of the firewall itself (repeatable): makes it a host")
    parser.add_argument("--iface", action="append", default=[], metavar="NAME=CIDR[,CIDR]",
                        help="which interface leads to which addresses (repeatable)")


def parse_iface(text: str) -> tuple[str, tuple[str, ...]]:
    """`NAME=CIDR[,CIDR]` as given to --iface (ValueError when it is not)."""
    name, sep, nets = text.partition("=")
    if not sep or not name:
        raise ValueError(f"--iface {text!r}: expected NAME=CIDR[,CIDR]")
    return name, tuple(nets.split(","))
