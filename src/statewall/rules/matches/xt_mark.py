"""mark match (xt_mark.c: mark_mt): `(skb mark & mask) == value`, mask defaulting to all ones.

The packet mark is the walk's `ctx.mark`, so a MARK earlier in the same
walk is seen, as in the kernel.
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec, parse_value_mask


def check_mark(args: BuildArgs) -> None:
    option = args.get("--mark")
    if option is None:
        raise OptionError("mark: --mark is required")
    parse_value_mask(option.values[0], "mark")


MARK = MatchExt("mark", (OptSpec("--mark"),), check_mark)
