"""nat table targets (xt_nat.c, xt_MASQUERADE.c, xt_REDIRECT.c, xt_NETMAP.c).

Parsed and checked (table and hooks as the kernel allows them); address
translation is not applied yet, so a packet reaching one carries the note
"NAT not applied" and the walk goes on as if the translation had been made
(nat targets always end the nat chain with ACCEPT).
"""

from __future__ import annotations

from collections.abc import Callable

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, OptSpec, TargetExt

_FLAGS = ("--random", "--random-fully", "--persistent")


def _checker(name: str, required: str | None) -> Callable[[BuildArgs], None]:
    def check(args: BuildArgs) -> None:
        if required is not None and not args.has(required):
            raise OptionError(f"{name}: {required} is required")

    return check


def _opts(*names: str) -> tuple[OptSpec, ...]:
    return tuple(OptSpec(n, invert=False) for n in names) + tuple(
        OptSpec(f, nargs=0, invert=False) for f in _FLAGS)


_NAT = ("nat",)
SNAT = TargetExt("SNAT", _opts("--to-source"), _checker("SNAT", "--to-source"),
                 tables=_NAT, hooks=("INPUT", "POSTROUTING"), terminal=True)
DNAT = TargetExt("DNAT", _opts("--to-destination"), _checker("DNAT", "--to-destination"),
                 tables=_NAT, hooks=("PREROUTING", "OUTPUT"), terminal=True)
MASQUERADE = TargetExt("MASQUERADE", _opts("--to-ports"), _checker("MASQUERADE", None),
                       tables=_NAT, hooks=("POSTROUTING",), terminal=True)
REDIRECT = TargetExt("REDIRECT", _opts("--to-ports"), _checker("REDIRECT", None),
                     tables=_NAT, hooks=("PREROUTING", "OUTPUT"), terminal=True)
NETMAP = TargetExt("NETMAP", _opts("--to"), _checker("NETMAP", "--to"), tables=_NAT,
                   terminal=True)
