//! What nft statements remember between packets: sets (named ones first,
//! then each rule's anonymous ones), counters, limit buckets and quotas.
//! Named objects (`counter NAME`, `quota NAME`, `limit NAME`) share one slot
//! per name; anonymous ones get one per rule.

use std::collections::HashMap;

use crate::rules::model::{Match, Ruleset, Target};
use crate::rules::nft::set::NftSet;
use crate::rules::nft::{Expr, Key, LimitSpec, NftMatch, SetRef, Source};

/// nft_limit's bucket: tokens are nanoseconds of credit.
#[derive(Clone, Debug, Default)]
pub struct LimitBucket {
    pub tokens: u64,
    pub last: Option<f64>,
}

impl LimitBucket {
    fn cost_per_unit(spec: &LimitSpec) -> u64 {
        spec.unit.saturating_mul(1_000_000_000) / spec.rate.max(1)
    }

    /// True when the packet is within the rate (nft_limit_eval, before `over`).
    pub fn take(&mut self, spec: &LimitSpec, len: u64, now: f64) -> bool {
        let per = Self::cost_per_unit(spec);
        let max = if spec.bytes {
            spec.unit
                .saturating_mul(1_000_000_000)
                .saturating_mul(spec.burst)
                / spec.rate.max(1)
        } else {
            per.saturating_mul(spec.burst.max(1))
        };
        let cost = if spec.bytes {
            per.saturating_mul(len)
        } else {
            per
        };
        let elapsed = match self.last {
            None => max,
            Some(t) => ((now - t).max(0.0) * 1e9) as u64,
        };
        let tokens = self.tokens.saturating_add(elapsed).min(max);
        self.last = Some(now);
        if tokens >= cost {
            self.tokens = tokens - cost;
            true
        } else {
            self.tokens = tokens;
            false
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct NftState {
    pub sets: Vec<NftSet>,
    /// (packets, bytes) per counter slot.
    pub counters: Vec<(u64, u64)>,
    pub limits: Vec<LimitBucket>,
    /// Bytes consumed per quota slot.
    pub quotas: Vec<u64>,
    /// The next value of each `numgen inc`.
    pub numgen: Vec<u32>,
}

/// Gives slots while a ruleset loads.
struct Slots<'s> {
    state: &'s mut NftState,
    counters: HashMap<String, usize>,
    limits: HashMap<String, usize>,
    quotas: HashMap<String, usize>,
}

fn named(map: &mut HashMap<String, usize>, name: &Option<String>, next: usize) -> (usize, bool) {
    match name {
        Some(n) => match map.get(n) {
            Some(&slot) => (slot, false),
            None => {
                map.insert(n.clone(), next);
                (next, true)
            }
        },
        None => (next, true),
    }
}

impl Slots<'_> {
    fn set(&mut self, r: &mut SetRef) -> Result<(), String> {
        match r.anon.take() {
            Some(spec) => {
                r.slot = self.state.sets.len();
                self.state.sets.push(NftSet::new(*spec)?);
            }
            None if r.set < self.state.sets.len() => r.slot = r.set,
            None => return Err(format!("nft set #{} does not exist", r.set)),
        }
        Ok(())
    }

    fn source(&mut self, s: &mut Source) -> Result<(), String> {
        match s {
            Source::Map { map, expr } => {
                self.expr(expr);
                self.set(map)
            }
            Source::Load { expr } => {
                self.expr(expr);
                Ok(())
            }
            Source::Imm { .. } => Ok(()),
        }
    }

    fn expr(&mut self, e: &mut Expr) {
        match &mut e.key {
            Key::Numgen { slot, .. } => {
                *slot = self.state.numgen.len();
                self.state.numgen.push(0);
            }
            Key::Concat { parts } => parts.iter_mut().for_each(|p| self.expr(p)),
            _ => {}
        }
    }

    fn one(&mut self, m: &mut NftMatch) -> Result<(), String> {
        match m {
            NftMatch::Cmp { left, .. } | NftMatch::Range { left, .. } => self.expr(left),
            NftMatch::Dynset { key, .. } | NftMatch::EffectMap { key, .. } => self.expr(key),
            _ => {}
        }
        if let NftMatch::Lookup { left, .. } = m {
            self.expr(left);
        }
        match m {
            NftMatch::Lookup { set, .. }
            | NftMatch::Dynset { set, .. }
            | NftMatch::EffectMap { map: set, .. } => self.set(set)?,
            NftMatch::Set { value, .. } => self.source(value)?,
            NftMatch::Counter { name, slot } => {
                let (s, new) = named(&mut self.counters, name, self.state.counters.len());
                if new {
                    self.state.counters.push((0, 0));
                }
                *slot = s;
            }
            NftMatch::Limit { name, slot, .. } => {
                let (s, new) = named(&mut self.limits, name, self.state.limits.len());
                if new {
                    self.state.limits.push(LimitBucket::default());
                }
                *slot = s;
            }
            NftMatch::Quota {
                name, slot, used, ..
            } => {
                let (s, new) = named(&mut self.quotas, name, self.state.quotas.len());
                if new {
                    self.state.quotas.push(*used);
                }
                *slot = s;
            }
            _ => {}
        }
        Ok(())
    }
}

impl NftState {
    /// The named sets, then a slot for every nft statement of the rules.
    pub fn for_ruleset(ruleset: &mut Ruleset) -> Result<NftState, String> {
        let mut state = NftState {
            sets: ruleset
                .nft_sets
                .iter()
                .map(|s| NftSet::new(s.clone()))
                .collect::<Result<_, _>>()?,
            ..NftState::default()
        };
        let mut slots = Slots {
            state: &mut state,
            counters: HashMap::new(),
            limits: HashMap::new(),
            quotas: HashMap::new(),
        };
        let rules = ruleset
            .tables
            .iter_mut()
            .flat_map(|t| t.chains.iter_mut())
            .flat_map(|c| c.rules.iter_mut());
        for rule in rules {
            for m in &mut rule.matches {
                if let Match::Nft { expr } = m {
                    slots.one(expr)?;
                }
            }
            if let Target::NftVmap { map, left } = &mut rule.target {
                slots.expr(left);
                slots.set(map)?;
            }
            if let Target::NftNat { addr, port, .. } = &mut rule.target {
                for s in [addr, port].into_iter().flatten() {
                    slots.source(s)?;
                }
            }
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_allows_the_burst_then_the_rate() {
        let spec = LimitSpec {
            rate: 2,
            unit: 1,
            burst: 3,
            bytes: false,
            over: false,
        };
        let mut b = LimitBucket::default();
        let passed = (0..5).filter(|_| b.take(&spec, 100, 10.0)).count();
        assert_eq!(passed, 3);
        assert!(b.take(&spec, 100, 10.5));
        assert!(!b.take(&spec, 100, 10.6));
    }
}
