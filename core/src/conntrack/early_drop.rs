//! Making room in a full table (nf_conntrack_core.c: early_drop,
//! early_drop_list, gc_worker).
//!
//! How this works. The kernel's table is a hash of `nf_conntrack_buckets`
//! chains, and every entry sits in two of them (one per tuple). When a new
//! entry would push the namespace over `nf_conntrack_max`, `early_drop`
//! walks at most 8 consecutive chains starting at the new tuple's bucket; in
//! the first chain that holds any candidate it deletes *every* candidate:
//! entries that are confirmed, not dying and not ASSURED (expired ones met
//! on the way are reaped, not counted). Nothing deleted in 8 chains means
//! the packet is dropped, and the garbage collector's next run switches to
//! early-drop mode: while the count is at least 95 % of the maximum
//! (computed as `max / 100 * 95` in integers, so never below 100 entries) it
//! also deletes ASSURED entries the tracker calls evictable (TCP closing
//! states, SCTP shutdown states).
//!
//! The kernel's hash is keyed with a random boot-time secret, so no program
//! can know which entries share a chain on a given machine. `BucketIndex`
//! therefore uses its own deterministic hash of each tuple over the same
//! number of buckets: what gets evicted is decided exactly as the kernel
//! decides it, but which unassured entries happen to share a chain with the
//! new one is a plausible draw, not a prediction. Tests must only rely on
//! facts that hold for every hash.
//!
//! The index is built the first time the table is full and then maintained
//! on insert and delete, so tables that never fill up pay nothing for it.
//! Chains are intrusive lists threaded through per-slot links (one node per
//! tuple), so the index costs 16 bytes per slot plus 4 per bucket and
//! allocates only when the slab grows.

use crate::conntrack::conn::{Conn, IPS_ASSURED};
use crate::conntrack::{proto_sctp, proto_tcp};
use crate::packet::{PROTO_SCTP, PROTO_TCP};

pub const NF_CT_EVICTION_RANGE: u32 = 8;
/// The GC reschedules itself between 1 s and 60 s (GC_SCAN_INTERVAL_MIN/MAX);
/// its early-drop pass is modelled at the earliest moment it could run.
pub const GC_EARLY_DROP_DELAY: f64 = 1.0;

pub const CAUSE_EARLY_DROP: &str = "early drop (table full)";
pub const CAUSE_GC_EARLY_DROP: &str = "early drop by the garbage collector (table nearly full)";
pub const CAUSE_TIMEOUT: &str = "timeout";

/// A bound on the chain array: a bucket count beyond it only changes which
/// entries share a chain, and the hash is a stand-in anyway.
pub const MAX_BUCKETS: u64 = 1 << 24;

const NIL: u32 = u32::MAX;

/// A deterministic stand-in for hash_conntrack + reciprocal_scale: the upper
/// half of the tuple hash scaled to the bucket count.
pub fn bucket_of(hash: u64, buckets: u32) -> u32 {
    (((hash >> 32) * u64::from(buckets)) >> 32) as u32
}

/// The hash chains: bucket -> nodes, newest first (the kernel adds at the
/// head of a chain). Node `2 * slot + direction` stands for one tuple.
#[derive(Clone, Debug)]
pub struct BucketIndex {
    size: u32,
    heads: Vec<u32>,
    /// Per node: [newer, older] neighbours in its chain; UNLINKED when the
    /// node is in no chain.
    links: Vec<[u32; 2]>,
}

const UNLINKED: [u32; 2] = [NIL - 1, NIL - 1];

impl BucketIndex {
    pub fn new(buckets: u64) -> Self {
        let size = buckets.clamp(1, MAX_BUCKETS) as u32;
        BucketIndex {
            size,
            heads: vec![NIL; size as usize],
            links: Vec::new(),
        }
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    /// Bytes the index holds (chain heads and per-node links).
    pub fn heap_bytes(&self) -> usize {
        self.heads.capacity() * 4 + self.links.capacity() * 8
    }

    /// Room for the nodes of `slots` slots (the slab's capacity, so the
    /// links grow with the slab and carry no slack of their own).
    pub fn reserve_slots(&mut self, slots: usize) {
        let nodes = slots * 2;
        if self.links.len() < nodes {
            self.links.reserve_exact(nodes - self.links.len());
            self.links.resize(nodes, UNLINKED);
        }
    }

    /// Link one tuple of `slot` (hash `hash`) at the head of its chain.
    pub fn add(&mut self, slot: u32, direction: u8, hash: u64) {
        let node = slot as usize * 2 + usize::from(direction & 1);
        if self.links.len() <= node {
            self.reserve_slots(node / 2 + 1);
        }
        if self.links[node] != UNLINKED {
            return;
        }
        let b = bucket_of(hash, self.size) as usize;
        let head = self.heads[b];
        self.links[node] = [NIL, head];
        if head != NIL {
            self.links[head as usize][0] = node as u32;
        }
        self.heads[b] = node as u32;
    }

    /// Unlink both tuples of `slot`, whose tuple hashes are `hashes`.
    pub fn remove(&mut self, slot: u32, hashes: [u64; 2]) {
        for (direction, hash) in hashes.into_iter().enumerate() {
            let node = slot as usize * 2 + direction;
            let Some(&[newer, older]) = self.links.get(node) else {
                return;
            };
            if [newer, older] == UNLINKED {
                continue;
            }
            if newer == NIL {
                self.heads[bucket_of(hash, self.size) as usize] = older;
            } else {
                self.links[newer as usize][1] = older;
            }
            if older != NIL {
                self.links[older as usize][0] = newer;
            }
            self.links[node] = UNLINKED;
        }
    }

    /// Copy one chain's slots, newest first, into `out` (so entries can be
    /// deleted while the copy is walked).
    pub fn snapshot(&self, bucket: u32, out: &mut Vec<u32>) {
        out.clear();
        let mut node = self.heads.get(bucket as usize).copied().unwrap_or(NIL);
        while node != NIL {
            out.push(node >> 1);
            node = self.links.get(node as usize).map_or(NIL, |l| l[1]);
        }
    }

    /// Does the chain hold anything?
    pub fn occupied(&self, bucket: u32) -> bool {
        self.heads.get(bucket as usize).is_some_and(|&h| h != NIL)
    }
}

/// gc_worker_can_early_drop: unassured, or assured but closing.
pub fn gc_evictable(conn: &Conn) -> bool {
    if conn.status & IPS_ASSURED == 0 {
        return true;
    }
    match conn.proto {
        PROTO_TCP => proto_tcp::can_early_drop(conn),
        PROTO_SCTP => proto_sctp::can_early_drop(conn),
        _ => false,
    }
}

/// The GC's early-drop threshold: `max / 100 * 95` in integers.
pub fn gc_threshold(nf_conntrack_max: u64) -> u64 {
    nf_conntrack_max / 100 * 95
}
