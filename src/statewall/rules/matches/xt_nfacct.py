"""nfacct match (xt_nfacct.c): counts into a named accounting object and always matches."""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec


def check_nfacct(args: BuildArgs) -> None:
    if not args.value("--nfacct-name"):
        raise OptionError("nfacct: --nfacct-name is required")


NFACCT = MatchExt("nfacct", (OptSpec("--nfacct-name", invert=False),), check_nfacct)
