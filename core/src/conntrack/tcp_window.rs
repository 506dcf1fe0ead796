//! TCP window tracking (nf_conntrack_proto_tcp.c: tcp_in_window). Not yet ported.

/// The TCP part of a conntrack entry (struct ip_ct_tcp).
#[derive(Clone, Debug, Default)]
pub struct TcpData {}
