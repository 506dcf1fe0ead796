//! The totals of a partitioned run: each partition's `Totals` as plain
//! values (`TotalsPart`, what a worker hands back), and the whole run's
//! totals made from them.
//!
//! Partitions hold disjoint packets and disjoint connections, so counts add
//! up; the order of ties (first-seen order) is restored from the packet
//! index each key was first counted at, which the partitions keep global.

use std::collections::HashMap;

use crate::output::record::{Firsts, Tally, Totals};

/// (key, count, index of the first packet counted).
pub type Entry = (usize, u64, u64);

/// One partition's totals.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TotalsPart {
    pub packets: u64,
    pub ipv6: u64,
    pub connections: u64,
    pub states: Vec<Entry>,
    pub verdicts: Vec<Entry>,
    /// INVALID reasons: (reason, count, first packet index).
    pub invalid: Vec<(String, u64, u64)>,
}

impl Totals {
    /// Connections seen: the ids counted here and those merged in.
    pub fn connection_count(&self) -> u64 {
        self.connections.len() as u64 + self.merged_connections
    }

    /// These totals as plain values.
    pub fn part(&self) -> TotalsPart {
        TotalsPart {
            packets: self.packets,
            ipv6: self.ipv6,
            connections: self.connection_count(),
            states: self.states.entries(),
            verdicts: self.verdicts.entries(),
            invalid: self
                .invalid_reasons
                .entries()
                .map(|(name, n, first)| (name.to_string(), n, first))
                .collect(),
        }
    }

    /// The totals of the packets of all `parts` together.
    pub fn merged(parts: &[TotalsPart]) -> Totals {
        let mut reasons: HashMap<&str, (u64, u64)> = HashMap::new();
        for (name, n, first) in parts.iter().flat_map(|p| &p.invalid) {
            let entry = reasons.entry(name).or_insert((0, *first));
            entry.0 += n;
            entry.1 = entry.1.min(*first);
        }
        let mut reasons: Vec<(&str, (u64, u64))> = reasons.into_iter().collect();
        reasons.sort_by_key(|(_, (_, first))| *first);
        let mut invalid_reasons = Tally::default();
        for (name, (n, first)) in reasons {
            invalid_reasons.add_many(name, n, first);
        }
        Totals {
            packets: parts.iter().map(|p| p.packets).sum(),
            ipv6: parts.iter().map(|p| p.ipv6).sum(),
            states: Firsts::merged(parts.iter().flat_map(|p| p.states.iter().copied())),
            verdicts: Firsts::merged(parts.iter().flat_map(|p| p.verdicts.iter().copied())),
            invalid_reasons,
            connections: Default::default(),
            merged_connections: parts.iter().map(|p| p.connections).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_parts_keep_first_seen_order_for_ties() {
        let a = TotalsPart {
            packets: 2,
            connections: 1,
            states: vec![(2, 1, 5), (0, 1, 7)],
            verdicts: vec![(0, 2, 5)],
            invalid: vec![("late".into(), 1, 9)],
            ..TotalsPart::default()
        };
        let b = TotalsPart {
            packets: 2,
            connections: 2,
            states: vec![(0, 1, 1), (2, 1, 3)],
            verdicts: vec![(1, 2, 1)],
            invalid: vec![("early".into(), 1, 2), ("late".into(), 1, 4)],
            ..TotalsPart::default()
        };
        let merged = Totals::merged(&[a, b]);
        assert_eq!(merged.packets, 4);
        assert_eq!(merged.connection_count(), 3);
        // Ties (2 each) in the order first seen over both parts: key 0 at 1, key 2 at 3.
        assert_eq!(merged.states.entries(), vec![(0, 2, 1), (2, 2, 3)]);
        assert_eq!(merged.verdicts.entries(), vec![(1, 2, 1), (0, 2, 5)]);
        let reasons: Vec<(&str, u64, u64)> = merged.invalid_reasons.entries().collect();
        assert_eq!(reasons, vec![("early", 1, 2), ("late", 2, 4)]);
    }
}
