"""tcpmss match (xt_tcpmss.c): the MSS option's value; no MSS option gives `!`'s value."""

from __future__ import annotations

from statewall.rules.context import PacketContext
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec
from statewall.rules.matches._util import parse_range, tcp_option_kinds


def build_tcpmss(args: BuildArgs) -> MatchFn:
    option = args.get("--mss")
    if option is None:
        raise OptionError("tcpmss: --mss is required")
    low, high = parse_range(option.values[0], 0, 65535, "mss")
    negated = option.negated

    def match(ctx: PacketContext) -> bool:
        for kind, body in tcp_option_kinds(ctx.pkt):
            if kind == 2 and len(body) == 2:
                return (low <= int.from_bytes(body, "big") <= high) != negated
        return negated

    return match


TCPMSS = MatchExt("tcpmss", (OptSpec("--mss"),), build_tcpmss, proto=6)
