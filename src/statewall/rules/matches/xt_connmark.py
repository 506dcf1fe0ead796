"""connmark match (xt_connmark.c: connmark_mt): the entry's mark; no entry never matches."""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec, parse_value_mask


def check_connmark(args: BuildArgs) -> None:
    option = args.get("--mark")
    if option is None:
        raise OptionError("connmark: --mark is required")
    parse_value_mask(option.values[0], "connmark")


CONNMARK = MatchExt("connmark", (OptSpec("--mark"),), check_connmark)
