//! The ICMP and ICMPv6 trackers (nf_conntrack_proto_icmp.c, _icmpv6.c). Not
//! yet ported: the signatures below are the contract the core calls. The
//! query functions serve both families (the packet's family tells which).

use crate::config::Sysctls;
use crate::conntrack::conn::{Conn, ConnId, Tuple};
use crate::conntrack::l4proto::{ConnLookup, Outcome};
use crate::packet::Packet;
use crate::reason::Reason;

/// What the error handler made of an ICMP packet (icmp_error / icmpv6_error).
#[derive(Clone, Debug)]
pub enum IcmpErrorOutcome {
    /// A query (echo ...): tracked like any other packet.
    NotAnError,
    /// An error about a tracked connection.
    Related {
        conn: ConnId,
        direction: u8,
        reason: Reason,
    },
    /// An error about an untracked packet.
    Untracked(Reason),
    /// No connection, or a malformed error.
    Invalid(Reason),
}

pub fn error(_pkt: &Packet, _cfg: &Sysctls, _in_prerouting: bool) -> Option<Reason> {
    unimplemented!("ICMP tracker not ported yet")
}

/// The reply tuple of a query, or None for a type without a reply type.
pub fn invert(_family: u8, _tuple: &Tuple) -> Option<Tuple> {
    unimplemented!("ICMP tracker not ported yet")
}

pub fn new(_conn: &mut Conn, _pkt: &Packet, _cfg: &Sysctls) -> Result<(), Reason> {
    unimplemented!("ICMP tracker not ported yet")
}

pub fn packet(
    _conn: &mut Conn,
    _pkt: &Packet,
    _direction: u8,
    _ctinfo: u8,
    _now: f64,
    _cfg: &Sysctls,
) -> Outcome {
    unimplemented!("ICMP tracker not ported yet")
}

/// The error handler, run before the query path for every ICMP/ICMPv6 packet.
pub fn error_handler(
    _pkt: &Packet,
    _cfg: &Sysctls,
    _in_prerouting: bool,
    _zone: u16,
    _table: &mut dyn ConnLookup,
) -> IcmpErrorOutcome {
    unimplemented!("ICMP tracker not ported yet")
}
