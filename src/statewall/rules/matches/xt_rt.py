"""rt match (ip6t_rt.c): the first IPv6 Routing header of the packet.

The header is found by walking the extension headers after the fixed
header (hop-by-hop, destination options, routing, fragment, AH), as
ipv6_find_hdr does. No Routing header: no match. `--rt-len` compares the
header's length in bytes; `--rt-0-res` and `--rt-0-addrs` read the type 0
layout (4 reserved bytes, then the addresses). Addresses are compared in
order and must be exactly the header's list (`--rt-0-not-strict`: the
listed ones in order, with others between).
"""

from __future__ import annotations

from statewall.rules.addr import parse_ip
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec, parse_int
from statewall.rules.matches._util import parse_range


def check_rt(args: BuildArgs) -> None:
    rtype = args.get("--rt-type")
    if rtype:
        parse_int(rtype.values[0], 0, 255, "--rt-type")
    segs = args.get("--rt-segsleft")
    if segs:
        parse_range(segs.values[0], 0, 0xFFFFFFFF, "--rt-segsleft")
    length = args.get("--rt-len")
    if length:
        parse_int(length.values[0], 0, 0xFFFFFFFF, "--rt-len")
    addrs_opt = args.get("--rt-0-addrs")
    addrs = [parse_ip(a, 6) for a in addrs_opt.values[0].split(",")] if addrs_opt else []
    if len(addrs) > 16:
        raise OptionError("--rt-0-addrs takes at most 16 addresses")
    if args.has("--rt-0-not-strict") and not addrs:
        raise OptionError("--rt-0-not-strict needs --rt-0-addrs")


RT = MatchExt(
    "rt",
    (OptSpec("--rt-type"), OptSpec("--rt-segsleft"), OptSpec("--rt-len"),
     OptSpec("--rt-0-res", nargs=0, invert=False), OptSpec("--rt-0-addrs", invert=False),
     OptSpec("--rt-0-not-strict", nargs=0, invert=False)),
    check_rt,
    families=(6,),
)
