//! The firewall: one simulated Linux machine running netfilter.
//!
//! `Firewall` owns every piece of per-machine state (defragmentation
//! queues, the conntrack and expectation tables, the rules with their
//! counters and match state) and no clock: each packet's timestamp is the
//! time. Captures sometimes step backwards (merged or reordered files); the
//! kernel's clock never does, so time is held at the latest value seen.
//!
//! A packet is walked through the hook list built once at construction
//! (`netfilter::hooks::HookList`), one skb-like context per packet: the
//! raw table's CT target writes the context's notrack, zone and helper
//! before conntrack reads them, MARK writes its mark. The first terminal
//! verdict ends the walk and takes a not-yet-confirmed entry with it.
//!
//! Events. With events on, every `conntrack -E` message (and every
//! expectation event) is collected; before each packet the garbage
//! collector reaps what expired since the last one, at its expiry time. The
//! events of one packet are sorted by time once the packet is done and wait
//! for the caller to take them.

use std::borrow::Cow;

use crate::config::{HelperParams, Sysctls};
use crate::conntrack::conn::{
    direction_of, Conn, ConnId, CT_INVALID, CT_NEW, CT_RELATED, CT_RELATED_REPLY, CT_UNTRACKED,
    IPS_EXPECTED, IPS_SEQ_ADJUST, STATUS_NAMES,
};
use crate::conntrack::core::{untracked, ConntrackTable, CtResult};
use crate::conntrack::events::{ConntrackEvent, IPCT_MARK};
use crate::conntrack::expect::ExpectationTable;
use crate::conntrack::seqadj::{self, seqadj_set, SackChange};
use crate::decode::decode_datagram;
use crate::defrag::{DefragOutcome, Defragmenter};
use crate::helpers::common::HelperEnv;
use crate::helpers::{assign_helper, helper_name_of, run_helper};
use crate::nat::helper::{follow_master, PayloadEdit};
use crate::nat::manip::{status_bit, translate, translate_icmp_error};
use crate::nat::range::MAP_IPS;
use crate::nat::rewrite::icmp_error_drop;
use crate::nat::{done_bit, Manip, NatCore, NatKind, NatRange};
use crate::netfilter::hooks::{Entry, Hook, HookList};
use crate::netfilter::route::{
    route_received, send_drop, stack_drop, Topology, PATH_OUTPUT, PATH_PREROUTING_ONLY,
};
use crate::output::addr::push_u64;
use crate::output::escape::push_escaped;
use crate::output::json::push_str_body;
use crate::output::Sink;
use crate::packet::{IfaceName, Ipv4Options, Packet, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP};
use crate::reason::Reason;
use crate::rules::context::{Outcome, RuleCtx};
use crate::rules::hooks::IptablesEngine;
use crate::verdict::Verdict;

/// Where a deciding rule sits: family, table and chain positions in that
/// family's ruleset, its 1-based number (0: the chain's policy) and the line
/// of the ruleset file. Names are looked up when a line is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RuleRef {
    pub family: u8,
    pub table: u16,
    pub chain: u16,
    pub number: u32,
    pub line: u32,
}

/// What happened to one packet: the fields of a jsonl line, compact.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PacketRecord {
    pub index: u64,
    pub ts: f64,
    pub verdict: Verdict,
    /// The ctinfo rules saw; None when conntrack never named a state.
    pub ctinfo: Option<u8>,
    /// ORIGINAL (0) or REPLY (1); None without an entry.
    pub ctdir: Option<u8>,
    /// The entry's status bits users see (`STATUS_NAMES`), 0 without an entry.
    pub status: u32,
    pub rule: Option<RuleRef>,
    /// Why, in parts (`Firewall::write_reason` spells it out).
    pub why: Why,
    pub proto: u8,
    /// The TCP conntrack state of a TCP entry.
    pub tcp_state: Option<u8>,
    /// The entry's confirmation number (None: none, or never confirmed).
    pub conn: Option<u32>,
    /// The confirmation number of the connection that expected this one.
    pub master: Option<u32>,
    pub notes: Vec<String>,
    /// The translations NAT made, in hook order (empty without NAT).
    pub nat: Vec<NatStep>,
    /// Addresses and ports as the packet left, when NAT changed them.
    pub leaves_as: Option<Addressing>,
    /// Those of the datagram an ICMP error quotes, when NAT translated the
    /// error back.
    pub leaves_quoted: Option<Addressing>,
    /// The payload rewrites of a NAT helper, in order (offsets in the L4
    /// payload as the earlier edits left it).
    pub payload_edits: Vec<PayloadEdit>,
    /// What the NAT helper said of its rewrite (part of the reason).
    pub rewrite: Option<String>,
    /// The TCP sequence numbers as they left, after a NAT helper resized
    /// an earlier payload of the connection.
    pub seq_adjust: Option<SeqShift>,
    /// The SACK edges that adjustment moved (offset in the datagram, old, new).
    pub sack_adjust: Vec<SackChange>,
}

/// A TCP segment's seq and ack before and after the sequence adjustment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqShift {
    pub seq: (u32, u32),
    pub ack: (u32, u32),
}

/// A packet's addresses and ports (ICMP queries: the id as both ports).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Addressing {
    pub src: u128,
    pub dst: u128,
    pub sport: u16,
    pub dport: u16,
}

impl Addressing {
    pub fn of(pkt: &Packet<'_>) -> Self {
        Addressing {
            src: pkt.src,
            dst: pkt.dst,
            sport: pkt.sport,
            dport: pkt.dport,
        }
    }

    /// Write the addresses and ports into the packet.
    pub fn store(&self, pkt: &mut Packet<'_>) {
        pkt.src = self.src;
        pkt.dst = self.dst;
        pkt.sport = self.sport;
        pkt.dport = self.dport;
    }
}

/// One rewrite of the packet by NAT: which target (or, for a connection's
/// later packets, which binding), the half it changed, from what to what,
/// and the nat rule that set the binding up (on the first packet).
#[derive(Clone, Debug, PartialEq)]
pub struct NatStep {
    pub label: &'static str,
    pub family: u8,
    pub manip: Manip,
    pub from: Addressing,
    pub to: Addressing,
    pub rule: Option<RuleRef>,
    /// The port was picked at random (the kernel's choice may differ; this
    /// one repeats with the same --seed).
    pub random: bool,
}

/// A packet's reason in the parts it is made of, spelt out only when a
/// line is written: conntrack's word (or the IP layer's, the
/// defragmenter's), then what the rules made of the packet, then a note
/// when the datagram was reassembled.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Why {
    pub head: Reason,
    pub walk: WalkReason,
    /// The number (1-based) of the fragment that completed the datagram.
    pub reassembled_by: Option<u64>,
}

impl PacketRecord {
    /// Start over for the next packet, keeping the buffers.
    fn reset(&mut self, pkt: &Packet<'_>) {
        self.index = pkt.index;
        self.ts = pkt.ts;
        self.verdict = Verdict::Accept;
        self.ctinfo = None;
        self.ctdir = None;
        self.status = 0;
        self.rule = None;
        self.why = Why::default();
        self.proto = pkt.proto;
        self.tcp_state = None;
        self.conn = None;
        self.master = None;
        self.notes.clear();
        self.nat.clear();
        self.leaves_as = None;
        self.leaves_quoted = None;
        self.payload_edits.clear();
        self.rewrite = None;
        self.seq_adjust = None;
        self.sack_adjust.clear();
    }

    fn plain(&mut self, verdict: Verdict, reason: Reason) {
        self.verdict = verdict;
        self.why.head = reason;
    }
}

/// How a machine is set up: everything given once, at construction.
#[derive(Clone, Debug, Default)]
pub struct FirewallSetup {
    pub cfg: Sysctls,
    pub topology: Topology,
    pub rules: IptablesEngine,
    /// Assign helpers by well-known port (the old nf_conntrack_helper=1).
    pub auto_helpers: bool,
    pub helper_params: HelperParams,
    /// Record `conntrack -E` events for the caller to take.
    pub events: bool,
    /// Keep the connection log (`statewall conns`, conntrack/history.rs).
    pub conn_log: bool,
}

/// Which reason `Firewall::write_reason` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReasonStyle {
    /// The record's reason, escaped for a JSON string (jsonl).
    Json,
    /// The record's reason, control characters escaped (the library, filters).
    Full,
    /// For the text line, which cites the deciding rule itself: without the
    /// rule's own text.
    Line,
}

/// Why the walk ended as it did.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum WalkReason {
    /// Nothing to add to conntrack's reason.
    #[default]
    Silent,
    /// The deciding rule's (or policy's) own text.
    OfRule,
    Text(Reason),
}

/// The skb as the hooks see it: the packet, its conntrack attachment and
/// the fields targets write.
struct Skb<'p, 'a> {
    /// The packet as the hooks see it: NAT rewrites it in place.
    pkt: &'p mut Packet<'a>,
    now: f64,
    ct: Option<CtResult>,
    /// The interface the capture names for the packet, moved here for the
    /// walk and handed back after it.
    captured_in: Option<IfaceName>,
    iface_in: Iface,
    iface_out: Iface,
    /// Sent by the machine itself: its path starts at OUTPUT.
    local_out: bool,
    notrack: bool,
    zone: u16,
    helper: Option<String>,
    mark: u32,
    nf_trace: bool,
    /// What a nat rule of the current hook asked for, with the rule.
    nat_request: Option<(NatKind, NatRange, RuleRef)>,
}

/// An interface of the walk, named without counting a reference per
/// packet: the one the capture gave, or a route of the topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Iface {
    Unknown,
    Captured,
    Route(usize),
}

impl Iface {
    fn name<'n>(self, captured: &'n Option<IfaceName>, topology: &'n Topology) -> Option<&'n str> {
        match self {
            Iface::Unknown => None,
            Iface::Captured => captured.as_deref(),
            Iface::Route(at) => topology.interfaces.get(at).map(|(name, _)| &**name),
        }
    }

    fn route(at: Option<usize>) -> Iface {
        at.map_or(Iface::Unknown, Iface::Route)
    }
}

/// Where the walk ended and who decided.
struct HookOutcome {
    verdict: Verdict,
    rule: Option<RuleRef>,
    reason: WalkReason,
}

/// One simulated Linux machine running netfilter.
pub struct Firewall {
    /// The sysctls helpers read (the table keeps its own copy).
    cfg: Sysctls,
    topology: Topology,
    hooks: HookList,
    rules: IptablesEngine,
    table: ConntrackTable,
    expectations: ExpectationTable,
    nat: NatCore,
    defrag: Defragmenter,
    auto_helpers: bool,
    now: f64,
    events: Vec<ConntrackEvent>,
    /// The entry the current packet belonged to, for the connection log.
    touched: Option<ConnId>,
}

impl Firewall {
    pub fn new(setup: FirewallSetup) -> Self {
        let hooks = HookList::build(&setup.rules.registrations(4), &setup.rules.registrations(6));
        let mut table = ConntrackTable::new(setup.cfg.clone());
        table.set_events(setup.events);
        if setup.conn_log {
            table.enable_history();
        }
        let mut expectations = ExpectationTable::new(setup.helper_params);
        expectations.set_events(setup.events);
        let rules = &setup.rules;
        let seed = rules
            .v4
            .as_ref()
            .or(rules.v6.as_ref())
            .map_or(0, |e| e.ruleset.seed);
        Firewall {
            nat: NatCore::new(seed),
            defrag: Defragmenter::new(&setup.cfg),
            cfg: setup.cfg,
            topology: setup.topology,
            hooks,
            rules: setup.rules,
            table,
            expectations,
            auto_helpers: setup.auto_helpers,
            now: 0.0,
            events: Vec::new(),
            touched: None,
        }
    }

    /// The machine's clock: the latest packet time seen.
    pub fn now(&self) -> f64 {
        self.now
    }

    pub fn table(&self) -> &ConntrackTable {
        &self.table
    }

    pub fn expectations(&self) -> &ExpectationTable {
        &self.expectations
    }

    pub fn defrag(&self) -> &Defragmenter {
        &self.defrag
    }

    pub fn rules(&self) -> &IptablesEngine {
        &self.rules
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The events of the packets processed since the last call, in time order.
    pub fn take_events(&mut self) -> Vec<ConntrackEvent> {
        std::mem::take(&mut self.events)
    }

    /// Bring the tables to `at` (a listing "at" a time after the last
    /// packet): expired entries and expectations go, with their events.
    pub fn advance_to(&mut self, at: f64) {
        if at > self.now {
            self.now = at;
        }
        self.expire(self.now);
        self.collect_events();
    }

    /// Let the clock see a packet this machine does not process (another
    /// partition's, in a partitioned run): the clock is the latest packet
    /// time of the whole capture, as a single run would have it. Nothing
    /// expires here: that happens, as always, when the next packet is processed.
    pub fn observe_time(&mut self, ts: f64) {
        if ts > self.now {
            self.now = ts;
        }
    }

    /// Run one captured packet through the machine; `rec` receives the result.
    /// NAT rewrites the packet's addresses and ports in place while it walks
    /// the hooks; they are put back before this returns (`rec.leaves_as`
    /// keeps how it left).
    pub fn process(&mut self, pkt: &mut Packet<'_>, rec: &mut PacketRecord) {
        if pkt.ts > self.now {
            self.now = pkt.ts;
        }
        let now = self.now;
        self.expire(now);
        rec.reset(pkt);
        self.touched = None;
        self.route_and_filter(pkt, now, rec);
        if let Some(id) = self.touched.take() {
            crate::output::conns::log_packet(self, id, rec);
        }
        self.collect_events();
    }

    fn expire(&mut self, now: f64) {
        if self.table.gc_due(now) || self.table.gc_early_drop_at().is_some() {
            self.table.gc(now, &mut self.expectations);
        }
        if self.expectations.count() > 0 {
            self.expectations.expire(now);
            self.sync_expectation_events();
        }
    }

    /// Expectation events join the conntrack stream where they happened.
    fn sync_expectation_events(&mut self) {
        self.expectations.forward_events(self.table.events_mut());
    }

    fn collect_events(&mut self) {
        self.sync_expectation_events();
        let start = self.events.len();
        self.events.extend(self.table.drain_events());
        // Stable: events of one instant keep the order they happened in.
        self.events[start..].sort_by(|a, b| a.ts.total_cmp(&b.ts));
    }

    /// The IP layer before netfilter, defragmentation, then the hooks.
    fn route_and_filter(&mut self, pkt: &mut Packet<'_>, now: f64, rec: &mut PacketRecord) {
        if pkt.family == 0 {
            let reason = format!(
                "not an IP packet, never seen by netfilter's IP hooks ({})",
                ErrorText(pkt)
            );
            return rec.plain(Verdict::Accept, Cow::Owned(reason));
        }
        if let Some(error) = &pkt.error {
            if error.layer.drops_before_netfilter() {
                let reason = format!("dropped by the IP layer before netfilter: {error}");
                return rec.plain(Verdict::Drop, Cow::Owned(reason));
            }
        }
        if pkt.fragment.is_some() || self.defrag.pending() > 0 {
            let result = self.defrag.push(pkt, now, 0);
            match result.outcome {
                DefragOutcome::Pass(_) => {}
                DefragOutcome::Queued(reason) => return rec.plain(Verdict::Stolen, reason),
                DefragOutcome::Dropped(reason) => return rec.plain(Verdict::Drop, reason),
                DefragOutcome::Complete(whole) => {
                    let mut datagram =
                        decode_datagram(&whole.datagram, whole.index, whole.ts, false);
                    whole.stamp(&mut datagram);
                    self.track_and_filter(pkt.iface_in.clone(), &mut datagram, now, rec);
                    rec.why.reassembled_by = Some(pkt.index + 1);
                    return;
                }
            }
        }
        let captured = pkt.iface_in.take();
        pkt.iface_in = self.track_and_filter(captured, pkt, now, rec);
    }

    /// The hooks for one whole datagram; `captured_iface` is the interface
    /// the capture says it arrived on, handed back when the walk is done.
    fn track_and_filter(
        &mut self,
        captured_iface: Option<IfaceName>,
        datagram: &mut Packet<'_>,
        now: f64,
        rec: &mut PacketRecord,
    ) -> Option<IfaceName> {
        rec.proto = datagram.proto;
        if let Some(reason) = stack_drop(datagram.family, datagram.src, datagram.dst) {
            rec.plain(Verdict::Drop, Cow::Borrowed(reason));
            return captured_iface;
        }
        let family = datagram.family;
        let iface_in = match captured_iface {
            Some(_) => Iface::Captured,
            None => Iface::route(self.topology.interface_index_for(family, datagram.src)),
        };
        // A received datagram is routed after PREROUTING, by the destination
        // its DNAT left; until then it has no way out (no oif). One the
        // machine sends is routed before OUTPUT, and again if OUTPUT's DNAT
        // moved it.
        let local_out = self.topology.is_local(family, datagram.src);
        let (mut path, iface_out) = if local_out {
            let out = self.topology.interface_index_for(family, datagram.dst);
            if let Some(reason) = send_drop(&self.topology, family, datagram.dst, out) {
                rec.plain(Verdict::Drop, Cow::Borrowed(reason));
                return captured_iface;
            }
            (PATH_OUTPUT, Iface::route(out))
        } else {
            (PATH_PREROUTING_ONLY, Iface::Unknown)
        };
        let mut routing_drop = None;
        // What NAT may rewrite, to be put back afterwards.
        let original = (Addressing::of(datagram), datagram.icmp_id);
        let original_inner = datagram
            .inner
            .as_deref()
            .map(|inner| (Addressing::of(inner), inner.icmp_id));
        let mut skb = Skb {
            pkt: datagram,
            now,
            ct: None,
            captured_in: captured_iface,
            iface_in,
            iface_out,
            local_out,
            notrack: false,
            zone: 0,
            helper: None,
            mark: 0,
            nf_trace: false,
            nat_request: None,
        };
        let mut outcome = HookOutcome {
            verdict: Verdict::Accept,
            rule: None,
            reason: WalkReason::Silent,
        };
        let mut at = 0;
        while let Some(&hook) = path.get(at) {
            at += 1;
            if !self.run_hook(hook, &mut skb, &mut outcome, rec) {
                break;
            }
            let rerouted = hook == Hook::Output && skb.pkt.dst != original.0.dst;
            if hook == Hook::PreRouting || rerouted {
                let out = self.topology.interface_index_for(family, skb.pkt.dst);
                skb.iface_out = Iface::route(out);
                if hook == Hook::PreRouting {
                    (path, routing_drop) =
                        route_received(&self.topology, family, skb.pkt.src, skb.pkt.dst, out);
                }
            }
            // ip_rcv_finish: after routing, the options of a received
            // datagram are parsed; one that fails dies there, its entry
            // unconfirmed.
            if hook == Hook::PreRouting && routing_drop.is_none() {
                let forwarded = path.contains(&Hook::Forward);
                if let Some(reason) = self.options_drop(skb.pkt, forwarded) {
                    outcome.verdict = Verdict::Drop;
                    outcome.rule = None;
                    outcome.reason = WalkReason::Text(reason);
                    self.dropped(&mut skb);
                    break;
                }
            }
        }
        if let (Some(reason), Verdict::Accept) = (routing_drop, outcome.verdict) {
            outcome.verdict = Verdict::Drop;
            outcome.rule = None;
            outcome.reason = WalkReason::Text(Cow::Borrowed(reason));
            self.dropped(&mut skb);
        }
        rec.verdict = outcome.verdict;
        rec.rule = outcome.rule;
        if !rec.nat.is_empty() {
            rec.leaves_as = Some(Addressing::of(skb.pkt));
            rec.leaves_quoted = skb.pkt.inner.as_deref().map(Addressing::of);
        }
        self.label(&skb, rec);
        if self.table.history().is_some() {
            self.touched = match &skb.ct {
                Some(ct) if ct.conn.is_some() => ct.conn,
                Some(ct) if ct.ctinfo == CT_INVALID => self.table.invalid_match(),
                _ => None,
            };
        }
        rec.why.head = match skb.ct.take() {
            Some(ct) => ct.reason,
            None => Cow::Borrowed("not tracked"),
        };
        rec.why.walk = outcome.reason;
        let captured = skb.captured_in.take();
        drop(skb);
        if !rec.nat.is_empty() {
            restore(datagram, original);
            if let (Some(inner), Some(saved)) = (datagram.inner.as_deref_mut(), original_inner) {
                restore(inner, saved);
            }
        }
        captured
    }

    /// Why ip_rcv_options drops a received IPv4 datagram (None: it does not).
    /// A source route the sysctl allows is then followed (ip_options_rcv_srr):
    /// a router passes a loose route on, and refuses a strict one, since it
    /// was not the hop the route named.
    fn options_drop(&self, datagram: &Packet<'_>, forwarded: bool) -> Option<Reason> {
        match datagram.ip_options {
            Ipv4Options::None | Ipv4Options::Ok => None,
            Ipv4Options::Malformed { reason, .. } => Some(Cow::Owned(format!(
                "dropped by the IPv4 layer after PREROUTING: bad IP options ({reason})"
            ))),
            Ipv4Options::SourceRouted { strict: true } if self.cfg.accept_source_route != 0 => {
                forwarded.then_some(Cow::Borrowed(
                    "dropped by the IPv4 layer after PREROUTING: strict source route (SSRR) \
                     through a router that is not its next hop (parameter problem)",
                ))
            }
            Ipv4Options::SourceRouted { .. } if self.cfg.accept_source_route != 0 => None,
            Ipv4Options::SourceRouted { strict } => Some(Cow::Borrowed(if strict {
                "dropped by the IPv4 layer after PREROUTING: strict source route (SSRR) \
                 refused, net.ipv4.conf.all.accept_source_route is 0"
            } else {
                "dropped by the IPv4 layer after PREROUTING: loose source route (LSRR) \
                 refused, net.ipv4.conf.all.accept_source_route is 0"
            })),
        }
    }

    /// The entries of one hook in priority order; false when the walk ends here.
    fn run_hook(
        &mut self,
        hook: Hook,
        skb: &mut Skb<'_, '_>,
        outcome: &mut HookOutcome,
        rec: &mut PacketRecord,
    ) -> bool {
        let family = skb.pkt.family;
        let count = self.hooks.entries(family, hook).len();
        for i in 0..count {
            match self.hooks.entries(family, hook)[i].entry {
                // Fragments were gathered before the walk began.
                Entry::Defrag => {}
                Entry::Conntrack => {
                    let ct = self.conntrack(skb, hook == Hook::PreRouting);
                    let drop = ct.drop;
                    if drop {
                        outcome.verdict = Verdict::Drop;
                        outcome.reason = WalkReason::Text(Cow::Owned(format!(
                            "dropped by conntrack itself: {}",
                            ct.reason
                        )));
                    }
                    skb.ct = Some(ct);
                    if drop {
                        return false;
                    }
                }
                Entry::Confirm => {
                    if skb.ct.is_some() && !self.confirm(skb, outcome, rec) {
                        return false;
                    }
                }
                entry @ (Entry::Table(_) | Entry::Chain { .. }) => {
                    if !self.run_table(entry, hook, skb, outcome, &mut rec.notes) {
                        return false;
                    }
                }
                Entry::Nat => {
                    if !self.nat_hook(hook, skb, outcome, rec) {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// The NAT core at one hook (nf_nat_ipv4_fn and nf_nat_inet_fn). An
    /// ICMP error about a translated connection is translated back. A
    /// connection's first packet walks the nat table, whose rule binds the
    /// connection (or, when none does, the null binding keeps its
    /// addresses); then every packet is rewritten to its connection's
    /// binding. False when the packet dies here.
    fn nat_hook(
        &mut self,
        hook: Hook,
        skb: &mut Skb<'_, '_>,
        outcome: &mut HookOutcome,
        rec: &mut PacketRecord,
    ) -> bool {
        let Some((id, ctinfo)) = skb.ct.as_ref().and_then(|ct| Some((ct.conn?, ct.ctinfo))) else {
            return true;
        };
        if ctinfo == CT_INVALID || ctinfo == CT_UNTRACKED {
            return true;
        }
        let manip = Manip::of_hook(hook);
        let direction = direction_of(ctinfo);
        let icmp = if skb.pkt.family == 4 {
            PROTO_ICMP
        } else {
            PROTO_ICMPV6
        };
        if matches!(ctinfo, CT_RELATED | CT_RELATED_REPLY) && skb.pkt.proto == icmp {
            let Some(conn) = self.table.conn(id) else {
                return true;
            };
            let translates = conn.status & status_bit(manip, direction) != 0;
            if let Some(reason) = icmp_error_drop(skb.pkt, conn.status, translates) {
                outcome.verdict = Verdict::Drop;
                outcome.rule = None;
                outcome.reason = WalkReason::Text(Cow::Owned(reason));
                self.dropped(skb);
                return false;
            }
            if translates {
                let from = Addressing::of(skb.pkt);
                translate_icmp_error(skb.pkt, conn, manip, direction);
                rec.nat.push(NatStep {
                    random: false,
                    label: "ICMP error translated back",
                    family: skb.pkt.family,
                    manip,
                    from,
                    to: Addressing::of(skb.pkt),
                    rule: None,
                });
            }
            return true;
        }
        let initialized = self
            .table
            .conn(id)
            .is_some_and(|conn| conn.status & done_bit(manip) != 0);
        // Who set the binding up on this packet: (label, rule, port picked at random).
        let mut bound: Option<(&'static str, Option<RuleRef>, bool)> = None;
        if !initialized && matches!(ctinfo, CT_NEW | CT_RELATED) {
            skb.nat_request = None;
            // nf_nat_inet_fn: the nat chains in priority order, until one
            // drops the packet or binds the connection.
            let family = skb.pkt.family;
            for i in 0..self.hooks.nat_chains(family, hook).len() {
                let entry = self.hooks.nat_chains(family, hook)[i].entry;
                if !self.run_table(entry, hook, skb, outcome, &mut rec.notes) {
                    return false;
                }
                if skb.nat_request.is_some() {
                    break;
                }
            }
            if let Some((kind, range, rule)) = skb.nat_request.take() {
                match self.target_range(kind, &range, hook, skb, id) {
                    Ok(Some(range)) => {
                        let random = self.bind(id, &range, manip, skb.now);
                        bound = Some((kind.name(), Some(rule), random));
                    }
                    Ok(None) => {}
                    Err(reason) => {
                        outcome.verdict = Verdict::Drop;
                        outcome.rule = Some(rule);
                        outcome.reason = WalkReason::Text(reason);
                        self.dropped(skb);
                        return false;
                    }
                }
            }
            let Some(conn) = self.table.conn(id) else {
                return true;
            };
            if conn.status & done_bit(manip) == 0 {
                // nf_nat_alloc_null_binding: this address, any free port.
                let address = match manip {
                    Manip::Src => conn.reply.dst,
                    Manip::Dst => conn.reply.src,
                };
                let range = NatRange::to_address(address, &NatRange::default());
                let random = self.bind(id, &range, manip, skb.now);
                // Only a port clash moves anything here.
                bound = Some(("null binding", None, random));
            }
        }
        let Some(conn) = self.table.conn(id) else {
            return true;
        };
        let from = Addressing::of(skb.pkt);
        let Some(to) = translate(skb.pkt, conn, manip, direction) else {
            return true;
        };
        let label = match (bound, manip, direction) {
            (Some((label, _, _)), _, _) => label,
            (None, Manip::Src, 0) => "SNAT",
            (None, Manip::Dst, 0) => "DNAT",
            (None, Manip::Src, _) => "reply of DNAT",
            (None, Manip::Dst, _) => "reply of SNAT",
        };
        rec.nat.push(NatStep {
            label,
            family: skb.pkt.family,
            manip,
            from,
            to,
            rule: bound.and_then(|(_, rule, _)| rule),
            random: bound.is_some_and(|(_, _, random)| random),
        });
        true
    }

    /// Bind entry `id` for `manip` within `range`; true when a port was
    /// picked at random.
    fn bind(&mut self, id: ConnId, range: &NatRange, manip: Manip, now: f64) -> bool {
        let random = self.nat.setup(
            &mut self.table,
            &mut self.expectations,
            id,
            range,
            manip,
            now,
        );
        random == Some(true)
    }

    /// The range a nat target binds within, resolved for this packet:
    /// MASQUERADE and REDIRECT take an interface's address, NETMAP maps the
    /// address into its network. Ok(None): bind nothing (the null binding
    /// follows); Err: the kernel drops the packet, for this reason.
    fn target_range(
        &self,
        kind: NatKind,
        range: &NatRange,
        hook: Hook,
        skb: &Skb<'_, '_>,
        id: ConnId,
    ) -> Result<Option<NatRange>, Reason> {
        let family = skb.pkt.family;
        let family_name = if family == 4 { "IPv4" } else { "IPv6" };
        match kind {
            NatKind::Snat | NatKind::Dnat => Ok(Some(*range)),
            NatKind::Masquerade => {
                let unspecified = self.table.conn(id).is_some_and(|c| c.orig.src == 0);
                if family == 4 && unspecified {
                    return Ok(None);
                }
                let Some(iface) = skb.iface_out.name(&skb.captured_in, &self.topology) else {
                    return Err(Cow::Borrowed(
                        "MASQUERADE: no outgoing interface \
                         (give the routes with --iface NAME=ADDRESS/PREFIX)",
                    ));
                };
                match self.topology.masquerade_address(iface, family, skb.pkt.dst) {
                    Some(address) => Ok(Some(NatRange::to_address(address, range))),
                    None => Err(Cow::Owned(format!(
                        "MASQUERADE: interface {iface} has no {family_name} address \
                         (give it one with --iface {iface}=ADDRESS/PREFIX)"
                    ))),
                }
            }
            NatKind::Redirect => {
                if hook == Hook::Output {
                    let loopback = if family == 4 { 0x7F00_0001 } else { 1 };
                    return Ok(Some(NatRange::to_address(loopback, range)));
                }
                let iface_in = skb.iface_in.name(&skb.captured_in, &self.topology);
                let address = iface_in.and_then(|iface| self.topology.address_of(iface, family));
                match address {
                    Some(address) => Ok(Some(NatRange::to_address(address, range))),
                    None => Err(Cow::Owned(format!(
                        "REDIRECT: the incoming interface {} has no {family_name} address \
                         (give it one with --iface NAME=ADDRESS/PREFIX)",
                        iface_in.unwrap_or("(unknown)")
                    ))),
                }
            }
            NatKind::Netmap => {
                let width = if family == 4 {
                    u128::from(u32::MAX)
                } else {
                    u128::MAX
                };
                let netmask = !(range.min_addr ^ range.max_addr) & width;
                let address = match Manip::of_hook(hook) {
                    Manip::Dst => skb.pkt.dst,
                    Manip::Src => skb.pkt.src,
                };
                let mapped = (address & !netmask & width) | (range.min_addr & netmask);
                Ok(Some(NatRange {
                    flags: range.flags | MAP_IPS,
                    min_addr: mapped,
                    max_addr: mapped,
                    ..*range
                }))
            }
        }
    }

    /// nf_conntrack_in, with the raw table's template (notrack, zone, helper).
    fn conntrack(&mut self, skb: &Skb<'_, '_>, in_prerouting: bool) -> CtResult {
        if skb.notrack {
            return untracked(Cow::Borrowed("UNTRACKED: marked NOTRACK in the raw table"));
        }
        let mut result = self.table.classify(
            skb.pkt,
            skb.now,
            in_prerouting,
            skb.zone,
            &mut self.expectations,
        );
        self.sync_expectation_events();
        let Some(id) = result.conn else {
            return result;
        };
        if result.unconfirmed {
            if let Some(conn) = self.table.conn_mut(id) {
                assign_helper(conn, skb.helper.as_deref(), self.auto_helpers);
            }
        }
        let expected = self
            .table
            .conn(id)
            .is_some_and(|conn| conn.status & IPS_EXPECTED != 0);
        if expected && result.unconfirmed {
            // The expectation's expectfn: the child is translated like its master.
            if let Some((master, saved)) = self.expectations.follow_of(id) {
                let now = skb.now;
                follow_master(
                    &mut self.nat,
                    &mut self.table,
                    &mut self.expectations,
                    id,
                    master,
                    saved,
                    now,
                );
            }
        }
        if result.ctinfo == CT_RELATED && expected {
            if let Some(origin) = self.expectations.related_reason(id) {
                result.reason = Cow::Owned(format!("{origin}; {}", result.reason));
            }
        }
        result
    }

    /// One table's chain for this hook (an iptables table's or an nft base
    /// chain, `entry`); false when its verdict ends the walk.
    fn run_table(
        &mut self,
        entry: Entry,
        hook: Hook,
        skb: &mut Skb<'_, '_>,
        outcome: &mut HookOutcome,
        notes: &mut Vec<String>,
    ) -> bool {
        let ct = skb.ct.as_ref();
        let conn_id = ct.and_then(|ct| ct.conn);
        let conn = conn_id.and_then(|id| self.table.conn(id));
        let master = conn.and_then(|c| c.master).and_then(|m| self.table.conn(m));
        let ctx = RuleCtx {
            pkt: skb.pkt,
            ctinfo: ct.map_or(CT_INVALID, |ct| ct.ctinfo),
            conn,
            master_helper: helper_name_of(conn, master),
            now: skb.now,
            hook,
            iface_in: skb.iface_in.name(&skb.captured_in, &self.topology),
            iface_out: skb.iface_out.name(&skb.captured_in, &self.topology),
            local_out: skb.local_out,
            mark: skb.mark,
            nf_trace: skb.nf_trace,
            // The accounting extension: present when nf_conntrack_acct was on.
            conn_counters: conn_id
                .and_then(|id| self.table.listed_counters(id))
                .map(|[o, r]| [o.packets, o.bytes, r.packets, r.bytes]),
            conns: Some(&self.table),
        };
        let first_of_connection = ct.is_some_and(|ct| ct.conn.is_some() && ct.unconfirmed);
        let family = skb.pkt.family;
        let is_filter = self.rules.is_filter(family, entry);
        let Some((decision, fx)) = self.rules.evaluate(entry, &ctx, first_of_connection) else {
            return true;
        };
        skb.mark = fx.mark;
        skb.nf_trace = fx.nf_trace;
        notes.append(&mut fx.trace);
        for (what, value) in &fx.effects {
            match what.as_ref() {
                "notrack" => skb.notrack = value.as_bool().unwrap_or(false),
                "zone" => skb.zone = value.as_u64().map_or(0, |z| z as u16),
                "helper" if matches!(entry, Entry::Chain { .. }) => {
                    // nft `ct helper set` (nft_ct_helper_obj_eval): the entry
                    // itself gets the helper while it is still unconfirmed;
                    // before conntrack or once confirmed, nothing happens.
                    let unconfirmed = skb.ct.as_ref().filter(|ct| ct.unconfirmed);
                    let conn = unconfirmed.and_then(|ct| ct.conn);
                    if let Some(conn) = conn.and_then(|id| self.table.conn_mut(id)) {
                        assign_helper(conn, value.as_str(), false);
                    }
                }
                // iptables' CT --helper: the raw table's template, read by conntrack.
                "helper" => skb.helper = value.as_str().map(str::to_owned),
                _ => {}
            }
        }
        notes.append(&mut fx.logs);
        notes.append(&mut fx.notes);
        let nat_request = fx.nat.take();
        let (connmark, connmark_changed) = (fx.connmark, fx.connmark_changed);
        let at = decision.rule;
        let reason = match decision.reason {
            Cow::Borrowed(_) => WalkReason::OfRule,
            Cow::Owned(text) => WalkReason::Text(Cow::Owned(text)),
        };
        let verdict = decision.verdict;
        if let (Some(mark), Some(id)) = (connmark, conn_id) {
            let events = self.table.events_enabled();
            if let Some(conn) = self.table.conn_mut(id) {
                conn.mark = mark;
                if connmark_changed && events {
                    conn.events |= IPCT_MARK;
                }
            }
        }
        let rule = RuleRef {
            family,
            table: at.table_index as u16,
            chain: at.chain_index as u16,
            number: at.number,
            line: at.line,
        };
        if let Some((kind, range)) = nat_request {
            skb.nat_request = Some((kind, range, rule));
        }
        let verdict = match verdict {
            Outcome::Accept => Verdict::Accept,
            Outcome::Drop => Verdict::Drop,
            Outcome::Reject => Verdict::Reject,
            Outcome::Queue => Verdict::Queue,
            Outcome::Unknown => Verdict::Unknown,
        };
        // A terminal verdict always decides. For a packet accepted
        // everywhere, the filter table's rule (or policy) is what people
        // mean; another table's explicit rule counts only while the filter
        // table has not spoken.
        let decides =
            verdict != Verdict::Accept || is_filter || (outcome.rule.is_none() && rule.number > 0);
        if decides {
            outcome.rule = Some(rule);
            outcome.reason = reason;
        }
        if verdict != Verdict::Accept {
            outcome.verdict = verdict;
            self.dropped(skb);
            return false;
        }
        true
    }

    /// nf_confirm: the entry's helper reads the packet (and may drop it), then insert.
    fn confirm(
        &mut self,
        skb: &mut Skb<'_, '_>,
        outcome: &mut HookOutcome,
        rec: &mut PacketRecord,
    ) -> bool {
        let Some(ct) = skb.ct.as_mut() else {
            return true;
        };
        let now = skb.now;
        let mut said = None;
        if let Some(id) = ct.conn {
            if let Some(conn) = self.table.conn_mut(id) {
                // Whether to adjust is decided before the helper runs: the
                // packet that first resizes a payload keeps its numbers.
                let seqadj_needed = conn.status & IPS_SEQ_ADJUST != 0;
                if conn.helper.is_some() {
                    let mut env = HelperEnv {
                        table: &mut self.expectations,
                        now,
                        expect_max: self.cfg.nf_conntrack_expect_max,
                        rng: self.nat.rng_mut(),
                    };
                    let verdict = run_helper(conn, id, ct.ctinfo, skb.pkt, &mut env);
                    self.sync_expectation_events();
                    if !verdict.accept {
                        if ct.unconfirmed {
                            self.table.discard(ct);
                            self.expectations.master_destroyed(id, now);
                            self.sync_expectation_events();
                        }
                        outcome.verdict = Verdict::Drop;
                        outcome.rule = None;
                        outcome.reason = WalkReason::Text(verdict.reason);
                        return false;
                    }
                    if !verdict.reason.is_empty() {
                        said = Some(verdict.reason.into_owned());
                    }
                    if !verdict.edits.is_empty() {
                        rec.rewrite = said.take();
                    }
                    rec.payload_edits = verdict.edits;
                }
                let adjusted = match self.table.conn_mut(id) {
                    Some(conn) => seq_adjust(conn, ct.ctinfo, skb.pkt, seqadj_needed, rec),
                    None => true,
                };
                if !adjusted {
                    if ct.unconfirmed {
                        self.table.discard(ct);
                    }
                    outcome.verdict = Verdict::Drop;
                    outcome.rule = None;
                    outcome.reason = WalkReason::Text(Cow::Borrowed(
                        "dropped at the confirm step: malformed TCP options where the \
                         sequence adjustment looks for SACK blocks",
                    ));
                    return false;
                }
            }
        }
        let inserted = self.table.confirm(ct, now, &mut self.expectations);
        self.sync_expectation_events();
        if !inserted {
            outcome.verdict = Verdict::Drop;
            outcome.rule = None;
            outcome.reason = WalkReason::Text(Cow::Borrowed(
                "dropped by conntrack at confirmation: the connection's reply tuple is \
                 already in the table (NAT found no free port; insert_failed)",
            ));
            return false;
        }
        rec.notes.extend(said);
        true
    }

    /// The packet was dropped: an unconfirmed entry (and what it announced) dies.
    fn dropped(&mut self, skb: &mut Skb<'_, '_>) {
        let Some(ct) = skb.ct.as_mut() else {
            return;
        };
        if ct.unconfirmed {
            if let Some(id) = ct.conn {
                self.expectations.master_destroyed(id, skb.now);
                self.sync_expectation_events();
            }
        }
        self.table.discard(ct);
    }

    /// ctstate, direction, status bits, TCP state and connection number.
    fn label(&self, skb: &Skb<'_, '_>, rec: &mut PacketRecord) {
        let Some(ct) = skb.ct.as_ref() else {
            return;
        };
        if ct.drop {
            return; // conntrack itself dropped it: no rule ever saw a state
        }
        rec.ctinfo = Some(ct.ctinfo);
        let conn = ct.conn.and_then(|id| self.table.conn(id));
        if let Some(conn) = conn {
            if conn.proto == PROTO_TCP {
                rec.tcp_state = Some(conn.proto_state);
            }
            if conn.id != 0 {
                rec.conn = Some(conn.id);
            }
            rec.master = conn
                .master
                .and_then(|m| self.table.conn(m))
                .map(|m| m.id)
                .filter(|&id| id != 0);
            if ct.ctinfo != CT_INVALID && ct.ctinfo != CT_UNTRACKED {
                rec.ctdir = ct.direction();
                rec.status = conn.status & VISIBLE_STATUS;
            }
        }
    }

    /// Append the reason of `rec`: conntrack's word, then what the rules
    /// made of the packet, then the reassembly note. `Json` and `Full` give
    /// the record's reason (jsonl, the library), escaped for a JSON string
    /// or with control characters escaped for a terminal (a ruleset's
    /// comments and chain names are anyone's text); `Line` leaves out the
    /// deciding rule's own text, which the text line cites already.
    pub fn write_reason<S: Sink + ?Sized>(
        &self,
        out: &mut S,
        rec: &PacketRecord,
        style: ReasonStyle,
    ) {
        let json = style == ReasonStyle::Json;
        let escape: fn(&mut S, &str) = if json { push_str_body } else { push_escaped };
        let why = &rec.why;
        escape(out, &why.head);
        // A rule's own text comes JSON-escaped already, built once at load.
        let (rule_text, escaped) = match (&why.walk, rec.rule) {
            (WalkReason::OfRule, Some(rule)) if style != ReasonStyle::Line => (
                self.rules
                    .rule_reason(rule.family, rule.table, rule.chain, rule.number, json),
                json,
            ),
            (WalkReason::Text(text), _) => (text.as_ref(), false),
            _ => ("", false),
        };
        if !rule_text.is_empty() {
            out.text("; ");
            let escape_rule: fn(&mut S, &str) = if escaped { S::text } else { escape };
            escape_rule(out, rule_text);
        } else if let (Some(rule), false) = (rec.rule, style == ReasonStyle::Line) {
            out.text("; ");
            out.text(rec.verdict.name());
            out.text(" by ");
            self.push_rule(out, rule, escape, " rule ");
        }
        crate::output::nat::write_steps(out, rec, json, &|out, step| {
            if let Some(rule) = step.rule {
                self.push_rule(out, rule, escape, " #");
            }
        });
        if let Some(number) = why.reassembled_by {
            out.text(" (datagram reassembled from fragments, completed by packet #");
            push_u64(out, number);
            out.ch(')');
        }
    }

    /// The reason of `rec` as the library and the filters see it.
    pub fn reason(&self, rec: &PacketRecord) -> String {
        self.styled_reason(rec, ReasonStyle::Full)
    }

    /// The reason of `rec` in `style`, as a string.
    pub fn styled_reason(&self, rec: &PacketRecord, style: ReasonStyle) -> String {
        let mut out = String::with_capacity(128);
        self.write_reason(&mut out, rec, style);
        out
    }

    /// `filter FORWARD #3` or `filter FORWARD policy`, as every text output
    /// cites a rule; control characters of the names escaped.
    pub fn write_rule<S: Sink + ?Sized>(&self, out: &mut S, rule: RuleRef) {
        self.push_rule(out, rule, push_escaped, " #");
    }

    /// The deciding rule's text (`-P CHAIN VERDICT` for a policy), control
    /// characters escaped; nothing when the ruleset has none.
    pub fn write_rule_text<S: Sink + ?Sized>(&self, out: &mut S, rule: RuleRef) {
        let text = self
            .rules
            .rule_text(rule.family, rule.table, rule.chain, rule.number);
        push_escaped(out, text);
    }

    /// `write_rule` with the names written by `name` and the number after
    /// `number` (the record's reason keeps its own `rule N` spelling).
    fn push_rule<S: Sink + ?Sized>(
        &self,
        out: &mut S,
        rule: RuleRef,
        name: fn(&mut S, &str),
        number: &str,
    ) {
        let (table, chain) = self.rules.names(rule.family, rule.table, rule.chain);
        name(out, table);
        out.ch(' ');
        name(out, chain);
        if rule.number == 0 {
            out.text(" policy");
        } else {
            out.text(number);
            push_u64(out, u64::from(rule.number));
        }
    }

    /// The connections a listing at `at` shows, in table order.
    pub fn connections(&self, at: f64) -> Vec<ConnId> {
        self.table.live(at)
    }

    pub fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.table.conn(id)
    }

    /// The table, for the connection log's bookkeeping.
    pub(crate) fn table_mut(&mut self) -> &mut ConntrackTable {
        &mut self.table
    }
}

/// The confirm step's sequence work on a TCP segment: a payload its helper
/// resized shifts the later numbers of its direction (nf_ct_seqadj_set),
/// and, when the connection already had a shift, the segment leaves with
/// adjusted seq and ack and SACK edges (nf_ct_seq_adjust), recorded in
/// `rec`. False when the kernel drops the segment (malformed options).
fn seq_adjust(
    conn: &mut Conn,
    ctinfo: u8,
    pkt: &Packet<'_>,
    seqadj_needed: bool,
    rec: &mut PacketRecord,
) -> bool {
    if pkt.proto != PROTO_TCP || conn.proto != PROTO_TCP {
        return true;
    }
    let direction = direction_of(ctinfo);
    for edit in &rec.payload_edits {
        seqadj_set(conn, direction, pkt.seq, edit.delta());
    }
    if seqadj_needed && ctinfo != CT_RELATED_REPLY {
        let (seq, ack) = (pkt.seq, pkt.ack);
        let adjusted = seqadj::adjust(conn, direction, seq, ack);
        if adjusted != (seq, ack) {
            rec.seq_adjust = Some(SeqShift {
                seq: (seq, adjusted.0),
                ack: (ack, adjusted.1),
            });
        }
        match seqadj::sack_changes(conn, direction, pkt) {
            Some(changes) => rec.sack_adjust = changes,
            None => return false,
        }
    }
    true
}

/// The status bits results name (STATUS_NAMES).
const VISIBLE_STATUS: u32 = {
    let mut mask = 0;
    let mut i = 0;
    while i < STATUS_NAMES.len() {
        mask |= STATUS_NAMES[i].0;
        i += 1;
    }
    mask
};

/// The (table, hook) pairs a family's ruleset has built-in chains for.
/// Put back the addresses, ports and ICMP id NAT rewrote.
fn restore(pkt: &mut Packet<'_>, (at, icmp_id): (Addressing, u16)) {
    at.store(pkt);
    pkt.icmp_id = icmp_id;
}

/// A decode error as the reasons show it ("None" when there is none).
struct ErrorText<'p, 'a>(&'p Packet<'a>);

impl std::fmt::Display for ErrorText<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0.error {
            Some(error) => write!(f, "{error}"),
            None => f.write_str("None"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_datagram;
    use crate::output::record::write_jsonl;
    use crate::rules::testpkt::udp4;
    use crate::rules::walker::Engine;

    /// FORWARD DROP; ESTABLISHED,RELATED accepted; new UDP to port 53 accepted.
    const RULES: &str = r#"{"family":4,"source":"t.rules","tables":[{"name":"filter",
      "chains":[{"name":"INPUT","policy":"ACCEPT","line":2,"rules":[]},
      {"name":"FORWARD","policy":"DROP","line":3,"rules":[
        {"matches":[{"kind":"state","mask":6,"neg":false}],
         "target":{"kind":"verdict","verdict":"ACCEPT"},"number":1,"line":5,
         "text":"-A FORWARD -m state --state ESTABLISHED,RELATED -j ACCEPT"},
        {"header":{"proto":17},"matches":[{"kind":"udp","sport":{"low":0,"high":65535},
         "dport":{"low":53,"high":53}}],"target":{"kind":"verdict","verdict":"ACCEPT"},
         "number":2,"line":6,"text":"-A FORWARD -p udp -m udp --dport 53 -j ACCEPT"}]},
      {"name":"OUTPUT","policy":"ACCEPT","line":4,"rules":[]}]}]}"#;

    const C: [u8; 4] = [192, 0, 2, 10];
    const S: [u8; 4] = [198, 51, 100, 20];

    fn firewall() -> Firewall {
        let mut setup = FirewallSetup::default();
        setup.rules.v4 = Some(Engine::from_json(RULES).unwrap());
        Firewall::new(setup)
    }

    fn run(fw: &mut Firewall, data: &[u8], index: u64) -> PacketRecord {
        let mut pkt = decode_datagram(data, index, 100.0 + index as f64, false);
        let mut rec = PacketRecord::default();
        fw.process(&mut pkt, &mut rec);
        rec
    }

    #[test]
    fn a_query_its_answer_and_a_refused_flow() {
        let mut fw = firewall();
        let query = run(&mut fw, &udp4(C, S, 5000, 53), 0);
        assert_eq!(query.verdict, Verdict::Accept);
        assert_eq!(query.ctinfo, Some(crate::conntrack::conn::CT_NEW));
        assert_eq!(query.rule.map(|r| r.number), Some(2));
        assert_eq!(query.conn, Some(1));
        let answer = run(&mut fw, &udp4(S, C, 53, 5000), 1);
        assert_eq!(answer.ctdir, Some(1));
        assert_eq!(answer.rule.map(|r| r.number), Some(1));
        let refused = run(&mut fw, &udp4(C, S, 5001, 99), 2);
        assert_eq!(refused.verdict, Verdict::Drop);
        assert_eq!(
            (refused.rule.map(|r| r.number), refused.conn),
            (Some(0), None)
        );
        assert_eq!(
            fw.reason(&refused),
            "UDP: no reply seen yet (nf_conntrack_udp_timeout); policy DROP of filter FORWARD"
        );
        // Only the accepted flow is in the table: the dropped one died unconfirmed.
        assert_eq!(fw.table().count(), 1);
    }

    #[test]
    fn the_jsonl_line_names_every_field() {
        let mut fw = firewall();
        let data = udp4(C, S, 5000, 53);
        let mut pkt = decode_datagram(&data, 0, 100.5, false);
        let mut rec = PacketRecord::default();
        fw.process(&mut pkt, &mut rec);
        let mut out = String::new();
        write_jsonl(&mut out, &fw, &rec, &pkt);
        assert_eq!(
            out,
            "{\"v\":2,\"index\":0,\"frame\":1,\"ts\":100.5,\"verdict\":\"ACCEPT\",\"ctstate\":\"NEW\",\
             \"ctdir\":\"ORIGINAL\",\"status\":[\"CONFIRMED\"],\"rule\":{\"table\":\"filter\",\
             \"chain\":\"FORWARD\",\"number\":2},\"reason\":\"UDP: no reply seen yet \
             (nf_conntrack_udp_timeout); rule 2 of filter FORWARD: -A FORWARD -p udp -m udp \
             --dport 53 -j ACCEPT\",\"summary\":\"192.0.2.10:5000 > 198.51.100.20:53 UDP len=0\",\
             \"proto\":17,\"src\":\"192.0.2.10\",\"dst\":\"198.51.100.20\",\"sport\":5000,\
             \"dport\":53,\"tcp_state\":null,\"conn\":1,\"notes\":[]}\n"
        );
    }

    #[test]
    fn the_text_line_cites_the_rule_and_explain_adds_its_text() {
        use crate::output::record::{write_text, TextOptions};
        let mut fw = firewall();
        let data = udp4(C, S, 5000, 53);
        let mut pkt = decode_datagram(&data, 0, 100.5, false);
        let mut rec = PacketRecord::default();
        fw.process(&mut pkt, &mut rec);
        rec.notes.push("a note\x1b".into());
        let mut out = String::new();
        let opts = TextOptions {
            explain: true,
            color: false,
        };
        write_text(&mut out, &fw, &rec, &pkt, 0.0, opts);
        let pad = " ".repeat(20);
        assert_eq!(
            out,
            format!(
                "#1        0.000000  192.0.2.10:5000 > 198.51.100.20:53 UDP len=0  | \
                 NEW/ORIGINAL [CONFIRMED] | ACCEPT by filter FORWARD #2 | UDP: no reply seen \
                 yet (nf_conntrack_udp_timeout)\n{pad}rule: -A FORWARD -p udp -m udp --dport 53 \
                 -j ACCEPT\n{pad}note: a note\\x1b\n"
            )
        );
        let refused = run(&mut fw, &udp4(C, S, 5001, 99), 1);
        let mut out = String::new();
        let opts = TextOptions {
            explain: true,
            color: true,
        };
        write_text(&mut out, &fw, &refused, &pkt, 0.0, opts);
        assert!(out.contains(
            "| \x1b[1;31mDROP\x1b[0m by filter FORWARD policy | UDP: no reply seen yet \
             (nf_conntrack_udp_timeout)\n"
        ));
        assert!(out.ends_with(&format!("{pad}rule: -P FORWARD DROP\n")));
    }

    #[test]
    fn a_source_routed_datagram_dies_after_prerouting() {
        let mut fw = firewall();
        let mut data = udp4(C, S, 5000, 53);
        // Rebuild the header with a loose source route option (NOP, LSRR 7 4 hop).
        let options = [1u8, 0x83, 7, 4, 198, 51, 100, 20];
        let mut header = data[..20].to_vec();
        header[0] = 0x47;
        let total = (data.len() + options.len()) as u16;
        header[2..4].copy_from_slice(&total.to_be_bytes());
        header.extend_from_slice(&options);
        header[10..12].copy_from_slice(&[0, 0]);
        let sum = crate::checksum::internet_checksum(&header, 0);
        header[10..12].copy_from_slice(&sum.to_be_bytes());
        header.extend_from_slice(&data[20..]);
        data = header;
        let rec = run(&mut fw, &data, 0);
        assert_eq!(rec.verdict, Verdict::Drop);
        assert_eq!(rec.ctinfo, Some(crate::conntrack::conn::CT_NEW));
        assert!(fw
            .reason(&rec)
            .contains("loose source route (LSRR) refused"));
        assert_eq!((rec.conn, fw.table().count()), (None, 0));
    }
}
