//! The TCP tracker (nf_conntrack_proto_tcp.c). Not yet ported: the
//! signatures below are the contract the core calls.

use crate::config::Sysctls;
use crate::conntrack::conn::Conn;
use crate::conntrack::l4proto::Outcome;
use crate::packet::Packet;
use crate::reason::Reason;

pub fn error(_pkt: &Packet, _cfg: &Sysctls, _in_prerouting: bool) -> Option<Reason> {
    unimplemented!("TCP tracker not ported yet")
}

pub fn new(_conn: &mut Conn, _pkt: &Packet, _cfg: &Sysctls) -> Result<(), Reason> {
    unimplemented!("TCP tracker not ported yet")
}

pub fn packet(
    _conn: &mut Conn,
    _pkt: &Packet,
    _direction: u8,
    _ctinfo: u8,
    _now: f64,
    _cfg: &Sysctls,
) -> Outcome {
    unimplemented!("TCP tracker not ported yet")
}

pub fn state_name(_conn: &Conn) -> &'static str {
    unimplemented!("TCP tracker not ported yet")
}

pub fn can_early_drop(_conn: &Conn) -> bool {
    unimplemented!("TCP tracker not ported yet")
}
