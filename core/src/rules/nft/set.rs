//! nft sets and maps while packets pass: exact keys by hash, intervals by
//! binary search over sorted, non-overlapping ranges (concatenated intervals,
//! where each part is its own range, by a scan), element timeouts on the
//! capture's clock and elements added by `add`/`update` statements.

use std::collections::HashMap;

use crate::rules::nft::{Bytes, Elem, NftVerdict, SetSpec};

#[derive(Clone, Debug)]
pub struct NftSet {
    pub spec: SetSpec,
    exact: HashMap<Bytes, usize>,
    /// Element indexes sorted by their low key (single-part interval sets).
    ranges: Vec<usize>,
    /// Absolute expiry of each element (None: forever).
    expires: Vec<Option<f64>>,
    catchall: Option<usize>,
    /// Listed elements with a timeout start counting at the first packet.
    started: bool,
}

fn high(e: &Elem) -> &[u8] {
    e.key_end.as_deref().unwrap_or(&e.key)
}

impl NftSet {
    pub fn new(spec: SetSpec) -> Result<NftSet, String> {
        let mut set = NftSet {
            exact: HashMap::new(),
            ranges: Vec::new(),
            expires: vec![None; spec.elements.len()],
            catchall: None,
            started: false,
            spec,
        };
        for i in 0..set.spec.elements.len() {
            set.index(i)?;
        }
        set.sort();
        Ok(set)
    }

    fn index(&mut self, i: usize) -> Result<(), String> {
        let e = &self.spec.elements[i];
        if e.catchall {
            self.catchall = Some(i);
            return Ok(());
        }
        if e.key.len() != self.spec.key_len || high(e).len() != self.spec.key_len {
            return Err(format!(
                "set {}: an element's key has {} bytes, the set's {}",
                self.spec.name,
                e.key.len(),
                self.spec.key_len
            ));
        }
        if self.spec.interval {
            self.ranges.push(i);
        } else {
            self.exact.insert(e.key.clone(), i);
        }
        Ok(())
    }

    fn sort(&mut self) {
        let elems = &self.spec.elements;
        self.ranges
            .sort_by(|&a, &b| elems[a].key.cmp(&elems[b].key));
    }

    fn live(&self, i: usize, now: f64) -> bool {
        self.expires[i].is_none_or(|t| now < t)
    }

    fn start(&mut self, now: f64) {
        if !self.started {
            self.started = true;
            for (i, e) in self.spec.elements.iter().enumerate() {
                self.expires[i] = e.timeout.map(|t| now + t);
            }
        }
    }

    fn within_fields(&self, e: &Elem, key: &[u8]) -> bool {
        let mut at = 0;
        for &w in &self.spec.fields {
            let (k, lo, hi) = (&key[at..at + w], &e.key[at..at + w], &high(e)[at..at + w]);
            if k < lo || k > hi {
                return false;
            }
            at += w;
        }
        true
    }

    fn find(&self, key: &[u8]) -> Option<usize> {
        if !self.spec.interval {
            return self.exact.get(key).copied();
        }
        let elems = &self.spec.elements;
        if self.spec.fields.len() > 1 {
            return self
                .ranges
                .iter()
                .copied()
                .find(|&i| self.within_fields(&elems[i], key));
        }
        let after = self.ranges.partition_point(|&i| &*elems[i].key <= key);
        let i = *self.ranges.get(after.checked_sub(1)?)?;
        (key <= high(&elems[i])).then_some(i)
    }

    /// The live element `key` finds (the catch-all when no other does).
    pub fn lookup(&mut self, key: &[u8], now: f64) -> Option<usize> {
        self.start(now);
        if key.len() != self.spec.key_len {
            return None;
        }
        match self.find(key) {
            Some(i) if self.live(i, now) => Some(i),
            _ => self.catchall.filter(|&i| self.live(i, now)),
        }
    }

    pub fn data(&self, i: usize) -> Option<&[u8]> {
        self.spec.elements.get(i)?.data.as_deref()
    }

    pub fn verdict(&self, i: usize) -> Option<NftVerdict> {
        self.spec.elements.get(i)?.verdict
    }

    /// `add` (keeps a live element as it is) or `update` (restarts its
    /// timeout); false when the set is full (the rule stops).
    pub fn add(&mut self, key: &[u8], timeout: Option<f64>, update: bool, now: f64) -> bool {
        self.start(now);
        let timeout = timeout.or(self.spec.timeout);
        if key.len() != self.spec.key_len {
            return false;
        }
        if let Some(i) = self.find(key) {
            if !self.live(i, now) || update {
                self.expires[i] = timeout.map(|t| now + t);
            }
            return true;
        }
        let alive = (0..self.expires.len())
            .filter(|&i| self.live(i, now))
            .count();
        if self.spec.size.is_some_and(|size| alive >= size) {
            return false;
        }
        self.spec.elements.push(Elem {
            key: key.into(),
            key_end: None,
            data: None,
            verdict: None,
            timeout,
            catchall: false,
        });
        self.expires.push(timeout.map(|t| now + t));
        let i = self.spec.elements.len() - 1;
        let indexed = self.index(i).is_ok();
        self.sort();
        indexed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elem(key: &[u8], end: Option<&[u8]>) -> Elem {
        Elem {
            key: key.into(),
            key_end: end.map(Into::into),
            data: Some(key.into()),
            verdict: None,
            timeout: None,
            catchall: false,
        }
    }

    fn spec(interval: bool, fields: Vec<usize>, elements: Vec<Elem>) -> SetSpec {
        SetSpec {
            name: "s".into(),
            key_len: 2,
            fields,
            interval,
            timeout: None,
            size: Some(3),
            data_fields: vec![],
            elements,
        }
    }

    #[test]
    fn intervals_by_binary_search() {
        let mut s = NftSet::new(spec(
            true,
            vec![],
            vec![elem(&[0, 80], Some(&[0, 90])), elem(&[0, 10], None)],
        ))
        .unwrap();
        assert_eq!(s.lookup(&[0, 85], 0.0), Some(0));
        assert_eq!(s.lookup(&[0, 10], 0.0), Some(1));
        assert_eq!(s.lookup(&[0, 11], 0.0), None);
        assert_eq!(s.lookup(&[0, 91], 0.0), None);
        assert_eq!(s.lookup(&[0, 5], 0.0), None);
    }

    #[test]
    fn concatenated_intervals_test_each_part() {
        let mut s =
            NftSet::new(spec(true, vec![1, 1], vec![elem(&[1, 5], Some(&[3, 9]))])).unwrap();
        assert_eq!(s.lookup(&[2, 6], 0.0), Some(0));
        // Inside lexicographically, outside on the second part.
        assert_eq!(s.lookup(&[2, 10], 0.0), None);
    }

    #[test]
    fn dynamic_elements_expire_and_update_restarts_them() {
        let mut s = NftSet::new(spec(false, vec![], vec![])).unwrap();
        assert!(s.add(&[0, 1], Some(30.0), false, 100.0));
        assert_eq!(s.lookup(&[0, 1], 129.0), Some(0));
        assert!(s.add(&[0, 1], Some(30.0), false, 120.0));
        assert_eq!(s.lookup(&[0, 1], 130.0), None);
        assert!(s.add(&[0, 1], Some(30.0), true, 131.0));
        assert!(s.add(&[0, 1], Some(30.0), true, 150.0));
        assert_eq!(s.lookup(&[0, 1], 170.0), Some(0));
        assert!(s.add(&[0, 2], None, false, 170.0));
        assert!(s.add(&[0, 3], None, false, 170.0));
        assert!(!s.add(&[0, 4], None, false, 170.0));
    }
}
