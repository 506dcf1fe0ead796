"""mac match (xt_mac.c): the Ethernet source address; only where one exists.

Valid in PREROUTING, INPUT and FORWARD. A packet without an Ethernet
header (or a capture without link addresses) never matches.
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec


def parse_mac(text: str) -> bytes:
    parts = text.split(":")
    try:
        if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
            raise ValueError(text)
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise OptionError("Invalid MAC address specified") from None


def check_mac(args: BuildArgs) -> None:
    option = args.get("--mac-source")
    if option is None:
        raise OptionError("mac: --mac-source is required")
    parse_mac(option.values[0])


MAC = MatchExt("mac", (OptSpec("--mac-source"),), check_mac,
               hooks=("PREROUTING", "INPUT", "FORWARD"))
