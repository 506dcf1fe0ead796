"""connmark match (xt_connmark.c: connmark_mt): the entry's mark; no entry never matches."""

from __future__ import annotations

from statewall.rules.context import PacketContext
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec, parse_value_mask


def build_connmark(args: BuildArgs) -> MatchFn:
    option = args.get("--mark")
    if option is None:
        raise OptionError("connmark: --mark is required")
    value, mask = parse_value_mask(option.values[0], "connmark")
    negated = option.negated

    def match(ctx: PacketContext) -> bool:
        conn = ctx.conn
        if conn is None:
            return False
        return ((conn.mark & mask) == value) != negated

    return match


CONNMARK = MatchExt("connmark", (OptSpec("--mark"),), build_connmark)
