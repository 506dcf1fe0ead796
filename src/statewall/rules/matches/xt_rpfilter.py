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

from statewall.rules.context import PacketContext, RuleState
from statewall.rules.errors import NotEvaluated
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec

Nets = tuple[tuple[int, int, int], ...]


def reply_interface(state: RuleState, family: int, address: int) -> str | None:
    """The interface of the longest prefix holding `address`, or None."""
    best: tuple[int, str] | None = None
    for name, nets in state.iface_nets.items():
        for fam, net, mask in nets:
            if fam == family and address & mask == net & mask and \
                    (best is None or mask > best[0]):
                best = (mask, name)
    return best[1] if best is not None else None


def _is_local(state: RuleState, family: int, address: int) -> bool:
    return any(f == family and address & m == a & m for f, a, m in state.local_nets)


def _special(ctx: PacketContext) -> bool:
    pkt = ctx.pkt
    if ctx.iface_in == "lo":
        return True
    return pkt.family == 4 and pkt.src == 0 and \
        (pkt.dst == 0xFFFFFFFF or pkt.dst >> 8 == 0xE00000)


def build_rpfilter(args: BuildArgs) -> MatchFn:
    state = args.state
    if not state.iface_nets:
        raise NotEvaluated("rpfilter needs the routes: give --iface NAME=CIDR")
    loose = args.has("--loose")
    accept_local = args.has("--accept-local")
    invert = args.has("--invert")

    def match(ctx: PacketContext) -> bool:
        if _special(ctx):
            return not invert
        pkt = ctx.pkt
        if _is_local(state, pkt.family, pkt.src):
            return accept_local != invert
        iface = reply_interface(state, pkt.family, pkt.src)
        if iface is None:
            ctx.unknown = "rpfilter: no --iface route covers the source address"
            return True
        return (loose or iface == ctx.iface_in) != invert

    return match


RPFILTER = MatchExt(
    "rpfilter",
    tuple(OptSpec(f"--{n}", nargs=0, invert=False)
          for n in ("loose", "validmark", "accept-local", "invert")),
    build_rpfilter,
    hooks=("PREROUTING",),
    tables=("raw", "mangle"),
)
