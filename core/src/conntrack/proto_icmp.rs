//! The ICMP and ICMPv6 trackers (nf_conntrack_proto_icmp.c, _icmpv6.c). Not yet ported.
