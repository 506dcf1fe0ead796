//! The SCTP tracker (nf_conntrack_proto_sctp.c). Not yet ported: the
//! signatures below are the contract the core calls.

use crate::config::Sysctls;
use crate::conntrack::conn::Conn;
use crate::conntrack::l4proto::Outcome;
use crate::packet::Packet;
use crate::reason::Reason;

pub fn error(_pkt: &Packet, _cfg: &Sysctls, _in_prerouting: bool) -> Option<Reason> {
    unimplemented!("SCTP tracker not ported yet")
}

pub fn new(_conn: &mut Conn, _pkt: &Packet, _cfg: &Sysctls) -> Result<(), Reason> {
    unimplemented!("SCTP tracker not ported yet")
}

pub fn packet(
    _conn: &mut Conn,
    _pkt: &Packet,
    _direction: u8,
    _ctinfo: u8,
    _now: f64,
    _cfg: &Sysctls,
) -> Outcome {
    unimplemented!("SCTP tracker not ported yet")
}

pub fn state_name(_conn: &Conn) -> &'static str {
    unimplemented!("SCTP tracker not ported yet")
}

pub fn can_early_drop(_conn: &Conn) -> bool {
    unimplemented!("SCTP tracker not ported yet")
}

/// Per-entry SCTP data (struct ip_ct_sctp).
#[derive(Clone, Debug, Default)]
pub struct SctpData {}
