//! Which packets a report keeps for the page, as a single run chooses them,
//! and the superset one partition of a partitioned run keeps so that the
//! driver can choose exactly the same (`merge_rows`).
//!
//! A single run places a connection (gives it a slot for its packets) at
//! its first packet while fewer than `connections` are placed, and keeps a
//! packet of a placed connection while the connection has fewer than
//! `rows_per_connection` kept and the run fewer than `rows`. So a packet is
//! kept exactly when it is a *candidate* (one of the first
//! `rows_per_connection` packets of one of the first `connections`
//! connections by first packet) and fewer than `rows` candidates came
//! before it. Packets of no connection count as connection 0.
//!
//! A partition holds all the packets of its connections, but connection 0's
//! are spread over every partition. A connection's rank by first packet
//! among the partition's is at most its rank in the whole run, so the run's
//! placed connections that are the partition's are among its first
//! `connections`; connection 0 is placed in every partition. A packet of the
//! partition's connection ranked j is kept by the run only if the run places
//! that connection, and then the partition's connections ranked up to j too,
//! whose candidates are then the run's candidates: when `rows` of those came
//! before the packet, the run does not keep it. The partition keeps every
//! other candidate (it counts the candidates before each packet by rank, in
//! a Fenwick tree) and connection 0's first packets; `merge_rows` then takes
//! the run's placed connections, connection 0's first packets over all
//! partitions, and the first `rows` candidates, which are all among those kept.

use crate::output::report::ReportCaps;

/// A placed connection and the packets kept of it (`conn` 0: the packets of none).
#[derive(Clone, Debug, PartialEq)]
pub struct Placed<R> {
    pub conn: u32,
    /// The index of its first packet counted.
    pub first: u64,
    /// Its packets counted.
    pub packets: u64,
    pub rows: Vec<R>,
    /// Its rank by first packet among a partition's connections (0: conn 0,
    /// or a single run's).
    rank: usize,
}

impl<R> Placed<R> {
    pub fn new(conn: u32, first: u64, packets: u64, rows: Vec<R>) -> Self {
        Placed {
            conn,
            first,
            packets,
            rows,
            rank: 0,
        }
    }

    /// Cut at the per-connection cap, with packets beyond it.
    fn is_long(&self, caps: ReportCaps) -> bool {
        self.rows.len() >= caps.rows_per_connection && (self.rows.len() as u64) < self.packets
    }
}

/// Places connections and chooses the packets kept, packet by packet.
#[derive(Debug)]
pub struct Keeper<R> {
    caps: ReportCaps,
    placed: Vec<Placed<R>>,
    kept: usize,
    /// A partition's: candidates counted so far, by their connection's rank.
    partition: Option<Fenwick>,
}

impl<R> Keeper<R> {
    /// A single run's choice.
    pub fn single(caps: ReportCaps) -> Self {
        Keeper {
            caps,
            placed: Vec::new(),
            kept: 0,
            partition: None,
        }
    }

    /// A partition's superset of the run's choice (`merge_rows`).
    pub fn partition(caps: ReportCaps) -> Self {
        Keeper {
            partition: Some(Fenwick::default()),
            ..Keeper::single(caps)
        }
    }

    /// One packet (at `index`) of connection `id`, `seen` of whose packets
    /// came before; `place`, the connection's slot, is set at its first
    /// packet. The rows to push the packet's row to, None when not kept.
    pub fn admit(
        &mut self,
        id: u32,
        place: &mut Option<usize>,
        seen: u64,
        index: u64,
    ) -> Option<&mut Vec<R>> {
        if seen == 0 {
            *place = self.place(id, index);
        }
        let placed = &mut self.placed[(*place)?];
        placed.packets += 1;
        let caps = self.caps;
        let keep = match self.partition.as_mut() {
            Some(before) if id != 0 => {
                let candidate = seen < caps.rows_per_connection as u64;
                let keep = candidate && before.prefix(placed.rank) < caps.rows as u64;
                if candidate {
                    before.add(placed.rank);
                }
                keep
            }
            Some(_) => placed.rows.len() < caps.rows_per_connection,
            None => placed.rows.len() < caps.rows_per_connection && self.kept < caps.rows,
        };
        if !keep {
            return None;
        }
        self.kept += 1;
        Some(&mut placed.rows)
    }

    fn place(&mut self, id: u32, index: u64) -> Option<usize> {
        let mut placed = Placed::new(id, index, 0, Vec::new());
        match self.partition.as_mut() {
            Some(before) if id != 0 => {
                if before.len() >= self.caps.connections {
                    return None;
                }
                placed.rank = before.push();
            }
            Some(_) => {}
            None if self.placed.len() >= self.caps.connections => return None,
            None => {}
        }
        self.placed.push(placed);
        Some(self.placed.len() - 1)
    }

    /// The placed connections in order of their first packets, and the
    /// packets kept in all.
    pub fn finish(self) -> (Vec<Placed<R>>, usize) {
        (self.placed, self.kept)
    }
}

/// The connections whose rows were cut at the per-connection cap.
pub fn long_count<R>(placed: &[Placed<R>], caps: ReportCaps) -> usize {
    placed.iter().filter(|p| p.is_long(caps)).count()
}

/// The rows a single run keeps, from what its partitions kept (`parts`,
/// each in its own order); `frame` gives a row's packet number. The placed
/// connections in order of their first packets, and the packets kept.
pub fn merge_rows<R>(
    parts: Vec<Vec<Placed<R>>>,
    caps: ReportCaps,
    frame: impl Fn(&R) -> u64,
) -> (Vec<Placed<R>>, usize) {
    let mut placed: Vec<Placed<R>> = Vec::new();
    let mut outside: Option<Placed<R>> = None;
    for p in parts.into_iter().flatten() {
        let p = Placed { rank: 0, ..p };
        if p.conn != 0 {
            placed.push(p);
            continue;
        }
        match outside.as_mut() {
            None => outside = Some(p),
            Some(o) => {
                o.first = o.first.min(p.first);
                o.packets += p.packets;
                o.rows.extend(p.rows);
            }
        }
    }
    if let Some(mut o) = outside {
        o.rows.sort_by_key(&frame);
        o.rows.truncate(caps.rows_per_connection);
        placed.push(o);
    }
    placed.sort_by_key(|p| p.first);
    placed.truncate(caps.connections);
    // Packets are numbered once each: the first `rows` numbers among the
    // candidates end at `last`.
    let mut frames: Vec<u64> = placed
        .iter()
        .flat_map(|p| p.rows.iter().map(&frame))
        .collect();
    let kept = frames.len().min(caps.rows);
    if kept < frames.len() {
        let (_, &mut last, _) = frames.select_nth_unstable(kept.saturating_sub(1));
        for p in &mut placed {
            p.rows.retain(|row| kept > 0 && frame(row) <= last);
        }
    }
    (placed, kept)
}

/// Counts by position 1..=len, with prefix sums; positions are appended.
#[derive(Debug, Default)]
struct Fenwick {
    /// `tree[i - 1]` sums the positions (i - lowbit(i), i].
    tree: Vec<u64>,
}

impl Fenwick {
    fn len(&self) -> usize {
        self.tree.len()
    }

    /// Append a position counting 0; its number.
    fn push(&mut self) -> usize {
        let i = self.tree.len() + 1;
        let low = i & i.wrapping_neg();
        let sum = self.prefix(i - 1) - self.prefix(i - low);
        self.tree.push(sum);
        i
    }

    fn add(&mut self, mut i: usize) {
        while i <= self.tree.len() {
            self.tree[i - 1] += 1;
            i += i & i.wrapping_neg();
        }
    }

    /// The counts of positions 1..=i.
    fn prefix(&self, mut i: usize) -> u64 {
        let mut sum = 0;
        while i > 0 {
            sum += self.tree[i - 1];
            i -= i & i.wrapping_neg();
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn caps(connections: usize, per: usize, rows: usize) -> ReportCaps {
        ReportCaps {
            connections,
            rows_per_connection: per,
            rows,
            conns_per_rule: 0,
            frames_per_transition: 0,
            reasons: 0,
            table_points: 0,
        }
    }

    /// Packets (index, connection) through `keeper`: rows are packet indexes.
    fn keep(mut keeper: Keeper<u64>, packets: &[(u64, u32)]) -> (Vec<Placed<u64>>, usize) {
        let mut seen: std::collections::HashMap<u32, (u64, Option<usize>)> = Default::default();
        for &(index, conn) in packets {
            let (count, place) = seen.entry(conn).or_default();
            if let Some(rows) = keeper.admit(conn, place, *count, index) {
                rows.push(index);
            }
            *count += 1;
        }
        keeper.finish()
    }

    #[test]
    fn fenwick_sums_prefixes_of_appended_positions() {
        let mut tree = Fenwick::default();
        let mut plain = Vec::new();
        for n in 0..40usize {
            let i = tree.push();
            plain.push(0u64);
            for _ in 0..(n * 7 % 5) {
                tree.add(i);
                plain[i - 1] += 1;
            }
            tree.add(1 + n / 2);
            plain[n / 2] += 1;
            for j in 0..=tree.len() {
                assert_eq!(tree.prefix(j), plain[..j].iter().sum::<u64>());
            }
        }
    }

    #[test]
    fn a_single_run_keeps_the_first_packets_of_the_first_connections() {
        let packets = [(0, 1), (1, 2), (2, 1), (3, 0), (4, 3), (5, 1), (6, 2)];
        let (placed, kept) = keep(Keeper::single(caps(3, 2, 4)), &packets);
        let rows: Vec<(u32, Vec<u64>)> = placed.into_iter().map(|p| (p.conn, p.rows)).collect();
        assert_eq!(rows, vec![(1, vec![0, 2]), (2, vec![1]), (0, vec![3])]);
        assert_eq!(kept, 4);
    }

    proptest! {
        /// Partitions by connection (conn 0 anywhere), merged: the single run's rows.
        #[test]
        fn merged_partitions_keep_what_a_single_run_keeps(
            conns in prop::collection::vec((0u32..12, 0u32..4), 0..160),
            parts in 1u32..5,
            connections in 1usize..8,
            per in 1usize..6,
            rows in 1usize..30,
        ) {
            let caps = caps(connections, per, rows);
            let packets: Vec<(u64, u32)> =
                conns.iter().enumerate().map(|(i, &(c, _))| (i as u64, c)).collect();
            let (single, kept) = keep(Keeper::single(caps), &packets);
            let mut shares = Vec::new();
            for part in 0..parts {
                let own: Vec<(u64, u32)> = packets
                    .iter()
                    .zip(&conns)
                    .filter(|(&(_, c), &(_, spread))| {
                        (if c == 0 { spread } else { c }) % parts == part
                    })
                    .map(|(&p, _)| p)
                    .collect();
                shares.push(keep(Keeper::partition(caps), &own).0);
            }
            let (merged, merged_kept) = merge_rows(shares, caps, |&index| index);
            prop_assert_eq!(merged_kept, kept);
            prop_assert_eq!(long_count(&merged, caps), long_count(&single, caps));
            prop_assert_eq!(merged, single);
        }
    }
}
