//! statistic match (xt_statistic.c). Random mode draws 31 bits from the
//! ruleset's generator, a Mersenne Twister seeded as Python's `random.Random(seed)`
//! is, so a seed gives the sequence that generator gives for it; nth mode keeps
//! one counter per rule.

/// MT19937 with CPython's integer seeding (init_by_array over the seed's 32-bit words).
#[derive(Clone, Debug)]
pub struct Mt {
    state: Box<[u32; 624]>,
    index: usize,
}

impl Mt {
    pub fn new(seed: u64) -> Mt {
        let mut key: Vec<u32> = vec![seed as u32];
        if seed >> 32 != 0 {
            key.push((seed >> 32) as u32);
        }
        let mut mt = Mt {
            state: Box::new([0; 624]),
            index: 624,
        };
        mt.init_genrand(19_650_218);
        let s = &mut mt.state;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..624.max(key.len()) {
            let prev = s[i - 1] ^ (s[i - 1] >> 30);
            s[i] = (s[i] ^ prev.wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= 624 {
                s[0] = s[623];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..623 {
            let prev = s[i - 1] ^ (s[i - 1] >> 30);
            s[i] = (s[i] ^ prev.wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= 624 {
                s[0] = s[623];
                i = 1;
            }
        }
        s[0] = 0x8000_0000;
        mt
    }

    fn init_genrand(&mut self, seed: u32) {
        self.state[0] = seed;
        for i in 1..624 {
            let prev = self.state[i - 1];
            self.state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        self.index = 624;
    }

    fn twist(&mut self) {
        let s = &mut self.state;
        for k in 0..624 {
            let y = (s[k] & 0x8000_0000) | (s[(k + 1) % 624] & 0x7fff_ffff);
            let mut v = s[(k + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= 0x9908_b0df;
            }
            s[k] = v;
        }
        self.index = 0;
    }

    pub fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// Python's getrandbits(k) for k <= 32.
    pub fn bits(&mut self, k: u32) -> u32 {
        self.next_u32() >> (32 - k)
    }
}

pub fn random(rng: &mut Mt, threshold: u64, neg: bool) -> bool {
    (u64::from(rng.bits(31)) < threshold) != neg
}

/// `counter` is the rule's slot (starts at every - packet).
pub fn nth(counter: &mut u64, every: u64, neg: bool) -> bool {
    *counter = if *counter == every { 0 } else { *counter + 1 };
    (*counter == 0) != neg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_numbers_as_python() {
        // python3 -c "import random; r=random.Random(0); print([r.getrandbits(31) for _ in range(3)])"
        let mut mt = Mt::new(0);
        assert_eq!(
            [mt.bits(31), mt.bits(31), mt.bits(31)],
            [1813382118, 827307999, 1627694678]
        );
        let mut mt = Mt::new(42);
        assert_eq!(mt.bits(32), 2746317213);
    }

    #[test]
    fn every_third_packet() {
        let (every, packet) = (2, 0);
        let mut c = every - packet;
        let hits: Vec<bool> = (0..6).map(|_| nth(&mut c, every, false)).collect();
        assert_eq!(hits, [true, false, false, true, false, false]);
    }
}
