//! Expectations: "a connection like THIS belongs to that master"
//! (nf_conntrack_expect.c).
//!
//! A helper that reads an announcement on a master connection (an FTP PORT
//! command, an IRC DCC offer, a TFTP request) registers an `Expectation`
//! with `related` (nf_ct_expect_related):
//!
//! * the walk over expectations with the same destination
//!   (`__nf_ct_expect_check`) replaces an identical one of the same master
//!   and refuses one that clashes with another expectation (`expect_clash`);
//! * the master's `max_expected` per class is enforced by evicting its
//!   oldest expectation of that class (`evict_oldest_expect`);
//! * the namespace cap `nf_conntrack_expect_max` refuses insertion when full.
//!
//! `find_new` (nf_ct_find_expectation, from init_conntrack) runs when a
//! packet creates a brand-new entry: a match is consumed at once. The
//! destination, protocol, family and zone must be equal; only the source
//! address and port are masked.
//!
//! Expectations die at their nominal expiry, when consumed, replaced or
//! evicted, and all at once when their master dies (`master_destroyed`,
//! nf_ct_remove_expectations).
//!
//! Expectations refer to their master by `ConnId` and copy what they print
//! of it. Removed expectations free their slot at once; the timer heap may
//! hold entries of removed ones, but it is rebuilt whenever those outnumber
//! the live ones, so memory stays proportional to `nf_conntrack_expect_max`.
//!
//! How the core drives it: on a new entry, `find_new` with the entry's id
//! (its RELATED reason is kept under that id) and a judge of masters
//! (confirmed and not dying: `master_usable`); on every entry that dies or
//! is thrown away unconfirmed, `master_destroyed`. Events, when enabled,
//! collect in the table in the order they happen; the caller drains them
//! with `take_events` after each of those calls so they interleave with its
//! own. The `ExpectHooks` impl serves cores that cannot judge masters: the
//! table then remembers which master announced while unconfirmed.
//!
//! The table also holds the helpers' per-connection data (FTP's newline
//! positions) and their module parameters, keyed by the master's id and
//! dropped when the master dies.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::fmt::Write;

use crate::config::HelperParams;
use crate::conntrack::conn::{Conn, ConnId, Tuple, IPS_CONFIRMED, IPS_DYING};
use crate::conntrack::events::{ConntrackEvent, EventKind, EventLog};
use crate::conntrack::l4proto::{ConnView, ExpectHooks};
use crate::packet::{PROTO_SCTP, PROTO_TCP, PROTO_UDP, PROTO_UDPLITE};
use crate::reason::Reason;

// Expectation flags (NF_CT_EXPECT_*), in the order listings print them.
pub const EXP_F_PERMANENT: u32 = 0x1;
pub const EXP_F_INACTIVE: u32 = 0x2;
pub const EXP_F_USERSPACE: u32 = 0x4;
const FLAG_NAMES: [(u32, &str); 3] = [
    (EXP_F_PERMANENT, "PERMANENT"),
    (EXP_F_INACTIVE, "INACTIVE"),
    (EXP_F_USERSPACE, "USERSPACE"),
];

/// The kernel's cap on max_expected (NF_CT_EXPECT_MAX_CNT); a policy of 0 means it.
pub const EXPECT_MAX_CNT: u32 = 255;

/// One (helper, class) policy: struct nf_conntrack_expect_policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectPolicy {
    pub max_expected: u32,
    pub timeout: u32,
    /// Only SIP names its classes ("signalling", "audio", ...).
    pub name: &'static str,
}

impl ExpectPolicy {
    pub const fn new(max_expected: u32, timeout: u32) -> Self {
        ExpectPolicy {
            max_expected,
            timeout,
            name: "",
        }
    }
}

/// One struct nf_conntrack_expect, plus where and why it was announced.
///
/// `src` is kept as the helper gave it (not masked): listings print it so.
/// Wildcard fields have mask 0 and value 0.
#[derive(Clone, Debug, PartialEq)]
pub struct Expectation {
    pub family: u8,
    pub proto: u8,
    pub zone: u16,
    pub src: u128,
    pub src_mask: u128,
    pub sport: u16,
    pub sport_mask: u16,
    pub dst: u128,
    pub dport: u16,
    pub master: ConnId,
    /// The master's original tuple (listings and reasons print it).
    pub master_orig: Tuple,
    pub helper: &'static str,
    pub klass: u8,
    pub flags: u32,
    pub policy_name: &'static str,
    pub created: f64,
    pub expires: f64,
    /// The 0-based index of the announcing packet, if one did.
    pub packet_index: Option<u64>,
    pub description: &'static str,
    /// Set by a NAT helper: the child connection follows the master's NAT.
    pub nat: Option<ExpectNat>,
}

/// What a NAT helper keeps in an expectation for the connection it
/// expects (exp->saved_proto, exp->dir, expectfn nf_nat_follow_master): the
/// port the announcement originally named, and the master's direction the
/// connection will come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectNat {
    pub saved_port: u16,
    pub dir: u8,
}

/// Why an expectation could not be inserted; `busy` when it clashes with
/// another (-EBUSY: a NAT helper then tries another port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub busy: bool,
}

impl Refusal {
    fn new(reason: impl Into<Reason>, busy: bool) -> Self {
        Refusal {
            reason: reason.into(),
            busy,
        }
    }
}

impl Expectation {
    /// An expectation of `master` (id `master_id`): family and zone come from it.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        master: &Conn,
        master_id: ConnId,
        helper: &'static str,
        proto: u8,
        src: u128,
        src_mask: u128,
        sport: u16,
        sport_mask: u16,
        dst: u128,
        dport: u16,
    ) -> Self {
        Expectation {
            family: master.family,
            proto,
            zone: master.zone,
            src,
            src_mask,
            sport,
            sport_mask,
            dst,
            dport,
            master: master_id,
            master_orig: master.orig,
            helper,
            klass: 0,
            flags: 0,
            policy_name: "",
            created: 0.0,
            expires: 0.0,
            packet_index: None,
            description: "",
            nat: None,
        }
    }

    /// Whole seconds left, truncated toward zero as the listings print them.
    pub fn remaining(&self, now: f64) -> i64 {
        (self.expires - now) as i64
    }

    /// expect_matches: identical tuple and mask (the destination is the bucket key).
    pub fn same_as(&self, other: &Expectation) -> bool {
        self.src == other.src
            && self.src_mask == other.src_mask
            && self.sport == other.sport
            && self.sport_mask == other.sport_mask
    }

    /// expect_clash: some source would match both (compared under both masks).
    pub fn clashes_with(&self, other: &Expectation) -> bool {
        let mask = self.src_mask & other.src_mask;
        let port_mask = self.sport_mask & other.sport_mask;
        (self.src ^ other.src) & mask == 0 && (self.sport ^ other.sport) & port_mask == 0
    }

    fn key(&self) -> BucketKey {
        BucketKey {
            dst: self.dst,
            dport: self.dport,
            proto: self.proto,
            zone: self.zone,
            family: self.family,
        }
    }
}

/// An exact-match address mask for the family.
pub fn full_mask(family: u8) -> u128 {
    if family == 4 {
        0xFFFF_FFFF
    } else {
        u128::MAX
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct BucketKey {
    dst: u128,
    dport: u16,
    proto: u8,
    zone: u16,
    family: u8,
}

/// The expectation columns of /proc/net/stat/nf_conntrack.
pub use crate::conntrack::stats::ExpectCounters as ExpectStats;

/// Where an expected connection came from (for its RELATED reason).
#[derive(Clone, Debug, PartialEq)]
pub struct Origin {
    pub helper: &'static str,
    pub family: u8,
    pub master_orig: Tuple,
    pub description: &'static str,
    pub packet_index: Option<u64>,
    /// The master and what its NAT helper kept, when the child follows its NAT.
    pub follow: Option<(ConnId, ExpectNat)>,
}

impl Origin {
    /// 'RELATED: expected by ftp control A:p → B:21, PORT command in packet #9'.
    pub fn reason(&self) -> String {
        let mut text = String::with_capacity(120);
        let _ = write!(text, "RELATED: expected by {} control ", self.helper);
        write_endpoints(&mut text, self.family, &self.master_orig);
        text.push_str(", ");
        text.push_str(if self.description.is_empty() {
            "announcement"
        } else {
            self.description
        });
        if let Some(index) = self.packet_index {
            let _ = write!(text, " in packet #{}", index.wrapping_add(1));
        }
        text
    }
}

/// An expectation event kind (`conntrack -E expect`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectEventKind {
    New,
    Destroy,
}

impl ExpectEventKind {
    pub fn name(self) -> &'static str {
        match self {
            ExpectEventKind::New => "NEW",
            ExpectEventKind::Destroy => "DESTROY",
        }
    }

    /// The tag `conntrack -E` prints, right-aligned.
    pub fn tag(self) -> &'static str {
        match self {
            ExpectEventKind::New => "    [NEW]",
            ExpectEventKind::Destroy => "[DESTROY]",
        }
    }
}

/// One expectation event, formatted when it happened.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectEvent {
    pub ts: f64,
    pub kind: ExpectEventKind,
    /// The master's confirmation number (0 while it was unconfirmed).
    pub master_conn_id: u32,
    /// The expected connection's destination port (for tests and summaries).
    pub dport: u16,
    /// What follows the tag: the remaining time clamped at 0, then the
    /// `conntrack -L expect` line after its own timeout.
    pub body: String,
}

impl ExpectEvent {
    /// The line `conntrack -E expect` prints.
    pub fn line(&self) -> String {
        format!("{} {}", self.kind.tag(), self.body)
    }
}

/// A timer entry; it may outlive its expectation (then `gen` no longer matches).
#[derive(Clone, Copy, Debug)]
struct Timer {
    expires: f64,
    seq: u64,
    slot: u32,
    gen: u32,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    // Reversed: BinaryHeap is a max-heap and the earliest timer must be on top.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .expires
            .total_cmp(&self.expires)
            .then(other.seq.cmp(&self.seq))
    }
}

#[derive(Debug, Default)]
struct Slot {
    gen: u32,
    exp: Option<Expectation>,
}

/// A live expectation's handle (stale once it is removed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExpId {
    slot: u32,
    gen: u32,
}

/// struct nf_ct_ftp_master: sequence numbers just after a newline, per direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FtpState {
    pub after_nl: [NewlineSeqs; 2],
    /// Set for entries injected by conntrackd failover: parse the next
    /// segment once whatever its sequence number.
    pub pickup: [bool; 2],
}

/// Up to two remembered positions (update_nl_seq).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NewlineSeqs {
    seqs: [u32; 2],
    len: u8,
}

impl NewlineSeqs {
    pub fn as_slice(&self) -> &[u32] {
        self.seqs.get(..usize::from(self.len)).unwrap_or(&[])
    }

    pub fn contains(&self, seq: u32) -> bool {
        self.as_slice().contains(&seq)
    }

    /// Keep at most two positions, replacing the older by a newer one.
    pub fn remember(&mut self, seq: u32) {
        if self.contains(seq) {
            return;
        }
        if self.len < 2 {
            self.seqs[usize::from(self.len)] = seq;
            self.len += 1;
            return;
        }
        let oldest = if seq_before(self.seqs[0], self.seqs[1]) {
            0
        } else {
            1
        };
        if seq_before(self.seqs[oldest], seq) {
            self.seqs[oldest] = seq;
        }
    }
}

/// TCP sequence order (before(a, b)): a - b is negative as a 32-bit number.
pub fn seq_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// What the table keeps per master (struct nf_conn_help).
#[derive(Debug, Default)]
struct MasterState {
    /// Its expectations' slots, oldest first.
    exps: Vec<u32>,
    /// Listing order of masters: set when its list turns non-empty.
    order: u64,
    conn_id: u32,
    /// The packet during which it announced while still unconfirmed.
    unconfirmed_at: Option<u64>,
    ftp: Option<FtpState>,
}

/// One network namespace's expectations, and the helpers' state in it.
#[derive(Debug, Default)]
pub struct ExpectationTable {
    pub params: HelperParams,
    pub stats: ExpectStats,
    count: usize,
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_dst: HashMap<BucketKey, Vec<u32>>,
    masters: HashMap<ConnId, MasterState>,
    origins: HashMap<ConnId, Origin>,
    timers: BinaryHeap<Timer>,
    seq: u64,
    order: u64,
    events_enabled: bool,
    events: Vec<ExpectEvent>,
}

impl ExpectationTable {
    pub fn new(params: HelperParams) -> Self {
        ExpectationTable {
            params,
            ..Default::default()
        }
    }

    /// Record events (`conntrack -E expect`) from now on.
    pub fn set_events(&mut self, enabled: bool) {
        self.events_enabled = enabled;
    }

    /// Events recorded since the last call, in the order they happened.
    pub fn take_events(&mut self) -> Vec<ExpectEvent> {
        std::mem::take(&mut self.events)
    }

    /// Live expectations (including ones past their time not yet reaped).
    pub fn count(&self) -> usize {
        self.count
    }

    /// How many entries the timer heap holds (live and stale): bounded by
    /// twice the live count plus a constant.
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    /// Slots ever allocated (the high-water mark of live expectations).
    pub fn slot_capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn get(&self, id: ExpId) -> Option<&Expectation> {
        let slot = self.slots.get(id.slot as usize)?;
        if slot.gen != id.gen {
            return None;
        }
        slot.exp.as_ref()
    }

    /// Mutable access (e.g. `conntrack -U expect` flag changes).
    pub fn get_mut(&mut self, id: ExpId) -> Option<&mut Expectation> {
        let slot = self.slots.get_mut(id.slot as usize)?;
        if slot.gen != id.gen {
            return None;
        }
        slot.exp.as_mut()
    }

    fn exp(&self, slot: u32) -> Option<&Expectation> {
        self.slots.get(slot as usize).and_then(|s| s.exp.as_ref())
    }

    // -- helper data --------------------------------------------------------

    /// Note that the helper of `master` looks at a packet: remembers its
    /// confirmation number, and whether it is still unconfirmed.
    pub fn touch_master(&mut self, master: ConnId, conn: &Conn, packet_index: u64) {
        let state = self.masters.entry(master).or_default();
        state.conn_id = conn.id;
        state.unconfirmed_at = if conn.status & IPS_CONFIRMED == 0 {
            Some(packet_index)
        } else {
            None
        };
    }

    /// The master has been confirmed (its expectations may now be fulfilled).
    pub fn master_confirmed(&mut self, master: ConnId, conn_id: u32) {
        if let Some(state) = self.masters.get_mut(&master) {
            state.unconfirmed_at = None;
            state.conn_id = conn_id;
        }
    }

    /// FTP's per-connection state, created on first use.
    pub fn ftp_state(&mut self, master: ConnId) -> &mut FtpState {
        self.masters
            .entry(master)
            .or_default()
            .ftp
            .get_or_insert_with(FtpState::default)
    }

    /// FTP's per-connection state, if any.
    pub fn ftp_state_of(&self, master: ConnId) -> Option<&FtpState> {
        self.masters.get(&master).and_then(|s| s.ftp.as_ref())
    }

    /// Does the table keep anything for `master` (helper data or expectations)?
    pub fn knows_master(&self, master: ConnId) -> bool {
        self.masters.contains_key(&master)
    }

    // -- insertion (nf_ct_expect_related) -----------------------------------

    /// Insert `exp`; its handle on success, else why the kernel refuses it.
    ///
    /// `expect_max` is nf_conntrack_expect_max (read at each insertion).
    pub fn related(
        &mut self,
        exp: Expectation,
        policy: &ExpectPolicy,
        now: f64,
        expect_max: u64,
    ) -> Result<ExpId, Refusal> {
        self.expire(now);
        let key = exp.key();
        self.replace_or_clash(key, &exp, now)?;
        let limit = if policy.max_expected == 0 {
            EXPECT_MAX_CNT
        } else {
            policy.max_expected
        };
        if self.expecting(exp.master, exp.klass) >= limit as usize {
            self.evict_oldest(exp.master, exp.klass, now);
        }
        if self.count as u64 >= expect_max {
            return Err(Refusal::new(
                format!("expectation table full (nf_conntrack_expect_max={expect_max})"),
                false,
            ));
        }
        Ok(self.insert(key, exp, policy, now))
    }

    fn replace_or_clash(
        &mut self,
        key: BucketKey,
        exp: &Expectation,
        now: f64,
    ) -> Result<(), Refusal> {
        let Some(bucket) = self.by_dst.get(&key) else {
            return Ok(());
        };
        let mut replaced = None;
        for &slot in bucket {
            let Some(other) = self.exp(slot) else {
                continue;
            };
            if other.master == exp.master && other.same_as(exp) {
                if other.klass != exp.klass {
                    return Err(Refusal::new(
                        "the same tuple is already expected with another class",
                        false,
                    ));
                }
                replaced = Some(slot);
                break;
            }
            if other.clashes_with(exp) {
                let mut text = format!(
                    "it clashes with an expectation of {} control ",
                    other.helper
                );
                write_endpoints(&mut text, other.family, &other.master_orig);
                // The very same tuple of another master is -EALREADY, not -EBUSY.
                return Err(Refusal::new(text, !other.same_as(exp)));
            }
        }
        if let Some(slot) = replaced {
            self.remove_slot(slot, now);
        }
        Ok(())
    }

    fn expecting(&self, master: ConnId, klass: u8) -> usize {
        self.masters.get(&master).map_or(0, |state| {
            state
                .exps
                .iter()
                .filter(|&&slot| self.exp(slot).is_some_and(|e| e.klass == klass))
                .count()
        })
    }

    fn evict_oldest(&mut self, master: ConnId, klass: u8, now: f64) {
        let oldest = self.masters.get(&master).and_then(|state| {
            state
                .exps
                .iter()
                .copied()
                .find(|&slot| self.exp(slot).is_some_and(|e| e.klass == klass))
        });
        if let Some(slot) = oldest {
            self.remove_slot(slot, now);
        }
    }

    fn insert(
        &mut self,
        key: BucketKey,
        mut exp: Expectation,
        policy: &ExpectPolicy,
        now: f64,
    ) -> ExpId {
        exp.created = now;
        exp.expires = now + f64::from(policy.timeout);
        exp.policy_name = policy.name;
        let master = exp.master;
        let expires = exp.expires;
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let gen = match self.slots.get_mut(slot as usize) {
            Some(entry) => {
                entry.exp = Some(exp);
                entry.gen
            }
            None => 0,
        };
        self.by_dst.entry(key).or_default().push(slot);
        let state = self.masters.entry(master).or_default();
        if state.exps.is_empty() {
            self.order += 1;
            state.order = self.order;
        }
        state.exps.push(slot);
        self.seq += 1;
        self.timers.push(Timer {
            expires,
            seq: self.seq,
            slot,
            gen,
        });
        self.count += 1;
        self.stats.expect_create += 1;
        self.event(ExpectEventKind::New, slot, now);
        ExpId { slot, gen }
    }

    // -- matching a new connection (nf_ct_find_expectation) ------------------

    /// Find and consume the expectation the new entry `conn` fulfils; return
    /// its master.
    ///
    /// `child` is the new entry's id (its RELATED reason is kept under it).
    /// `usable` tells whether a master is confirmed and not dying; `None`
    /// lets the table judge from what it saw (an announcement made by a
    /// still unconfirmed master counts only after that packet).
    pub fn find_new(
        &mut self,
        child: Option<ConnId>,
        conn: &Conn,
        packet_index: u64,
        now: f64,
        usable: &dyn Fn(ConnId) -> Option<bool>,
    ) -> Option<ConnId> {
        if self.count == 0 {
            return None;
        }
        if self.timers.peek().is_some_and(|t| t.expires <= now) {
            self.expire(now);
        }
        let key = BucketKey {
            dst: conn.orig.dst,
            dport: conn.orig.dport,
            proto: conn.proto,
            zone: conn.zone,
            family: conn.family,
        };
        let bucket = self.by_dst.get(&key)?;
        let (src, sport) = (conn.orig.src, conn.orig.sport);
        let found = bucket.iter().copied().find(|&slot| {
            self.exp(slot).is_some_and(|exp| {
                exp.flags & EXP_F_INACTIVE == 0
                    && (src ^ exp.src) & exp.src_mask == 0
                    && (sport ^ exp.sport) & exp.sport_mask == 0
            })
        })?;
        let exp = self.exp(found)?;
        let master = exp.master;
        // The peer cannot know of an announcement that never left the machine.
        let ok = match usable(master) {
            Some(ok) => ok,
            None => self
                .masters
                .get(&master)
                .and_then(|s| s.unconfirmed_at)
                .is_none_or(|at| at != packet_index),
        };
        if !ok {
            return None;
        }
        let origin = Origin {
            helper: exp.helper,
            family: exp.family,
            master_orig: exp.master_orig,
            description: exp.description,
            packet_index: exp.packet_index,
            follow: exp.nat.map(|nat| (exp.master, nat)),
        };
        let permanent = exp.flags & EXP_F_PERMANENT != 0;
        if !permanent {
            self.remove_slot(found, now);
        }
        if let Some(child) = child {
            self.origins.insert(child, origin);
        }
        self.stats.expect_new += 1;
        Some(master)
    }

    // -- removal ------------------------------------------------------------

    /// An entry died (or was thrown away unconfirmed): drop its expectations,
    /// its helper data and its RELATED origin. Existing children survive.
    pub fn master_destroyed(&mut self, conn: ConnId, now: f64) {
        if let Some(state) = self.masters.remove(&conn) {
            for &slot in &state.exps {
                self.unlink(slot, now, Some(state.conn_id));
            }
            self.maybe_compact_timers();
        }
        self.origins.remove(&conn);
    }

    /// conntrack -D expect: remove one expectation.
    pub fn remove(&mut self, id: ExpId, now: f64) {
        if self.get(id).is_some() {
            self.remove_slot(id.slot, now);
        }
    }

    fn remove_slot(&mut self, slot: u32, now: f64) {
        self.unlink(slot, now, None);
        self.maybe_compact_timers();
    }

    /// Take the expectation out of every index, free its slot, report it.
    /// `detached`: the master's record is already gone (with its number).
    fn unlink(&mut self, slot: u32, now: f64, detached: Option<u32>) {
        let Some(entry) = self.slots.get_mut(slot as usize) else {
            return;
        };
        let Some(exp) = entry.exp.take() else {
            return;
        };
        entry.gen = entry.gen.wrapping_add(1);
        self.free.push(slot);
        let key = exp.key();
        if let Some(bucket) = self.by_dst.get_mut(&key) {
            if let Some(pos) = bucket.iter().position(|&s| s == slot) {
                bucket.remove(pos);
            }
            if bucket.is_empty() {
                self.by_dst.remove(&key);
            }
        }
        let mut conn_id = detached.unwrap_or(0);
        if detached.is_none() {
            if let Some(state) = self.masters.get_mut(&exp.master) {
                conn_id = state.conn_id;
                if let Some(pos) = state.exps.iter().position(|&s| s == slot) {
                    state.exps.remove(pos);
                }
                if state.exps.is_empty() {
                    state.exps = Vec::new();
                }
            }
        }
        self.count -= 1;
        self.stats.expect_delete += 1;
        if self.events_enabled {
            self.push_event(ExpectEventKind::Destroy, &exp, conn_id, now);
        }
    }

    /// Stale timer entries (of removed expectations) must not pile up: once
    /// they outnumber the live ones, drop them all.
    fn maybe_compact_timers(&mut self) {
        if self.timers.len() > 2 * self.count + 64 {
            let slots = &self.slots;
            self.timers.retain(|t| {
                slots
                    .get(t.slot as usize)
                    .is_some_and(|s| s.gen == t.gen && s.exp.is_some())
            });
        }
        if self.count == 0 && self.free.len() == self.slots.len() && self.slots.len() > 64 {
            // Everything is gone: give the memory back.
            self.slots = Vec::new();
            self.free = Vec::new();
            self.timers = BinaryHeap::new();
        }
    }

    /// Remove every expectation whose time is up at `now`; returns how many.
    pub fn expire(&mut self, now: f64) -> usize {
        let mut removed = 0;
        while let Some(top) = self.timers.peek().copied() {
            if top.expires > now {
                break;
            }
            self.timers.pop();
            let live = self
                .slots
                .get(top.slot as usize)
                .is_some_and(|s| s.gen == top.gen && s.exp.is_some());
            if live {
                self.unlink(top.slot, top.expires, None);
                removed += 1;
            }
        }
        if removed > 0 {
            self.maybe_compact_timers();
        }
        removed
    }

    // -- events -------------------------------------------------------------

    fn event(&mut self, kind: ExpectEventKind, slot: u32, now: f64) {
        if !self.events_enabled {
            return;
        }
        let Some(exp) = self.exp(slot).cloned() else {
            return;
        };
        let conn_id = self.masters.get(&exp.master).map_or(0, |s| s.conn_id);
        self.push_event(kind, &exp, conn_id, now);
    }

    fn push_event(&mut self, kind: ExpectEventKind, exp: &Expectation, conn_id: u32, now: f64) {
        let mut body = String::with_capacity(220);
        let _ = write!(body, "{} ", exp.remaining(now).max(0));
        write_expect_body(&mut body, exp);
        self.events.push(ExpectEvent {
            ts: now,
            kind,
            master_conn_id: conn_id,
            dport: exp.dport,
            body,
        });
    }

    // -- inspection ---------------------------------------------------------

    /// The expectations a listing at `now` shows (masters in the order they
    /// first expected, each one's oldest first).
    pub fn live(&self, now: f64) -> Vec<&Expectation> {
        let mut masters: Vec<&MasterState> = self
            .masters
            .values()
            .filter(|s| !s.exps.is_empty())
            .collect();
        masters.sort_by_key(|s| s.order);
        masters
            .into_iter()
            .flat_map(|s| s.exps.iter().filter_map(|&slot| self.exp(slot)))
            .filter(|e| e.expires > now)
            .collect()
    }

    /// Handles of the live expectations, in the order of `live`.
    pub fn live_ids(&self, now: f64) -> Vec<ExpId> {
        let mut masters: Vec<&MasterState> = self
            .masters
            .values()
            .filter(|s| !s.exps.is_empty())
            .collect();
        masters.sort_by_key(|s| s.order);
        let mut out = Vec::new();
        for state in masters {
            for &slot in &state.exps {
                if let Some(entry) = self.slots.get(slot as usize) {
                    if entry.exp.as_ref().is_some_and(|e| e.expires > now) {
                        out.push(ExpId {
                            slot,
                            gen: entry.gen,
                        });
                    }
                }
            }
        }
        out
    }

    pub fn of_master(&self, master: ConnId) -> Vec<&Expectation> {
        self.masters
            .get(&master)
            .map(|s| s.exps.iter().filter_map(|&slot| self.exp(slot)).collect())
            .unwrap_or_default()
    }

    /// The expectation an expected connection was created from.
    pub fn origin(&self, child: ConnId) -> Option<&Origin> {
        self.origins.get(&child)
    }

    /// The master and NAT data of a child that follows its master's NAT.
    pub fn follow_of(&self, child: ConnId) -> Option<(ConnId, ExpectNat)> {
        self.origins.get(&child).and_then(|origin| origin.follow)
    }

    /// 'RELATED: expected by ftp control A:p → B:21, PORT command in packet #9'.
    pub fn related_reason(&self, child: ConnId) -> Option<String> {
        self.origins.get(&child).map(Origin::reason)
    }
}

impl ExpectationTable {
    /// Hand this table's events to the conntrack event stream, in order
    /// (kept here while that stream is not recording).
    pub fn forward_events(&mut self, events: &mut EventLog) {
        if self.events.is_empty() || !events.enabled() {
            return;
        }
        for event in self.take_events() {
            let kind = match event.kind {
                ExpectEventKind::New => EventKind::New,
                ExpectEventKind::Destroy => EventKind::Destroy,
            };
            events.push(ConntrackEvent::of_expectation(
                kind,
                event.master_conn_id,
                event.ts,
                event.body,
            ));
        }
    }
}

impl ExpectHooks for ExpectationTable {
    fn match_new(
        &mut self,
        id: ConnId,
        conn: &Conn,
        packet_index: u64,
        now: f64,
        masters: &dyn ConnView,
        events: &mut EventLog,
    ) -> Option<ConnId> {
        let master = self.find_new(Some(id), conn, packet_index, now, &|m| {
            masters.get_conn(m).map(master_usable)
        });
        self.forward_events(events);
        master
    }

    fn master_destroyed(&mut self, master: ConnId, now: f64, events: &mut EventLog) {
        ExpectationTable::master_destroyed(self, master, now);
        self.forward_events(events);
    }
}

/// Whether a master may lend its expectations: confirmed and not dying.
pub fn master_usable(master: &Conn) -> bool {
    master.status & IPS_CONFIRMED != 0 && master.status & IPS_DYING == 0
}

// -- text -------------------------------------------------------------------

pub use crate::output::addr::{format_address_as as format_address, write_address};

/// A.B.C.D:port or [v6]:port, as people write them.
pub fn write_endpoint(out: &mut String, family: u8, address: u128, port: u16) {
    if family == 4 {
        write_address(out, family, address, false);
        let _ = write!(out, ":{port}");
    } else {
        out.push('[');
        write_address(out, family, address, false);
        let _ = write!(out, "]:{port}");
    }
}

pub fn endpoint(family: u8, address: u128, port: u16) -> String {
    let mut out = String::with_capacity(48);
    write_endpoint(&mut out, family, address, port);
    out
}

fn write_endpoints(out: &mut String, family: u8, t: &Tuple) {
    write_endpoint(out, family, t.src, t.sport);
    out.push_str(" → ");
    write_endpoint(out, family, t.dst, t.dport);
}

fn has_ports(proto: u8) -> bool {
    matches!(proto, PROTO_TCP | PROTO_UDP | PROTO_UDPLITE | PROTO_SCTP)
}

fn write_ports(out: &mut String, exp: &Expectation, sport: u16, dport: u16) {
    if has_ports(exp.proto) {
        let _ = write!(out, "sport={sport} dport={dport} ");
    }
}

fn write_flags(out: &mut String, flags: u32) {
    if flags == 0 {
        return;
    }
    let mut first = true;
    for (bit, name) in FLAG_NAMES {
        if flags & bit != 0 {
            if !first {
                out.push(',');
            }
            out.push_str(name);
            first = false;
        }
    }
    out.push(' ');
}

/// One line of /proc/net/nf_conntrack_expect (exp_seq_show), newline included.
pub fn proc_expect_line(exp: &Expectation, now: f64) -> String {
    let mut out = String::with_capacity(160);
    let l3num = if exp.family == 4 { 2 } else { 10 };
    let _ = write!(
        out,
        "{} l3proto = {l3num} proto={} src=",
        exp.remaining(now),
        exp.proto
    );
    write_address(&mut out, exp.family, exp.src, true);
    out.push_str(" dst=");
    write_address(&mut out, exp.family, exp.dst, true);
    out.push(' ');
    write_ports(&mut out, exp, exp.sport, exp.dport);
    write_flags(&mut out, exp.flags);
    out.push_str(exp.helper);
    if !exp.policy_name.is_empty() {
        out.push('/');
        out.push_str(exp.policy_name);
    }
    out.push('\n');
    out
}

/// One line of `conntrack -L expect` (conntrack-tools 1.4.7), no newline.
pub fn conntrack_expect_line(exp: &Expectation, now: f64) -> String {
    let mut out = String::with_capacity(220);
    let _ = write!(out, "{} ", exp.remaining(now));
    write_expect_body(&mut out, exp);
    out
}

/// One line of `conntrack -E expect`: the tag, the timeout, then the body.
pub fn conntrack_expect_event_line(
    kind: ExpectEventKind,
    exp: &Expectation,
    timeout: i64,
) -> String {
    let mut out = String::with_capacity(230);
    let _ = write!(out, "{} {timeout} ", kind.tag());
    write_expect_body(&mut out, exp);
    out
}

fn write_expect_body(out: &mut String, exp: &Expectation) {
    let fam = exp.family;
    let _ = write!(out, "proto={} src=", exp.proto);
    write_address(out, fam, exp.src, false);
    out.push_str(" dst=");
    write_address(out, fam, exp.dst, false);
    out.push(' ');
    write_ports(out, exp, exp.sport, exp.dport);
    out.push_str("mask-src=");
    write_address(out, fam, exp.src_mask, false);
    out.push_str(" mask-dst=");
    write_address(out, fam, full_mask(fam), false);
    out.push(' ');
    write_ports(out, exp, exp.sport_mask, 0xFFFF);
    out.push_str("master-src=");
    write_address(out, fam, exp.master_orig.src, false);
    out.push_str(" master-dst=");
    write_address(out, fam, exp.master_orig.dst, false);
    out.push(' ');
    write_ports(out, exp, exp.master_orig.sport, exp.master_orig.dport);
    write_flags(out, exp.flags);
    let _ = write!(out, "class={} helper={}", exp.klass, exp.helper);
}
