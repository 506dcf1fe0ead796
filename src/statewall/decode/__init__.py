"""Decoding captured frames into `Packet` values: link layer, IP, layer 4.

The decoder itself is the core's (core/src/decode/: link.rs, ip.rs, l4.rs);
this package is its Python face. Decoding never raises. A frame it cannot
fully decode comes back with `Packet.error` set, and the error's layer says
how far the kernel would get with it:

* "link": not an IP frame (ARP, LLDP...) or a broken link header; the IPv4
  and IPv6 hooks never see it (family 0).
* "ipv4", "ipv6": `ip_rcv_core`/`ip6_rcv_core` drop it before PREROUTING
  (bad header checksum, truncated datagram...); see `STACK_DROP_LAYERS`.
* "ipv6-ext", "tcp", "udp", "icmp", ...: the datagram reaches netfilter but
  conntrack cannot read the header it needs, so the packet is INVALID.

`decode_frame(index, ts, data, linktype, iface=None)` strips the link
header of a captured frame; `decode_datagram(data, index=0, ts=0.0,
quoted=False)` decodes a bare IP datagram (`quoted`: leniently, as the one an
ICMP error carries); `parse_tcp_options(data, pos, end)` reads the TCP
options in `data[pos:end]`.
"""

from statewall._core import SUPPORTED_LINKTYPES, decode_datagram, decode_frame, parse_tcp_options

# Error layers for which the kernel drops the datagram before any netfilter hook.
STACK_DROP_LAYERS = frozenset(("ipv4", "ipv6"))

__all__ = [
    "STACK_DROP_LAYERS",
    "SUPPORTED_LINKTYPES",
    "decode_datagram",
    "decode_frame",
    "parse_tcp_options",
]
