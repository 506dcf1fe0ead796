"""tcpmss match (xt_tcpmss.c): the MSS option's value; no MSS option gives `!`'s value."""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec
from statewall.rules.matches._util import parse_range


def check_tcpmss(args: BuildArgs) -> None:
    option = args.get("--mss")
    if option is None:
        raise OptionError("tcpmss: --mss is required")
    parse_range(option.values[0], 0, 65535, "mss")


TCPMSS = MatchExt("tcpmss", (OptSpec("--mss"),), check_tcpmss, proto=6)
