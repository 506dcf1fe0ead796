//! The SCTP tracker (nf_conntrack_proto_sctp.c). Not yet ported.

/// Per-entry SCTP data (struct ip_ct_sctp).
#[derive(Clone, Debug, Default)]
pub struct SctpData {}
