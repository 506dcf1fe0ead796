//! The contract between the conntrack core and each protocol tracker
//! (`struct nf_conntrack_l4proto`).
//!
//! The core calls, in kernel order (nf_conntrack_in):
//!
//! 1. `error(pkt, cfg, in_prerouting)` before any lookup: header, checksum
//!    and flag validation. `Some(reason)` means INVALID.
//! 2. for a packet that matches no entry, `new(conn, pkt, cfg)`: may this
//!    packet create a connection? It initialises the per-protocol state;
//!    `Err(reason)` means INVALID (the fresh entry is discarded).
//! 3. `packet(conn, pkt, direction, ctinfo, now, cfg)`: the state machine.
//!    It returns an action and a reason, and re-arms the timeout with
//!    `conn.refresh_acct` when it accepts (which also counts the packet).
//!
//! Each tracker module provides these as plain functions; the core
//! dispatches on the protocol number with a `match` (no trait objects on
//! the packet path).

use crate::reason::Reason;

/// A tracker's verdict on one packet (the kernel's NF_ACCEPT / -NF_ACCEPT /
/// NF_DROP / NF_REPEAT conventions, kept apart from the hooks' verdicts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Tracked (possibly "ignored" with no state change: the reason says so).
    Accept,
    /// No conntrack attached; the entry is left untouched.
    Invalid,
    /// Conntrack itself drops the packet.
    Drop,
    /// Delete the old entry and classify the packet again (TCP reopen).
    Repeat,
}

/// An action with its reason.
pub type Outcome = (Action, Reason);

/// The reply tuple's ports of a port-based protocol: swapped.
pub fn invert_ports(sport: u16, dport: u16) -> (u16, u16) {
    (dport, sport)
}

use crate::conntrack::conn::{Conn, ConnId, Tuple};
use crate::conntrack::events::EventLog;

/// What an ICMP error handler needs from the table: find the connection a
/// quoted datagram belongs to.
pub trait ConnLookup {
    /// A live confirmed entry holding `tuple` in either direction, with the
    /// direction it was found in. An expired entry met here is reaped and
    /// not returned.
    fn lookup(&mut self, family: u8, proto: u8, tuple: &Tuple, zone: u16) -> Option<(ConnId, u8)>;

    /// The entry behind an id the lookup returned.
    fn conn(&self, id: ConnId) -> &Conn;
}

/// Read access to the table's entries by id (what expectation code needs
/// to judge a master while the table is busy creating an entry).
pub trait ConnView {
    /// The entry in slot `id`, if the slot holds one (live, unconfirmed or
    /// destroyed during the current packet).
    fn get_conn(&self, id: ConnId) -> Option<&Conn>;
}

/// What the core needs from the expectation table when it creates or
/// destroys entries (nf_ct_find_expectation, nf_ct_remove_expectations).
///
/// Both calls get the table's event log: an expectation's own events must
/// land in the same stream, in the order they happen, as in the kernel's
/// single `conntrack -E` socket.
pub trait ExpectHooks {
    /// A brand-new entry `id` (unconfirmed): find the expectation it
    /// fulfils, consume it and return its master. Called before the
    /// protocol tracker sees the packet. `masters` resolves the master ids
    /// the expectations hold.
    fn match_new(
        &mut self,
        id: ConnId,
        conn: &Conn,
        packet_index: u64,
        now: f64,
        masters: &dyn ConnView,
        events: &mut EventLog,
    ) -> Option<ConnId>;

    /// An entry died: every expectation it announced dies with it. Also
    /// called for an entry thrown away before confirmation (its tracker
    /// refused the first packet), so state kept under its id can go before
    /// the slot is reused; the caller calls it for a discarded one.
    fn master_destroyed(&mut self, master: ConnId, now: f64, events: &mut EventLog);
}

/// For tables without helpers (tests, benches): nothing is ever expected.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoExpectations;

impl ExpectHooks for NoExpectations {
    fn match_new(
        &mut self,
        _id: ConnId,
        _conn: &Conn,
        _packet_index: u64,
        _now: f64,
        _masters: &dyn ConnView,
        _events: &mut EventLog,
    ) -> Option<ConnId> {
        None
    }

    fn master_destroyed(&mut self, _master: ConnId, _now: f64, _events: &mut EventLog) {}
}
