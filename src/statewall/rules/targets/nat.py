"""nat table targets (xt_nat.c, xt_MASQUERADE.c, xt_REDIRECT.c, xt_NETMAP.c).

Parsed and checked (table and hooks as the kernel allows them); address
translation is not applied yet, so a packet reaching one carries the note
"NAT not applied" and the walk goes on as if the translation had been made
(nat targets always end the nat chain with ACCEPT).
"""

from __future__ import annotations

from collections.abc import Callable

from statewall.rules.context import ACCEPT, PacketContext
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, OptSpec, TargetExt, TargetFn

_FLAGS = ("--random", "--random-fully", "--persistent")


def _builder(name: str, required: str | None) -> Callable[[BuildArgs], TargetFn]:
    def build(args: BuildArgs) -> TargetFn:
        if required is not None and not args.has(required):
            raise OptionError(f"{name}: {required} is required")
        spec = " ".join(" ".join((o.name, *o.values)) for o in args.options)
        note = f"NAT not applied: {name} {spec}".rstrip()

        def target(ctx: PacketContext) -> int:
            ctx.note(note)
            ctx.effect("nat", f"{name} {spec}".rstrip())
            return ACCEPT

        return target

    return build


def _opts(*names: str) -> tuple[OptSpec, ...]:
    return tuple(OptSpec(n, invert=False) for n in names) + tuple(
        OptSpec(f, nargs=0, invert=False) for f in _FLAGS)


_NAT = ("nat",)
SNAT = TargetExt("SNAT", _opts("--to-source"), _builder("SNAT", "--to-source"),
                 tables=_NAT, hooks=("INPUT", "POSTROUTING"), terminal=True)
DNAT = TargetExt("DNAT", _opts("--to-destination"), _builder("DNAT", "--to-destination"),
                 tables=_NAT, hooks=("PREROUTING", "OUTPUT"), terminal=True)
MASQUERADE = TargetExt("MASQUERADE", _opts("--to-ports"), _builder("MASQUERADE", None),
                       tables=_NAT, hooks=("POSTROUTING",), terminal=True)
REDIRECT = TargetExt("REDIRECT", _opts("--to-ports"), _builder("REDIRECT", None),
                     tables=_NAT, hooks=("PREROUTING", "OUTPUT"), terminal=True)
NETMAP = TargetExt("NETMAP", _opts("--to"), _builder("NETMAP", "--to"), tables=_NAT,
                   terminal=True)
