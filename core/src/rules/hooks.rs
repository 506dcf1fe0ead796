//! iptables and ip6tables behind the pipeline's rule seam: the rulesets
//! `statewall.rules.hooks.IptablesEngine` checks and lowers, loaded for the walk.
//!
//! Two kernel facts live here. The nat table is consulted only for a
//! connection's first packet (its binding is set up once and later packets
//! follow it), so only a packet carrying a not-yet-confirmed entry walks it.
//! And a table with no chain for the hook, or no ruleset for the family,
//! lets the packet pass as ACCEPT.

use crate::netfilter::hooks::{Entry, Registration, TableKind};
use crate::output::escape::escape;
use crate::rules::context::{Decision, Effects, RuleCtx};
use crate::rules::model::{Chain, ChainType, Hook, Match, Rule, Target};
use crate::rules::walker::Engine;

/// The loaded IPv4 and IPv6 rulesets of one simulated machine.
#[derive(Clone, Debug, Default)]
pub struct IptablesEngine {
    pub v4: Option<Engine>,
    pub v6: Option<Engine>,
}

impl IptablesEngine {
    fn engine(&self, family: u8) -> Option<&Engine> {
        if family == 4 {
            self.v4.as_ref()
        } else {
            self.v6.as_ref()
        }
    }

    fn engine_mut(&mut self, family: u8) -> Option<&mut Engine> {
        if family == 4 {
            self.v4.as_mut()
        } else {
            self.v6.as_mut()
        }
    }

    pub fn has_chain(&self, family: u8, table: &str, hook: Hook) -> bool {
        self.engine(family)
            .and_then(|e| e.ruleset.table(table).map(|t| &e.ruleset.tables[t]))
            .is_some_and(|t| t.entry(hook).is_some())
    }

    /// What a family's ruleset hooks in, in the order statewall registers
    /// it: the nft base chains (in ruleset order), then the iptables tables.
    pub fn registrations(&self, family: u8) -> Vec<Registration> {
        let mut out = Vec::new();
        let Some(engine) = self.engine(family) else {
            return out;
        };
        for (ti, table) in engine.ruleset.tables.iter().enumerate() {
            if table.nft.is_none() {
                continue;
            }
            for (ci, chain) in table.chains.iter().enumerate() {
                if let Some(base) = chain.base {
                    out.push(Registration::Chain {
                        hook: base.hook,
                        priority: base.priority,
                        table: ti as u16,
                        chain: ci as u16,
                        nat: base.kind == ChainType::Nat,
                    });
                }
            }
        }
        for kind in TableKind::ALL {
            for hook in Hook::ALL {
                if self.has_chain(family, kind.name(), hook) {
                    out.push(Registration::Table(kind, hook));
                }
            }
        }
        out
    }

    /// True when `entry` walks a filter table or a filter-type nft chain.
    pub fn is_filter(&self, family: u8, entry: Entry) -> bool {
        match entry {
            Entry::Table(kind) => kind == TableKind::Filter,
            Entry::Chain { table, chain } => self
                .base_chain(family, table, chain)
                .is_some_and(|c| c.base.is_some_and(|b| b.kind == ChainType::Filter)),
            _ => false,
        }
    }

    fn base_chain(&self, family: u8, table: u16, chain: u16) -> Option<&Chain> {
        self.engine(family)?
            .ruleset
            .tables
            .get(usize::from(table))?
            .chains
            .get(usize::from(chain))
    }

    /// The decision of an iptables table's chain or an nft base chain
    /// (`entry`), or None for "passes as ACCEPT, no rule decided".
    /// `first_of_connection`: the packet carries an entry not yet confirmed.
    pub fn evaluate(
        &mut self,
        entry: Entry,
        ctx: &RuleCtx<'_>,
        first_of_connection: bool,
    ) -> Option<(Decision<'_>, &mut Effects)> {
        let family = ctx.pkt.family;
        match entry {
            Entry::Table(TableKind::Nat) if !first_of_connection => None,
            Entry::Table(kind) => self.engine_mut(family)?.walk_kind(kind, ctx),
            Entry::Chain { table, chain } => {
                let base = self.base_chain(family, table, chain)?.base?;
                if base.kind == ChainType::Nat && !first_of_connection {
                    return None;
                }
                let engine = self.engine_mut(family)?;
                engine.walk_chain(usize::from(table), usize::from(chain), ctx)
            }
            _ => None,
        }
    }

    /// The table and chain names at these positions of a family's ruleset.
    pub fn names(&self, family: u8, table: u16, chain: u16) -> (&str, &str) {
        let found = self.engine(family).and_then(|e| {
            let t = e.ruleset.tables.get(usize::from(table))?;
            Some((
                t.name.as_str(),
                t.chains.get(usize::from(chain))?.name.as_str(),
            ))
        });
        found.unwrap_or(("?", "?"))
    }

    /// The chain at these positions and its rule `number` (None: the
    /// policy, number 0, or a number the chain lacks).
    fn rule_at(
        &self,
        family: u8,
        table: u16,
        chain: u16,
        number: u32,
    ) -> Option<(&Chain, Option<&Rule>)> {
        let chain = self
            .engine(family)?
            .ruleset
            .tables
            .get(usize::from(table))?
            .chains
            .get(usize::from(chain))?;
        if number == 0 {
            return Some((chain, None));
        }
        let at = (number as usize).wrapping_sub(1);
        let rule = match chain.rules.get(at).filter(|r| r.number == number) {
            Some(rule) => Some(rule),
            None => chain.rules.iter().find(|r| r.number == number),
        };
        Some((chain, rule))
    }

    /// The explanation a rule (number 0: the chain's policy) gives for
    /// deciding; `json`: escaped for a JSON string.
    pub fn rule_reason(&self, family: u8, table: u16, chain: u16, number: u32, json: bool) -> &str {
        match self.rule_at(family, table, chain, number) {
            Some((_, Some(rule))) if json => &rule.reason_json,
            Some((_, Some(rule))) => &rule.reason,
            Some((chain, None)) if number == 0 && json => &chain.policy_reason_json,
            Some((chain, None)) if number == 0 => &chain.policy_reason,
            _ => "",
        }
    }

    /// A rule's text as iptables-save writes it (number 0: the policy as
    /// `-P CHAIN VERDICT`); empty when there is none.
    pub fn rule_text(&self, family: u8, table: u16, chain: u16, number: u32) -> &str {
        match self.rule_at(family, table, chain, number) {
            Some((_, Some(rule))) => &rule.text,
            Some((chain, None)) if number == 0 => &chain.policy_text,
            _ => "",
        }
    }

    /// Rules whose outcome may be undetermined, as `IPv4 filter INPUT rule 3
    /// (line 12)`: those evaluated as unknown (--allow-unknown), and, when the
    /// machine has addresses of its own, those asking which local socket sent
    /// a packet (`-m owner`), followed by the packets they cannot decide
    /// (text for people: control characters in names escaped).
    pub fn unknown_rules(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (label, engine) in [("IPv4", &self.v4), ("IPv6", &self.v6)] {
            let Some(engine) = engine else { continue };
            let sends_own = !engine.state.topology.local.is_empty();
            for table in &engine.ruleset.tables {
                for chain in &table.chains {
                    for rule in &chain.rules {
                        let unknown = matches!(rule.target, Target::Unknown { .. });
                        let owner = sends_own
                            && rule
                                .matches
                                .iter()
                                .any(|m| matches!(m, Match::Owner { .. }));
                        if !unknown && !owner {
                            continue;
                        }
                        let mut line = format!(
                            "{label} {} {} #{} (line {})",
                            escape(&table.name),
                            escape(&chain.name),
                            rule.number,
                            rule.line
                        );
                        if !unknown {
                            line.push_str(": for packets the machine sends itself (owner)");
                        }
                        out.push(line);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testpkt;

    const JSON: &str = r#"{"family": 4, "source": "t", "tables": [
        {"name": "nat", "chains": [{"name": "PREROUTING", "policy": "ACCEPT", "rules": [
            {"target": {"kind": "nat", "target": "DNAT", "flags": 1, "min_addr": "10.0.0.9",
                        "max_addr": "10.0.0.9", "min_port": 0, "max_port": 0, "base_port": 0},
             "number": 1, "line": 3, "text": "-A PREROUTING -j DNAT --to-destination 10.0.0.9"}]}]},
        {"name": "filter", "chains": [{"name": "INPUT", "policy": "DROP", "rules": [
            {"target": {"kind": "unknown", "why": "match owner is not supported"},
             "number": 1, "line": 7, "text": "-A INPUT -m owner -j DROP"}]}]}]}"#;

    #[test]
    fn nat_only_for_first_packets_and_unknown_rules_listed() {
        let mut e = IptablesEngine {
            v4: Some(Engine::from_json(JSON).unwrap()),
            v6: None,
        };
        assert!(e.has_chain(4, "nat", Hook::PreRouting));
        assert!(!e.has_chain(4, "nat", Hook::Output));
        assert!(!e.has_chain(6, "filter", Hook::Input));
        let data = testpkt::udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        let pkt = testpkt::decode(&data);
        let mut ctx = testpkt::ctx(&pkt);
        ctx.hook = Hook::PreRouting;
        assert!(e
            .evaluate(Entry::Table(TableKind::Nat), &ctx, false)
            .is_none());
        let (_, fx) = e
            .evaluate(Entry::Table(TableKind::Nat), &ctx, true)
            .unwrap();
        let (kind, range) = fx.nat.unwrap();
        assert_eq!(
            (kind, range.min_addr),
            (crate::nat::NatKind::Dnat, 0x0A00_0009)
        );
        assert_eq!(e.unknown_rules(), ["IPv4 filter INPUT #1 (line 7)"]);
    }

    #[test]
    fn owner_rules_are_listed_only_when_the_machine_sends_packets() {
        let rules = r#"{"family": 4, "source": "t", "tables": [
            {"name": "mangle", "chains": [{"name": "POSTROUTING", "policy": "ACCEPT",
             "rules": [{"matches": [{"kind": "owner", "socket_exists": true, "uid": null,
                                     "gid": null, "suppl_groups": false}],
                        "target": {"kind": "verdict", "verdict": "DROP"},
                        "number": 1, "line": 4, "text": "-A POSTROUTING -m owner ! --socket-exists -j DROP"}]}]}]"#;
        let router = IptablesEngine {
            v4: Some(Engine::from_json(&format!("{rules}}}")).unwrap()),
            v6: None,
        };
        assert!(router.unknown_rules().is_empty());
        let local =
            r#", "local_nets": [{"family": 4, "addr": "167772161", "mask": "4294967295"}]}"#;
        let host = IptablesEngine {
            v4: Some(Engine::from_json(&format!("{rules}{local}")).unwrap()),
            v6: None,
        };
        assert_eq!(
            host.unknown_rules(),
            ["IPv4 mangle POSTROUTING #1 (line 4): for packets the machine sends itself (owner)"]
        );
    }
}
