//! recent match (xt_recent.c: recent_mt): named lists of addresses with a
//! ring of hit times each, in jiffies. A list keeps its least recently
//! updated entry first (the one evicted when it is full, and the one
//! `--reap` looks at). Nothing here walks time: expiry is a comparison.

use crate::rules::context::RuleCtx;
use crate::rules::model::{Hook, RecentSpec};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub stamps: Vec<i64>,
    pub index: usize,
    pub ttl: u8,
}

#[derive(Clone, Debug)]
pub struct Table {
    pub mask: u128,
    pub stamp_mask: usize,
    /// (family, masked address) -> entry, oldest update first.
    pub entries: Vec<((u8, u128), Entry)>,
}

impl Table {
    pub fn new(spec: &RecentSpec) -> Table {
        Table {
            mask: spec.mask,
            stamp_mask: usize::try_from(spec.stamp_mask).unwrap_or(usize::MAX),
            entries: Vec::new(),
        }
    }

    fn find(&self, key: (u8, u128)) -> Option<usize> {
        self.entries.iter().position(|(k, _)| *k == key)
    }

    /// Record a hit at `now` and move the entry to the end.
    fn update(&mut self, at: usize, now: i64, ttl: u8) {
        let (key, mut entry) = self.entries.remove(at);
        let index = entry.index & self.stamp_mask;
        match entry.stamps.get_mut(index) {
            Some(slot) => *slot = now,
            None => entry.stamps.push(now),
        }
        entry.index = index + 1;
        entry.ttl = ttl;
        self.entries.push((key, entry));
    }
}

/// What one rule asks of its list.
#[derive(Clone, Copy, Debug)]
pub struct Rule<'r> {
    pub command: &'r str,
    pub invert: bool,
    pub seconds: u64,
    pub hitcount: u64,
    pub use_dst: bool,
    pub check_ttl: bool,
    pub reap: bool,
    pub hz: u64,
}

fn hits(entry: &Entry, since: i64, seconds: u64, hitcount: u64) -> bool {
    let mut n = 0u64;
    for &stamp in &entry.stamps {
        if seconds != 0 && since > stamp {
            continue;
        }
        n += 1;
        if hitcount == 0 || n >= hitcount {
            return true;
        }
    }
    false
}

pub fn recent(table: &mut Table, size: usize, r: Rule<'_>, ctx: &RuleCtx<'_>) -> bool {
    let pkt = ctx.pkt;
    let now = (ctx.now * r.hz as f64) as i64;
    let forwarded = matches!(ctx.hook, Hook::Forward | Hook::PostRouting);
    let ttl = (u16::from(pkt.ttl) + u16::from(forwarded)) as u8;
    let addr = if r.use_dst { pkt.dst } else { pkt.src };
    let key = (pkt.family, addr & table.mask);
    let mut at = table.find(key);
    if let Some(i) = at {
        let stored = table.entries[i].1.ttl;
        if r.check_ttl && stored != 0 && stored != ttl {
            at = None;
        }
    }
    let Some(i) = at else {
        if r.command != "set" {
            return r.invert;
        }
        if table.entries.len() >= size && !table.entries.is_empty() {
            table.entries.remove(0);
        }
        let fresh = Entry {
            stamps: vec![now],
            index: 1,
            ttl,
        };
        // An entry hidden by --rttl is replaced where it stands.
        match table.find(key) {
            Some(old) => table.entries[old].1 = fresh,
            None => table.entries.push((key, fresh)),
        }
        return !r.invert;
    };
    match r.command {
        "set" => {
            table.update(i, now, ttl);
            return !r.invert;
        }
        "remove" => {
            table.entries.remove(i);
            return !r.invert;
        }
        _ => {}
    }
    let seconds_j = i64::try_from(r.seconds.saturating_mul(r.hz)).unwrap_or(i64::MAX);
    let since = now.saturating_sub(seconds_j);
    let hit = hits(&table.entries[i].1, since, r.seconds, r.hitcount);
    let mut i = i;
    if r.reap {
        if let Some((_, oldest)) = table.entries.first() {
            let last = oldest
                .index
                .checked_sub(1)
                .and_then(|k| oldest.stamps.get(k))
                .copied()
                .unwrap_or(i64::MAX);
            if i != 0 && since > last {
                table.entries.remove(0);
                i -= 1;
            }
        }
    }
    if r.command == "update" && hit != r.invert {
        table.update(i, now, ttl);
    }
    hit != r.invert
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testpkt;

    fn rule(command: &str) -> Rule<'_> {
        Rule {
            command,
            invert: false,
            seconds: 60,
            hitcount: 3,
            use_dst: false,
            check_ttl: false,
            reap: false,
            hz: 250,
        }
    }

    #[test]
    fn set_then_update_counts_hits_and_a_time_jump_costs_nothing() {
        let spec = RecentSpec {
            name: "x".into(),
            mask: 0xffff_ffff,
            stamp_mask: 3,
        };
        let mut t = Table::new(&spec);
        let data = testpkt::udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        let pkt = testpkt::decode(&data);
        let mut ctx = testpkt::ctx(&pkt);
        assert!(!recent(&mut t, 100, rule("update"), &ctx));
        assert!(recent(
            &mut t,
            100,
            Rule {
                hitcount: 0,
                seconds: 0,
                ..rule("set")
            },
            &ctx
        ));
        ctx.now = 1.0;
        assert!(!recent(&mut t, 100, rule("update"), &ctx)); // 1 hit, not counted: a miss
        assert!(recent(&mut t, 100, rule("set"), &ctx));
        assert!(!recent(&mut t, 100, rule("rcheck"), &ctx)); // 2 hits
        assert!(recent(&mut t, 100, rule("set"), &ctx));
        assert!(recent(&mut t, 100, rule("update"), &ctx)); // 3 hits within 60 s
        ctx.now = 1.7e9;
        assert!(!recent(&mut t, 100, rule("rcheck"), &ctx));
        assert!(recent(&mut t, 100, rule("remove"), &ctx));
        assert!(t.entries.is_empty());
    }
}
