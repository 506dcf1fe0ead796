"""Which addresses are the simulated machine's own and which interface leads where.

Given on the command line as `--local CIDR` and `--iface NAME=CIDR`; the
core routes with it (a packet to a local address goes to INPUT, one from a
local address starts at OUTPUT, the others are forwarded) and the rules use
it (addrtype, rpfilter).
"""

from __future__ import annotations

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
