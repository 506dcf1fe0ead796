//! connlimit match (xt_connlimit.c, nf_conncount.c): how many live
//! connections share the packet's masked source (or destination) address.
//!
//! Each rule remembers, per masked address, the connections it has counted.
//! Whether a remembered one still counts is the conntrack table's answer
//! (`ConnAlive`); dead ones are dropped whenever their group is counted, so
//! nothing here depends on how much time has passed.

use std::collections::HashMap;

use crate::conntrack::conn::{Conn, Tuple};

/// What identifies a connection to nf_conncount: its original tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnKey {
    pub family: u8,
    pub proto: u8,
    pub zone: u16,
    pub orig: Tuple,
}

impl ConnKey {
    pub fn of(conn: &Conn) -> ConnKey {
        ConnKey {
            family: conn.family,
            proto: conn.proto,
            zone: conn.zone,
            orig: conn.orig,
        }
    }
}

/// Whether a remembered connection still counts: not dying, confirmed, not
/// expired and, for TCP, not in TIME_WAIT or CLOSE (nf_conncount's
/// already_closed and find_or_evict). Implemented by the conntrack table.
pub trait ConnAlive {
    fn alive(&self, key: &ConnKey, now: f64) -> bool;
}

/// The counted connections of one rule, by masked address.
pub type Groups = HashMap<u128, Vec<ConnKey>>;

/// The group's live connections, the packet's own included (nf_conncount_count).
pub fn count(
    groups: &mut Groups,
    key: u128,
    current: Option<ConnKey>,
    alive: &dyn ConnAlive,
    now: f64,
) -> u64 {
    let list = groups.entry(key).or_default();
    list.retain(|k| Some(*k) == current || alive.alive(k, now));
    match current {
        None => list.len() as u64 + 1,
        Some(c) => {
            if !list.contains(&c) {
                list.push(c);
            }
            list.len() as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    struct Live(HashSet<u16>);

    impl ConnAlive for Live {
        fn alive(&self, key: &ConnKey, _now: f64) -> bool {
            self.0.contains(&key.orig.sport)
        }
    }

    fn key(sport: u16) -> ConnKey {
        ConnKey {
            family: 4,
            proto: 6,
            zone: 0,
            orig: Tuple::new(1, 2, sport, 80),
        }
    }

    #[test]
    fn counts_live_connections_only() {
        let mut groups = Groups::new();
        let live = Live([1, 2].into_iter().collect());
        assert_eq!(count(&mut groups, 1, Some(key(1)), &live, 0.0), 1);
        assert_eq!(count(&mut groups, 1, Some(key(2)), &live, 0.0), 2);
        assert_eq!(count(&mut groups, 1, Some(key(2)), &live, 0.0), 2);
        assert_eq!(count(&mut groups, 1, None, &live, 0.0), 3);
        let fewer = Live([2].into_iter().collect());
        assert_eq!(count(&mut groups, 1, Some(key(3)), &fewer, 1.7e9), 2);
    }
}
