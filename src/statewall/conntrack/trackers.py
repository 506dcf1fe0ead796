"""Which tracker handles which IP protocol (the kernel's nf_ct_l4proto_find)."""

from __future__ import annotations

from statewall.conntrack import (
    proto_generic,
    proto_gre,
    proto_icmp,
    proto_sctp,
    proto_tcp,
    proto_udp,
)
from statewall.conntrack.l4proto import L4Tracker
from statewall.packet import (
    PROTO_GRE,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_SCTP,
    PROTO_TCP,
    PROTO_UDP,
    PROTO_UDPLITE,
)

TRACKERS: dict[int, L4Tracker] = {
    PROTO_TCP: proto_tcp.TRACKER,
    PROTO_UDP: proto_udp.UDP_TRACKER,
    PROTO_UDPLITE: proto_udp.UDPLITE_TRACKER,
    PROTO_ICMP: proto_icmp.ICMP_TRACKER,
    PROTO_ICMPV6: proto_icmp.ICMPV6_TRACKER,
    PROTO_GRE: proto_gre.GRE_TRACKER,
    PROTO_SCTP: proto_sctp.SCTP_TRACKER,
}


def tracker_for(proto: int) -> L4Tracker:
    """The protocol's own tracker, or the generic one (DCCP included, as in 6.18)."""
    return TRACKERS.get(proto, proto_generic.GENERIC_TRACKER)


def icmp_error_handler(proto: int) -> proto_icmp.IcmpErrorFn:
    return proto_icmp.icmp_error if proto == PROTO_ICMP else proto_icmp.icmpv6_error
