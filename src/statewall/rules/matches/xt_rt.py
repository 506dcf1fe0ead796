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

from statewall.packet import Packet
from statewall.rules.addr import parse_ip
from statewall.rules.context import PacketContext
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec, parse_int
from statewall.rules.matches._util import parse_range

_EXT_HEADERS = (0, 43, 60, 51, 44)


def routing_header(pkt: Packet) -> bytes | None:
    data = pkt.data
    nexthdr, at = (data[6] if len(data) > 6 else 59), 40
    while nexthdr in _EXT_HEADERS and at + 8 <= len(data):
        if nexthdr == 43:
            return data[at:at + (data[at + 1] + 1) * 8]
        if nexthdr == 44:
            if int.from_bytes(data[at + 2:at + 4], "big") & 0xFFF8:
                return None  # a later fragment: no headers after it
            size = 8
        elif nexthdr == 51:
            size = (data[at + 1] + 2) * 4
        else:
            size = (data[at + 1] + 1) * 8
        nexthdr, at = data[at], at + size
    return None


def _addresses(header: bytes) -> list[int]:
    return [int.from_bytes(header[i:i + 16], "big") for i in range(8, len(header) - 15, 16)]


def _in_order(wanted: list[int], present: list[int], strict: bool) -> bool:
    if strict:
        return present == wanted
    it = iter(present)
    return all(any(a == w for a in it) for w in wanted)


def build_rt(args: BuildArgs) -> MatchFn:
    rtype = args.get("--rt-type")
    kind = parse_int(rtype.values[0], 0, 255, "--rt-type") if rtype else None
    segs = args.get("--rt-segsleft")
    low, high = parse_range(segs.values[0], 0, 0xFFFFFFFF, "--rt-segsleft") if segs else (0, 255)
    length = args.get("--rt-len")
    size = parse_int(length.values[0], 0, 0xFFFFFFFF, "--rt-len") if length else None
    reserved = args.has("--rt-0-res")
    addrs_opt = args.get("--rt-0-addrs")
    addrs = [parse_ip(a, 6) for a in addrs_opt.values[0].split(",")] if addrs_opt else []
    if len(addrs) > 16:
        raise OptionError("--rt-0-addrs takes at most 16 addresses")
    strict = not args.has("--rt-0-not-strict")
    if args.has("--rt-0-not-strict") and not addrs:
        raise OptionError("--rt-0-not-strict needs --rt-0-addrs")

    def match(ctx: PacketContext) -> bool:
        header = routing_header(ctx.pkt)
        if header is None or len(header) < 8:
            return False
        if (low <= header[3] <= high) == (segs is not None and segs.negated):
            return False
        if size is not None and (len(header) == size) == (length is not None and length.negated):
            return False
        if kind is not None and (header[2] == kind) == (rtype is not None and rtype.negated):
            return False
        if reserved and header[4:8] != b"\0\0\0\0":
            return False
        return not addrs or (header[2] == 0 and _in_order(addrs, _addresses(header), strict))

    return match


RT = MatchExt(
    "rt",
    (OptSpec("--rt-type"), OptSpec("--rt-segsleft"), OptSpec("--rt-len"),
     OptSpec("--rt-0-res", nargs=0, invert=False), OptSpec("--rt-0-addrs", invert=False),
     OptSpec("--rt-0-not-strict", nargs=0, invert=False)),
    build_rt,
    families=(6,),
)
