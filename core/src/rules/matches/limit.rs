//! limit match (xt_limit.c: limit_mt): a token bucket counted in jiffies.
//!
//! Refilling is one multiplication however long the gap, so a jump of the
//! capture clock costs nothing.

/// One rule's bucket: credit and the jiffies of the previous packet (-1: none yet).
/// Credit is signed because a capture clock going backwards drains it (the
/// gap in jiffies is negative).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub credit: i128,
    pub last: i64,
    pub primed: bool,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket {
            credit: 0,
            last: -1,
            primed: false,
        }
    }
}

impl Bucket {
    pub fn take(&mut self, now: f64, hz: u64, cpj: u64, cost: u64, cap: u64) -> bool {
        let (cost, cap) = (i128::from(cost), i128::from(cap));
        if !self.primed {
            self.credit = cap;
            self.primed = true;
        }
        // The capture time in jiffies, truncated toward zero (as `as` does).
        let jiffies = (now * hz as f64) as i64;
        if self.last >= 0 {
            let gap = i128::from(jiffies) - i128::from(self.last);
            self.credit = cap.min(
                self.credit
                    .saturating_add(gap.saturating_mul(i128::from(cpj))),
            );
        }
        self.last = jiffies;
        if self.credit >= cost {
            self.credit -= cost;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 1/second, burst 2 at HZ 250 (credits_per_jiffy 128).
    const CPJ: u64 = 128;
    const COST: u64 = 250 * 128;

    #[test]
    fn burst_then_refill_and_a_time_jump_is_instant() {
        let mut b = Bucket::default();
        assert!(b.take(0.0, 250, CPJ, COST, 2 * COST));
        assert!(b.take(0.0, 250, CPJ, COST, 2 * COST));
        assert!(!b.take(0.5, 250, CPJ, COST, 2 * COST));
        assert!(b.take(1.0, 250, CPJ, COST, 2 * COST));
        assert!(b.take(1.7e9, 250, CPJ, COST, 2 * COST));
        assert!(b.take(1.7e9, 250, CPJ, COST, 2 * COST));
        assert!(!b.take(1.7e9, 250, CPJ, COST, 2 * COST));
    }
}
