"""iprange match (xt_iprange.c: iprange_mt4/6): inclusive address ranges, each invertible."""

from __future__ import annotations

from statewall.rules.addr import parse_ip
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec


def _range(args: BuildArgs, name: str) -> tuple[int, int, bool]:
    option = args.get(name)
    if option is None:
        return 0, (1 << 128) - 1, False
    low_text, dash, high_text = option.values[0].partition("-")
    low = parse_ip(low_text, args.family)
    high = parse_ip(high_text, args.family) if dash else low
    return low, high, option.negated


def check_iprange(args: BuildArgs) -> None:
    if not args.options:
        raise OptionError("iprange match: You must specify `--src-range' or `--dst-range'")
    _range(args, "--src-range")
    _range(args, "--dst-range")


IPRANGE = MatchExt("iprange", (OptSpec("--src-range"), OptSpec("--dst-range")), check_iprange)
