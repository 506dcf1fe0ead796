//! Per-connection accounting (nf_conntrack_acct.c): packets and bytes in
//! each direction.
//!
//! The kernel attaches the counters to an entry as an extension when the
//! entry is created with `nf_conntrack_acct=1`; a tracker counts a packet
//! when it refreshes the entry's timeout for it (`Conn::refresh_acct`), and
//! a packet's bytes are the IP datagram's length (after reassembly, as the
//! skb holds it at the conntrack hook). Counting happens where conntrack
//! runs, so a packet a rule drops later is counted all the same; packets a
//! tracker only lets through (ignored TCP segments, a retransmitted SYN
//! before any reply) and ICMP errors about the connection are not.
//!
//! Here the counters live beside the table, one pair per slot, and only
//! when something asked for them: the sysctl (the listings then print
//! `packets=N bytes=N` per direction) or the connection log, which counts
//! without changing what the listings show.

use crate::conntrack::conn::ConnId;

/// One direction's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

/// ORIGINAL then REPLY.
pub type Counters = [Counter; 2];

/// The counters of every slot of the table.
#[derive(Clone, Debug, Default)]
pub struct AcctTable {
    by_slot: Vec<Counters>,
    /// The listings show the counters (nf_conntrack_acct=1).
    listed: bool,
}

impl AcctTable {
    pub fn new(listed: bool) -> Self {
        AcctTable {
            by_slot: Vec::new(),
            listed,
        }
    }

    /// Do `/proc/net/nf_conntrack` and `conntrack -L` print the counters?
    pub fn listed(&self) -> bool {
        self.listed
    }

    pub fn set_listed(&mut self, listed: bool) {
        self.listed = listed;
    }

    /// A new entry took the slot: its counters start at zero.
    pub fn start(&mut self, id: ConnId) {
        if let Some(counters) = self.by_slot.get_mut(id.0 as usize) {
            *counters = Counters::default();
        }
    }

    /// Count one packet of `bytes` in `direction` (0 ORIGINAL, 1 REPLY).
    pub fn add(&mut self, id: ConnId, direction: u8, bytes: u64) {
        let slot = id.0 as usize;
        if slot >= self.by_slot.len() {
            self.by_slot.resize(slot + 1, Counters::default());
        }
        let counter = &mut self.by_slot[slot][usize::from(direction & 1)];
        counter.packets = counter.packets.saturating_add(1);
        counter.bytes = counter.bytes.saturating_add(bytes);
    }

    /// The slot's counters (zeros for a slot that never counted).
    pub fn get(&self, id: ConnId) -> Counters {
        self.by_slot.get(id.0 as usize).copied().unwrap_or_default()
    }

    pub fn heap_bytes(&self) -> usize {
        self.by_slot.capacity() * std::mem::size_of::<Counters>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_direction_and_restarts_with_a_new_entry() {
        let mut acct = AcctTable::new(true);
        let id = ConnId(3);
        assert_eq!(acct.get(id), Counters::default());
        acct.add(id, 0, 60);
        acct.add(id, 0, 52);
        acct.add(id, 1, 1500);
        let [orig, reply] = acct.get(id);
        assert_eq!((orig.packets, orig.bytes), (2, 112));
        assert_eq!((reply.packets, reply.bytes), (1, 1500));
        acct.start(id);
        assert_eq!(acct.get(id), Counters::default());
        assert_eq!(acct.get(ConnId(0)), Counters::default());
    }
}
