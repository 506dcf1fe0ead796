"""physdev match (xt_physdev.c): the bridge ports a bridged packet used.

statewall models a router or a host, never a bridge, so no packet has bridge
information, and the kernel's answer for such a packet is fixed: the rule
matches only if every option it uses is negated. That is evaluated exactly.
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec

_OPTIONS = ("--physdev-in", "--physdev-out", "--physdev-is-in", "--physdev-is-out",
            "--physdev-is-bridged")


def check_physdev(args: BuildArgs) -> None:
    used = [o for o in args.options if o.name in _OPTIONS]
    if not used:
        raise OptionError("PHYSDEV: no physdev option specified")
    bridged = args.get("--physdev-is-bridged")
    out = args.has("--physdev-out") or args.has("--physdev-is-out")
    if out and (bridged is None or bridged.negated) and "OUTPUT" in args.hooks:
        raise OptionError("--physdev-out and --physdev-is-out are only supported in the "
                          "FORWARD and POSTROUTING chains with bridged traffic")


PHYSDEV = MatchExt(
    "physdev",
    (OptSpec("--physdev-in"), OptSpec("--physdev-out"), OptSpec("--physdev-is-in", nargs=0),
     OptSpec("--physdev-is-out", nargs=0), OptSpec("--physdev-is-bridged", nargs=0)),
    check_physdev,
)
