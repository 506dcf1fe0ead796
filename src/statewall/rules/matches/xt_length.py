"""length match (xt_length.c): the IP datagram's length including the IP header."""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec
from statewall.rules.matches._util import parse_range


def check_length(args: BuildArgs) -> None:
    option = args.get("--length")
    if option is None:
        raise OptionError("length: --length is required")
    parse_range(option.values[0], 0, 65535, "length")


LENGTH = MatchExt("length", (OptSpec("--length"),), check_length)
