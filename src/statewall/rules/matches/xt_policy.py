"""policy match (xt_policy.c): the IPsec policy that did or will process the packet.

statewall models no IPsec: no packet arrives through a transform (no secpath)
nor leaves through one (no xfrm bundle), so `--pol ipsec` never matches and
`--pol none` always does, whatever the element options (--reqid, --spi,
--proto, --mode, --tunnel-src/dst, --strict, --next) say. A packet that
fails an `ipsec` rule for that reason gets a note saying so.
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec

NOTE = "policy match: statewall models no IPsec, so no packet has an IPsec policy"


def check_policy(args: BuildArgs) -> None:
    direction = args.value("--dir")
    if direction not in ("in", "out"):
        raise OptionError("policy: --dir in or --dir out is required")
    if direction == "in" and not args.hooks <= {"PREROUTING", "INPUT", "FORWARD"}:
        raise OptionError("policy: --dir in is only valid in PREROUTING, INPUT and FORWARD")
    if direction == "out" and not args.hooks <= {"POSTROUTING", "OUTPUT", "FORWARD"}:
        raise OptionError("policy: --dir out is only valid in POSTROUTING, OUTPUT and FORWARD")
    pol = args.value("--pol")
    if pol not in ("none", "ipsec"):
        raise OptionError("policy: --pol none or --pol ipsec is required")
    if args.has("--strict") and pol == "none":
        raise OptionError("policy: --strict needs --pol ipsec")


_ELEMENT = ("--reqid", "--spi", "--proto", "--mode", "--tunnel-src", "--tunnel-dst")

POLICY = MatchExt(
    "policy",
    (OptSpec("--dir", invert=False), OptSpec("--pol", invert=False),
     OptSpec("--strict", nargs=0, invert=False), OptSpec("--next", nargs=0, invert=False))
    + tuple(OptSpec(name) for name in _ELEMENT),
    check_policy,
)
