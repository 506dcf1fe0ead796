"""Which addresses are the simulated machine's own and which interface leads where.

Given on the command line as `--local CIDR` and `--iface NAME=CIDR`; the
core routes with it (a packet to a local address goes to INPUT, one from a
local address starts at OUTPUT, the others are forwarded) and the rules use
it (addrtype, rpfilter).
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Topology:
    """Which addresses are the firewall's own and which interface leads where."""

    local: tuple[Network, ...] = ()
    interfaces: tuple[tuple[str, tuple[Network, ...]], ...] = ()


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
