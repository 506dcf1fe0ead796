"""ecn match (xt_ecn.c): TCP CWR/ECE flags and the IP header's ECN field."""

from __future__ import annotations

from statewall.packet import CWR, ECE
from statewall.rules.context import PacketContext
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec, parse_int


def build_ecn(args: BuildArgs) -> MatchFn:
    if not args.options:
        raise OptionError("ecn: at least one option is required")
    tcp_checks = tuple((bit, args.negated(name)) for name, bit in
                       (("--ecn-tcp-cwr", CWR), ("--ecn-tcp-ece", ECE)) if args.has(name))
    if tcp_checks and (args.rule.proto != 6 or args.rule.proto_neg):
        raise OptionError("ecn: cannot match TCP bits in rule for non-tcp packets")
    ect_text = args.value("--ecn-ip-ect")
    ect = parse_int(ect_text, 0, 3, "ECN IP ECT") if ect_text is not None else -1
    ect_neg = args.negated("--ecn-ip-ect")

    def match(ctx: PacketContext) -> bool:
        pkt = ctx.pkt
        if ect >= 0 and ((pkt.tos & 3) == ect) == ect_neg:
            return False
        return all(bool(pkt.tcp_flags & bit) != negated for bit, negated in tcp_checks)

    return match


ECN = MatchExt("ecn", (OptSpec("--ecn-tcp-cwr", nargs=0), OptSpec("--ecn-tcp-ece", nargs=0),
                       OptSpec("--ecn-ip-ect")), build_ecn)
