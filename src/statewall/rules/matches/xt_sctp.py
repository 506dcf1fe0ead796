"""sctp match (xt_sctp.c): ports; chunk-type tests need chunk parsing statewall lacks."""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec
from statewall.rules.matches.xt_tcpudp import PORT_OPTIONS, _ports


def build_sctp(args: BuildArgs) -> MatchFn:
    if args.has("--chunk-types"):
        raise OptionError("sctp: --chunk-types is not supported by statewall")
    return _ports(args)


SCTP = MatchExt("sctp", PORT_OPTIONS + (OptSpec("--chunk-types", nargs=2),), build_sctp,
                proto=132)
