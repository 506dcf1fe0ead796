"""rpfilter match (ipt_rpfilter.c / ip6t_rpfilter.c): reverse-path check.

The kernel looks the packet's source up in the routing table as if replying
and passes the packet when that route leaves through the interface the
packet came in on (`--loose`: when any route exists). statewall's routing
table is the `--iface NAME=CIDR` topology: the longest prefix holding the
source names the reply interface (a `0.0.0.0/0` or `::/0` entry is the
default route). A source no interface covers cannot be decided: the rule is
then UNKNOWN for that packet. A source that is one of the host's own
addresses (`--local`) is a local route: it passes only with `--accept-local`.
Packets from loopback always pass, as do DHCP-style packets from 0.0.0.0 to
broadcast or link-local multicast (IPv4).
"""

from __future__ import annotations

from statewall.rules.errors import NotEvaluated
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec


def check_rpfilter(args: BuildArgs) -> None:
    if not args.state.iface_nets:
        raise NotEvaluated("rpfilter needs the routes: give --iface NAME=CIDR")


RPFILTER = MatchExt(
    "rpfilter",
    tuple(OptSpec(f"--{n}", nargs=0, invert=False)
          for n in ("loose", "validmark", "accept-local", "invert")),
    check_rpfilter,
    hooks=("PREROUTING",),
    tables=("raw", "mangle"),
)
