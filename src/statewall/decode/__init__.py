"""Decoding captured frames into `Packet` values: link layer, IP, layer 4.

Decoding never raises. A frame it cannot fully decode comes back with
`Packet.error` set, and the error's layer says how far the kernel would get
with it:

* "link": not an IP frame (ARP, LLDP...) or a broken link header; the IPv4
  and IPv6 hooks never see it (family 0).
* "ipv4", "ipv6": `ip_rcv_core`/`ip6_rcv_core` drop it before PREROUTING
  (bad header checksum, truncated datagram...); see `STACK_DROP_LAYERS`.
* "ipv6-ext", "tcp", "udp", "icmp", ...: the datagram reaches netfilter but
  conntrack cannot read the header it needs, so the packet is INVALID.
"""

from statewall.decode.ip import STACK_DROP_LAYERS, decode_datagram
from statewall.decode.l4 import parse_tcp_options
from statewall.decode.link import SUPPORTED_LINKTYPES, decode_frame

__all__ = [
    "STACK_DROP_LAYERS",
    "SUPPORTED_LINKTYPES",
    "decode_datagram",
    "decode_frame",
    "parse_tcp_options",
]
