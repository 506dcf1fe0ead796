//! Network address translation: the kernel's NAT core (nf_nat_core.c), its
//! packet rewriting (nf_nat_proto.c) and the nat targets' ranges.
//!
//! A connection is translated by changing its REPLY tuple before it is
//! confirmed: replies then arrive addressed to the translated tuple and are
//! found under it, and each packet is rewritten to what the other
//! direction's tuple expects. Two manipulations exist, source (at
//! POSTROUTING and INPUT) and destination (at PREROUTING and OUTPUT); each
//! is set up once, on the connection's first packet, by a nat rule or, when
//! no rule translates, as the "null binding" that keeps the addresses and
//! only moves a port that is already in use.

pub mod helper;
pub mod mangle;
pub mod manip;
pub mod range;
pub mod rewrite;
pub mod select;

pub use range::{NatKind, NatRange};

use crate::netfilter::hooks::Hook;

/// Which half of the tuple a hook translates (HOOK2MANIP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Manip {
    Src,
    Dst,
}

impl Manip {
    pub fn of_hook(hook: Hook) -> Manip {
        match hook {
            Hook::PostRouting | Hook::Input => Manip::Src,
            _ => Manip::Dst,
        }
    }
}

/// A small deterministic generator for the choices the kernel makes at
/// random (`get_random_u16`), seeded from `--seed` so a replay repeats.
#[derive(Clone, Debug)]
pub struct NatRng(u64);

impl NatRng {
    pub fn new(seed: u64) -> Self {
        NatRng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// splitmix64, folded to 16 bits.
    pub fn next_u16(&mut self) -> u16 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as u16
    }
}

use hashbrown::HashTable;

use crate::conntrack::conn::{
    Conn, ConnId, Tuple, IPS_DST_NAT, IPS_DST_NAT_DONE, IPS_NAT_UNVERIFIED, IPS_SRC_NAT,
    IPS_SRC_NAT_DONE,
};
use crate::conntrack::core::{l4_invert, tuple_hash, ConntrackTable};
use crate::conntrack::l4proto::ExpectHooks;
use crate::nat::select::{unique_tuple, Request, TupleSpace};

/// The status bit saying a manipulation is set up (nf_nat_initialized).
pub fn done_bit(manip: Manip) -> u32 {
    match manip {
        Manip::Src => IPS_SRC_NAT_DONE,
        Manip::Dst => IPS_DST_NAT_DONE,
    }
}

/// Where the kernel's bysource hash files a connection: its original source.
type SourceKey = (u8, u16, u128, u16);

fn source_key(conn: &Conn) -> SourceKey {
    (conn.proto, conn.zone, conn.orig.src, conn.orig.sport)
}

/// The 32 bits of a source's hash a filing keeps.
fn source_hash(key: &SourceKey) -> u32 {
    let (proto, zone, src, sport) = *key;
    let h = tuple_hash(0, proto, zone, &Tuple::new(src, 0, sport, 0));
    (h ^ h >> 32) as u32
}

/// One connection filed in the bysource hash: its slot and its source's
/// hash, eight bytes. Like the kernel's chains a filing holds no key of its
/// own (readers check the entry itself), so the hash, which grows with
/// every masqueraded connection, stays small: on a busy network its memory
/// is much of what NAT costs beyond the rewrite.
#[derive(Clone, Copy, Debug)]
struct Filed {
    hash: u32,
    id: ConnId,
}

impl Filed {
    /// The hash table's 64-bit hash: the 32 bits in both halves, since the
    /// table takes buckets from the low bits and its tags from the top ones.
    fn spread(hash: u32) -> u64 {
        u64::from(hash) << 32 | u64::from(hash)
    }
}

/// The machine's NAT state besides the entries themselves: the generator
/// for random choices and the connections by original source (for a new
/// connection from the same source to get the same mapping).
#[derive(Clone, Debug)]
pub struct NatCore {
    rng: NatRng,
    by_source: HashTable<Filed>,
}

impl NatCore {
    pub fn new(seed: u64) -> Self {
        NatCore {
            rng: NatRng::new(seed),
            by_source: HashTable::new(),
        }
    }

    /// The generator of the kernel's random choices (NAT helpers draw from it too).
    pub fn rng_mut(&mut self) -> &mut NatRng {
        &mut self.rng
    }

    /// nf_nat_setup_info: give the (unconfirmed) entry `id` its binding for
    /// `manip` within `range`. Returns whether a port was picked at random
    /// (from the seeded generator), or None when the entry is gone.
    pub fn setup(
        &mut self,
        table: &mut ConntrackTable,
        hooks: &mut dyn ExpectHooks,
        id: ConnId,
        range: &NatRange,
        manip: Manip,
        now: f64,
    ) -> Option<bool> {
        let conn = table.conn(id)?;
        let (family, proto, zone) = (conn.family, conn.proto, conn.zone);
        let has_master = conn.master.is_some();
        let current = l4_invert(proto, family, &conn.reply)?;
        let request = Request {
            family,
            proto,
            zone,
            has_master,
            manip,
            range,
        };
        let (chosen, random, verified) = {
            let mut space = Space {
                table,
                hooks,
                by_source: &self.by_source,
                rng: &mut self.rng,
                drew: false,
                free: None,
                family,
                proto,
                zone,
                now,
            };
            let chosen = unique_tuple(&current, &request, &mut space);
            let verified = space.free == Some(chosen);
            (chosen, space.drew, verified)
        };
        let reply = l4_invert(proto, family, &chosen)?;
        let conn = table.conn_mut(id)?;
        if chosen != current {
            conn.reply = reply;
            conn.status |= match manip {
                Manip::Src => IPS_SRC_NAT,
                Manip::Dst => IPS_DST_NAT,
            };
        }
        conn.status |= done_bit(manip);
        if !verified {
            conn.status |= IPS_NAT_UNVERIFIED;
        }
        if manip == Manip::Src && conn.status & IPS_SRC_NAT != 0 {
            let key = source_key(conn);
            self.remember_source(table, id, &key);
        }
        Some(random)
    }

    /// File the entry under its original source; forget entries that died
    /// once the hash outgrows the table (it is consulted, never trusted:
    /// `Space::source_maps` checks each entry it finds).
    fn remember_source(&mut self, table: &ConntrackTable, id: ConnId, key: &SourceKey) {
        let hash = source_hash(key);
        self.by_source
            .insert_unique(Filed::spread(hash), Filed { hash, id }, |f| {
                Filed::spread(f.hash)
            });
        if self.by_source.len() > 2 * table.count() + 1024 {
            self.by_source.retain(|f| {
                table.conn(f.id).is_some_and(|conn| {
                    let key = source_key(conn);
                    source_hash(&key) == f.hash && mapped_source(table, f.id, &key).is_some()
                })
            });
        }
    }
}

/// The source a live entry filed under `key` is mapped to, if it still is
/// that entry (slots are reused).
fn mapped_source(table: &ConntrackTable, id: ConnId, key: &SourceKey) -> Option<(u128, u16)> {
    let conn = table.conn(id)?;
    if source_key(conn) != *key || conn.status & IPS_SRC_NAT == 0 {
        return None;
    }
    let reply = conn.reply;
    Some((reply.dst, reply.dport))
}

/// The conntrack table as the tuple selection asks it.
struct Space<'s> {
    table: &'s mut ConntrackTable,
    hooks: &'s mut dyn ExpectHooks,
    by_source: &'s HashTable<Filed>,
    rng: &'s mut NatRng,
    /// Whether the selection drew a random number.
    drew: bool,
    /// The last tuple `used` found free.
    free: Option<Tuple>,
    family: u8,
    proto: u8,
    zone: u16,
    now: f64,
}

impl TupleSpace for Space<'_> {
    fn used(&mut self, tuple: &Tuple) -> bool {
        let Some(reply) = l4_invert(self.proto, self.family, tuple) else {
            return false;
        };
        let found = self
            .table
            .lookup(
                self.family,
                self.proto,
                &reply,
                self.zone,
                self.now,
                self.hooks,
            )
            .is_some();
        if found {
            self.table.stats.found += 1;
        } else {
            self.free = Some(*tuple);
        }
        found
    }

    fn source_maps(&mut self, orig: &Tuple) -> Vec<(u128, u16)> {
        let key = (self.proto, self.zone, orig.src, orig.sport);
        let hash = source_hash(&key);
        // The kernel adds at the head of a chain, so the newest entry
        // (the last confirmed) is found first; mapped_source checks that a
        // filing's slot still holds the entry that was filed.
        let mut filings: Vec<(u32, ConnId)> = self
            .by_source
            .iter_hash(Filed::spread(hash))
            .filter(|f| f.hash == hash && self.table.is_live(f.id))
            .filter_map(|f| Some((self.table.conn(f.id)?.id, f.id)))
            .collect();
        filings.sort_unstable_by_key(|&(order, _)| std::cmp::Reverse(order));
        filings
            .iter()
            .filter_map(|&(_, id)| mapped_source(self.table, id, &key))
            .collect()
    }

    fn random_u16(&mut self) -> u16 {
        self.drew = true;
        self.rng.next_u16()
    }
}
