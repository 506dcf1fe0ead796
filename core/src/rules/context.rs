//! What matches read and targets write while one table is walked (the skb
//! as xt_action_param shows it), and the walk's result.

use std::borrow::Cow;

use crate::conntrack::conn::Conn;
use crate::nat::{NatKind, NatRange};
use crate::packet::Packet;
use crate::rules::matches::connlimit::ConnAlive;
use crate::rules::model::Hook;

/// The packet and its surroundings, read-only for the walk.
#[derive(Clone, Copy)]
pub struct RuleCtx<'a> {
    pub pkt: &'a Packet<'a>,
    pub ctinfo: u8,
    pub conn: Option<&'a Conn>,
    /// The helper of the connection's master (what `-m helper` tests).
    pub master_helper: Option<&'a str>,
    pub now: f64,
    pub hook: Hook,
    pub iface_in: Option<&'a str>,
    pub iface_out: Option<&'a str>,
    /// The machine sent the packet itself (its path began at OUTPUT): only
    /// such a packet can belong to a local socket (what owner asks about).
    pub local_out: bool,
    /// The packet's mark on entry.
    pub mark: u32,
    /// The packet's nf_trace bit on entry.
    pub nf_trace: bool,
    /// The entry's accounting counters (orig packets, orig bytes, reply
    /// packets, reply bytes) when accounting is on, for connbytes.
    pub conn_counters: Option<[u64; 4]>,
    /// The conntrack table, for connlimit to know which counted connections live.
    pub conns: Option<&'a dyn ConnAlive>,
}

/// What the walk's final verdict is (NF_* plus statewall's UNKNOWN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accept,
    Drop,
    Reject,
    Queue,
    Unknown,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Accept => "ACCEPT",
            Outcome::Drop => "DROP",
            Outcome::Reject => "REJECT",
            Outcome::Queue => "QUEUE",
            Outcome::Unknown => "UNKNOWN",
        }
    }
}

/// What the rules did on the way, beside the verdict. Vectors stay empty
/// (no allocation) unless a target writes to them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Effects {
    pub mark: u32,
    pub nf_trace: bool,
    pub reject_with: Option<String>,
    pub queue_num: u16,
    /// LOG lines, in rule order.
    pub logs: Vec<String>,
    /// (kind, value) pairs, as the hook walk and `_core.RuleEngine.walk` read
    /// them: ("notrack", true), ("helper", "ftp"), ("zone", 1), ("connmark", 5),
    /// ("nat", "DNAT ...").
    pub effects: Vec<(Cow<'static, str>, serde_json::Value)>,
    pub notes: Vec<String>,
    /// TRACE lines of a traced packet.
    pub trace: Vec<String>,
    /// The connection mark CONNMARK set (to be written to the entry, with an
    /// IPCT_MARK event when it changed).
    pub connmark: Option<u32>,
    /// Whether some CONNMARK of the walk changed the entry's mark (an IPCT_MARK
    /// event), even if a later one put the old value back.
    pub connmark_changed: bool,
    /// Set by a match that drops the packet on the spot (the kernel's
    /// par->hotdrop); the walk ends in DROP at the next failed rule check.
    pub hotdrop: Option<String>,
    /// What a nat target asked the NAT core for.
    pub nat: Option<(NatKind, NatRange)>,
}

impl Effects {
    /// Start a walk: the packet's mark and trace bit, nothing else (the
    /// vectors keep their buffers).
    pub fn reset(&mut self, mark: u32, nf_trace: bool) {
        self.mark = mark;
        self.nf_trace = nf_trace;
        self.reject_with = None;
        self.queue_num = 0;
        self.logs.clear();
        self.effects.clear();
        self.notes.clear();
        self.trace.clear();
        self.connmark = None;
        self.connmark_changed = false;
        self.hotdrop = None;
        self.nat = None;
    }
}

/// Which rule decided: table and chain names, 1-based rule number (0: the
/// chain's policy) and the line of the ruleset file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleAt<'e> {
    pub table: &'e str,
    pub chain: &'e str,
    /// Where the table and chain sit in the ruleset (for a compact reference).
    pub table_index: usize,
    pub chain_index: usize,
    pub number: u32,
    pub line: u32,
}

/// The outcome of walking one table for one packet.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision<'e> {
    pub verdict: Outcome,
    pub rule: RuleAt<'e>,
    pub reason: Cow<'e, str>,
}
