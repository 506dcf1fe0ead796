//! Conntrack events as `conntrack -E` reports them (nf_conntrack_ecache.c).
//!
//! Changes made while one packet is processed are cached as bits on the
//! entry and delivered as a single message when the packet passes a confirm
//! hook, so a TCP handshake yields three messages (NEW, then two UPDATEs).
//! Deletions are reported at once. The message type is DESTROY if the
//! destroy bit is set, else NEW for a new (or RELATED) entry, else UPDATE.
//!
//! Each event is a value formatted when it happened, so a later change to
//! the entry cannot alter what was reported. Timeout columns follow
//! ctnetlink: NEW and UPDATE always carry the remaining time; DESTROY only
//! when time was left (a deletion by a packet or by early drop), never on
//! expiry, and never the helper's name. Expectation events (`conntrack -E
//! expect`) share the type, flagged by `expectation`.

use std::fmt::Write;

use crate::conntrack::acct::Counters;
use crate::conntrack::conn::{Conn, Tuple};
use crate::conntrack::display::{state_name, write_event_body, write_event_body_acct};

pub const IPCT_NEW: u16 = 1 << 0;
pub const IPCT_RELATED: u16 = 1 << 1;
pub const IPCT_DESTROY: u16 = 1 << 2;
pub const IPCT_REPLY: u16 = 1 << 3;
pub const IPCT_ASSURED: u16 = 1 << 4;
pub const IPCT_PROTOINFO: u16 = 1 << 5;
pub const IPCT_HELPER: u16 = 1 << 6;
pub const IPCT_MARK: u16 = 1 << 8;

/// The message type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    New,
    Update,
    Destroy,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::New => "NEW",
            EventKind::Update => "UPDATE",
            EventKind::Destroy => "DESTROY",
        }
    }

    /// The tag `conntrack -E` prints, right-aligned to the longest one.
    pub fn tag(self) -> &'static str {
        match self {
            EventKind::New => "    [NEW]",
            EventKind::Update => " [UPDATE]",
            EventKind::Destroy => "[DESTROY]",
        }
    }
}

/// One `conntrack -E` message, formatted when it happened.
#[derive(Clone, Debug, PartialEq)]
pub struct ConntrackEvent {
    pub ts: f64,
    pub kind: EventKind,
    /// The entry's confirmation number (an expectation's: its master's).
    pub conn_id: u32,
    pub body: String,
    /// For DESTROY: timeout, reset, reopened, early drop ...; "" otherwise.
    pub cause: &'static str,
    /// An expectation's event (`conntrack -E expect`).
    pub expectation: bool,
    /// The entry as it was (None for an expectation's event): what
    /// `events --filter` tests.
    pub entry: Option<EventEntry>,
}

/// The fields of an entry a display filter reads, taken when the event
/// happened (the entry may change or go afterwards).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EventEntry {
    pub family: u8,
    pub proto: u8,
    pub zone: u16,
    pub mark: u32,
    pub status: u32,
    /// The protocol's state name (TCP, SCTP), "" for the others.
    pub state: &'static str,
    pub orig: Tuple,
}

impl EventEntry {
    pub fn of(conn: &Conn) -> Self {
        EventEntry {
            family: conn.family,
            proto: conn.proto,
            zone: conn.zone,
            mark: conn.mark,
            status: conn.status,
            state: state_name(conn),
            orig: conn.orig,
        }
    }
}

impl ConntrackEvent {
    /// The message for the changes cached on `conn` (delivered at confirm).
    pub fn cached(conn: &Conn, now: f64) -> Self {
        let kind = if conn.events & (IPCT_NEW | IPCT_RELATED) != 0 {
            EventKind::New
        } else {
            EventKind::Update
        };
        // ctnetlink sends the protocol state only with a PROTOINFO event; a
        // new entry always has one (its state left NONE).
        let protoinfo = conn.events & (IPCT_NEW | IPCT_RELATED | IPCT_PROTOINFO) != 0;
        let mut body = String::with_capacity(160);
        write_event_body(&mut body, conn, Some(conn.remaining(now)), protoinfo, true);
        ConntrackEvent {
            ts: now,
            kind,
            conn_id: conn.id,
            body,
            cause: "",
            expectation: false,
            entry: Some(EventEntry::of(conn)),
        }
    }

    /// The DESTROY message of an entry deleted at `now` for `cause`, with
    /// its counters when the listings show them (nf_conntrack_acct=1).
    pub fn destroyed(
        conn: &Conn,
        now: f64,
        cause: &'static str,
        counters: Option<&Counters>,
    ) -> Self {
        let remaining = conn.remaining(now);
        let timeout = if remaining != 0 {
            Some(remaining)
        } else {
            None
        };
        let mut body = String::with_capacity(160);
        write_event_body_acct(&mut body, conn, timeout, true, false, counters);
        ConntrackEvent {
            ts: now,
            kind: EventKind::Destroy,
            conn_id: conn.id,
            body,
            cause,
            expectation: false,
            entry: Some(EventEntry::of(conn)),
        }
    }

    /// An expectation's [NEW] or [DESTROY]: `body` is what follows the tag
    /// (the remaining time, clamped at 0, then the `conntrack -L expect`
    /// line after its own timeout), built by the expectation code.
    pub fn of_expectation(kind: EventKind, master_id: u32, now: f64, body: String) -> Self {
        ConntrackEvent {
            ts: now,
            kind,
            conn_id: master_id,
            body,
            cause: "",
            expectation: true,
            entry: None,
        }
    }

    /// The line `conntrack -E` prints (`-o timestamp` with `timestamps`).
    pub fn line(&self, timestamps: bool) -> String {
        let mut text = String::with_capacity(self.body.len() + 32);
        if timestamps {
            let _ = write!(text, "[{:.6}]\t", self.ts);
        }
        text.push_str(self.kind.tag());
        text.push(' ');
        text.push_str(&self.body);
        text
    }
}

/// Where events collect until the caller drains them. Disabled, nothing is
/// recorded and entries cache no event bits.
#[derive(Clone, Debug, Default)]
pub struct EventLog {
    enabled: bool,
    events: Vec<ConntrackEvent>,
}

impl EventLog {
    pub fn new(enabled: bool) -> Self {
        EventLog {
            enabled,
            events: Vec::new(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
    }

    /// Record an event (ignored while disabled).
    pub fn push(&mut self, event: ConntrackEvent) {
        if self.enabled {
            self.events.push(event);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Everything recorded since the last call, in the order it happened.
    pub fn take(&mut self) -> Vec<ConntrackEvent> {
        std::mem::take(&mut self.events)
    }

    /// Everything recorded so far, oldest first, keeping the buffer's
    /// capacity for the next packet.
    pub fn drain(&mut self) -> std::vec::Drain<'_, ConntrackEvent> {
        self.events.drain(..)
    }

    /// The recorded events, oldest first, without draining them.
    pub fn pending(&self) -> &[ConntrackEvent] {
        &self.events
    }
}
