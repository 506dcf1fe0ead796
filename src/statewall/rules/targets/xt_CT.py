"""CT, NOTRACK and TRACE targets (xt_CT.c, xt_TRACE.c): raw-table conntrack templates.

These run before conntrack; statewall reports what they attach as effects
for the conntrack core to apply: ("notrack", True), ("helper", NAME),
("zone", N), ("ct-timeout", NAME), ("ct-events", LIST), ("exp-events", LIST).
"""

from __future__ import annotations

from typing import Any

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, OptSpec, TargetExt, parse_int

EVENTS = {"new", "related", "destroy", "reply", "assured", "protoinfo", "helper", "mark",
          "natseqinfo", "secmark", "label"}


def _effects(args: BuildArgs) -> list[tuple[str, Any]]:
    if args.has("--notrack"):
        if len(args.options) > 1:
            raise OptionError("CT: --notrack cannot be combined with other options")
        return [("notrack", True)]
    effects: list[tuple[str, Any]] = []
    for option in args.options:
        value = option.values[0]
        if option.name in ("--zone", "--zone-orig", "--zone-reply"):
            zone = value if value == "mark" else parse_int(value, 0, 65535, "zone")
            effects.append((option.name[2:], zone))
        elif option.name in ("--ctevents", "--expevents"):
            if not set(value.split(",")) <= EVENTS:
                raise OptionError(f'Unknown event type "{value}"')
            effects.append((option.name[2:], value))
        elif option.name == "--helper":
            effects.append(("helper", value))
        elif option.name == "--timeout":
            effects.append(("ct-timeout", value))
    return effects


def _no_options(args: BuildArgs) -> None:
    """NOTRACK and TRACE take no options (the parser refuses any)."""


CT = TargetExt(
    "CT",
    (OptSpec("--notrack", nargs=0, invert=False),)
    + tuple(OptSpec(n, invert=False) for n in (
        "--helper", "--ctevents", "--expevents", "--zone", "--zone-orig", "--zone-reply",
        "--timeout")),
    _effects, tables=("raw",),
)
NOTRACK = TargetExt("NOTRACK", (), _no_options, tables=("raw",))
TRACE = TargetExt("TRACE", (), _no_options, tables=("raw",))
