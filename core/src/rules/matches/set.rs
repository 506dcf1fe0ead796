//! set match (xt_set.c: set_match_v4): is the packet's element in the set,
//! with the element's counters optionally updated and compared.

use crate::packet::Packet;
use crate::rules::ipset::{Sets, MATCH, NOMATCH};

/// --packets-/--bytes- test: (op 0 eq, 1 lt, 2 gt; value; negated).
pub type CounterTest = Option<(u8, u64, bool)>;

fn compare(actual: u64, test: CounterTest) -> bool {
    match test {
        None => true,
        Some((0, value, neg)) => (actual == value) != neg,
        Some((1, value, _)) => actual < value,
        Some((_, value, _)) => actual > value,
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Params<'r> {
    pub set: usize,
    pub flags: &'r [bool],
    pub invert: bool,
    pub return_nomatch: bool,
    pub update: bool,
    pub packets: CounterTest,
    pub bytes: CounterTest,
}

pub fn set(sets: &mut Sets, p: Params<'_>, pkt: &Packet<'_>, now: f64) -> bool {
    if !sets.applies_to(p.set, pkt, p.flags) {
        return p.invert;
    }
    let (mut result, found) = sets.lookup(p.set, pkt, p.flags, now, 0);
    let counters = sets.counters(p.set);
    if let (Some(at), true) = (found, counters) {
        if let Some(e) = sets.element_mut(at) {
            if p.update {
                e.packets = e.packets.saturating_add(1);
                e.octets = e.octets.saturating_add(u64::from(pkt.ip_len));
            }
            if !(compare(e.packets, p.packets) && compare(e.octets, p.bytes)) {
                result = 0;
            }
        }
    }
    if p.return_nomatch {
        result = if result == NOMATCH { MATCH } else { 0 };
    }
    (result == MATCH) != p.invert
}
