"""pkttype match (xt_pkttype.c): link-layer class of the packet.

The kernel uses skb->pkt_type, except for looped-back packets where it
classifies the destination address (multicast / broadcast / unicast).
statewall does the same with the decoder's `pkt_type` ("host",
"broadcast", "multicast", "otherhost", "outgoing").
"""

from __future__ import annotations

from statewall.rules.context import PacketContext
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec

NAMES = {"unicast": "host", "host": "host", "broadcast": "broadcast",
         "multicast": "multicast", "otherhost": "otherhost", "outgoing": "outgoing"}


def packet_class(ctx: PacketContext) -> str:
    pkt = ctx.pkt
    if pkt.pkt_type not in ("host", "outgoing") or ctx.hook not in ("OUTPUT", "POSTROUTING"):
        return pkt.pkt_type
    if pkt.family == 4:
        if pkt.dst >> 28 == 0xE:
            return "multicast"
        return "broadcast" if pkt.dst == 0xFFFFFFFF else "host"
    return "multicast" if pkt.dst >> 120 == 0xFF else "host"


def build_pkttype(args: BuildArgs) -> MatchFn:
    option = args.get("--pkt-type")
    if option is None:
        raise OptionError("pkttype: --pkt-type is required")
    want = NAMES.get(option.values[0].lower())
    if want is None:
        raise OptionError(f"Bad packet type '{option.values[0]}'")
    negated = option.negated

    def match(ctx: PacketContext) -> bool:
        return (packet_class(ctx) == want) != negated

    return match


PKTTYPE = MatchExt("pkttype", (OptSpec("--pkt-type"),), build_pkttype)
