//! The connection log: one record per connection the table confirmed, from
//! its first packet to its end, for `statewall conns`.
//!
//! Nothing here exists unless the log was asked for, so a plain replay pays
//! nothing and an entry stays as small as it is. The table writes the parts
//! it alone sees: the record is opened when the entry is confirmed (its
//! tuples, its master) and closed when the entry is destroyed (when, why,
//! and the final counters, which the slot forgets once it is reused). The
//! machine adds what each packet of the connection met after conntrack: its
//! verdict, the first drop, the protocol state the packet left behind.
//!
//! Records are kept in confirmation order and indexed by the connection's
//! number (`Conn::id`, the `conn` of the per-packet output), which is dense
//! from 1.

use crate::conntrack::acct::Counters;
use crate::conntrack::conn::{Conn, ConnId, HelperKind, Tuple, IPS_DYING};
use crate::engine::RuleRef;
use crate::packet::{PROTO_SCTP, PROTO_TCP};
use crate::verdict::Verdict;

/// The protocol states a connection went through, each change once, in
/// order: up to `StateTrail::CAPACITY` of them, 4 bits each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateTrail {
    packed: u64,
    len: u8,
    /// The latest state, kept also when the trail is full.
    current: Option<u8>,
    /// More changes happened than the trail holds.
    pub overflowed: bool,
}

impl StateTrail {
    pub const CAPACITY: usize = 16;

    fn get(&self, at: usize) -> u8 {
        ((self.packed >> (4 * at)) & 0xF) as u8
    }

    /// Note the state after a packet; only a change is kept.
    pub fn push(&mut self, state: u8) {
        if self.current == Some(state) {
            return;
        }
        self.current = Some(state);
        if usize::from(self.len) == Self::CAPACITY {
            self.overflowed = true;
            return;
        }
        self.packed |= u64::from(state & 0xF) << (4 * usize::from(self.len));
        self.len += 1;
    }

    pub fn states(&self) -> impl Iterator<Item = u8> + '_ {
        (0..usize::from(self.len)).map(|at| self.get(at))
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The latest state (None before any).
    pub fn current(&self) -> Option<u8> {
        self.current
    }
}

/// The first packet of a connection that was dropped (or rejected).
#[derive(Clone, Debug, PartialEq)]
pub struct FirstDrop {
    /// 0-based position in the capture.
    pub index: u64,
    pub verdict: Verdict,
    pub rule: Option<RuleRef>,
    /// The packet's reason as jsonl gives it.
    pub reason: String,
    /// As the text line gives it, which cites the rule itself.
    pub line_reason: String,
}

/// How and when a connection left the table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct End {
    pub ts: f64,
    /// timeout, reset, reopened, early drop ... (the DESTROY event's cause).
    pub cause: &'static str,
}

/// Everything the log knows about one connection.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnRecord {
    /// The confirmation number (`conn` in the per-packet output).
    pub id: u32,
    /// The entry's slot while it lives (slots are reused after its end).
    pub slot: ConnId,
    pub family: u8,
    pub proto: u8,
    pub zone: u16,
    pub orig: Tuple,
    pub reply: Tuple,
    /// The first packet's time (the entry's creation) and the latest
    /// packet's that belonged to the connection.
    pub first_ts: f64,
    pub last_ts: f64,
    /// The entry's status bits (IPS_*) after its latest packet, or as it
    /// was when destroyed.
    pub status: u32,
    pub states: StateTrail,
    /// Packets per verdict, indexed as `Verdict::ALL`.
    pub verdicts: [u32; 6],
    pub helper: Option<HelperKind>,
    /// The connection that expected this one, by its number, with the
    /// master's helper.
    pub master: Option<(u32, Option<HelperKind>)>,
    /// The counters when the entry was destroyed (live entries' are in the
    /// table's accounting).
    pub counters: Counters,
    pub end: Option<End>,
    pub first_drop: Option<Box<FirstDrop>>,
}

impl ConnRecord {
    fn open(slot: ConnId, conn: &Conn, master: Option<&Conn>) -> Self {
        ConnRecord {
            id: conn.id,
            slot,
            family: conn.family,
            proto: conn.proto,
            zone: conn.zone,
            orig: conn.orig,
            reply: conn.reply,
            first_ts: conn.created,
            last_ts: conn.created,
            status: conn.status,
            states: StateTrail::default(),
            verdicts: [0; 6],
            helper: conn.helper,
            master: master.map(|m| (m.id, m.helper)),
            counters: Counters::default(),
            end: None,
            first_drop: None,
        }
    }

    /// The protocol keeps a state worth a history (TCP, SCTP).
    pub fn has_states(&self) -> bool {
        matches!(self.proto, PROTO_TCP | PROTO_SCTP)
    }

    pub fn verdict_count(&self, verdict: Verdict) -> u32 {
        self.verdicts[verdict as usize]
    }
}

/// The records of every confirmed connection, in confirmation order.
#[derive(Clone, Debug, Default)]
pub struct ConnLog {
    records: Vec<ConnRecord>,
}

impl ConnLog {
    /// The record of connection number `id`.
    pub fn record_mut(&mut self, id: u32) -> Option<&mut ConnRecord> {
        let at = usize::try_from(id).ok()?.checked_sub(1)?;
        self.records.get_mut(at).filter(|r| r.id == id)
    }

    /// The table confirmed `conn` in `slot`.
    pub fn confirmed(&mut self, slot: ConnId, conn: &Conn, master: Option<&Conn>) {
        let record = ConnRecord::open(slot, conn, master);
        // Numbers are handed out in order, so the record lands at id - 1;
        // after the 32-bit numbers wrap, the oldest records are replaced.
        match usize::try_from(conn.id)
            .ok()
            .and_then(|id| id.checked_sub(1))
        {
            Some(at) if at < self.records.len() => self.records[at] = record,
            Some(at) if at == self.records.len() => self.records.push(record),
            _ => {}
        }
    }

    /// The table destroyed `conn` at `now`, for `cause`, with these counters.
    pub fn destroyed(&mut self, conn: &Conn, counters: Counters, now: f64, cause: &'static str) {
        if let Some(record) = self.record_mut(conn.id) {
            record.counters = counters;
            record.status = conn.status & !IPS_DYING;
            record.end = Some(End { ts: now, cause });
        }
    }

    /// A packet at `ts` belonged to `conn` and got `verdict`; the record,
    /// for the caller to note a first drop. None for an entry that was
    /// never confirmed.
    pub fn packet(&mut self, conn: &Conn, ts: f64, verdict: Verdict) -> Option<&mut ConnRecord> {
        let record = self.record_mut(conn.id)?;
        if ts > record.last_ts {
            record.last_ts = ts;
        }
        let count = &mut record.verdicts[verdict as usize];
        *count = count.saturating_add(1);
        // An entry's status is final when it is destroyed (as its DESTROY
        // event shows it): a reply that kills an unreplied entry does not
        // make it replied.
        if record.end.is_none() {
            record.status = conn.status;
        }
        record.helper = conn.helper;
        if record.has_states() {
            record.states.push(conn.proto_state);
        }
        Some(record)
    }

    pub fn records(&self) -> &[ConnRecord] {
        &self.records
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trail_keeps_each_change_once_and_says_when_it_is_full() {
        let mut trail = StateTrail::default();
        assert!(trail.is_empty());
        for state in [1, 1, 2, 3, 3, 3, 4, 7] {
            trail.push(state);
        }
        assert_eq!(trail.states().collect::<Vec<_>>(), vec![1, 2, 3, 4, 7]);
        assert!(!trail.overflowed);
        for n in 0..20u8 {
            trail.push(n % 2);
        }
        assert_eq!(trail.states().count(), StateTrail::CAPACITY);
        assert!(trail.overflowed);
        assert_eq!(
            trail.current(),
            Some(1),
            "the latest state, beyond the trail"
        );
    }

    #[test]
    fn records_follow_confirmation_numbers() {
        let mut log = ConnLog::default();
        let mut conn = Conn::new(
            4,
            17,
            0,
            Tuple::new(1, 2, 3, 4),
            Tuple::new(2, 1, 4, 3),
            5.0,
        );
        conn.id = 1;
        log.confirmed(ConnId(7), &conn, None);
        let record = log.packet(&conn, 6.5, Verdict::Drop).unwrap();
        assert_eq!(record.verdict_count(Verdict::Drop), 1);
        assert_eq!((record.first_ts, record.last_ts), (5.0, 6.5));
        log.destroyed(&conn, Counters::default(), 36.5, "timeout");
        assert_eq!(log.records()[0].end.map(|e| e.cause), Some("timeout"));
        conn.id = 2;
        assert!(log.packet(&conn, 7.0, Verdict::Accept).is_none());
    }
}
