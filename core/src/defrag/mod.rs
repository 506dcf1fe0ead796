//! Fragment reassembly before conntrack (nf_defrag_ipv4 / nf_defrag_ipv6).
//!
//! Conntrack only ever sees whole datagrams: at priority -400, before the raw
//! table, fragments are collected into queues keyed by (source, destination,
//! identification, protocol, defrag user) for IPv4 (net/ipv4/ip_fragment.c:
//! `ip_find`) and (source, destination, identification, defrag user, input
//! interface) for IPv6 (net/ipv6/netfilter/nf_conntrack_reasm.c: `fq_find`).
//! A queue lives from its first fragment for ipfrag_time (IPv4) or
//! nf_conntrack_frag6_timeout (IPv6) seconds; later fragments do not refresh
//! the timer.
//!
//! Both families place fragments as `inet_frag_queue_insert`
//! (net/ipv4/inet_fragment.c) does: fragments appended at the tail form runs;
//! a fragment lying entirely inside a run is a duplicate, dropped while the
//! queue lives on; any other overlap discards the whole datagram (RFC 5722,
//! applied to IPv4 too). The family-specific rules are in `ipv4` and `ipv6`.
//!
//! Memory: every queue charges its size and every fragment its buffer's
//! `truesize` to the family's counter; while the counter is above
//! ipfrag_high_thresh / nf_conntrack_frag6_high_thresh (`inet_frag_find`),
//! every fragment is dropped until timeouts free memory. The low thresholds
//! change nothing (no evictor since Linux 4.17).
//!
//! What is actually held follows the counter: a queue that completes or is
//! killed is dropped at once together with its timer entry (timers are keyed
//! and removed exactly, never left to go stale), and the per-source fragment
//! counters of `ip_frag_too_far` live only while a queue from that source
//! does. So the heap use is bounded by the thresholds, whatever the packet
//! rate or the timeouts (see `Defragmenter::held_bytes`).

mod ipv4;
mod ipv6;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::config::Sysctls;
use crate::packet::{IfaceName, Layer, Packet, PktType};
use crate::reason::Reason;

/// Memory charged per queue: sizeof(struct ipq) as /proc/net/sockstat shows it
/// growing, and an estimate of sizeof(struct frag_queue).
pub const QUEUE_SIZE_V4: u64 = 200;
pub const QUEUE_SIZE_V6: u64 = 184;
/// skb truesize by frame length, measured on Linux 6.18 for frames received on
/// a veth: the skb head comes from a kmalloc bucket, so truesize moves in steps.
const TRUESIZE_STEPS: [(u64, u64); 6] = [
    (234, 832),
    (640, 1280),
    (1664, 2304),
    (3712, 4352),
    (4608, 8448),
    (9216, 9024),
];
pub const MAX_DATAGRAM: i64 = 65535;

// ECN codepoints seen in the fragments, one bit each (IPFRAG_ECN_*).
const ECN_NOT_ECT: u8 = 1;
const ECN_CE: u8 = 8;

/// Estimated skb truesize of a fragment received in an Ethernet frame.
pub fn truesize(datagram_len: usize) -> u64 {
    let frame = (datagram_len as u64).saturating_add(14);
    for (limit, size) in TRUESIZE_STEPS {
        if frame <= limit {
            return size;
        }
    }
    let bits = 64 - (frame.saturating_add(383)).leading_zeros();
    256u64.saturating_add(1u64.checked_shl(bits).unwrap_or(u64::MAX))
}

/// What the defrag hook did with one packet, and which queued fragments timed
/// out just before it.
#[derive(Debug)]
pub struct DefragResult {
    pub outcome: DefragOutcome,
    /// Indices of fragments whose queues expired before this packet, sorted.
    pub expired: Vec<u64>,
}

#[derive(Debug)]
pub enum DefragOutcome {
    /// The packet goes on as it is (not a fragment, or let through unreassembled).
    Pass(Reason),
    /// Kept in a queue; nothing goes on.
    Queued(Reason),
    /// Dropped (possibly with its whole queue).
    Dropped(Reason),
    /// This fragment completed a datagram.
    Complete(Box<Reassembled>),
}

/// A reassembled datagram, and what the new packet takes from its fragments.
///
/// The caller decodes `datagram` into a new `Packet` (`decode::decode_datagram`)
/// and then calls `stamp`.
#[derive(Debug, Clone)]
pub struct Reassembled {
    pub datagram: Vec<u8>,
    pub reason: Reason,
    /// Index and timestamp of the completing fragment.
    pub index: u64,
    pub ts: f64,
    /// Interfaces of the completing fragment.
    pub iface_in: Option<IfaceName>,
    pub iface_out: Option<IfaceName>,
    /// Link-layer details of the first fragment (offset 0).
    pub link_type: u32,
    pub link_src: Option<Vec<u8>>,
    pub link_dst: Option<Vec<u8>>,
    pub pkt_type: PktType,
}

impl Reassembled {
    /// Give the decoded datagram the place and link details of its fragments.
    pub fn stamp<'a>(&'a self, pkt: &mut Packet<'a>) {
        pkt.index = self.index;
        pkt.ts = self.ts;
        pkt.iface_in = self.iface_in.clone();
        pkt.iface_out = self.iface_out.clone();
        pkt.link_type = self.link_type;
        pkt.link_src = self.link_src.as_deref();
        pkt.link_dst = self.link_dst.as_deref();
        pkt.pkt_type = self.pkt_type;
    }
}

impl DefragResult {
    /// "pass", "queued", "complete" or "dropped" (the names the recorded
    /// reference cases use).
    pub fn kind(&self) -> &'static str {
        match self.outcome {
            DefragOutcome::Pass(_) => "pass",
            DefragOutcome::Queued(_) => "queued",
            DefragOutcome::Dropped(_) => "dropped",
            DefragOutcome::Complete(_) => "complete",
        }
    }

    pub fn reason(&self) -> &str {
        match &self.outcome {
            DefragOutcome::Pass(r) | DefragOutcome::Queued(r) | DefragOutcome::Dropped(r) => r,
            DefragOutcome::Complete(done) => &done.reason,
        }
    }
}

/// Queue identity: IPv4 uses the protocol, IPv6 the input interface.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    family: u8,
    src: u128,
    dst: u128,
    ident: u32,
    proto: u8,
    zone: u16,
    iface: Option<IfaceName>,
}

/// A deadline ordered totally, so that any timestamp (even NaN) has a place.
#[derive(Clone, Copy, Debug)]
struct When(f64);

impl PartialEq for When {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for When {}
impl PartialOrd for When {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for When {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A timer entry: the deadline, then the order of arming (ties expire in order).
type TimerKey = (When, u64);

/// One queued fragment: where its payload goes, and which packet it was.
#[derive(Debug)]
struct Frag {
    offset: i64,
    payload: Box<[u8]>,
    index: u64,
}

/// What the reassembled datagram takes from the fragment at offset 0.
#[derive(Debug)]
struct First {
    /// The unfragmentable headers (IPv6: also the fragment header's first byte).
    head: Box<[u8]>,
    unfrag_len: i64,
    link_type: u32,
    link_src: Option<Box<[u8]>>,
    link_dst: Option<Box<[u8]>>,
    pkt_type: PktType,
}

/// One datagram being reassembled (struct inet_frag_queue).
#[derive(Debug)]
struct Queue {
    family: u8,
    src: u128,
    ident: u32,
    timer: TimerKey,
    /// The datagram's payload length as far as known (q.len).
    length: i64,
    /// Bytes received.
    meat: i64,
    first_in: bool,
    last_in: bool,
    /// [start, end) of each run, sorted.
    runs: Vec<(i64, i64)>,
    tail_end: i64,
    frags: Vec<Frag>,
    first: Option<First>,
    ecn: u8,
    max_size: i64,
    max_df_size: i64,
    rid: u64,
    mem: u64,
}

impl Queue {
    fn indices(&self) -> Vec<u64> {
        let mut out: Vec<u64> = self.frags.iter().map(|f| f.index).collect();
        out.sort_unstable();
        out
    }

    fn heap_bytes(&self) -> usize {
        let frags: usize = self
            .frags
            .iter()
            .map(|f| std::mem::size_of::<Frag>() + f.payload.len())
            .sum();
        let first = self.first.as_ref().map_or(0, |f| {
            f.head.len()
                + f.link_src.as_ref().map_or(0, |s| s.len())
                + f.link_dst.as_ref().map_or(0, |s| s.len())
        });
        frags
            + (self.frags.capacity() - self.frags.len()) * std::mem::size_of::<Frag>()
            + self.runs.capacity() * std::mem::size_of::<(i64, i64)>()
            + first
    }
}

/// Where `inet_frag_queue_insert` put a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placed {
    New,
    Duplicate,
    Overlap,
}

fn insert(q: &mut Queue, offset: i64, end: i64) -> Placed {
    if q.runs.is_empty() {
        q.runs.push((offset, end));
    } else if q.tail_end < end {
        if offset < q.tail_end {
            return Placed::Overlap;
        }
        match q.runs.last_mut() {
            Some(last) if offset == q.tail_end => last.1 = end,
            _ => q.runs.push((offset, end)),
        }
    } else {
        let mut at = 0;
        for &(start, stop) in &q.runs {
            if end <= start {
                break;
            }
            if offset < stop {
                return if start <= offset && end <= stop {
                    Placed::Duplicate
                } else {
                    Placed::Overlap
                };
            }
            at += 1;
        }
        q.runs.insert(at, (offset, end));
    }
    q.tail_end = q.tail_end.max(end);
    Placed::New
}

/// The IPv4 source's fragment counter (inet_peer.rid) for `ip_frag_too_far`,
/// kept while at least one queue from the source is alive: only differences
/// between two readings by one queue matter, so a source without queues needs
/// no counter.
#[derive(Debug, Default)]
struct Peer {
    rid: u64,
    queues: u32,
}

/// The per-namespace fragment queues of both families, on the capture clock.
#[derive(Debug)]
pub struct Defragmenter {
    cfg: Sysctls,
    queues: HashMap<Key, Queue>,
    timers: BTreeMap<TimerKey, Key>,
    seq: u64,
    /// Charged memory: [IPv4, IPv6].
    mem: [u64; 2],
    peers: HashMap<u128, Peer>,
}

fn slot(family: u8) -> usize {
    usize::from(family != 4)
}

impl Defragmenter {
    pub fn new(cfg: &Sysctls) -> Self {
        Defragmenter {
            cfg: cfg.clone(),
            queues: HashMap::new(),
            timers: BTreeMap::new(),
            seq: 0,
            mem: [0, 0],
            peers: HashMap::new(),
        }
    }

    /// Queues currently waiting for fragments.
    pub fn pending(&self) -> usize {
        self.queues.len()
    }

    /// Bytes charged to the family's fragment memory counter (4 or 6).
    pub fn memory(&self, family: u8) -> u64 {
        match family {
            4 => self.mem[0],
            6 => self.mem[1],
            _ => 0,
        }
    }

    /// Heap bytes the defragmenter really holds: queues, fragments, timers and
    /// per-source counters, table capacity included. An estimate of the
    /// allocator's view (entry sizes without allocator overhead), but one that
    /// counts everything that grows.
    pub fn held_bytes(&self) -> usize {
        use std::mem::size_of;
        let table = self.queues.capacity() * (size_of::<Key>() + size_of::<Queue>() + 1);
        let queues: usize = self.queues.values().map(Queue::heap_bytes).sum();
        // A B-tree node holds up to 11 entries; count every entry as its own
        // share of a half-full node.
        let timers = self.timers.len() * 2 * (size_of::<TimerKey>() + size_of::<Key>());
        let peers = self.peers.capacity() * (size_of::<u128>() + size_of::<Peer>() + 1);
        table + queues + timers + peers
    }

    /// Feed one decoded packet at capture time `now` (PREROUTING defrag user, `zone`).
    pub fn push(&mut self, pkt: &Packet<'_>, now: f64, zone: u16) -> DefragResult {
        let expired = self.expire(now);
        let frag = match pkt.fragment {
            Some(frag) if !pkt.error.as_ref().is_some_and(|e| ip_layer(e.layer)) => frag,
            _ => {
                return DefragResult {
                    outcome: DefragOutcome::Pass(Cow::Borrowed("not a fragment")),
                    expired,
                }
            }
        };
        let outcome = if pkt.family == 4 {
            self.push_v4(pkt, &frag, now, zone)
        } else {
            self.push_v6(pkt, &frag, now, zone)
        };
        DefragResult { outcome, expired }
    }

    /// Drop queues whose timer ran out by `now`; the indices of their fragments.
    pub fn expire(&mut self, now: f64) -> Vec<u64> {
        let mut gone = Vec::new();
        while let Some((&(When(deadline), _), _)) = self.timers.first_key_value() {
            if deadline > now || deadline.is_nan() || now.is_nan() {
                break;
            }
            let Some((_, key)) = self.timers.pop_first() else {
                break;
            };
            if let Some(mut q) = self.queues.remove(&key) {
                gone.extend(q.frags.iter().map(|f| f.index));
                self.kill(&mut q);
            }
        }
        gone.sort_unstable();
        gone
    }

    // -- queue bookkeeping -------------------------------------------------

    fn limit(&self, family: u8) -> u64 {
        if family == 4 {
            self.cfg.ipfrag_high_thresh
        } else {
            self.cfg.nf_conntrack_frag6_high_thresh
        }
    }

    /// Look up or create the queue (`inet_frag_find`) and take it out of the
    /// table; None when over the memory limit. The caller puts a queue that
    /// lives on back with `keep`, and kills one that does not.
    fn take(&mut self, key: &Key, pkt: &Packet<'_>, ident: u32, now: f64) -> Option<Queue> {
        let family = key.family;
        let limit = self.limit(family);
        if limit == 0 || self.mem[slot(family)] > limit {
            return None;
        }
        if let Some(q) = self.queues.remove(key) {
            return Some(q);
        }
        let (timeout, size) = if family == 4 {
            (self.cfg.ipfrag_time, QUEUE_SIZE_V4)
        } else {
            (self.cfg.nf_conntrack_frag6_timeout, QUEUE_SIZE_V6)
        };
        let timer = self.arm(now + timeout as f64, key.clone());
        self.mem[slot(family)] += size;
        if family == 4 {
            self.peers.entry(pkt.src).or_default().queues += 1;
        }
        Some(Queue {
            family,
            src: pkt.src,
            ident,
            timer,
            length: 0,
            meat: 0,
            first_in: false,
            last_in: false,
            runs: Vec::new(),
            tail_end: 0,
            frags: Vec::new(),
            first: None,
            ecn: 0,
            max_size: 0,
            max_df_size: 0,
            rid: 0,
            mem: size,
        })
    }

    fn keep(&mut self, key: Key, q: Queue) {
        self.queues.insert(key, q);
    }

    fn arm(&mut self, deadline: f64, key: Key) -> TimerKey {
        self.seq += 1;
        // Every NaN sorts last, behind all real deadlines, and never expires.
        let deadline = if deadline.is_nan() {
            f64::from_bits(0x7ff8_0000_0000_0000)
        } else {
            deadline
        };
        let timer = (When(deadline), self.seq);
        self.timers.insert(timer, key);
        timer
    }

    /// Release a queue already out of the table (`inet_frag_kill` + destroy):
    /// its timer and its charge go now; its buffers when the caller drops it.
    fn kill(&mut self, q: &mut Queue) {
        self.timers.remove(&q.timer);
        let counter = &mut self.mem[slot(q.family)];
        *counter = counter.saturating_sub(q.mem);
        q.mem = 0;
        if q.family == 4 {
            if let Some(peer) = self.peers.get_mut(&q.src) {
                peer.queues = peer.queues.saturating_sub(1);
                if peer.queues == 0 {
                    self.peers.remove(&q.src);
                }
            }
        }
    }

    fn add(&mut self, q: &mut Queue, offset: i64, payload: &[u8], pkt: &Packet<'_>) {
        q.frags.push(Frag {
            offset,
            payload: payload.into(),
            index: pkt.index,
        });
        q.meat += payload.len() as i64;
        let size = truesize(pkt.data.len());
        q.mem += size;
        self.mem[slot(q.family)] += size;
        q.ecn |= 1 << (pkt.tos & 3);
        if offset == 0 {
            q.first_in = true;
            let unfrag_len = pkt.fragment.map_or(0, |f| i64::from(f.unfrag_len));
            let head = py_slice(pkt.data, 0, unfrag_len.saturating_add(1));
            q.first = Some(First {
                head: head.into(),
                unfrag_len,
                link_type: pkt.link_type,
                link_src: pkt.link_src.map(Into::into),
                link_dst: pkt.link_dst.map(Into::into),
                pkt_type: pkt.pkt_type,
            });
        }
    }

    /// Kill the queue and drop the fragment, naming what was lost.
    fn discard(&mut self, mut q: Queue, why: String) -> DefragOutcome {
        let lost = q.indices();
        self.kill(&mut q);
        let mut text = format!("dropped: {why}");
        if !lost.is_empty() {
            let _ = write!(text, "; discarding queued fragments {}", list(&lost));
        }
        DefragOutcome::Dropped(Cow::Owned(text))
    }

    fn over_limit(&self, family: u8) -> DefragOutcome {
        let name = if family == 4 {
            "ipfrag_high_thresh"
        } else {
            "nf_conntrack_frag6_high_thresh"
        };
        DefragOutcome::Dropped(Cow::Owned(format!(
            "dropped: fragment memory {} bytes exceeds {name} {}",
            self.mem[slot(family)],
            self.limit(family)
        )))
    }

    /// The reassembled datagram's payload, fragments in offset order.
    fn complete(
        q: &mut Queue,
        mut header: Vec<u8>,
        last: &Packet<'_>,
        size: Option<i64>,
    ) -> DefragOutcome {
        q.frags.sort_by_key(|f| f.offset);
        for f in &q.frags {
            header.extend_from_slice(&f.payload);
        }
        let size = size.unwrap_or(header.len() as i64);
        let reason = format!(
            "reassembled {} from fragments {} ({size} bytes)",
            datagram(q),
            list(&q.indices())
        );
        let first = q.first.take();
        DefragOutcome::Complete(Box::new(Reassembled {
            datagram: header,
            reason: Cow::Owned(reason),
            index: last.index,
            ts: last.ts,
            iface_in: last.iface_in.clone(),
            iface_out: last.iface_out.clone(),
            link_type: first.as_ref().map_or(0, |f| f.link_type),
            link_src: first
                .as_ref()
                .and_then(|f| f.link_src.as_deref().map(Into::into)),
            link_dst: first
                .as_ref()
                .and_then(|f| f.link_dst.as_deref().map(Into::into)),
            pkt_type: first.as_ref().map_or(PktType::Host, |f| f.pkt_type),
        }))
    }
}

fn ip_layer(layer: Layer) -> bool {
    matches!(layer, Layer::Link | Layer::Ip | Layer::Ipv4 | Layer::Ipv6)
}

/// `data[a:b]` with Python's slice rules (negative counts from the end, clamped).
fn py_slice(data: &[u8], a: i64, b: i64) -> &[u8] {
    let n = data.len() as i64;
    let norm = |i: i64| {
        if i < 0 {
            (i + n).max(0)
        } else {
            i.min(n)
        }
    };
    let (a, b) = (norm(a), norm(b));
    if a >= b {
        return &[];
    }
    data.get(a as usize..b as usize).unwrap_or(&[])
}

/// ECN bits for the reassembled header, or None when the mix is invalid (RFC 3168 5.3).
fn ecn_result(seen: u8) -> Option<u8> {
    if seen & ECN_NOT_ECT != 0 {
        return (seen == ECN_NOT_ECT).then_some(0);
    }
    Some(if seen & ECN_CE != 0 { 3 } else { 0 })
}

fn ecn_clash(q: &Queue) -> DefragOutcome {
    DefragOutcome::Dropped(Cow::Owned(format!(
        "dropped: {} mixes ECN-capable and not-ECT parts",
        datagram(q)
    )))
}

/// An address as Python's `ipaddress` prints it (the reasons' spelling).
pub(crate) fn addr_text(family: u8, value: u128) -> String {
    let mut out = String::with_capacity(40);
    let _ = crate::output::addr::write_ipaddress_text(&mut out, family, value);
    out
}

fn datagram(q: &Queue) -> String {
    format!(
        "datagram id 0x{:x} from {}",
        q.ident,
        addr_text(q.family, q.src)
    )
}

fn nth(q: &Queue) -> String {
    format!("fragment {} of {}", q.frags.len(), datagram(q))
}

fn span(offset: i64, end: i64) -> String {
    format!("[{offset}, {end})")
}

fn list(indices: &[u64]) -> String {
    let mut out = String::new();
    for (n, i) in indices.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "#{i}");
    }
    out
}

fn end_clash(end: i64, known: i64) -> String {
    format!("last fragment ends at {end} but the datagram is known to be {known} bytes")
}

fn duplicate(q: &Queue, offset: i64, end: i64) -> DefragOutcome {
    DefragOutcome::Dropped(Cow::Owned(format!(
        "dropped: duplicate fragment {} of {}; the queue keeps the first copy",
        span(offset, end),
        datagram(q)
    )))
}
