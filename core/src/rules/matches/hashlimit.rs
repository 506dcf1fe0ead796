//! hashlimit match (xt_hashlimit.c, revision 3): one token bucket per key
//! (masked addresses and ports the mode selects) in a table shared by every
//! rule naming it.
//!
//! The periodic garbage collector runs at fixed ticks; when several ticks
//! have passed since the last packet, their combined effect is the last
//! tick's (an entry expired at an earlier tick has also expired at the last
//! one), so it is applied once: a jump of the capture clock costs one pass
//! over the table, not one per elapsed interval.

use std::collections::HashMap;

use crate::packet::Packet;
use crate::rules::model::HashlimitSpec;

pub const SCALE: u128 = 1_000_000;
const BYTE_SHIFT: u32 = 4;
const U32: u128 = 0xFFFF_FFFF;
const SIP: u8 = 1;
const SPT: u8 = 2;
const DIP: u8 = 4;
const DPT: u8 = 8;

fn pow2_below(value: u128) -> u128 {
    if value == 0 {
        return 0;
    }
    1 << (127 - value.leading_zeros())
}

pub fn cpj(hz: u128) -> u128 {
    pow2_below(0xFFFF_FFFF_FFFF_FFFF / (hz * 86400).max(1))
}

pub fn cpj_bytes(hz: u128) -> u128 {
    pow2_below(U32 / hz.max(1))
}

pub fn user2credits(user: u128, hz: u128) -> u128 {
    let per = hz * cpj(hz);
    if per <= SCALE {
        user / (SCALE / per.max(1))
    } else {
        user.wrapping_mul(per / SCALE) & 0xFFFF_FFFF_FFFF_FFFF
    }
}

pub fn user2credits_byte(user: u128, hz: u128) -> u128 {
    (user.wrapping_mul(hz).wrapping_mul(cpj_bytes(hz)) >> 32) & U32
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    credit: i128,
    credit_cap: i128,
    cost: i128,
    prev: i64,
    expires: i64,
    rate: i128,
    burst: i128,
    current_rate: i128,
    prev_window: bool,
}

type Key = (u128, u128, u16, u16);

#[derive(Clone, Debug)]
pub struct Table {
    pub spec: HashlimitSpec,
    buckets: HashMap<Key, Bucket>,
    gc_next: Option<i64>,
}

fn mask_of(bits: u32, keep: u32) -> u128 {
    if keep == 0 {
        0
    } else {
        (u128::MAX >> (128 - keep.min(bits))) << (bits - keep.min(bits))
    }
}

fn raw_ports(data: &[u8], at: usize) -> (u16, u16) {
    match data.get(at..at + 4) {
        Some(b) => (
            u16::from_be_bytes([b[0], b[1]]),
            u16::from_be_bytes([b[2], b[3]]),
        ),
        None => (0, 0),
    }
}

/// One rule's own settings (the table's come from the first rule).
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub invert: bool,
    pub byte_mode: bool,
    pub rate_match: bool,
    pub hz: u64,
}

/// The answer: Some(matched), or None when the table is full (the packet is dropped).
pub enum Answer {
    Hit(bool),
    Full,
}

impl Table {
    pub fn new(spec: &HashlimitSpec) -> Table {
        Table {
            spec: spec.clone(),
            buckets: HashMap::new(),
            gc_next: None,
        }
    }

    fn key(&self, pkt: &Packet<'_>) -> Key {
        let c = &self.spec;
        let bits = if pkt.family == 4 { 32 } else { 128 };
        let src = if c.mode & SIP != 0 {
            pkt.src & mask_of(bits, c.srcmask)
        } else {
            0
        };
        let dst = if c.mode & DIP != 0 {
            pkt.dst & mask_of(bits, c.dstmask)
        } else {
            0
        };
        let (mut sport, mut dport) = (0, 0);
        if c.mode & (SPT | DPT) != 0 {
            match pkt.proto {
                6 | 17 | 33 | 50 | 132 | 136 => (sport, dport) = raw_ports(pkt.data, pkt.l4_off),
                51 => (sport, dport) = raw_ports(pkt.data, pkt.l4_off + 4),
                _ => {}
            }
        }
        (
            src,
            dst,
            if c.mode & SPT != 0 { sport } else { 0 },
            if c.mode & DPT != 0 { dport } else { 0 },
        )
    }

    /// htable_gc at every tick that has passed, applied once for all of them.
    fn collect(&mut self, now: i64, hz: u64) {
        let step = i64::try_from(u128::from(self.spec.gc_ms) * u128::from(hz) / 1000)
            .unwrap_or(i64::MAX)
            .max(1);
        let next = *self.gc_next.get_or_insert(now.saturating_add(step));
        if now < next {
            return;
        }
        let ticks = (now - next) / step;
        let last = next.saturating_add(ticks.saturating_mul(step));
        self.buckets.retain(|_, b| last < b.expires);
        self.gc_next = Some(last.saturating_add(step));
    }

    fn init(&self, b: &mut Bucket, hz: u128) {
        let c = &self.spec;
        let avg = u128::from(c.avg);
        let burst = u128::from(c.burst);
        if c.rate_match {
            if c.byte_mode {
                let per = U32.checked_div(avg).unwrap_or(U32);
                b.rate = ((per as i128) - 1) << BYTE_SHIFT;
                b.burst = if burst != 0 {
                    burst as i128 * b.rate
                } else {
                    b.rate
                };
            } else {
                b.rate = SCALE.checked_div(avg).unwrap_or(0) as i128;
                b.burst = burst as i128 + b.rate;
            }
        } else if c.byte_mode {
            b.credit = (cpj_bytes(hz) * hz) as i128;
            b.cost = user2credits_byte(avg, hz) as i128;
            b.credit_cap = burst as i128;
        } else {
            b.credit = user2credits(avg.wrapping_mul(burst), hz) as i128;
            b.cost = user2credits(avg, hz) as i128;
            b.credit_cap = b.credit;
        }
    }

    fn recalc(&self, b: &mut Bucket, now: i64, hz: u128) {
        let c = &self.spec;
        let delta = now.saturating_sub(b.prev);
        if delta <= 0 {
            return;
        }
        let delta = i128::from(delta);
        if c.rate_match {
            let interval = i128::from(c.interval) * hz as i128;
            if delta < interval {
                return;
            }
            b.prev = now;
            b.prev_window = b.current_rate.saturating_mul(interval) > delta.saturating_mul(b.rate);
            b.current_rate = 0;
            return;
        }
        b.prev = now;
        if c.byte_mode {
            let cap = (cpj_bytes(hz) * hz) as i128;
            b.credit = cap.min(
                b.credit
                    .saturating_add((cpj_bytes(hz) as i128).saturating_mul(delta)),
            );
        } else {
            b.credit = b.credit_cap.min(
                b.credit
                    .saturating_add(delta.saturating_mul(cpj(hz) as i128)),
            );
        }
    }

    pub fn check(&mut self, rule: Rule, pkt: &Packet<'_>, now: f64) -> Answer {
        let hz = rule.hz;
        let hz128 = u128::from(hz);
        let now = (now * hz as f64) as i64;
        self.collect(now, hz);
        let key = self.key(pkt);
        let expire = i64::try_from(u128::from(self.spec.expire_ms) * hz128 / 1000)
            .unwrap_or(i64::MAX)
            .max(1);
        let mut bucket = match self.buckets.remove(&key) {
            Some(mut b) => {
                self.recalc(&mut b, now, hz128);
                b
            }
            None => {
                if self.buckets.len() as u64 >= self.spec.max_entries {
                    return Answer::Full;
                }
                let mut b = Bucket {
                    prev: now,
                    ..Bucket::default()
                };
                self.init(&mut b, hz128);
                b
            }
        };
        bucket.expires = now.saturating_add(expire);
        let below = below_limit(&mut bucket, rule, pkt.ip_len, hz128);
        self.buckets.insert(key, bucket);
        Answer::Hit(below != rule.invert)
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

fn below_limit(b: &mut Bucket, rule: Rule, size: u32, hz: u128) -> bool {
    if rule.rate_match {
        b.current_rate += if rule.byte_mode { i128::from(size) } else { 1 };
        return !b.prev_window && b.current_rate <= b.burst;
    }
    let cost = if rule.byte_mode {
        let full = (cpj_bytes(hz) * hz) as i128;
        let cost = (i128::from(size >> BYTE_SHIFT) + 1)
            .saturating_mul(b.cost)
            .min(full);
        if b.credit < cost && b.credit_cap != 0 {
            b.credit_cap -= 1;
            b.credit = full;
        }
        cost
    } else {
        b.cost
    };
    if b.credit >= cost {
        b.credit -= cost;
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testpkt;

    fn spec() -> HashlimitSpec {
        // --hashlimit-upto 1/sec --hashlimit-burst 2 --hashlimit-mode srcip
        HashlimitSpec {
            name: "t".into(),
            mode: SIP,
            avg: 1_000_000,
            burst: 2,
            srcmask: 32,
            dstmask: 32,
            expire_ms: 1000,
            gc_ms: 1000,
            max_entries: 2,
            byte_mode: false,
            rate_match: false,
            interval: 0,
        }
    }

    const RULE: Rule = Rule {
        invert: false,
        byte_mode: false,
        rate_match: false,
        hz: 250,
    };

    fn hit(t: &mut Table, src: [u8; 4], now: f64) -> Option<bool> {
        let data = testpkt::udp4(src, [10, 0, 0, 2], 1, 2);
        let pkt = testpkt::decode(&data);
        match t.check(RULE, &pkt, now) {
            Answer::Hit(b) => Some(b),
            Answer::Full => None,
        }
    }

    #[test]
    fn burst_refill_full_table() {
        let mut t = Table::new(&spec());
        assert_eq!(hit(&mut t, [10, 0, 0, 1], 0.0), Some(true));
        assert_eq!(hit(&mut t, [10, 0, 0, 1], 0.0), Some(true));
        assert_eq!(hit(&mut t, [10, 0, 0, 1], 0.0), Some(false));
        assert_eq!(hit(&mut t, [10, 0, 0, 1], 1.0), Some(true));
        assert_eq!(hit(&mut t, [10, 0, 0, 3], 1.0), Some(true));
        assert_eq!(hit(&mut t, [10, 0, 0, 4], 1.0), None);
    }

    #[test]
    fn a_time_jump_does_not_step_through_every_interval() {
        let mut t = Table::new(&spec());
        assert_eq!(hit(&mut t, [10, 0, 0, 1], 0.0), Some(true));
        assert_eq!(hit(&mut t, [10, 0, 0, 3], 1.7), Some(true));
        // 1.7e9 s at HZ 250 is 4.25e11 jiffies: one pass, expired entries gone.
        assert_eq!(hit(&mut t, [10, 0, 0, 4], 1.7e9), Some(true));
        assert_eq!(t.len(), 1);
        assert_eq!(hit(&mut t, [10, 0, 0, 4], 1.7e9 + 0.5), Some(true));
        assert_eq!(hit(&mut t, [10, 0, 0, 4], 1.7e9 + 0.5), Some(false));
    }
}
