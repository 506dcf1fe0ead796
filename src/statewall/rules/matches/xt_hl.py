"""ttl (IPv4) and hl (IPv6 hop limit) matches (xt_hl.c: ttl_mt, hl_mt6).

Exactly one comparison per match; only the equality test takes `!`.
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec, parse_int


def _build(args: BuildArgs, prefix: str) -> MatchFn:
    if len(args.options) != 1:
        raise OptionError(f"{prefix}: exactly one of {prefix}-eq, -gt, -lt is required")
    option = args.options[0]
    value = parse_int(option.values[0], 0, 255, prefix.strip("-"))
    kind = option.name[len(prefix) + 1:]
    negated = option.negated
    if kind == "eq":
        return lambda ctx: (ctx.pkt.ttl == value) != negated
    if kind == "gt":
        return lambda ctx: ctx.pkt.ttl > value
    return lambda ctx: ctx.pkt.ttl < value


def build_ttl(args: BuildArgs) -> MatchFn:
    return _build(args, "--ttl")


def build_hl(args: BuildArgs) -> MatchFn:
    return _build(args, "--hl")


TTL = MatchExt("ttl", (OptSpec("--ttl-eq"), OptSpec("--ttl-gt", invert=False),
                       OptSpec("--ttl-lt", invert=False)), build_ttl, families=(4,))
HL = MatchExt("hl", (OptSpec("--hl-eq"), OptSpec("--hl-gt", invert=False),
                     OptSpec("--hl-lt", invert=False)), build_hl, families=(6,))
