"""addrtype match (xt_addrtype.c, revision 1) over the topology statewall is given.

The kernel asks the routing table (the `local` table) what an address is.
statewall knows the host's own networks (`--local`) and the networks behind
each interface (`--iface`): an address is LOCAL when it is one of the host's
(or loopback), BROADCAST when it is 0.0.0.0, 255.255.255.255 or the
broadcast address of an interface network, MULTICAST in 224/4 or ff00::/8,
else UNICAST. BLACKHOLE, UNREACHABLE, PROHIBIT, THROW, NAT and XRESOLVE
routes do not exist in that model and never match.
"""

from __future__ import annotations

from statewall.rules.context import PacketContext, RuleState
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec
from statewall.rules.matches._util import parse_flag_list

TYPES = {"UNSPEC": 1, "UNICAST": 2, "LOCAL": 4, "BROADCAST": 8, "ANYCAST": 16,
         "MULTICAST": 32, "BLACKHOLE": 64, "UNREACHABLE": 128, "PROHIBIT": 256,
         "THROW": 512, "NAT": 1024, "XRESOLVE": 2048}


def _in(nets: tuple[tuple[int, int, int], ...], family: int, address: int) -> bool:
    return any(f == family and address & m == a & m for f, a, m in nets)


def address_type(state: RuleState, family: int, address: int, iface: str | None) -> int:
    if family == 4:
        if address == 0 or address == 0xFFFFFFFF:
            return TYPES["BROADCAST"]
        if address >> 28 == 0xE:
            return TYPES["MULTICAST"]
        loopback = address >> 24 == 127
    else:
        if address == 0:
            return TYPES["UNSPEC"]
        if address >> 120 == 0xFF:
            return TYPES["MULTICAST"]
        loopback = address == 1
    nets = state.iface_nets.get(iface, ()) if iface is not None else None
    on_iface = nets is None or _in(nets, family, address)
    if (loopback and iface in (None, "lo")) or (_in(state.local_nets, family, address)
                                                and on_iface):
        return TYPES["LOCAL"]
    if family == 4:
        candidates = nets if nets is not None else tuple(
            n for ns in state.iface_nets.values() for n in ns)
        for fam, net, mask in candidates:
            if fam == 4 and mask != 0xFFFFFFFF and mask != 0xFFFFFFFE and \
                    address == (net & mask) | (~mask & 0xFFFFFFFF):
                return TYPES["BROADCAST"]
    return TYPES["UNICAST"]


def build_addrtype(args: BuildArgs) -> MatchFn:
    src = args.get("--src-type")
    dst = args.get("--dst-type")
    smask = parse_flag_list(src.values[0], TYPES, "address type") if src else 0
    dmask = parse_flag_list(dst.values[0], TYPES, "address type") if dst else 0
    sneg = src is not None and src.negated
    dneg = dst is not None and dst.negated
    limit_in = args.has("--limit-iface-in")
    limit_out = args.has("--limit-iface-out")
    state = args.state

    def match(ctx: PacketContext) -> bool:
        iface = ctx.iface_in if limit_in else ctx.iface_out if limit_out else None
        pkt = ctx.pkt
        if smask and bool(address_type(state, pkt.family, pkt.src, iface) & smask) == sneg:
            return False
        return not dmask or \
            bool(address_type(state, pkt.family, pkt.dst, iface) & dmask) != dneg

    return match


ADDRTYPE = MatchExt(
    "addrtype",
    (OptSpec("--src-type"), OptSpec("--dst-type"),
     OptSpec("--limit-iface-in", nargs=0, invert=False),
     OptSpec("--limit-iface-out", nargs=0, invert=False)),
    build_addrtype,
)
