//! The TCP tracker (nf_conntrack_proto_tcp.c). Not yet ported.
