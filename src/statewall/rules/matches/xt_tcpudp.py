"""tcp and udp matches (xt_tcpudp.c: tcp_mt, udp_mt; libxt_tcp, libxt_udp).

Ports are inclusive ranges; each option has its own `!`. A non-first
fragment never matches. `--syn` is `--tcp-flags FIN,SYN,RST,ACK SYN`.
"""

from __future__ import annotations

from statewall.packet import ACK, FIN, PSH, RST, SYN, URG
from statewall.rules.addr import parse_port_range
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec
from statewall.rules.matches._util import parse_flag_list

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


def check_ports(args: BuildArgs) -> None:
    _port_check(args, "--sport")
    _port_check(args, "--dport")


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


def check_tcp(args: BuildArgs) -> None:
    check_ports(args)
    _tcp_flags(args)
    option = args.get("--tcp-option")
    if option is not None and (not option.values[0].isdigit() or int(option.values[0]) > 255):
        raise OptionError(f'invalid TCP option "{option.values[0]}"')


TCP = MatchExt(
    "tcp",
    PORT_OPTIONS + (OptSpec("--tcp-flags", nargs=2), OptSpec("--syn", nargs=0),
                    OptSpec("--tcp-option")),
    check_tcp,
    proto=6,
)
UDP = MatchExt("udp", PORT_OPTIONS, check_ports, proto=17)
