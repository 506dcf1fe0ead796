"""mac match (xt_mac.c): the Ethernet source address; only where one exists.

Valid in PREROUTING, INPUT and FORWARD. A packet without an Ethernet
header (or a capture without link addresses) never matches.
"""

from __future__ import annotations

from statewall.rules.context import PacketContext
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec


def parse_mac(text: str) -> bytes:
    parts = text.split(":")
    try:
        if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
            raise ValueError(text)
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise OptionError("Invalid MAC address specified") from None


def build_mac(args: BuildArgs) -> MatchFn:
    option = args.get("--mac-source")
    if option is None:
        raise OptionError("mac: --mac-source is required")
    mac = parse_mac(option.values[0])
    negated = option.negated

    def match(ctx: PacketContext) -> bool:
        src = ctx.pkt.link_src
        return src is not None and (src == mac) != negated

    return match


MAC = MatchExt("mac", (OptSpec("--mac-source"),), build_mac,
               hooks=("PREROUTING", "INPUT", "FORWARD"))
