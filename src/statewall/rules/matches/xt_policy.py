"""policy match (xt_policy.c): IPsec policy of the packet.

statewall models no IPsec, so no packet was or will be transformed:
`--pol none` matches every packet and `--pol ipsec` none (the kernel's
answer for a packet without a security path / xfrm bundle).
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec, always, never


def build_policy(args: BuildArgs) -> MatchFn:
    direction = args.value("--dir")
    if direction not in ("in", "out"):
        raise OptionError("policy: --dir in or --dir out is required")
    pol = args.value("--pol")
    if pol not in ("none", "ipsec"):
        raise OptionError("policy: --pol none or --pol ipsec is required")
    return always if pol == "none" else never


_ELEMENT = ("--reqid", "--spi", "--proto", "--mode", "--tunnel-src", "--tunnel-dst")

POLICY = MatchExt(
    "policy",
    (OptSpec("--dir", invert=False), OptSpec("--pol", invert=False),
     OptSpec("--strict", nargs=0, invert=False), OptSpec("--next", nargs=0, invert=False))
    + tuple(OptSpec(name) for name in _ELEMENT),
    build_policy,
)
