"""ecn match (xt_ecn.c): TCP CWR/ECE flags and the IP header's ECN field."""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec, parse_int


def check_ecn(args: BuildArgs) -> None:
    if not args.options:
        raise OptionError("ecn: at least one option is required")
    tcp_bits = args.has("--ecn-tcp-cwr") or args.has("--ecn-tcp-ece")
    if tcp_bits and (args.rule.proto != 6 or args.rule.proto_neg):
        raise OptionError("ecn: cannot match TCP bits in rule for non-tcp packets")
    ect_text = args.value("--ecn-ip-ect")
    if ect_text is not None:
        parse_int(ect_text, 0, 3, "ECN IP ECT")


ECN = MatchExt("ecn", (OptSpec("--ecn-tcp-cwr", nargs=0), OptSpec("--ecn-tcp-ece", nargs=0),
                       OptSpec("--ecn-ip-ect")), check_ecn)
