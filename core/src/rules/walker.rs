//! Walking one table for one packet (ip_tables.c: ipt_do_table), and loading
//! the data it walks (translate_table, mark_source_chains).
//!
//! The walk never recurses: a jump pushes the return point on a stack kept
//! in the state (reused, so a walk allocates nothing of its own), a goto does
//! not, and RETURN or the end of a user chain pops it; with nothing to pop,
//! the built-in chain's policy decides. Counters count the IP total length.
//! Once a TRACE rule has set nf_trace, every matched rule adds a TRACE line.

use std::borrow::Cow;

use crate::netfilter::hooks::TableKind;
use crate::output::json::push_str_body;
use crate::rules::context::{Decision, Effects, Outcome, RuleAt, RuleCtx};
use crate::rules::matches::{self, Hit};
use crate::rules::model::{Chain, Match, Rule, Ruleset, Table, Target, Verdict};
use crate::rules::nft::NftMatch;
use crate::rules::nft::SetSpec;
use crate::rules::state::RuleState;
use crate::rules::targets::{self, log, Step};

/// One nft `counter` statement's count (`Engine::nft_counters`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NftCounter {
    pub table: String,
    pub chain: String,
    pub rule: u32,
    pub place: usize,
    pub name: Option<String>,
    pub packets: u64,
    pub bytes: u64,
}

/// A loaded ruleset of one family and what it remembers between packets.
#[derive(Clone, Debug)]
pub struct Engine {
    pub ruleset: Ruleset,
    pub state: RuleState,
    stack: Vec<(usize, usize)>,
    /// The position of each iptables table in the ruleset, by `TableKind`.
    kinds: [Option<usize>; 5],
    /// The effects of the last walk; reused so a walk allocates nothing
    /// unless a target writes to it.
    fx: Effects,
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Accept => "ACCEPT",
        Verdict::Drop => "DROP",
        Verdict::Queue => "QUEUE",
        Verdict::Return => "RETURN",
    }
}

fn outcome(v: Verdict) -> Outcome {
    match v {
        Verdict::Accept => Outcome::Accept,
        Verdict::Queue => Outcome::Queue,
        _ => Outcome::Drop,
    }
}

/// Jump targets exist and are user chains, and no chain reaches itself.
/// Iterative (an explicit stack), so any depth of nesting loads.
fn check_table(source: &str, table: &Table, sets: &[SetSpec]) -> Result<(), String> {
    let n = table.chains.len();
    let err = |line: u32, msg: String| format!("{source}:{line}: {msg}");
    for chain in &table.chains {
        for rule in &chain.rules {
            for j in rule.target.chains(sets) {
                match table.chains.get(j) {
                    None => {
                        return Err(err(
                            rule.line,
                            format!("jump to chain #{j}, which does not exist"),
                        ))
                    }
                    Some(c) if c.policy.is_some() => {
                        return Err(err(
                            rule.line,
                            format!("cannot jump to built-in chain {}", c.name),
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
    }
    // 0: unvisited, 1: on the path, 2: done. Only chains a hook reaches
    // count, as in mark_source_chains: an unreachable loop is harmless.
    let mut color = vec![0u8; n];
    for start in 0..n {
        if color[start] != 0 || table.chains[start].policy.is_none() {
            continue;
        }
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        color[start] = 1;
        while let Some(&mut (ci, ref mut ri)) = path.last_mut() {
            let rules = &table.chains[ci].rules;
            if *ri >= rules.len() {
                color[ci] = 2;
                path.pop();
                continue;
            }
            let rule = &rules[*ri];
            *ri += 1;
            // A verdict map may lead to several chains: each is followed
            // through a path of its own (the first unvisited one per step).
            let mut open = rule
                .target
                .chains(sets)
                .into_iter()
                .filter(|&j| color[j] != 2);
            let next = open.next();
            if open.next().is_some() {
                *ri -= 1;
            }
            if let Some(j) = next {
                match color[j] {
                    0 => {
                        color[j] = 1;
                        path.push((j, 0));
                    }
                    1 => {
                        let at = path.iter().position(|&(c, _)| c == j).unwrap_or(0);
                        let mut names: Vec<&str> = path[at..]
                            .iter()
                            .map(|&(c, _)| table.chains[c].name.as_str())
                            .collect();
                        names.push(&table.chains[j].name);
                        return Err(err(
                            rule.line,
                            format!("loop detected in chains: {}", names.join(" -> ")),
                        ));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

impl Engine {
    /// Loads the JSON `statewall.rules.lower` writes; errors name `file:line`.
    pub fn from_json(json: &str) -> Result<Engine, String> {
        let ruleset: Ruleset =
            serde_json::from_str(json).map_err(|e| format!("bad ruleset data: {e}"))?;
        Engine::new(ruleset)
    }

    pub fn new(mut ruleset: Ruleset) -> Result<Engine, String> {
        for table in &mut ruleset.tables {
            check_table(&ruleset.source, table, &ruleset.nft_sets)?;
            table.find_entries();
            for chain in &mut table.chains {
                if let Some(p) = chain.policy {
                    if !matches!(p, Verdict::Accept | Verdict::Drop) {
                        return Err(format!(
                            "{}:{}: bad policy {} of chain {}",
                            ruleset.source,
                            chain.line,
                            verdict_name(p),
                            chain.name
                        ));
                    }
                    chain.policy_reason = format!(
                        "policy {} of {} {}",
                        verdict_name(p),
                        table.name,
                        chain.name
                    );
                    push_str_body(&mut chain.policy_reason_json, &chain.policy_reason);
                    chain.policy_text = if table.nft.is_some() {
                        format!("policy {};", verdict_name(p).to_lowercase())
                    } else {
                        format!("-P {} {}", chain.name, verdict_name(p))
                    };
                }
                for rule in &mut chain.rules {
                    rule.reason = format!(
                        "rule {} of {} {}: {}",
                        rule.number, table.name, chain.name, rule.text
                    );
                    push_str_body(&mut rule.reason_json, &rule.reason);
                }
            }
        }
        let state = RuleState::for_ruleset(&mut ruleset)?;
        let mut kinds = [None; 5];
        for (ti, table) in ruleset.tables.iter().enumerate() {
            if let Some(kind) = TableKind::from_name(&table.name) {
                kinds[kind as usize] = Some(ti);
            }
        }
        Ok(Engine {
            ruleset,
            state,
            stack: Vec::new(),
            kinds,
            fx: Effects::default(),
        })
    }

    /// The decision of `table` for the packet, or None when the table is not
    /// loaded or has no chain for the hook (the packet passes as with ACCEPT).
    /// Per-rule counters: (table, chain, number (0: the policy), packets, bytes).
    pub fn counters(&self) -> Vec<(String, String, u32, u64, u64)> {
        let mut out = Vec::new();
        let state = &self.state;
        for (ti, table) in self.ruleset.tables.iter().enumerate() {
            for (ci, chain) in table.chains.iter().enumerate() {
                if chain.policy.is_some() {
                    let (p, b) = state
                        .chains
                        .get(ti)
                        .and_then(|t| t.get(ci))
                        .copied()
                        .unwrap_or((0, 0));
                    out.push((table.name.clone(), chain.name.clone(), 0, p, b));
                }
                for (ri, rule) in chain.rules.iter().enumerate() {
                    let (p, b) = state.rule(ti, ci, ri);
                    out.push((table.name.clone(), chain.name.clone(), rule.number, p, b));
                }
            }
        }
        out
    }

    /// The nft `counter` statements' counts, in rule order: (table, chain,
    /// rule number, the statement's place among the rule's counters, the
    /// named counter object it updates if any, packets, bytes).
    pub fn nft_counters(&self) -> Vec<NftCounter> {
        let mut out = Vec::new();
        for table in self.ruleset.tables.iter().filter(|t| t.nft.is_some()) {
            for chain in &table.chains {
                for rule in &chain.rules {
                    let counters = rule.matches.iter().filter_map(|m| match m {
                        Match::Nft {
                            expr: NftMatch::Counter { name, slot },
                        } => Some((name, slot)),
                        _ => None,
                    });
                    for (place, (name, slot)) in counters.enumerate() {
                        let (packets, bytes) = self
                            .state
                            .nft
                            .counters
                            .get(*slot)
                            .copied()
                            .unwrap_or((0, 0));
                        out.push(NftCounter {
                            table: table.name.clone(),
                            chain: chain.name.clone(),
                            rule: rule.number,
                            place,
                            name: name.clone(),
                            packets,
                            bytes,
                        });
                    }
                }
            }
        }
        out
    }

    pub fn walk(&mut self, table: &str, ctx: &RuleCtx<'_>) -> Option<(Decision<'_>, &mut Effects)> {
        let ti = self.ruleset.table(table)?;
        self.walk_at(ti, ctx)
    }

    /// As `walk`, for an iptables table by kind (no name lookup).
    pub fn walk_kind(
        &mut self,
        kind: TableKind,
        ctx: &RuleCtx<'_>,
    ) -> Option<(Decision<'_>, &mut Effects)> {
        let ti = self.kinds[kind as usize]?;
        self.walk_at(ti, ctx)
    }

    /// As `walk`, for the table at position `ti` of the ruleset.
    pub fn walk_at(
        &mut self,
        ti: usize,
        ctx: &RuleCtx<'_>,
    ) -> Option<(Decision<'_>, &mut Effects)> {
        let entry = self.ruleset.tables.get(ti)?.entry(ctx.hook)?;
        self.walk_chain(ti, entry, ctx)
    }

    /// The decision of the base chain `ci` of table `ti` (an nft base chain,
    /// or an iptables built-in chain): its rules, the chains they jump to,
    /// then its policy. None when there is no such chain.
    pub fn walk_chain(
        &mut self,
        ti: usize,
        entry: usize,
        ctx: &RuleCtx<'_>,
    ) -> Option<(Decision<'_>, &mut Effects)> {
        let Engine {
            ruleset,
            state,
            stack,
            fx,
            ..
        } = self;
        let t = ruleset.tables.get(ti)?;
        t.chains.get(entry)?.policy?;
        stack.clear();
        fx.reset(ctx.mark, ctx.nf_trace);
        let d = walk_table(t, ti, entry, ctx, state, stack, fx);
        Some((d, fx))
    }
}

/// `-i`/`-o`: a rule without the option matches every interface.
fn iface_matches(name: Option<&str>, pattern: Option<&str>, negated: bool) -> bool {
    let Some(pattern) = pattern else {
        return true;
    };
    let actual = name.unwrap_or("");
    negated
        != match pattern.strip_suffix('+') {
            Some(prefix) => actual.starts_with(prefix),
            None => actual == pattern,
        }
}

/// The rule header (ip_tables.c: ip_packet_match).
pub fn header_matches(rule: &Rule, ctx: &RuleCtx<'_>) -> bool {
    let h = &rule.header;
    let pkt = ctx.pkt;
    let (smask, saddr) = h.src.map_or((0, 0), |a| (a.mask, a.addr));
    let (dmask, daddr) = h.dst.map_or((0, 0), |a| (a.mask, a.addr));
    if ((pkt.src & smask) == saddr) == h.src_neg || ((pkt.dst & dmask) == daddr) == h.dst_neg {
        return false;
    }
    if !iface_matches(ctx.iface_in, h.iface_in.as_deref(), h.iface_in_neg)
        || !iface_matches(ctx.iface_out, h.iface_out.as_deref(), h.iface_out_neg)
    {
        return false;
    }
    if h.proto != 0 && (pkt.proto == h.proto) == h.proto_neg {
        return false;
    }
    match h.fragment {
        Some(f) => pkt.is_later_fragment() == f,
        None => true,
    }
}

/// What a rule's checks say together.
enum Checked {
    Fail,
    /// All passed; with the first undecided reason, if any.
    Pass(Option<String>),
}

fn rule_matches(
    rule: &Rule,
    ctx: &RuleCtx<'_>,
    fx: &mut Effects,
    state: &mut RuleState,
) -> Checked {
    if !rule.header.is_empty() && !header_matches(rule, ctx) {
        return Checked::Fail;
    }
    let mut unknown = None;
    for m in &rule.matches {
        match matches::eval(m, ctx, fx, state) {
            Hit::No => return Checked::Fail,
            Hit::Yes => {}
            Hit::Undecided(why) => {
                if unknown.is_none() {
                    unknown = Some(why);
                }
            }
        }
    }
    Checked::Pass(unknown)
}

fn trace_line(
    ctx: &RuleCtx<'_>,
    mark: u32,
    table: &str,
    chain: &str,
    comment: &str,
    n: usize,
) -> String {
    let prefix = format!("TRACE: {table}:{chain}:{comment}:{n} ");
    log::log_line(ctx, mark, &prefix, log::TRACE_FLAGS)
}

fn at<'e>(
    table: &'e Table,
    (table_index, chain_index): (usize, usize),
    chain: &'e Chain,
    number: u32,
    line: u32,
) -> RuleAt<'e> {
    RuleAt {
        table: &table.name,
        chain: &chain.name,
        table_index,
        chain_index,
        number,
        line,
    }
}

fn policy<'e>(
    table: &'e Table,
    ti: usize,
    entry: usize,
    ctx: &RuleCtx<'_>,
    state: &mut RuleState,
    fx: &mut Effects,
) -> Decision<'e> {
    let chain = &table.chains[entry];
    state.count_policy(ti, entry, u64::from(ctx.pkt.ip_len));
    if fx.nf_trace {
        let line = trace_line(
            ctx,
            fx.mark,
            &table.name,
            &chain.name,
            "policy",
            chain.rules.len() + 1,
        );
        fx.trace.push(line);
    }
    let verdict = chain.policy.map_or(Outcome::Accept, outcome);
    Decision {
        verdict,
        rule: at(table, (ti, entry), chain, 0, chain.line),
        reason: Cow::Borrowed(&chain.policy_reason),
    }
}

fn decide<'e>(
    table: &'e Table,
    place: (usize, usize),
    chain: &'e Chain,
    rule: &'e Rule,
    verdict: Outcome,
    why: Option<Cow<'_, str>>,
) -> Decision<'e> {
    let reason = match verdict {
        Outcome::Unknown => {
            let why = why
                .map(|w| w.into_owned())
                .or_else(|| rule.unknown.clone())
                .unwrap_or_default();
            Cow::Owned(format!(
                "undetermined from rule {} of {} {} ({why}): {}",
                rule.number, table.name, chain.name, rule.text
            ))
        }
        _ => Cow::Borrowed(rule.reason.as_str()),
    };
    Decision {
        verdict,
        rule: at(table, place, chain, rule.number, rule.line),
        reason,
    }
}

fn walk_table<'e>(
    table: &'e Table,
    ti: usize,
    entry: usize,
    ctx: &RuleCtx<'_>,
    state: &mut RuleState,
    stack: &mut Vec<(usize, usize)>,
    fx: &mut Effects,
) -> Decision<'e> {
    let size = u64::from(ctx.pkt.ip_len);
    let (mut ci, mut ri) = (entry, 0usize);
    loop {
        let Some(chain) = table.chains.get(ci) else {
            return policy(table, ti, entry, ctx, state, fx);
        };
        let Some(rule) = chain.rules.get(ri) else {
            if fx.nf_trace && (ci != entry || !stack.is_empty()) {
                let line = trace_line(
                    ctx,
                    fx.mark,
                    &table.name,
                    &chain.name,
                    "return",
                    chain.rules.len() + 1,
                );
                fx.trace.push(line);
            }
            match stack.pop() {
                Some((c, r)) => {
                    (ci, ri) = (c, r);
                    continue;
                }
                None => return policy(table, ti, entry, ctx, state, fx),
            }
        };
        let rule_index = ri;
        ri += 1;
        let unknown = match rule_matches(rule, ctx, fx, state) {
            Checked::Pass(unknown) => unknown,
            Checked::Fail if fx.hotdrop.is_none() => continue,
            Checked::Fail => {
                let why = fx.hotdrop.clone().unwrap_or_default();
                let reason = format!(
                    "dropped by a match of rule {} of {} {} ({why}): {}",
                    rule.number, table.name, chain.name, rule.text
                );
                return Decision {
                    verdict: Outcome::Drop,
                    rule: at(table, (ti, ci), chain, rule.number, rule.line),
                    reason: Cow::Owned(reason),
                };
            }
        };
        state.count_rule(ti, ci, rule_index, size);
        if fx.nf_trace {
            let plain = matches!(rule.target, Target::Verdict { .. })
                && rule.header.is_empty()
                && rule.matches.is_empty();
            let comment = match (plain, ci == entry) {
                (false, _) => "rule",
                (true, true) => "policy",
                (true, false) => "return",
            };
            let line = trace_line(
                ctx,
                fx.mark,
                &table.name,
                &chain.name,
                comment,
                rule.number as usize,
            );
            fx.trace.push(line);
        }
        if let Some(why) = unknown {
            return decide(
                table,
                (ti, ci),
                chain,
                rule,
                Outcome::Unknown,
                Some(Cow::Owned(why)),
            );
        }
        let verdict = match &rule.target {
            Target::None => continue,
            Target::Jump { chain: j } => {
                stack.push((ci, ri));
                (ci, ri) = (*j, 0);
                continue;
            }
            Target::Goto { chain: j } => {
                (ci, ri) = (*j, 0);
                continue;
            }
            Target::Verdict {
                verdict: Verdict::Return,
            } => None,
            Target::Verdict { verdict } => Some(outcome(*verdict)),
            Target::Unknown { .. } => {
                return decide(table, (ti, ci), chain, rule, Outcome::Unknown, None);
            }
            other => match targets::run(other, ctx, fx, state) {
                Step::Continue => continue,
                Step::Jump(j) => {
                    stack.push((ci, ri));
                    (ci, ri) = (j, 0);
                    continue;
                }
                Step::Goto(j) => {
                    (ci, ri) = (j, 0);
                    continue;
                }
                Step::Return => None,
                Step::Verdict(v) => Some(v),
                Step::Unknown(why) => {
                    return decide(table, (ti, ci), chain, rule, Outcome::Unknown, Some(why));
                }
            },
        };
        match verdict {
            Some(v) => return decide(table, (ti, ci), chain, rule, v, None),
            None => match stack.pop() {
                Some((c, r)) => (ci, ri) = (c, r),
                None => return policy(table, ti, entry, ctx, state, fx),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::model::{Header, Match, PortRange};
    use crate::rules::testpkt;

    fn rule(number: u32, matches: Vec<Match>, target: Target) -> Rule {
        Rule {
            header: Header::default(),
            matches,
            target,
            number,
            line: number + 10,
            text: format!("r{number}"),
            unknown: None,
            reason: String::new(),
            reason_json: String::new(),
        }
    }

    fn chain(name: &str, policy: Option<Verdict>, rules: Vec<Rule>) -> Chain {
        Chain {
            name: name.into(),
            policy,
            base: None,
            line: 1,
            rules,
            policy_reason: String::new(),
            policy_reason_json: String::new(),
            policy_text: String::new(),
        }
    }

    fn engine(chains: Vec<Chain>) -> Result<Engine, String> {
        Engine::new(Ruleset {
            family: 4,
            source: "t.rules".into(),
            tables: vec![Table {
                entries: [None; 5],
                nft: None,
                name: "filter".into(),
                chains,
            }],
            seed: 0,
            local_nets: vec![],
            iface_nets: vec![],
            recent_tables: vec![],
            recent_size: 100,
            hashlimit_tables: vec![],
            sets: vec![],
            nft_sets: vec![],
        })
    }

    fn dport(port: u16) -> Match {
        Match::Udp {
            sport: PortRange::default(),
            dport: PortRange {
                low: port,
                high: port,
                neg: false,
            },
        }
    }

    const ACCEPT: Target = Target::Verdict {
        verdict: Verdict::Accept,
    };
    const RETURN: Target = Target::Verdict {
        verdict: Verdict::Return,
    };

    #[test]
    fn jump_return_goto_and_policy() {
        let mut e = engine(vec![
            chain(
                "INPUT",
                Some(Verdict::Drop),
                vec![
                    rule(1, vec![], Target::Jump { chain: 1 }),
                    rule(2, vec![dport(53)], Target::Goto { chain: 2 }),
                ],
            ),
            chain(
                "a",
                None,
                vec![
                    rule(1, vec![dport(99)], RETURN),
                    rule(2, vec![dport(7)], ACCEPT),
                ],
            ),
            chain("b", None, vec![rule(1, vec![dport(1)], ACCEPT)]),
        ])
        .unwrap();
        let data = testpkt::udp4([10, 0, 0, 1], [10, 0, 0, 2], 5, 7);
        let pkt = testpkt::decode(&data);
        let ctx = testpkt::ctx(&pkt);
        let (d, _) = e.walk("filter", &ctx).unwrap();
        assert_eq!(
            (d.verdict, d.rule.chain, d.rule.number),
            (Outcome::Accept, "a", 2)
        );
        assert_eq!(d.reason, "rule 2 of filter a: r2");
        let data = testpkt::udp4([10, 0, 0, 1], [10, 0, 0, 2], 5, 53);
        let pkt = testpkt::decode(&data);
        let ctx = testpkt::ctx(&pkt);
        let (d, _) = e.walk("filter", &ctx).unwrap();
        assert_eq!(
            (d.verdict, d.rule.chain, d.rule.number),
            (Outcome::Drop, "INPUT", 0)
        );
        assert_eq!(d.reason, "policy DROP of filter INPUT");
        assert_eq!(e.state.rule(0, 0, 0), (2, 56));
        assert_eq!(e.state.rule(0, 0, 1), (1, 28));
        assert_eq!(e.state.rule(0, 1, 1), (1, 28));
        assert_eq!(e.state.chains[0][0], (1, 28));
        assert!(e.walk("nat", &ctx).is_none());
    }

    #[test]
    fn ten_thousand_nested_chains_walk_without_recursion() {
        let depth = 10_000;
        let mut chains = vec![chain(
            "INPUT",
            Some(Verdict::Drop),
            vec![rule(1, vec![], Target::Jump { chain: 1 })],
        )];
        for i in 1..depth {
            chains.push(chain(
                &format!("c{i}"),
                None,
                vec![rule(1, vec![], Target::Jump { chain: i + 1 })],
            ));
        }
        chains.push(chain("last", None, vec![rule(1, vec![dport(9)], ACCEPT)]));
        let mut e = engine(chains).unwrap();
        let data = testpkt::udp4([10, 0, 0, 1], [10, 0, 0, 2], 5, 9);
        let pkt = testpkt::decode(&data);
        let (d, _) = e.walk("filter", &testpkt::ctx(&pkt)).unwrap();
        assert_eq!((d.verdict, d.rule.chain), (Outcome::Accept, "last"));
        let data = testpkt::udp4([10, 0, 0, 1], [10, 0, 0, 2], 5, 10);
        let pkt = testpkt::decode(&data);
        let (d, _) = e.walk("filter", &testpkt::ctx(&pkt)).unwrap();
        assert_eq!(d.verdict, Outcome::Drop);
    }

    #[test]
    fn loops_and_bad_jumps_are_refused_with_file_and_line() {
        let err = engine(vec![
            chain(
                "INPUT",
                Some(Verdict::Accept),
                vec![rule(1, vec![], Target::Jump { chain: 1 })],
            ),
            chain("a", None, vec![rule(1, vec![], Target::Jump { chain: 2 })]),
            chain("b", None, vec![rule(1, vec![], Target::Goto { chain: 1 })]),
        ])
        .unwrap_err();
        assert_eq!(err, "t.rules:11: loop detected in chains: a -> b -> a");
        let err = engine(vec![chain(
            "INPUT",
            Some(Verdict::Accept),
            vec![rule(1, vec![], Target::Jump { chain: 0 })],
        )])
        .unwrap_err();
        assert_eq!(err, "t.rules:11: cannot jump to built-in chain INPUT");
    }

    #[test]
    fn unknown_and_not_ported_rules_are_undetermined() {
        let mut e = engine(vec![chain(
            "INPUT",
            Some(Verdict::Accept),
            vec![rule(
                1,
                vec![Match::NotPorted {
                    name: "owner".into(),
                }],
                ACCEPT,
            )],
        )])
        .unwrap();
        let data = testpkt::udp4([10, 0, 0, 1], [10, 0, 0, 2], 5, 9);
        let pkt = testpkt::decode(&data);
        let (d, _) = e.walk("filter", &testpkt::ctx(&pkt)).unwrap();
        assert_eq!(d.verdict, Outcome::Unknown);
        assert_eq!(
            d.reason,
            "undetermined from rule 1 of filter INPUT (match owner is not evaluated by the core yet): r1"
        );
    }

    #[test]
    fn trace_marks_and_logs() {
        let mut e = engine(vec![chain(
            "INPUT",
            Some(Verdict::Accept),
            vec![
                rule(1, vec![], Target::Trace),
                rule(
                    2,
                    vec![],
                    Target::Mark {
                        mask: 0xffff_ffff,
                        xor: 5,
                    },
                ),
                rule(
                    3,
                    vec![Match::Mark {
                        value: 5,
                        mask: 0xff,
                        neg: false,
                    }],
                    Target::Log {
                        prefix: "p ".into(),
                        tcp_sequence: false,
                        tcp_options: false,
                        ip_options: false,
                    },
                ),
            ],
        )])
        .unwrap();
        let data = testpkt::udp4([10, 0, 0, 1], [10, 0, 0, 2], 5, 9);
        let pkt = testpkt::decode(&data);
        let (_, fx) = e.walk("filter", &testpkt::ctx(&pkt)).unwrap();
        assert_eq!(fx.mark, 5);
        assert!(fx.nf_trace);
        assert_eq!(fx.logs.len(), 1);
        assert!(fx.logs[0].starts_with("p IN= OUT= SRC=10.0.0.1"));
        assert!(fx.logs[0].ends_with("MARK=0x5 "));
        // The TRACE rule itself is not traced: the bit is set after it matched.
        assert_eq!(fx.trace.len(), 3);
        assert!(fx.trace[0].starts_with("TRACE: filter:INPUT:rule:2 "));
        assert!(fx.trace[2].starts_with("TRACE: filter:INPUT:policy:4 "));
    }
}
