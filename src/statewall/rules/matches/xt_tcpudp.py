"""tcp and udp matches (xt_tcpudp.c: tcp_mt, udp_mt; libxt_tcp, libxt_udp).

Ports are inclusive ranges; each option has its own `!`. A non-first
fragment never matches. `--syn` is `--tcp-flags FIN,SYN,RST,ACK SYN`.
"""

from __future__ import annotations

from statewall.packet import ACK, FIN, PSH, RST, SYN, URG
from statewall.rules.addr import parse_port_range
from statewall.rules.context import PacketContext
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec
from statewall.rules.matches._util import later_fragment, parse_flag_list, tcp_option_kinds

TCP_FLAGS = {"FIN": FIN, "SYN": SYN, "RST": RST, "PSH": PSH, "ACK": ACK, "URG": URG,
             "ALL": 0x3F, "NONE": 0}

PORT_OPTIONS = (
    OptSpec("--sport", aliases=("--source-port",)),
    OptSpec("--dport", aliases=("--destination-port",)),
)


def _port_check(args: BuildArgs, name: str) -> tuple[int, int, bool] | None:
    option = args.get(name)
    if option is None:
        return None
    low, high = parse_port_range(option.values[0])
    return low, high, option.negated


def _ports(args: BuildArgs) -> MatchFn:
    """Both port ranges folded into one closure (the common case is one range)."""
    sport = _port_check(args, "--sport") or (0, 65535, False)
    dport = _port_check(args, "--dport") or (0, 65535, False)
    slo, shi, sneg = sport
    dlo, dhi, dneg = dport

    def match(ctx: PacketContext) -> bool:
        pkt = ctx.pkt
        if later_fragment(pkt) or pkt.error is not None:
            return False
        return ((slo <= pkt.sport <= shi) != sneg) and ((dlo <= pkt.dport <= dhi) != dneg)

    return match


def _tcp_flags(args: BuildArgs) -> tuple[int, int, bool] | None:
    flags = args.get("--tcp-flags")
    syn = args.get("--syn")
    if flags is not None and syn is not None:
        raise OptionError("--syn and --tcp-flags cannot be combined")
    if syn is not None:
        return FIN | SYN | RST | ACK, SYN, syn.negated
    if flags is None:
        return None
    mask = parse_flag_list(flags.values[0], TCP_FLAGS, "TCP flag")
    comp = parse_flag_list(flags.values[1], TCP_FLAGS, "TCP flag")
    return mask, comp, flags.negated


def build_tcp(args: BuildArgs) -> MatchFn:
    ports = _ports(args)
    flags = _tcp_flags(args)
    option = args.get("--tcp-option")
    kind = -1
    if option is not None:
        if not option.values[0].isdigit() or int(option.values[0]) > 255:
            raise OptionError(f'invalid TCP option "{option.values[0]}"')
        kind = int(option.values[0])
    fmask, fcomp, fneg = flags if flags is not None else (0, 0, False)
    oneg = option is not None and option.negated

    def match(ctx: PacketContext) -> bool:
        if not ports(ctx):
            return False
        if ((ctx.pkt.tcp_flags & fmask) == fcomp) == fneg:
            return False
        if kind >= 0:
            present = any(k == kind for k, _ in tcp_option_kinds(ctx.pkt))
            return present != oneg
        return True

    return match


TCP = MatchExt(
    "tcp",
    PORT_OPTIONS + (OptSpec("--tcp-flags", nargs=2), OptSpec("--syn", nargs=0),
                    OptSpec("--tcp-option")),
    build_tcp,
    proto=6,
)
UDP = MatchExt("udp", PORT_OPTIONS, _ports, proto=17)
