"""length match (xt_length.c): the IP datagram's length including the IP header."""

from __future__ import annotations

from statewall.rules.context import PacketContext
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec
from statewall.rules.matches._util import parse_range


def build_length(args: BuildArgs) -> MatchFn:
    option = args.get("--length")
    if option is None:
        raise OptionError("length: --length is required")
    low, high = parse_range(option.values[0], 0, 65535, "length")
    negated = option.negated

    def match(ctx: PacketContext) -> bool:
        return (low <= ctx.pkt.ip_len <= high) != negated

    return match


LENGTH = MatchExt("length", (OptSpec("--length"),), build_length)
