"""ttl (IPv4) and hl (IPv6 hop limit) matches (xt_hl.c: ttl_mt, hl_mt6).

Exactly one comparison per match; only the equality test takes `!`.
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec, parse_int


def _check(args: BuildArgs, prefix: str) -> None:
    if len(args.options) != 1:
        raise OptionError(f"{prefix}: exactly one of {prefix}-eq, -gt, -lt is required")
    parse_int(args.options[0].values[0], 0, 255, prefix.strip("-"))


def check_ttl(args: BuildArgs) -> None:
    _check(args, "--ttl")


def check_hl(args: BuildArgs) -> None:
    _check(args, "--hl")


TTL = MatchExt("ttl", (OptSpec("--ttl-eq"), OptSpec("--ttl-gt", invert=False),
                       OptSpec("--ttl-lt", invert=False)), check_ttl, families=(4,))
HL = MatchExt("hl", (OptSpec("--hl-eq"), OptSpec("--hl-gt", invert=False),
                     OptSpec("--hl-lt", invert=False)), check_hl, families=(6,))
