//! The connection table and the per-packet classification (nf_conntrack_core.c).
//!
//! How this works, in kernel order (nf_conntrack_in, resolve_normal_ct,
//! init_conntrack, __nf_conntrack_confirm):
//!
//! * `classify` runs where the kernel's conntrack hook runs (PREROUTING or
//!   OUTPUT, after the raw table). ICMP errors are matched to the connection
//!   they quote first; then the tracker validates the packet, the tuple is
//!   looked up (expired entries are reaped on the way and never matched), a
//!   miss builds an *unconfirmed* entry, ctinfo is derived from direction and
//!   status, and the protocol tracker runs. SEEN_REPLY is set only after the
//!   tracker accepted a reply-direction packet, so trackers see the value
//!   before it.
//! * `confirm` runs at the last hook (POSTROUTING or INPUT) for packets that
//!   survived the rules: an unconfirmed entry is inserted and its NEW event
//!   emitted. `discard` is the other ending: the packet was dropped, so an
//!   unconfirmed entry vanishes without trace (no entry, no event). Every
//!   result carrying an unconfirmed entry must end in one of the two, or its
//!   slot stays taken.
//! * A new entry counts against `nf_conntrack_max` from its confirmation;
//!   when the table is full, `early_drop` makes room or the packet is
//!   dropped. As in the kernel, allocation happens before the TCP/UDP/SCTP
//!   trackers validate the packet, so even a packet they then call INVALID
//!   can evict entries (or be dropped) when the table is full.
//! * Timeouts are kept by the capture clock. `gc` stands for the kernel's
//!   garbage collector and reaps each entry at the instant it expires, so the
//!   DESTROY event carries the expiry time. The live kernel reaps up to a GC
//!   interval later; only the fact of expiry, and that an expired entry is
//!   never matched again, is deterministic.
//!
//! Storage. Entries live in a slab (`ConnId` is the slot); both tuples of a
//! confirmed entry are indexed in one hash table of `slot << 1 | direction`.
//! Deadlines live in an indexed binary heap with exactly one entry per
//! confirmed slot: a refresh that moves the deadline later is picked up
//! lazily when the old deadline comes up, one that moves it earlier re-keys
//! the entry at once, and a destroyed entry leaves the heap with it. So
//! memory is a function of the number of slots, never of packet rate times
//! timeout, and a jump of the clock costs one heap pop per expired entry,
//! nothing per second of gap.
//!
//! A destroyed (or discarded) entry keeps its slot until the next
//! `classify`, so the caller can still read the entry a result names (a TCP
//! RST's CLOSE state, a discarded entry's id for the expectation table).
//!
//! Statistics follow the kernel's `conntrack -S` counters exactly,
//! including the ones Linux 6.x no longer increments on the packet path
//! (`found` and `insert` are only touched by NAT and ctnetlink, so they stay
//! 0 here).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::LazyLock;

use hashbrown::HashTable;

use crate::config::Sysctls;
use crate::conntrack::acct::{AcctTable, Counters};
use crate::conntrack::conn::{
    Conn, ConnId, Tuple, CT_ESTABLISHED, CT_ESTABLISHED_REPLY, CT_INVALID, CT_NEW, CT_RELATED,
    CT_RELATED_REPLY, CT_UNTRACKED, IPS_ACCT_PENDING, IPS_ASSURED, IPS_CONFIRMED, IPS_DYING,
    IPS_EXPECTED, IPS_NAT_UNVERIFIED, IPS_SEEN_REPLY, ORIGINAL, REPLY,
};
use crate::conntrack::early_drop::{
    bucket_of, gc_evictable, gc_threshold, BucketIndex, CAUSE_EARLY_DROP, CAUSE_GC_EARLY_DROP,
    CAUSE_TIMEOUT, GC_EARLY_DROP_DELAY, NF_CT_EVICTION_RANGE,
};
use crate::conntrack::events::{
    ConntrackEvent, EventLog, IPCT_ASSURED, IPCT_NEW, IPCT_PROTOINFO, IPCT_RELATED, IPCT_REPLY,
};
use crate::conntrack::history::{ConnLog, ConnRecord};
use crate::conntrack::l4proto::{Action, ConnLookup, ConnView, ExpectHooks, Outcome};
use crate::conntrack::proto_icmp::IcmpErrorOutcome;
use crate::conntrack::stats::ConntrackStats;
use crate::conntrack::tcp_window::{CLOSE as TCP_CLOSE, TIME_WAIT as TCP_TIME_WAIT};
use crate::conntrack::{proto_generic, proto_gre, proto_icmp, proto_sctp, proto_tcp, proto_udp};
use crate::packet::{
    Packet, PROTO_GRE, PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP, PROTO_UDPLITE,
};
use crate::reason::Reason;
use crate::rules::matches::connlimit::{ConnAlive, ConnKey};
use crate::verdict::Verdict;

/// Why an entry went, besides the causes early_drop.rs names.
pub const CAUSE_RESET: &str = "reset";
pub const CAUSE_REOPENED: &str = "reopened";

/// What conntrack attached to one packet: the skb's `_nfct` and ctinfo.
///
/// Later hooks update it (the rule engine's raw-table decisions,
/// confirmation). `conn` stays readable through the table until the next
/// `classify`, even if the entry was destroyed meanwhile.
#[derive(Clone, Debug, PartialEq)]
pub struct CtResult {
    pub ctinfo: u8,
    pub conn: Option<ConnId>,
    pub reason: Reason,
    pub unconfirmed: bool,
    pub drop: bool,
}

impl CtResult {
    pub fn new(ctinfo: u8, conn: Option<ConnId>, reason: Reason) -> Self {
        CtResult {
            ctinfo,
            conn,
            reason,
            unconfirmed: false,
            drop: false,
        }
    }

    /// The packet's direction, None without an entry.
    pub fn direction(&self) -> Option<u8> {
        self.conn.map(|_| {
            if self.ctinfo >= CT_ESTABLISHED_REPLY {
                REPLY
            } else {
                ORIGINAL
            }
        })
    }
}

/// A packet conntrack does not track (NOTRACK, an error about an untracked flow).
pub fn untracked(reason: Reason) -> CtResult {
    CtResult::new(CT_UNTRACKED, None, reason)
}

fn invalid(reason: Reason) -> CtResult {
    CtResult::new(CT_INVALID, None, reason)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    Free,
    /// Built for a packet, not yet confirmed: not in the index.
    Unconfirmed,
    /// In the index, the heap and (once built) the bucket chains.
    Confirmed,
    /// Destroyed or discarded; the slot is released at the next classify.
    Removed,
}

/// One deadline: the entry in `slot` is due at `deadline` (possibly earlier
/// than its current expiry: then it is re-keyed, not reaped). `seq` orders
/// equal deadlines by arming order, so expiry order is deterministic.
#[derive(Clone, Copy, Debug)]
struct Timer {
    deadline: f64,
    seq: u32,
    slot: u32,
}

fn earlier(a: &Timer, b: &Timer) -> bool {
    match a.deadline.total_cmp(&b.deadline) {
        Ordering::Less => true,
        Ordering::Greater => false,
        Ordering::Equal => a.seq < b.seq,
    }
}

/// `links` value of a slot that is in no heap position and no list.
const NO_POS: u32 = u32::MAX;
/// End of an intrusive slot list.
const NO_SLOT: u32 = u32::MAX;
/// Slots are indexed as `slot << 1 | direction` in a u32.
const MAX_SLOTS: usize = (u32::MAX >> 1) as usize;

/// A multiply-fold step (the 128-bit product's halves xored): cheap and
/// well mixed, no per-table secret needed for a replay.
fn fold_mul(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// The hash of one tuple with its family, protocol and zone: the index's
/// hash and, through `bucket_of`, the early-drop chain a tuple sits in.
pub fn tuple_hash(family: u8, proto: u8, zone: u16, tuple: &Tuple) -> u64 {
    const K: [u64; 5] = [
        0x243F_6A88_85A3_08D3,
        0x1319_8A2E_0370_7344,
        0xA409_3822_299F_31D0,
        0x082E_FA98_EC4E_6C89,
        0x4528_21E6_38D0_1377,
    ];
    let meta = u64::from(tuple.sport) << 48
        | u64::from(tuple.dport) << 32
        | u64::from(proto) << 24
        | u64::from(family) << 16
        | u64::from(zone);
    let h = fold_mul(tuple.src as u64 ^ K[0], (tuple.src >> 64) as u64 ^ K[1]);
    let h = fold_mul(h ^ tuple.dst as u64 ^ K[2], (tuple.dst >> 64) as u64 ^ K[3]);
    fold_mul(h ^ meta, K[4])
}

static NO_CONN: LazyLock<Conn> =
    LazyLock::new(|| Conn::new(0, 0, 0, Tuple::default(), Tuple::default(), 0.0));

/// The slab seen read-only (what expectation code gets while an entry is
/// being built).
struct SlabView<'a>(&'a [Option<Conn>]);

impl ConnView for SlabView<'_> {
    fn get_conn(&self, id: ConnId) -> Option<&Conn> {
        self.0.get(id.0 as usize).and_then(Option::as_ref)
    }
}

fn entry_hash(conns: &[Option<Conn>], entry: u32) -> u64 {
    match conns.get((entry >> 1) as usize).and_then(Option::as_ref) {
        Some(conn) => tuple_hash(
            conn.family,
            conn.proto,
            conn.zone,
            conn.tuple((entry & 1) as u8),
        ),
        None => 0,
    }
}

fn entry_matches(
    conns: &[Option<Conn>],
    entry: u32,
    family: u8,
    proto: u8,
    zone: u16,
    tuple: &Tuple,
) -> bool {
    match conns.get((entry >> 1) as usize).and_then(Option::as_ref) {
        Some(conn) => {
            conn.family == family
                && conn.proto == proto
                && conn.zone == zone
                && conn.tuple((entry & 1) as u8) == tuple
        }
        None => false,
    }
}

fn ctinfo_of(conn: &Conn, direction: u8) -> u8 {
    if direction == REPLY {
        CT_ESTABLISHED_REPLY
    } else if conn.status & IPS_SEEN_REPLY != 0 {
        CT_ESTABLISHED
    } else if conn.status & IPS_EXPECTED != 0 {
        CT_RELATED
    } else {
        CT_NEW
    }
}

// -- dispatch to the protocol trackers (nf_ct_l4proto_find) -------------------

fn l4_error(pkt: &Packet, cfg: &Sysctls, in_prerouting: bool) -> Option<Reason> {
    match pkt.proto {
        PROTO_TCP => proto_tcp::error(pkt, cfg, in_prerouting),
        PROTO_UDP => proto_udp::udp_error(pkt, cfg, in_prerouting),
        PROTO_UDPLITE => proto_udp::udplite_error(pkt, cfg, in_prerouting),
        PROTO_ICMP | PROTO_ICMPV6 => proto_icmp::error(pkt, cfg, in_prerouting),
        PROTO_GRE => proto_gre::error(pkt, cfg, in_prerouting),
        PROTO_SCTP => proto_sctp::error(pkt, cfg, in_prerouting),
        _ => proto_generic::error(pkt, cfg, in_prerouting),
    }
}

fn l4_new(conn: &mut Conn, pkt: &Packet, cfg: &Sysctls) -> Result<(), Reason> {
    match pkt.proto {
        PROTO_TCP => proto_tcp::new(conn, pkt, cfg),
        PROTO_UDP | PROTO_UDPLITE => proto_udp::new(conn, pkt, cfg),
        PROTO_ICMP | PROTO_ICMPV6 => proto_icmp::new(conn, pkt, cfg),
        PROTO_GRE => proto_gre::new(conn, pkt, cfg),
        PROTO_SCTP => proto_sctp::new(conn, pkt, cfg),
        _ => proto_generic::new(conn, pkt, cfg),
    }
}

fn l4_packet(
    conn: &mut Conn,
    pkt: &Packet,
    direction: u8,
    ctinfo: u8,
    now: f64,
    cfg: &Sysctls,
) -> Outcome {
    match pkt.proto {
        PROTO_TCP => proto_tcp::packet(conn, pkt, direction, ctinfo, now, cfg),
        PROTO_UDP => proto_udp::udp_packet(conn, pkt, direction, ctinfo, now, cfg),
        PROTO_UDPLITE => proto_udp::udplite_packet(conn, pkt, direction, ctinfo, now, cfg),
        PROTO_ICMP | PROTO_ICMPV6 => proto_icmp::packet(conn, pkt, direction, ctinfo, now, cfg),
        PROTO_GRE => proto_gre::packet(conn, pkt, direction, ctinfo, now, cfg),
        PROTO_SCTP => proto_sctp::packet(conn, pkt, direction, ctinfo, now, cfg),
        _ => proto_generic::packet(conn, pkt, direction, ctinfo, now, cfg),
    }
}

/// The reply tuple of a packet's tuple, None when it cannot be inverted (an
/// ICMP type without a reply type).
pub(crate) fn l4_invert(proto: u8, family: u8, tuple: &Tuple) -> Option<Tuple> {
    match proto {
        PROTO_ICMP | PROTO_ICMPV6 => proto_icmp::invert(family, tuple),
        _ => Some(Tuple::new(tuple.dst, tuple.src, tuple.dport, tuple.sport)),
    }
}

/// The tracker's name as /proc prints it.
pub fn tracker_name(proto: u8) -> &'static str {
    crate::conntrack::display::proc_l4_name(proto)
}

/// One network namespace's conntrack state: entries, counters, events.
#[derive(Debug)]
pub struct ConntrackTable {
    pub cfg: Sysctls,
    pub stats: ConntrackStats,
    conns: Vec<Option<Conn>>,
    state: Vec<SlotState>,
    /// Per slot: its heap position while Confirmed; the next slot of the
    /// free list (Free) or of the pending list (Removed) otherwise.
    links: Vec<u32>,
    free_head: u32,
    pending_head: u32,
    unconfirmed: usize,
    index: HashTable<u32>,
    timers: Vec<Timer>,
    timer_seq: u32,
    count: usize,
    next_id: u32,
    /// Hash chains, built the first time the table is full (early_drop.rs).
    buckets: Option<BucketIndex>,
    /// When the GC's next run, switched to early-drop mode by a drop, happens.
    gc_early_drop_at: Option<f64>,
    events: EventLog,
    scratch: Vec<u32>,
    /// Packet and byte counters per slot (acct.rs), when asked for.
    acct: Option<AcctTable>,
    /// The connection log (history.rs), when asked for.
    history: Option<Box<ConnLog>>,
    /// The confirmed entry whose tracker judged the current packet INVALID.
    invalid_of: Option<ConnId>,
}

/// Most entries reserved up front (see `ConntrackTable::new`).
const RESERVE_LIMIT: usize = 1 << 20;

impl ConntrackTable {
    /// A table that records no events.
    pub fn new(cfg: Sysctls) -> Self {
        // The kernel sizes its hash table once, from nf_conntrack_buckets.
        // Reserving as much here spares the per-packet path the rehashing
        // (each moved entry is a cache miss into the slab) and the slab's
        // regrowth copies; memory is only touched as entries arrive.
        let expected =
            usize::try_from(cfg.nf_conntrack_buckets.min(if cfg.nf_conntrack_max == 0 {
                u64::MAX
            } else {
                cfg.nf_conntrack_max
            }))
            .unwrap_or(usize::MAX)
            .min(RESERVE_LIMIT);
        let cfg_acct = cfg.nf_conntrack_acct;
        ConntrackTable {
            cfg,
            stats: ConntrackStats::default(),
            conns: Vec::with_capacity(expected),
            state: Vec::with_capacity(expected),
            links: Vec::with_capacity(expected),
            free_head: NO_SLOT,
            pending_head: NO_SLOT,
            unconfirmed: 0,
            index: HashTable::with_capacity(2 * expected),
            timers: Vec::with_capacity(expected),
            timer_seq: 0,
            count: 0,
            next_id: 1,
            buckets: None,
            gc_early_drop_at: None,
            events: EventLog::new(false),
            scratch: Vec::new(),
            acct: (cfg_acct != 0).then(|| AcctTable::new(true)),
            history: None,
            invalid_of: None,
        }
    }

    /// A table that records `conntrack -E` events for `take_events`.
    pub fn with_events(cfg: Sysctls) -> Self {
        let mut table = ConntrackTable::new(cfg);
        table.events.set_enabled(true);
        table
    }

    // -- reading -----------------------------------------------------------

    /// Confirmed entries in the table (what nf_conntrack_max counts).
    pub fn count(&self) -> usize {
        self.count
    }

    /// The entry in a slot: live, unconfirmed, or destroyed during the
    /// current packet.
    pub fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.get(id.0 as usize).and_then(Option::as_ref)
    }

    pub fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.get_mut(id.0 as usize).and_then(Option::as_mut)
    }

    /// Is the entry confirmed and still in the table?
    pub fn is_live(&self, id: ConnId) -> bool {
        self.state.get(id.0 as usize) == Some(&SlotState::Confirmed)
    }

    /// Confirmed entries, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn)> + '_ {
        self.conns
            .iter()
            .zip(&self.state)
            .enumerate()
            .filter_map(|(slot, (conn, state))| match (conn, state) {
                (Some(conn), SlotState::Confirmed) => Some((ConnId(slot as u32), conn)),
                _ => None,
            })
    }

    /// The number the next confirmed entry will get (numbers run from 1).
    pub fn next_id(&self) -> u32 {
        self.next_id
    }

    /// Confirmed entries in confirmation order.
    pub fn in_order(&self) -> Vec<ConnId> {
        let mut ids: Vec<(u32, ConnId)> = self.iter().map(|(id, conn)| (conn.id, id)).collect();
        ids.sort_unstable();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// Entries not yet expired at `now` (what a listing at that moment
    /// shows), in confirmation order.
    pub fn live(&self, now: f64) -> Vec<ConnId> {
        let mut ids = self.in_order();
        ids.retain(|&id| self.conn(id).is_some_and(|conn| conn.expires > now));
        ids
    }

    /// Entries built for a packet and neither confirmed nor discarded yet
    /// (0 between packets when every result ends in confirm or discard).
    pub fn unconfirmed_entries(&self) -> usize {
        self.unconfirmed
    }

    /// Does `gc(now)` have work (a deadline due or an early-drop run pending)?
    pub fn gc_due(&self, now: f64) -> bool {
        self.gc_early_drop_at.is_some() || self.timers.first().is_some_and(|t| t.deadline <= now)
    }

    /// When the GC's early-drop run is scheduled, if one is.
    pub fn gc_early_drop_at(&self) -> Option<f64> {
        self.gc_early_drop_at
    }

    // -- events --------------------------------------------------------------

    pub fn events_enabled(&self) -> bool {
        self.events.enabled()
    }

    pub fn set_events(&mut self, enabled: bool) {
        self.events.set_enabled(enabled);
    }

    /// The event log, for code that adds events of its own in order
    /// (expectations created by helpers).
    pub fn events_mut(&mut self) -> &mut EventLog {
        &mut self.events
    }

    /// The events recorded since the last call, in the order they happened.
    pub fn take_events(&mut self) -> Vec<ConntrackEvent> {
        self.events.take()
    }

    /// The same, keeping the log's buffer (no allocation per packet). Events
    /// pile up until drained: the caller drains after every packet.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, ConntrackEvent> {
        self.events.drain()
    }

    // -- accounting and the connection log ---------------------------------------

    /// Keep the connection log (and count packets for it, whatever
    /// nf_conntrack_acct says about the listings). Entries confirmed before
    /// the call are not in it.
    pub fn enable_history(&mut self) {
        if self.history.is_none() {
            self.history = Some(Box::default());
        }
        if self.acct.is_none() {
            self.acct = Some(AcctTable::new(false));
        }
    }

    pub fn history(&self) -> Option<&ConnLog> {
        self.history.as_deref()
    }

    pub fn history_mut(&mut self) -> Option<&mut ConnLog> {
        self.history.as_deref_mut()
    }

    /// A packet at `ts` that got `verdict` belonged to the entry in `id`:
    /// its record in the connection log (None without a log, or for an
    /// entry never confirmed).
    pub fn log_packet(&mut self, id: ConnId, ts: f64, verdict: Verdict) -> Option<&mut ConnRecord> {
        let conn = self.conns.get(id.0 as usize).and_then(Option::as_ref)?;
        self.history.as_deref_mut()?.packet(conn, ts, verdict)
    }

    /// The entry's counters, when anything counts.
    pub fn counters(&self, id: ConnId) -> Option<Counters> {
        self.acct.as_ref().map(|acct| acct.get(id))
    }

    /// The counters the listings print (nf_conntrack_acct=1), else None.
    pub fn listed_counters(&self, id: ConnId) -> Option<Counters> {
        self.acct
            .as_ref()
            .filter(|acct| acct.listed())
            .map(|acct| acct.get(id))
    }

    /// The confirmed entry the current packet matched when its tracker
    /// found the packet INVALID (the kernel then detaches the packet from
    /// the entry; the connection log still counts it as the connection's).
    pub fn invalid_match(&self) -> Option<ConnId> {
        self.invalid_of
    }

    // -- memory --------------------------------------------------------------

    /// Entries in the timer heap (one per confirmed entry).
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    /// Slots ever allocated (live, unconfirmed, pending or free).
    pub fn slab_len(&self) -> usize {
        self.conns.len()
    }

    pub fn slab_capacity(&self) -> usize {
        self.conns.capacity()
    }

    /// Bytes of the tuple index's allocation.
    pub fn index_bytes(&self) -> usize {
        self.index.allocation_size()
    }

    /// Bytes held by the table's own structures (the Vec and hash table
    /// allocations; trackers' per-entry heap data, if any, not included).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.conns.capacity() * size_of::<Option<Conn>>()
            + self.state.capacity() * size_of::<SlotState>()
            + self.links.capacity() * 4
            + self.scratch.capacity() * 4
            + self.index.allocation_size()
            + self.timers.capacity() * size_of::<Timer>()
            + self.buckets.as_ref().map_or(0, BucketIndex::heap_bytes)
            + self.acct.as_ref().map_or(0, AcctTable::heap_bytes)
    }

    /// The early-drop chains, once the table has been full.
    pub fn bucket_index(&self) -> Option<&BucketIndex> {
        self.buckets.as_ref()
    }

    // -- slots ---------------------------------------------------------------

    /// How far a slot-sized Vec may grow: doubling, but never past the
    /// table limit (plus the one entry a packet may hold unconfirmed and
    /// one of slack), so a full table carries no growth overhead.
    fn grown_capacity(&self, len: usize) -> usize {
        let doubled = (len * 2).max(16);
        match usize::try_from(self.cfg.nf_conntrack_max) {
            Ok(limit) if limit != 0 && len < limit + 2 => doubled.min(limit + 2),
            _ => doubled,
        }
    }

    fn alloc_slot(&mut self, conn: Conn) -> Option<u32> {
        let slot = if self.free_head != NO_SLOT {
            let slot = self.free_head;
            let s = slot as usize;
            self.free_head = self.links[s];
            self.conns[s] = Some(conn);
            self.state[s] = SlotState::Unconfirmed;
            self.links[s] = NO_POS;
            slot
        } else {
            let len = self.conns.len();
            if len >= MAX_SLOTS {
                return None;
            }
            if len == self.conns.capacity() {
                let extra = self.grown_capacity(len).saturating_sub(len).max(1);
                self.conns.reserve_exact(extra);
                self.state.reserve_exact(extra);
                self.links.reserve_exact(extra);
                if let Some(index) = &mut self.buckets {
                    index.reserve_slots(len + extra);
                }
            }
            self.conns.push(Some(conn));
            self.state.push(SlotState::Unconfirmed);
            self.links.push(NO_POS);
            len as u32
        };
        self.unconfirmed += 1;
        Some(slot)
    }

    /// Keep a removed slot readable until the next classify.
    fn defer_release(&mut self, slot: u32) {
        self.links[slot as usize] = self.pending_head;
        self.pending_head = slot;
    }

    /// Slots of entries destroyed or discarded while the previous packet
    /// was handled go back to the free list.
    fn release_pending(&mut self) {
        while self.pending_head != NO_SLOT {
            let slot = self.pending_head;
            self.pending_head = self.links[slot as usize];
            self.release_now(slot);
        }
    }

    fn release_now(&mut self, slot: u32) {
        let s = slot as usize;
        if s < self.conns.len() && self.state[s] != SlotState::Free {
            if self.state[s] == SlotState::Unconfirmed {
                self.unconfirmed -= 1;
            }
            self.conns[s] = None;
            self.state[s] = SlotState::Free;
            self.links[s] = self.free_head;
            self.free_head = slot;
        }
    }

    // -- the index -------------------------------------------------------------

    fn index_find(&self, family: u8, proto: u8, zone: u16, tuple: &Tuple) -> Option<(u32, u8)> {
        let hash = tuple_hash(family, proto, zone, tuple);
        let conns = &self.conns;
        self.index
            .find(hash, |&entry| {
                entry_matches(conns, entry, family, proto, zone, tuple)
            })
            .map(|&entry| (entry >> 1, (entry & 1) as u8))
    }

    /// The hashes of a slot's two tuples (zeros for an empty slot).
    fn slot_hashes(&self, slot: u32) -> [u64; 2] {
        self.conn(ConnId(slot)).map_or([0, 0], |c| {
            [
                tuple_hash(c.family, c.proto, c.zone, &c.orig),
                tuple_hash(c.family, c.proto, c.zone, &c.reply),
            ]
        })
    }

    fn index_insert(&mut self, slot: u32, hashes: [u64; 2]) {
        let Some(conn) = self.conns.get(slot as usize).and_then(Option::as_ref) else {
            return;
        };
        let same = conn.orig == conn.reply;
        let conns = &self.conns;
        for (direction, hash) in hashes.into_iter().enumerate() {
            // A tuple equal to its own reply is found as ORIGINAL only.
            if direction == 1 && same {
                break;
            }
            self.index
                .insert_unique(hash, slot << 1 | direction as u32, |&e| {
                    entry_hash(conns, e)
                });
        }
    }

    fn index_remove(&mut self, slot: u32, hashes: [u64; 2]) {
        for (direction, hash) in hashes.into_iter().enumerate() {
            let value = slot << 1 | direction as u32;
            if let Ok(entry) = self.index.find_entry(hash, |&e| e == value) {
                entry.remove();
            }
        }
    }

    // -- the timer heap -----------------------------------------------------------

    fn heap_set(&mut self, at: usize, timer: Timer) {
        self.links[timer.slot as usize] = at as u32;
        self.timers[at] = timer;
    }

    fn sift_up(&mut self, mut at: usize) {
        let timer = self.timers[at];
        while at > 0 {
            let parent = (at - 1) / 2;
            if !earlier(&timer, &self.timers[parent]) {
                break;
            }
            let moved = self.timers[parent];
            self.heap_set(at, moved);
            at = parent;
        }
        self.heap_set(at, timer);
    }

    fn sift_down(&mut self, mut at: usize) {
        let timer = self.timers[at];
        let len = self.timers.len();
        loop {
            let left = 2 * at + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let child = if right < len && earlier(&self.timers[right], &self.timers[left]) {
                right
            } else {
                left
            };
            if !earlier(&self.timers[child], &timer) {
                break;
            }
            let moved = self.timers[child];
            self.heap_set(at, moved);
            at = child;
        }
        self.heap_set(at, timer);
    }

    fn next_seq(&mut self) -> u32 {
        if self.timer_seq == u32::MAX {
            self.renumber_timers();
        }
        self.timer_seq += 1;
        self.timer_seq
    }

    /// Arming numbers ran out: number the deadlines afresh in their order
    /// (a sorted array is a valid heap), once every 4 billion arms.
    fn renumber_timers(&mut self) {
        self.timers
            .sort_unstable_by(|a, b| a.deadline.total_cmp(&b.deadline).then(a.seq.cmp(&b.seq)));
        for at in 0..self.timers.len() {
            let mut timer = self.timers[at];
            timer.seq = at as u32 + 1;
            self.heap_set(at, timer);
        }
        self.timer_seq = self.timers.len() as u32;
    }

    /// Arm (or re-key) the slot's one deadline at its entry's expiry.
    fn arm(&mut self, slot: u32) {
        let Some(expires) = self.conn(ConnId(slot)).map(|conn| conn.expires) else {
            return;
        };
        let timer = Timer {
            deadline: expires,
            seq: self.next_seq(),
            slot,
        };
        let pos = self.links[slot as usize];
        if pos == NO_POS {
            let len = self.timers.len();
            if len == self.timers.capacity() {
                let extra = self.grown_capacity(len).saturating_sub(len).max(1);
                self.timers.reserve_exact(extra);
            }
            self.timers.push(timer);
            self.sift_up(self.timers.len() - 1);
        } else {
            let at = pos as usize;
            self.timers[at] = timer;
            self.sift_up(at);
            let at = self.links[slot as usize] as usize;
            self.sift_down(at);
        }
    }

    fn disarm(&mut self, slot: u32) {
        let pos = self.links[slot as usize];
        if pos == NO_POS {
            return;
        }
        self.links[slot as usize] = NO_POS;
        self.remove_timer_at(pos as usize);
    }

    fn remove_timer_at(&mut self, at: usize) {
        let Some(last) = self.timers.pop() else {
            return;
        };
        if at < self.timers.len() {
            self.heap_set(at, last);
            self.sift_up(at);
            let at = self.links[last.slot as usize] as usize;
            self.sift_down(at);
        }
    }

    // -- lookup ----------------------------------------------------------------

    /// Find a live confirmed entry by either tuple; reap it if it has expired.
    pub fn lookup(
        &mut self,
        family: u8,
        proto: u8,
        tuple: &Tuple,
        zone: u16,
        now: f64,
        hooks: &mut dyn ExpectHooks,
    ) -> Option<(ConnId, u8)> {
        let (slot, direction) = self.index_find(family, proto, zone, tuple)?;
        let expires = self.conn(ConnId(slot))?.expires;
        if expires <= now {
            self.destroy(ConnId(slot), expires, CAUSE_TIMEOUT, hooks);
            return None;
        }
        Some((ConnId(slot), direction))
    }

    /// The table as an ICMP error handler sees it (`ConnLookup`), at `now`.
    pub fn lookup_view<'a>(
        &'a mut self,
        now: f64,
        hooks: &'a mut dyn ExpectHooks,
    ) -> TableLookup<'a> {
        TableLookup {
            table: self,
            hooks,
            now,
        }
    }

    // -- the per-packet path ---------------------------------------------------

    /// nf_conntrack_in: attach an entry and a ctinfo to the packet.
    pub fn classify(
        &mut self,
        pkt: &Packet,
        now: f64,
        in_prerouting: bool,
        zone: u16,
        hooks: &mut dyn ExpectHooks,
    ) -> CtResult {
        self.release_pending();
        self.invalid_of = None;
        if self.gc_due(now) {
            self.gc(now, hooks);
        }
        if let Some(error) = &pkt.error {
            self.stats.invalid += 1;
            return invalid(Cow::Owned(format!("malformed: {error}")));
        }
        if pkt.is_later_fragment() {
            self.stats.invalid += 1;
            return invalid(Cow::Borrowed(
                "a non-first fragment reached conntrack unreassembled",
            ));
        }
        if pkt.proto == PROTO_ICMP || pkt.proto == PROTO_ICMPV6 {
            if let Some(handled) = self.icmp_error(pkt, now, in_prerouting, zone, hooks) {
                return handled;
            }
        }
        if let Some(reason) = l4_error(pkt, &self.cfg, in_prerouting) {
            if self.full() && !self.allocated_for_invalid(pkt, now, zone, hooks) {
                return self.table_full();
            }
            self.stats.invalid += 1;
            return invalid(reason);
        }
        for _attempt in 0..2 {
            if let Some(result) = self.resolve_and_track(pkt, now, zone, hooks) {
                return result;
            }
        }
        // A tracker asking to reopen twice for one packet is a tracker bug;
        // the packet goes untracked-invalid rather than looping.
        self.stats.invalid += 1;
        invalid(Cow::Borrowed(
            "tracker asked to reopen a connection twice for one packet",
        ))
    }

    /// Could the kernel allocate the entry it builds before its tracker says
    /// INVALID? TCP, UDP and SCTP validate inside their packet function,
    /// after the lookup missed and the entry was allocated; the ICMP checks
    /// run first.
    fn allocated_for_invalid(
        &mut self,
        pkt: &Packet,
        now: f64,
        zone: u16,
        hooks: &mut dyn ExpectHooks,
    ) -> bool {
        if pkt.proto == PROTO_ICMP || pkt.proto == PROTO_ICMPV6 {
            return true;
        }
        let tuple = Tuple::new(pkt.src, pkt.dst, pkt.sport, pkt.dport);
        if self
            .lookup(pkt.family, pkt.proto, &tuple, zone, now, hooks)
            .is_some()
        {
            return true;
        }
        if l4_invert(pkt.proto, pkt.family, &tuple).is_none() {
            return true;
        }
        self.admit(pkt, zone, now, hooks)
    }

    fn icmp_error(
        &mut self,
        pkt: &Packet,
        now: f64,
        in_prerouting: bool,
        zone: u16,
        hooks: &mut dyn ExpectHooks,
    ) -> Option<CtResult> {
        let cfg = self.cfg.clone();
        let outcome = {
            let mut view = self.lookup_view(now, hooks);
            proto_icmp::error_handler(pkt, &cfg, in_prerouting, zone, &mut view)
        };
        match outcome {
            IcmpErrorOutcome::NotAnError => None,
            IcmpErrorOutcome::Related {
                conn,
                direction,
                reason,
            } => {
                let ctinfo = if direction == REPLY {
                    CT_RELATED_REPLY
                } else {
                    CT_RELATED
                };
                Some(CtResult::new(ctinfo, Some(conn), reason))
            }
            IcmpErrorOutcome::Untracked(reason) => Some(untracked(reason)),
            IcmpErrorOutcome::Invalid(reason) => {
                self.stats.error += 1;
                Some(invalid(reason))
            }
        }
    }

    /// One lookup-and-track pass; None asks the caller to start again (TCP reopen).
    fn resolve_and_track(
        &mut self,
        pkt: &Packet,
        now: f64,
        zone: u16,
        hooks: &mut dyn ExpectHooks,
    ) -> Option<CtResult> {
        let tuple = Tuple::new(pkt.src, pkt.dst, pkt.sport, pkt.dport);
        let found = self.lookup(pkt.family, pkt.proto, &tuple, zone, now, hooks);
        let (slot, direction, unconfirmed) = match found {
            Some((id, direction)) => (id.0, direction, false),
            None => {
                let Some(reply) = l4_invert(pkt.proto, pkt.family, &tuple) else {
                    self.stats.invalid += 1;
                    return Some(invalid(Cow::Owned(format!(
                        "{} type {} cannot start a connection (no reply type)",
                        tracker_name(pkt.proto),
                        pkt.dport >> 8
                    ))));
                };
                if self.full() && !self.admit(pkt, zone, now, hooks) {
                    return Some(self.table_full());
                }
                match self.new_entry(pkt, tuple, reply, now, zone, hooks) {
                    Ok(slot) => (slot, ORIGINAL, true),
                    Err(reason) => {
                        self.stats.invalid += 1;
                        return Some(invalid(reason));
                    }
                }
            }
        };
        let id = ConnId(slot);
        let Some(conn) = self.conns.get_mut(slot as usize).and_then(Option::as_mut) else {
            self.stats.invalid += 1;
            return Some(invalid(Cow::Borrowed("conntrack entry vanished")));
        };
        let ctinfo = ctinfo_of(conn, direction);
        let (old_state, old_status, old_expires) = (conn.proto_state, conn.status, conn.expires);
        let (action, reason) = l4_packet(conn, pkt, direction, ctinfo, now, &self.cfg);
        let counted = conn.status & IPS_ACCT_PENDING != 0;
        conn.status &= !IPS_ACCT_PENDING;
        let (status, expires) = (conn.status, conn.expires);
        if let (Action::Accept, true, Some(acct)) = (action, counted, self.acct.as_mut()) {
            // skb->len at the conntrack hook: the whole (reassembled) datagram.
            acct.add(id, direction, pkt.data.len() as u64);
        }
        match action {
            Action::Repeat => {
                if unconfirmed {
                    self.throw_away(slot, now, hooks);
                } else {
                    self.destroy(id, now, CAUSE_REOPENED, hooks);
                }
                return None;
            }
            Action::Invalid => {
                self.stats.invalid += 1;
                if unconfirmed {
                    self.throw_away(slot, now, hooks);
                } else {
                    self.invalid_of = Some(id);
                }
                return Some(invalid(reason));
            }
            Action::Drop => {
                self.stats.invalid += 1;
                self.stats.drop += 1;
                let mut result = CtResult::new(ctinfo, Some(id), reason);
                result.unconfirmed = unconfirmed;
                result.drop = true;
                return Some(result);
            }
            Action::Accept => {}
        }
        let mut result = CtResult::new(ctinfo, Some(id), reason);
        result.unconfirmed = unconfirmed;
        if expires < old_expires && !unconfirmed {
            self.arm(slot);
        }
        if status & IPS_DYING != 0 && !unconfirmed {
            // The tracker deleted it: the DESTROY shows the entry as it was
            // (still UNREPLIED), and nothing is reported for it afterwards.
            self.destroy(id, now, CAUSE_RESET, hooks);
            if direction == REPLY {
                if let Some(conn) = self.conn_mut(id) {
                    conn.status |= IPS_SEEN_REPLY;
                }
            }
            return Some(result);
        }
        let events = self.events.enabled();
        if let Some(conn) = self.conn_mut(id) {
            if direction == REPLY && conn.status & IPS_SEEN_REPLY == 0 {
                conn.status |= IPS_SEEN_REPLY;
            }
            if events {
                let gained = conn.status & !old_status;
                if gained & IPS_SEEN_REPLY != 0 {
                    conn.events |= IPCT_REPLY;
                }
                if gained & IPS_ASSURED != 0 {
                    conn.events |= IPCT_ASSURED;
                }
                if conn.proto_state != old_state {
                    conn.events |= IPCT_PROTOINFO;
                }
            }
        }
        Some(result)
    }

    fn new_entry(
        &mut self,
        pkt: &Packet,
        orig: Tuple,
        reply: Tuple,
        now: f64,
        zone: u16,
        hooks: &mut dyn ExpectHooks,
    ) -> Result<u32, Reason> {
        let mut conn = Conn::new(pkt.family, pkt.proto, zone, orig, reply, now);
        conn.first_packet = pkt.index;
        let slot = self
            .alloc_slot(conn)
            .ok_or(Cow::Borrowed("conntrack table has no free slot"))?;
        let id = ConnId(slot);
        if let Some(acct) = &mut self.acct {
            acct.start(id);
        }
        // The kernel consumes a matching expectation when it builds the
        // entry, before the tracker judges the packet: a rejected first
        // packet uses it up.
        let master = match self.conns.get(slot as usize).and_then(Option::as_ref) {
            Some(conn) => hooks.match_new(
                id,
                conn,
                pkt.index,
                now,
                &SlabView(&self.conns),
                &mut self.events,
            ),
            None => None,
        };
        let master_mark = master.and_then(|m| self.conn(m)).map_or(0, |m| m.mark);
        let Some(conn) = self.conns.get_mut(slot as usize).and_then(Option::as_mut) else {
            return Err(Cow::Borrowed("conntrack entry vanished"));
        };
        if let Some(master) = master {
            conn.master = Some(master);
            conn.status |= IPS_EXPECTED;
            conn.mark = master_mark;
        }
        if let Err(reason) = l4_new(conn, pkt, &self.cfg) {
            self.throw_away(slot, now, hooks);
            return Err(reason);
        }
        Ok(slot)
    }

    /// An entry that never made it into the table goes at once; the
    /// expectation table hears of it like of any death, so nothing it
    /// keeps under this id outlives the slot (slots are reused).
    fn throw_away(&mut self, slot: u32, now: f64, hooks: &mut dyn ExpectHooks) {
        self.release_now(slot);
        hooks.master_destroyed(ConnId(slot), now, &mut self.events);
    }

    // -- the table limit (__nf_conntrack_alloc) -----------------------------------

    /// Would one more entry exceed nf_conntrack_max (0: unlimited)?
    fn full(&self) -> bool {
        let limit = self.cfg.nf_conntrack_max;
        limit != 0 && self.count as u64 >= limit
    }

    /// Evict to make room for the packet's entry; false when nothing could go.
    fn admit(&mut self, pkt: &Packet, zone: u16, now: f64, hooks: &mut dyn ExpectHooks) -> bool {
        if self.buckets.is_none() {
            self.build_buckets();
        }
        let tuple = Tuple::new(pkt.src, pkt.dst, pkt.sport, pkt.dport);
        let hash = tuple_hash(pkt.family, pkt.proto, zone, &tuple);
        let drops = self.early_drop(hash, now, hooks);
        if drops > 0 {
            self.stats.early_drop += drops;
            return true;
        }
        if self.gc_early_drop_at.is_none() {
            self.gc_early_drop_at = Some(now + GC_EARLY_DROP_DELAY);
        }
        false
    }

    fn table_full(&mut self) -> CtResult {
        self.stats.drop += 1;
        let mut result = invalid(Cow::Owned(format!(
            "conntrack table full, no entry could be evicted (nf_conntrack_max={})",
            self.cfg.nf_conntrack_max
        )));
        result.drop = true;
        result
    }

    pub(crate) fn build_buckets(&mut self) {
        let mut index = BucketIndex::new(self.cfg.nf_conntrack_buckets);
        index.reserve_slots(self.conns.capacity());
        for id in self.in_order() {
            let [orig, reply] = self.slot_hashes(id.0);
            index.add(id.0, ORIGINAL, orig);
            index.add(id.0, REPLY, reply);
        }
        self.buckets = Some(index);
    }

    /// early_drop: delete the candidates of the first chain in range that
    /// has any; how many went.
    pub(crate) fn early_drop(&mut self, hash: u64, now: f64, hooks: &mut dyn ExpectHooks) -> u64 {
        let Some(size) = self.buckets.as_ref().map(BucketIndex::size) else {
            return 0;
        };
        let start = bucket_of(hash, size);
        let mut chain = std::mem::take(&mut self.scratch);
        let mut drops = 0;
        for step in 0..NF_CT_EVICTION_RANGE {
            let bucket = ((u64::from(start) + u64::from(step)) % u64::from(size)) as u32;
            if let Some(index) = &self.buckets {
                index.snapshot(bucket, &mut chain);
            }
            for &slot in &chain {
                let Some((status, expires)) =
                    self.conn(ConnId(slot)).map(|c| (c.status, c.expires))
                else {
                    continue;
                };
                if status & IPS_DYING != 0 {
                    continue;
                }
                if expires <= now {
                    self.destroy(ConnId(slot), expires, CAUSE_TIMEOUT, hooks);
                    continue;
                }
                if status & IPS_ASSURED != 0 {
                    continue;
                }
                self.destroy(ConnId(slot), now, CAUSE_EARLY_DROP, hooks);
                drops += 1;
            }
            if drops > 0 {
                break;
            }
        }
        self.scratch = chain;
        drops
    }

    /// One GC run in early-drop mode: buckets in order, while the table is
    /// at least 95 % full.
    fn gc_early_drop(&mut self, now: f64, hooks: &mut dyn ExpectHooks) -> usize {
        let max95 = gc_threshold(self.cfg.nf_conntrack_max);
        let Some(size) = self.buckets.as_ref().map(BucketIndex::size) else {
            return 0;
        };
        if max95 == 0 {
            return 0;
        }
        let mut chain = std::mem::take(&mut self.scratch);
        let mut killed = 0;
        for bucket in 0..size {
            match &self.buckets {
                Some(index) if index.occupied(bucket) => index.snapshot(bucket, &mut chain),
                _ => continue,
            }
            for &slot in &chain {
                let Some(conn) = self.conn(ConnId(slot)) else {
                    continue;
                };
                if conn.status & IPS_DYING != 0 {
                    continue;
                }
                let expires = conn.expires;
                if expires <= now {
                    self.destroy(ConnId(slot), expires, CAUSE_TIMEOUT, hooks);
                    continue;
                }
                if self.count as u64 >= max95 && gc_evictable(conn) {
                    self.destroy(ConnId(slot), now, CAUSE_GC_EARLY_DROP, hooks);
                    killed += 1;
                }
            }
        }
        self.scratch = chain;
        killed
    }

    // -- the garbage collector (gc_worker) ------------------------------------------

    /// Reap every entry that expired by `now`, each at its expiry; returns
    /// how many. Also runs the GC's early-drop pass when a table-full drop
    /// asked for it.
    pub fn gc(&mut self, now: f64, hooks: &mut dyn ExpectHooks) -> usize {
        let mut reaped = 0;
        if let Some(when) = self.gc_early_drop_at {
            if when <= now {
                reaped += self.reap(when, hooks);
                self.gc_early_drop_at = None;
                if self.buckets.is_some() {
                    reaped += self.gc_early_drop(when, hooks);
                }
            }
        }
        reaped + self.reap(now, hooks)
    }

    /// Reap every entry that has timed out by `now`; returns how many.
    pub fn expire(&mut self, now: f64, hooks: &mut dyn ExpectHooks) -> usize {
        self.gc(now, hooks)
    }

    fn reap(&mut self, now: f64, hooks: &mut dyn ExpectHooks) -> usize {
        let mut reaped = 0;
        while let Some(&top) = self.timers.first() {
            if top.deadline > now || top.deadline.is_nan() {
                break;
            }
            let slot = top.slot;
            let live = self.state.get(slot as usize) == Some(&SlotState::Confirmed);
            let expires = match self.conn(ConnId(slot)) {
                Some(conn) if live => conn.expires,
                _ => {
                    // Cannot happen (removal disarms); never loop on it.
                    self.remove_timer_at(0);
                    continue;
                }
            };
            if top.deadline < expires {
                // Refreshed since: wait for the new deadline.
                self.arm(slot);
                continue;
            }
            self.destroy(ConnId(slot), expires, CAUSE_TIMEOUT, hooks);
            reaped += 1;
        }
        reaped
    }

    // -- confirmation and removal ------------------------------------------------------

    /// The last hook: insert a new entry, deliver cached events.
    /// False when the entry cannot be inserted (the packet is dropped).
    pub fn confirm(
        &mut self,
        result: &mut CtResult,
        now: f64,
        hooks: &mut dyn ExpectHooks,
    ) -> bool {
        let Some(id) = result.conn else {
            return true;
        };
        let slot = id.0;
        if result.unconfirmed && result.ctinfo < CT_ESTABLISHED_REPLY {
            if self.clashes(id) {
                // __nf_conntrack_confirm: a tuple already in the table (NAT found
                // no free one) cannot be inserted; the packet is dropped.
                self.stats.insert_failed += 1;
                self.stats.drop += 1;
                self.discard(result);
                hooks.master_destroyed(id, now, &mut self.events);
                return false;
            }
            result.unconfirmed = false;
            if let Some(conn) = self.conn_mut(id) {
                conn.status &= !IPS_NAT_UNVERIFIED;
            }
            if self.state.get(slot as usize) == Some(&SlotState::Unconfirmed) {
                self.insert(slot);
                let events = self.events.enabled();
                let Some(conn) = self.conn_mut(id) else {
                    return true;
                };
                if events {
                    conn.events |= if conn.master.is_some() {
                        IPCT_RELATED
                    } else {
                        IPCT_NEW
                    };
                }
                if conn.status & IPS_DYING != 0 {
                    self.destroy(id, now, CAUSE_RESET, hooks);
                    return true;
                }
            }
        }
        if !self.events.enabled() {
            return true;
        }
        let Some(conn) = self.conns.get_mut(slot as usize).and_then(Option::as_mut) else {
            return true;
        };
        if conn.events != 0 && conn.status & IPS_CONFIRMED != 0 && conn.status & IPS_DYING == 0 {
            self.events.push(ConntrackEvent::cached(conn, now));
            conn.events = 0;
        }
        true
    }

    /// Would inserting the unconfirmed entry `id` clash with one in the
    /// table? Only a NAT binding can make it so, one NAT did not find free
    /// (IPS_NAT_UNVERIFIED): its reply tuple is the one the port search
    /// ended on when every port was taken. (The original tuple was looked up
    /// when the packet arrived, and nothing was inserted since.)
    fn clashes(&self, id: ConnId) -> bool {
        let Some(conn) = self.conn(id) else {
            return false;
        };
        if conn.status & IPS_NAT_UNVERIFIED == 0 {
            return false;
        }
        let reply = conn.reply;
        self.index_find(conn.family, conn.proto, conn.zone, &reply)
            .is_some()
    }

    fn insert(&mut self, slot: u32) {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let Some(conn) = self.conn_mut(ConnId(slot)) else {
            return;
        };
        conn.status |= IPS_CONFIRMED;
        conn.id = id;
        let hashes = self.slot_hashes(slot);
        self.state[slot as usize] = SlotState::Confirmed;
        self.unconfirmed -= 1;
        self.index_insert(slot, hashes);
        self.count += 1;
        self.arm(slot);
        if let Some(index) = &mut self.buckets {
            index.add(slot, ORIGINAL, hashes[0]);
            index.add(slot, REPLY, hashes[1]);
        }
        if let Some(log) = self.history.as_deref_mut() {
            let conns = &self.conns;
            let get = |at: u32| conns.get(at as usize).and_then(Option::as_ref);
            if let Some(conn) = get(slot) {
                log.confirmed(ConnId(slot), conn, conn.master.and_then(|m| get(m.0)));
            }
        }
    }

    /// The packet was dropped: an unconfirmed entry dies with it (its slot
    /// is released at the next classify; the caller tells the expectation
    /// table).
    pub fn discard(&mut self, result: &mut CtResult) {
        if !result.unconfirmed {
            return;
        }
        result.unconfirmed = false;
        if let Some(id) = result.conn {
            let s = id.0 as usize;
            if self.state.get(s) == Some(&SlotState::Unconfirmed) {
                self.state[s] = SlotState::Removed;
                self.unconfirmed -= 1;
                self.defer_release(id.0);
            }
        }
    }

    /// Remove an entry (expiry, RST, reopen, eviction) and report DESTROY.
    pub fn destroy(
        &mut self,
        id: ConnId,
        now: f64,
        cause: &'static str,
        hooks: &mut dyn ExpectHooks,
    ) {
        let slot = id.0;
        if self.state.get(slot as usize) != Some(&SlotState::Confirmed) {
            return;
        }
        let hashes = self.slot_hashes(slot);
        self.index_remove(slot, hashes);
        self.state[slot as usize] = SlotState::Removed;
        self.count -= 1;
        if let Some(conn) = self.conn_mut(id) {
            conn.status |= IPS_DYING;
        }
        self.disarm(slot);
        if let Some(index) = &mut self.buckets {
            index.remove(slot, hashes);
        }
        hooks.master_destroyed(id, now, &mut self.events);
        if let (Some(log), Some(conn)) = (
            self.history.as_deref_mut(),
            self.conns.get(slot as usize).and_then(Option::as_ref),
        ) {
            let counters = self.acct.as_ref().map(|a| a.get(id)).unwrap_or_default();
            log.destroyed(conn, counters, now, cause);
        }
        if self.events.enabled() {
            let counters = self.listed_counters(id);
            if let Some(conn) = self.conns.get(slot as usize).and_then(Option::as_ref) {
                self.events.push(ConntrackEvent::destroyed(
                    conn,
                    now,
                    cause,
                    counters.as_ref(),
                ));
            }
        }
        self.defer_release(slot);
    }
}

/// What `-m connlimit` asks of the table about a connection it counted
/// (nf_conncount's find_or_evict and already_closed): is it still listed,
/// confirmed, not dying, not expired and, for TCP, not closed?
impl ConnAlive for ConntrackTable {
    fn alive(&self, key: &ConnKey, now: f64) -> bool {
        let Some((slot, _)) = self.index_find(key.family, key.proto, key.zone, &key.orig) else {
            return false;
        };
        let Some(conn) = self.conn(ConnId(slot)) else {
            return false;
        };
        let closed =
            conn.proto == PROTO_TCP && matches!(conn.proto_state, TCP_TIME_WAIT | TCP_CLOSE);
        conn.status & IPS_CONFIRMED != 0
            && conn.status & IPS_DYING == 0
            && conn.expires > now
            && !closed
    }
}

impl ConnView for ConntrackTable {
    fn get_conn(&self, id: ConnId) -> Option<&Conn> {
        self.conn(id)
    }
}

/// The table with the expectation hooks and the clock an ICMP error handler
/// needs: its lookups reap expired entries as `classify`'s do.
pub struct TableLookup<'a> {
    pub table: &'a mut ConntrackTable,
    pub hooks: &'a mut dyn ExpectHooks,
    pub now: f64,
}

impl ConnLookup for TableLookup<'_> {
    fn lookup(&mut self, family: u8, proto: u8, tuple: &Tuple, zone: u16) -> Option<(ConnId, u8)> {
        self.table
            .lookup(family, proto, tuple, zone, self.now, &mut *self.hooks)
    }

    fn conn(&self, id: ConnId) -> &Conn {
        self.table.conn(id).unwrap_or(&NO_CONN)
    }
}
