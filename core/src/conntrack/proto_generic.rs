//! The generic tracker: every protocol without a tracker of its own
//! (net/netfilter/nf_conntrack_proto_generic.c, `generic_packet` in
//! nf_conntrack_core.c).
//!
//! ESP, AH, IPIP, OSPF, PIM, VRRP, DCCP (no tracker since 6.16) and any
//! other protocol number are tracked by addresses and protocol number alone:
//! the tuple's port parts are 0, so two ESP SAs between the same hosts share
//! one entry. There is nothing to validate, no state, and the entry is never
//! ASSURED; every packet in either direction re-arms the one timeout.

use std::borrow::Cow;

use crate::config::Sysctls;
use crate::conntrack::conn::Conn;
use crate::conntrack::l4proto::{Action, Outcome};
use crate::packet::Packet;
use crate::reason::Reason;

/// How /proc names a protocol tracked generically.
pub const NAME: &str = "unknown";

const REASON: &str = "generic protocol: tracked by addresses only (nf_conntrack_generic_timeout)";

/// Nothing in an unknown protocol's header can be checked.
pub fn error(_pkt: &Packet, _cfg: &Sysctls, _in_prerouting: bool) -> Option<Reason> {
    None
}

pub fn new(_conn: &mut Conn, _pkt: &Packet, _cfg: &Sysctls) -> Result<(), Reason> {
    Ok(())
}

pub fn packet(
    conn: &mut Conn,
    _pkt: &Packet,
    _direction: u8,
    _ctinfo: u8,
    now: f64,
    cfg: &Sysctls,
) -> Outcome {
    conn.refresh_acct(now, cfg.nf_conntrack_generic_timeout as f64);
    (Action::Accept, Cow::Borrowed(REASON))
}
