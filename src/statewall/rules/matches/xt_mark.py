"""mark match (xt_mark.c: mark_mt): `(skb mark & mask) == value`, mask defaulting to all ones.

The packet mark is the walk's `ctx.mark`, so a MARK earlier in the same
walk is seen, as in the kernel.
"""

from __future__ import annotations

from statewall.rules.context import PacketContext
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec, parse_value_mask


def build_mark(args: BuildArgs) -> MatchFn:
    option = args.get("--mark")
    if option is None:
        raise OptionError("mark: --mark is required")
    value, mask = parse_value_mask(option.values[0], "mark")
    negated = option.negated

    def match(ctx: PacketContext) -> bool:
        return ((ctx.mark & mask) == value) != negated

    return match


MARK = MatchExt("mark", (OptSpec("--mark"),), build_mark)
