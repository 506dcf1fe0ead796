//! What a loaded ruleset remembers between packets, kept beside the plain
//! rule data: counters of every rule and chain policy, and the buckets of
//! stateful matches (one slot per rule that uses one, given at load).

use crate::rules::ipset::{IpSet, Sets};
use crate::rules::matches::addrtype::Topology;
use crate::rules::matches::limit::Bucket;
use crate::rules::matches::statistic::Mt;
use crate::rules::matches::{connlimit, hashlimit, recent};
use crate::rules::model::{Match, Ruleset};

/// (packets, bytes) as iptables -L -v shows them.
pub type Counter = (u64, u64);

#[derive(Clone, Debug)]
pub struct RuleState {
    /// Per table, per chain: the index of the chain's first rule in `rules`.
    offsets: Vec<Vec<usize>>,
    pub rules: Vec<Counter>,
    /// Per table, per chain: the policy counter (built-in chains only count).
    pub chains: Vec<Vec<Counter>>,
    pub limits: Vec<Bucket>,
    /// statistic --mode nth counters, one per rule.
    pub nth: Vec<u64>,
    /// The generator of statistic --mode random, shared by the ruleset.
    pub rng: Mt,
    pub topology: Topology,
    pub recent: Vec<recent::Table>,
    pub recent_size: usize,
    pub hashlimit: Vec<hashlimit::Table>,
    /// connlimit groups, one per rule.
    pub connlimit: Vec<connlimit::Groups>,
    pub sets: Sets,
    pub nft: crate::rules::nft::state::NftState,
}

impl RuleState {
    /// Sized for `ruleset`; gives each stateful match its slot.
    pub fn for_ruleset(ruleset: &mut Ruleset) -> Result<RuleState, String> {
        let sets = ruleset
            .sets
            .iter()
            .map(|s| IpSet::new(s.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut state = RuleState {
            offsets: Vec::new(),
            rules: Vec::new(),
            chains: Vec::new(),
            limits: Vec::new(),
            nth: Vec::new(),
            rng: Mt::new(ruleset.seed),
            topology: Topology {
                local: ruleset.local_nets.clone(),
                ifaces: ruleset.iface_nets.clone(),
            },
            recent: ruleset
                .recent_tables
                .iter()
                .map(recent::Table::new)
                .collect(),
            recent_size: ruleset.recent_size,
            hashlimit: ruleset
                .hashlimit_tables
                .iter()
                .map(hashlimit::Table::new)
                .collect(),
            connlimit: Vec::new(),
            sets: Sets { sets },
            nft: crate::rules::nft::state::NftState::for_ruleset(ruleset)?,
        };
        let mut n = 0;
        for table in &mut ruleset.tables {
            let mut offsets = Vec::with_capacity(table.chains.len());
            for chain in &mut table.chains {
                offsets.push(n);
                n += chain.rules.len();
                for rule in &mut chain.rules {
                    for m in &mut rule.matches {
                        match m {
                            Match::Limit { slot, .. } => {
                                *slot = state.limits.len();
                                state.limits.push(Bucket::default());
                            }
                            Match::StatisticNth {
                                slot,
                                every,
                                packet,
                                ..
                            } => {
                                *slot = state.nth.len();
                                state.nth.push(every.saturating_sub(*packet));
                            }
                            Match::Connlimit { slot, .. } => {
                                *slot = state.connlimit.len();
                                state.connlimit.push(connlimit::Groups::new());
                            }
                            _ => {}
                        }
                    }
                }
            }
            state.chains.push(vec![(0, 0); table.chains.len()]);
            state.offsets.push(offsets);
        }
        state.rules = vec![(0, 0); n];
        Ok(state)
    }

    fn index(&self, table: usize, chain: usize, rule: usize) -> Option<usize> {
        self.offsets.get(table)?.get(chain).map(|o| o + rule)
    }

    /// The counter of rule `rule` (0-based) of a chain.
    pub fn rule(&self, table: usize, chain: usize, rule: usize) -> Counter {
        self.index(table, chain, rule)
            .and_then(|i| self.rules.get(i).copied())
            .unwrap_or((0, 0))
    }

    pub fn count_rule(&mut self, table: usize, chain: usize, rule: usize, bytes: u64) {
        if let Some(c) = self
            .index(table, chain, rule)
            .and_then(|i| self.rules.get_mut(i))
        {
            c.0 = c.0.saturating_add(1);
            c.1 = c.1.saturating_add(bytes);
        }
    }

    pub fn count_policy(&mut self, table: usize, chain: usize, bytes: u64) {
        if let Some(c) = self.chains.get_mut(table).and_then(|t| t.get_mut(chain)) {
            c.0 = c.0.saturating_add(1);
            c.1 = c.1.saturating_add(bytes);
        }
    }
}
