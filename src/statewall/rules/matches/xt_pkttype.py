"""pkttype match (xt_pkttype.c): link-layer class of the packet.

The kernel uses skb->pkt_type, except for looped-back packets where it
classifies the destination address (multicast / broadcast / unicast).
statewall does the same with the decoder's `pkt_type` ("host",
"broadcast", "multicast", "otherhost", "outgoing").
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec

NAMES = {"unicast": "host", "host": "host", "broadcast": "broadcast",
         "multicast": "multicast", "otherhost": "otherhost", "outgoing": "outgoing"}


def check_pkttype(args: BuildArgs) -> None:
    option = args.get("--pkt-type")
    if option is None:
        raise OptionError("pkttype: --pkt-type is required")
    if option.values[0].lower() not in NAMES:
        raise OptionError(f"Bad packet type '{option.values[0]}'")


PKTTYPE = MatchExt("pkttype", (OptSpec("--pkt-type"),), check_pkttype)
