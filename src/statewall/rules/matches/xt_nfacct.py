"""nfacct match (xt_nfacct.c): counts into a named accounting object and always matches."""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec, always


def build_nfacct(args: BuildArgs) -> MatchFn:
    if not args.value("--nfacct-name"):
        raise OptionError("nfacct: --nfacct-name is required")
    return always


NFACCT = MatchExt("nfacct", (OptSpec("--nfacct-name", invert=False),), build_nfacct)
