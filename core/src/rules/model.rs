//! A loaded ruleset as plain data (what `statewall.rules.lower` produces).
//!
//! Tables hold chains, chains hold rules, and each rule is its header match
//! (`struct ipt_ip` / `ip6t_ip6`), a list of typed matches and one typed
//! target, with where it came from (table, chain, number, file line) and its
//! iptables-save text. Nothing here changes while packets are walked:
//! counters and the state of stateful matches live in `state::RuleState`.

use serde::{Deserialize, Deserializer};

/// Addresses travel as decimal or `0x` strings: JSON numbers cannot carry 128 bits.
fn de_u128<'de, D: Deserializer<'de>>(de: D) -> Result<u128, D::Error> {
    let text = String::deserialize(de)?;
    parse_u128(&text).ok_or_else(|| serde::de::Error::custom(format!("bad integer {text:?}")))
}

fn de_u128_list<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<u128>, D::Error> {
    let texts = Vec::<String>::deserialize(de)?;
    texts
        .iter()
        .map(|t| {
            parse_u128(t).ok_or_else(|| serde::de::Error::custom(format!("bad integer {t:?}")))
        })
        .collect()
}

fn parse_u128(text: &str) -> Option<u128> {
    match text.strip_prefix("0x") {
        Some(hex) => u128::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// The standard verdicts of a chain policy or a plain `-j ACCEPT` rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Verdict {
    #[serde(rename = "ACCEPT")]
    Accept,
    #[serde(rename = "DROP")]
    Drop,
    #[serde(rename = "QUEUE")]
    Queue,
    #[serde(rename = "RETURN")]
    Return,
}

pub use crate::netfilter::hooks::Hook;

/// An address with its mask; the address is stored masked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct Address {
    #[serde(deserialize_with = "de_u128")]
    pub addr: u128,
    #[serde(deserialize_with = "de_u128")]
    pub mask: u128,
}

/// The rule header (ip_tables.c: ip_packet_match). An interface pattern
/// ending in `+` is a prefix; an absent one is the empty prefix (matches all).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Header {
    pub src: Option<Address>,
    pub src_neg: bool,
    pub dst: Option<Address>,
    pub dst_neg: bool,
    pub iface_in: Option<String>,
    pub iface_in_neg: bool,
    pub iface_out: Option<String>,
    pub iface_out_neg: bool,
    pub proto: u8,
    pub proto_neg: bool,
    pub fragment: Option<bool>,
}

impl Header {
    /// True when the header tests nothing (the rule is unconditional if it has no matches).
    pub fn is_empty(&self) -> bool {
        self.src.is_none()
            && self.dst.is_none()
            && self.iface_in.is_none()
            && self.iface_out.is_none()
            && self.proto == 0
            && self.fragment.is_none()
    }
}

/// An inclusive range with its own `!`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
    #[serde(default)]
    pub neg: bool,
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange {
            low: 0,
            high: 65535,
            neg: false,
        }
    }
}

/// One of xt_conntrack's per-entry tests (everything but --ctstate).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CtCheck {
    /// `which`: 0 orig src, 1 orig dst, 2 reply src, 3 reply dst.
    Addr {
        which: u8,
        #[serde(deserialize_with = "de_u128")]
        addr: u128,
        #[serde(deserialize_with = "de_u128")]
        mask: u128,
        neg: bool,
    },
    /// `which` as for `Addr`, on the ports.
    Port {
        which: u8,
        low: u16,
        high: u16,
        neg: bool,
    },
    Proto {
        proto: u8,
        neg: bool,
    },
    Status {
        mask: u32,
        neg: bool,
    },
    Expire {
        low: u64,
        high: u64,
        neg: bool,
    },
    Dir {
        reply: bool,
    },
}

/// An owner match's uid or gid test: the inclusive range, None for a user
/// or group name (resolved by the firewall itself), and its `!`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct OwnerIds {
    pub ids: Option<(u32, u32)>,
    pub neg: bool,
}

/// sctp --chunk-types: ("all"|"any"|"only", chunk types, (chunk, mask, value) flags, negated).
pub type SctpChunks = (String, Vec<u8>, Vec<(u8, u8, u8)>, bool);

/// One `-m` match with its parameters, checked and normalised at load time.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Match {
    Tcp {
        sport: PortRange,
        dport: PortRange,
        flags_mask: u8,
        flags_cmp: u8,
        flags_neg: bool,
        /// `--tcp-option`: the option kind, or None.
        option: Option<u8>,
        option_neg: bool,
    },
    Udp {
        sport: PortRange,
        dport: PortRange,
    },
    Icmp {
        icmp_type: u8,
        code_low: u8,
        code_high: u8,
        neg: bool,
        /// IPv4's type 255 ("any").
        match_all: bool,
    },
    Multiport {
        ranges: Vec<(u16, u16)>,
        src: bool,
        dst: bool,
        neg: bool,
    },
    State {
        mask: u8,
        neg: bool,
    },
    Conntrack {
        /// (--ctstate bits, negated)
        state: Option<(u8, bool)>,
        checks: Vec<CtCheck>,
    },
    Mark {
        value: u32,
        mask: u32,
        neg: bool,
    },
    Connmark {
        value: u32,
        mask: u32,
        neg: bool,
    },
    Comment,
    Mac {
        mac: Vec<u8>,
        neg: bool,
    },
    Iprange {
        #[serde(deserialize_with = "de_u128")]
        src_low: u128,
        #[serde(deserialize_with = "de_u128")]
        src_high: u128,
        src_neg: bool,
        #[serde(deserialize_with = "de_u128")]
        dst_low: u128,
        #[serde(deserialize_with = "de_u128")]
        dst_high: u128,
        dst_neg: bool,
    },
    Length {
        low: u32,
        high: u32,
        neg: bool,
    },
    /// ttl (IPv4) and hl (IPv6): `op` is "eq", "gt" or "lt".
    Hl {
        op: String,
        value: u8,
        neg: bool,
    },
    Pkttype {
        want: String,
        neg: bool,
    },
    Limit {
        cost: u64,
        cap: u64,
        credits_per_jiffy: u64,
        hz: u64,
        /// The bucket's index in the state, given at load.
        #[serde(default)]
        slot: usize,
    },
    Helper {
        name: String,
        neg: bool,
    },
    /// A match whose answer is fixed for every packet statewall sees: nfacct
    /// (counts and matches), physdev (no bridge), policy (no IPsec). `note` is
    /// added to the packet's notes when the match is evaluated and fails.
    Const {
        value: bool,
        #[serde(default)]
        note: Option<String>,
    },
    Addrtype {
        src_mask: u16,
        src_neg: bool,
        dst_mask: u16,
        dst_neg: bool,
        limit_in: bool,
        limit_out: bool,
    },
    /// statistic --mode random: 31 random bits below `threshold`.
    StatisticRandom {
        threshold: u64,
        neg: bool,
    },
    /// statistic --mode nth (`every` is --every minus one).
    StatisticNth {
        every: u64,
        packet: u64,
        neg: bool,
        #[serde(default)]
        slot: usize,
    },
    Recent {
        /// Index into `Ruleset::recent_tables`.
        table: usize,
        /// "set", "rcheck", "update" or "remove".
        command: String,
        invert: bool,
        seconds: u64,
        hitcount: u64,
        use_dst: bool,
        check_ttl: bool,
        reap: bool,
        hz: u64,
    },
    Hashlimit {
        /// Index into `Ruleset::hashlimit_tables`.
        table: usize,
        invert: bool,
        byte_mode: bool,
        rate_match: bool,
        hz: u64,
    },
    String {
        pattern: Vec<u8>,
        from: usize,
        to: usize,
        icase: bool,
        neg: bool,
    },
    Rt {
        rt_type: Option<(u8, bool)>,
        segs: (u64, u64, bool),
        len: Option<(u64, bool)>,
        reserved: bool,
        #[serde(deserialize_with = "de_u128_list")]
        addrs: Vec<u128>,
        strict: bool,
    },
    Sctp {
        sport: PortRange,
        dport: PortRange,
        /// --chunk-types: ("all"|"any"|"only", chunk types, (chunk, mask, value) flags, negated)
        chunks: Option<SctpChunks>,
    },
    Dscp {
        code: u8,
        neg: bool,
    },
    Tos {
        value: u8,
        mask: u8,
        neg: bool,
    },
    Ecn {
        ect: Option<(u8, bool)>,
        tcp: Vec<(u8, bool)>,
    },
    Tcpmss {
        low: u16,
        high: u16,
        neg: bool,
    },
    Rpfilter {
        loose: bool,
        /// The packet's mark takes part in the lookup; it only changes the
        /// answer under policy routing by mark, which statewall's routes lack.
        #[serde(default)]
        validmark: bool,
        accept_local: bool,
        invert: bool,
    },
    /// owner (xt_owner): `socket_exists` is None when not tested, else
    /// whether it is negated; `uid`/`gid` likewise, with their range.
    Owner {
        socket_exists: Option<bool>,
        uid: Option<OwnerIds>,
        gid: Option<OwnerIds>,
        suppl_groups: bool,
    },
    Connbytes {
        /// 0 original, 1 reply, 2 both
        dirs: u8,
        /// 0 packets, 1 bytes, 2 average packet size
        mode: u8,
        low: u64,
        high: u64,
        neg: bool,
    },
    Connlimit {
        limit: u64,
        invert: bool,
        by_dst: bool,
        #[serde(deserialize_with = "de_u128")]
        mask: u128,
        #[serde(default)]
        slot: usize,
    },
    Set {
        set: usize,
        flags: Vec<bool>,
        invert: bool,
        return_nomatch: bool,
        update: bool,
        packets: Option<(u8, u64, bool)>,
        bytes: Option<(u8, u64, bool)>,
    },
    /// An nft expression test or non-terminal statement (`rules::nft`).
    Nft {
        expr: crate::rules::nft::NftMatch,
    },
    /// A match the lowering knows but the core does not evaluate yet: the rule's
    /// outcome is undetermined (the walk reports UNKNOWN with this reason).
    NotPorted {
        name: String,
    },
}

/// A `-j`/`-g` target with its parameters.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// No target: count and continue.
    None,
    Verdict {
        verdict: Verdict,
    },
    Jump {
        chain: usize,
    },
    Goto {
        chain: usize,
    },
    /// Something statewall cannot evaluate (allowed with allow_unknown).
    Unknown {
        why: String,
    },
    Log {
        prefix: String,
        tcp_sequence: bool,
        tcp_options: bool,
        ip_options: bool,
    },
    Reject {
        with: String,
    },
    Mark {
        mask: u32,
        xor: u32,
    },
    ConnmarkCopy {
        save: bool,
        nfmask: u32,
        ctmask: u32,
    },
    ConnmarkSet {
        mask: u32,
        xor: u32,
    },
    /// CT, NOTRACK: effects handed to conntrack, in option order.
    Ct {
        effects: Vec<(String, serde_json::Value)>,
    },
    Trace,
    /// nat targets: the range the NAT core binds the connection within
    /// (addresses absent: the target takes them from the interface or the
    /// packet); they end the nat chain with ACCEPT.
    Nat {
        target: crate::nat::NatKind,
        flags: u32,
        min_addr: Option<std::net::IpAddr>,
        max_addr: Option<std::net::IpAddr>,
        min_port: u16,
        max_port: u16,
        base_port: u16,
    },
    Nfqueue {
        num: u16,
        bypass: bool,
    },
    /// A target whose only result is one recorded effect (TCPMSS, CHECKSUM,
    /// DSCP, TOS, TTL, HL, CLASSIFY, AUDIT, NFLOG).
    Effect {
        effect: String,
        value: serde_json::Value,
    },
    /// SET: (add?, set index, flags) changes.
    Set {
        changes: Vec<(bool, usize, Vec<bool>)>,
        timeout: Option<u64>,
        exist: bool,
    },
    NotPorted {
        name: String,
    },
    /// nft `vmap`: the verdict of the element `left` finds in `map`.
    NftVmap {
        left: crate::rules::nft::Expr,
        map: crate::rules::nft::SetRef,
    },
    /// nft snat/dnat whose address or port comes from a map or expression
    /// (fixed ones lower to `Nat`).
    NftNat {
        target: crate::nat::NatKind,
        flags: u32,
        #[serde(default)]
        addr: Option<crate::rules::nft::Source>,
        #[serde(default)]
        port: Option<crate::rules::nft::Source>,
    },
}

impl Target {
    /// The chains this target may continue in (jump, goto, a verdict map's jumps).
    pub fn chains<'t>(&'t self, sets: &'t [crate::rules::nft::SetSpec]) -> Vec<usize> {
        use crate::rules::nft::NftVerdict;
        match self {
            Target::Jump { chain } | Target::Goto { chain } => vec![*chain],
            Target::NftVmap { map, .. } => {
                let spec = map.anon.as_deref().or_else(|| sets.get(map.set));
                spec.map_or_else(Vec::new, |s| {
                    s.elements
                        .iter()
                        .filter_map(|e| match e.verdict {
                            Some(NftVerdict::Jump { chain } | NftVerdict::Goto { chain }) => {
                                Some(chain)
                            }
                            _ => None,
                        })
                        .collect()
                })
            }
            _ => Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Rule {
    #[serde(default)]
    pub header: Header,
    #[serde(default)]
    pub matches: Vec<Match>,
    pub target: Target,
    pub number: u32,
    #[serde(default)]
    pub line: u32,
    #[serde(default)]
    pub text: String,
    /// Why the rule cannot be evaluated (a match or its target), if so.
    #[serde(default)]
    pub unknown: Option<String>,
    /// "rule N of TABLE CHAIN: TEXT", built once at load.
    #[serde(skip)]
    pub reason: String,
    /// `reason` escaped for a JSON string, built once at load (jsonl lines).
    #[serde(skip)]
    pub reason_json: String,
}

/// What an nft base chain is for (`type filter|nat|route`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainType {
    Filter,
    /// Consulted by the NAT core for a connection's first packet only.
    Nat,
    /// OUTPUT only: walked as a filter chain (as the mangle table's OUTPUT is).
    Route,
}

/// Where an nft base chain hooks in: its hook, its priority and its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct BaseChain {
    pub hook: Hook,
    pub priority: i32,
    #[serde(rename = "type")]
    pub kind: ChainType,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Chain {
    pub name: String,
    /// ACCEPT or DROP for a built-in (or nft base) chain, None for a user chain.
    pub policy: Option<Verdict>,
    /// An nft base chain's hook, priority and type; None for an iptables
    /// chain or an nft regular chain.
    #[serde(default)]
    pub base: Option<BaseChain>,
    #[serde(default)]
    pub line: u32,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// "policy VERDICT of TABLE CHAIN", built once at load.
    #[serde(skip)]
    pub policy_reason: String,
    /// `policy_reason` escaped for a JSON string.
    #[serde(skip)]
    pub policy_reason_json: String,
    /// "-P CHAIN VERDICT", the policy as a command sets it, built once at
    /// load (`replay --explain` shows it as a rule's text).
    #[serde(skip)]
    pub policy_text: String,
}

/// What marks a table as an nft table: its nft family ("ip", "ip6", "inet").
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct NftTable {
    pub family: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Table {
    /// An iptables table's name, or an nft table's as nft prints it ("inet filter").
    pub name: String,
    pub chains: Vec<Chain>,
    /// Set for an nft table: its chains hook in by their own `base`.
    #[serde(default)]
    pub nft: Option<NftTable>,
    /// The built-in chain of each hook (by `Hook::index`), found once at
    /// load; always None for an nft table (a hook may have several of its chains).
    #[serde(skip)]
    pub entries: [Option<usize>; 5],
}

impl Table {
    /// The built-in chain of `hook`, if this table has one.
    pub fn entry(&self, hook: Hook) -> Option<usize> {
        self.entries[hook.index()]
    }

    /// Find the built-in chains (a chain with a policy named after its
    /// hook) of an iptables table.
    pub fn find_entries(&mut self) {
        if self.nft.is_some() {
            return;
        }
        for hook in Hook::ALL {
            self.entries[hook.index()] = self
                .chains
                .iter()
                .position(|c| c.policy.is_some() && c.name == hook.name());
        }
    }
}

/// A network of the simulated machine (for addrtype).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct Net {
    pub family: u8,
    #[serde(deserialize_with = "de_u128")]
    pub addr: u128,
    #[serde(deserialize_with = "de_u128")]
    pub mask: u128,
}

/// An xt_recent list as the rules that name it configured it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RecentSpec {
    pub name: String,
    #[serde(deserialize_with = "de_u128")]
    pub mask: u128,
    pub stamp_mask: u64,
}

/// An xt_hashlimit table's settings (`struct hashlimit_cfg3`), from the
/// first rule naming it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct HashlimitSpec {
    pub name: String,
    pub mode: u8,
    pub avg: u64,
    pub burst: u64,
    pub srcmask: u32,
    pub dstmask: u32,
    pub expire_ms: u64,
    pub gc_ms: u64,
    pub max_entries: u64,
    pub byte_mode: bool,
    pub rate_match: bool,
    pub interval: u64,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Ruleset {
    pub family: u8,
    #[serde(default)]
    pub source: String,
    pub tables: Vec<Table>,
    /// Seed of the generator `statistic --mode random` draws from.
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub local_nets: Vec<Net>,
    #[serde(default)]
    pub iface_nets: Vec<(String, Vec<Net>)>,
    #[serde(default)]
    pub recent_tables: Vec<RecentSpec>,
    /// xt_recent's ip_list_tot.
    #[serde(default = "default_recent_size")]
    pub recent_size: usize,
    #[serde(default)]
    pub hashlimit_tables: Vec<HashlimitSpec>,
    #[serde(default)]
    pub sets: Vec<crate::rules::ipset::SetSpec>,
    /// nft sets and maps (`rules::nft`), named by index from rules.
    #[serde(default)]
    pub nft_sets: Vec<crate::rules::nft::SetSpec>,
}

fn default_recent_size() -> usize {
    100
}

impl Ruleset {
    pub fn table(&self, name: &str) -> Option<usize> {
        self.tables.iter().position(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_from_strings() {
        assert_eq!(parse_u128("0xff"), Some(255));
        assert_eq!(
            parse_u128("340282366920938463463374607431768211455"),
            Some(u128::MAX)
        );
        assert_eq!(parse_u128("x"), None);
    }

    #[test]
    fn a_rule_deserialises() {
        let rule: Rule = serde_json::from_str(
            r#"{"header": {"src": {"addr": "167772160", "mask": "4278190080"}, "proto": 6},
                "matches": [{"kind": "tcp", "sport": {"low": 0, "high": 65535},
                             "dport": {"low": 22, "high": 22, "neg": false},
                             "flags_mask": 0, "flags_cmp": 0, "flags_neg": false,
                             "option": null, "option_neg": false}],
                "target": {"kind": "verdict", "verdict": "ACCEPT"},
                "number": 1, "line": 5, "text": "-A INPUT -p tcp -j ACCEPT"}"#,
        )
        .unwrap();
        assert_eq!(rule.header.src.unwrap().addr, 0x0a00_0000);
        assert!(matches!(
            rule.target,
            Target::Verdict {
                verdict: Verdict::Accept
            }
        ));
    }
}
