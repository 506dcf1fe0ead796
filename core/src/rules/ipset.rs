//! IP sets (net/netfilter/ipset: ip_set_core.c, ip_set_hash_*.c,
//! ip_set_bitmap_port.c, ip_set_list_set.c) as the rules see them: a packet
//! becomes an element through the src/dst flags, one per dimension.
//!
//! Every element key is four numbers whose meaning depends on the type:
//! hash:ip (addr), hash:net (net, prefix length), hash:net,port (net,
//! length, proto, port), hash:ip,port (addr, proto, port), hash:ip,port,ip
//! (addr, proto, port, addr), bitmap:port (port). Expiry is a comparison
//! with the packet clock.

use std::collections::HashMap;

use serde::Deserialize;

use crate::packet::Packet;

pub type Key = [u128; 4];

pub const MATCH: i8 = 1;
pub const NO: i8 = 0;
pub const NOMATCH: i8 = -1;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Element {
    #[serde(default)]
    pub packets: u64,
    #[serde(default)]
    pub octets: u64,
    #[serde(default)]
    pub expires: Option<f64>,
    #[serde(default)]
    pub nomatch: bool,
}

impl Element {
    fn alive(&self, now: f64) -> bool {
        self.expires.is_none_or(|e| e > now)
    }
}

fn key_of_strings(parts: &[String]) -> Option<Key> {
    let mut key = [0u128; 4];
    for (slot, p) in key.iter_mut().zip(parts) {
        *slot = p.parse().ok()?;
    }
    Some(key)
}

/// One set as `statewall.rules.lower` hands it over.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SetSpec {
    pub name: String,
    pub type_name: String,
    pub family: u8,
    pub dimension: usize,
    #[serde(default)]
    pub counters: bool,
    #[serde(default)]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub nomatch_type: bool,
    #[serde(default)]
    pub netmask: u32,
    #[serde(default)]
    pub low: u16,
    #[serde(default = "max_port")]
    pub high: u16,
    /// list:set members, as indices into the ruleset's sets.
    #[serde(default)]
    pub members: Vec<usize>,
    /// (key as up to four decimal strings, element)
    #[serde(default)]
    pub elements: Vec<(Vec<String>, Element)>,
}

fn max_port() -> u16 {
    65535
}

#[derive(Clone, Debug)]
pub struct IpSet {
    pub spec: SetSpec,
    pub elements: HashMap<Key, Element>,
    /// hash:net prefix lengths in use, longest first; None when to be recomputed.
    prefixes: Option<Vec<u32>>,
}

/// (protocol, port) as ip_set_get_ip_port extracts them; None for a later fragment.
pub fn packet_port(pkt: &Packet<'_>, src: bool) -> Option<(u8, u16)> {
    let proto = pkt.proto;
    let ports = matches!(proto, 6 | 17 | 132 | 136);
    let icmp = matches!(proto, 1 | 58);
    if pkt.is_later_fragment() && (ports || icmp) {
        return None;
    }
    if ports {
        Some((proto, if src { pkt.sport } else { pkt.dport }))
    } else if icmp {
        Some((
            proto,
            u16::from(pkt.icmp_type) << 8 | u16::from(pkt.icmp_code),
        ))
    } else {
        Some((proto, 0))
    }
}

fn bits(family: u8) -> u32 {
    if family == 4 {
        32
    } else {
        128
    }
}

fn prefix_mask(bits: u32, length: u32) -> u128 {
    if length == 0 {
        0
    } else {
        (u128::MAX >> (128 - length.min(bits))) << (bits - length.min(bits))
    }
}

fn flag(flags: &[bool], i: usize) -> bool {
    flags.get(i).copied().unwrap_or(false)
}

impl IpSet {
    pub fn new(spec: SetSpec) -> Result<IpSet, String> {
        let mut elements = HashMap::new();
        for (parts, element) in &spec.elements {
            let key = key_of_strings(parts)
                .ok_or_else(|| format!("set {}: bad element key", spec.name))?;
            elements.insert(key, element.clone());
        }
        Ok(IpSet {
            spec,
            elements,
            prefixes: None,
        })
    }

    fn is_net(&self) -> bool {
        self.spec.type_name.starts_with("hash:net")
    }

    fn prefixes(&mut self) -> &[u32] {
        if self.prefixes.is_none() {
            let mut lengths: Vec<u32> = self.elements.keys().map(|k| k[1] as u32).collect();
            lengths.sort_unstable_by(|a, b| b.cmp(a));
            lengths.dedup();
            self.prefixes = Some(lengths);
        }
        self.prefixes.as_deref().unwrap_or(&[])
    }

    /// The keys a packet may be stored under, in lookup order (None: no key).
    fn keys_of_packet(&mut self, pkt: &Packet<'_>, flags: &[bool]) -> Option<Vec<Key>> {
        let addr = |i: usize| if flag(flags, i) { pkt.src } else { pkt.dst };
        let t = self.spec.type_name.as_str();
        match t {
            "hash:ip" => {
                let b = bits(self.spec.family);
                let len = if self.spec.netmask == 0 {
                    b
                } else {
                    self.spec.netmask
                };
                Some(vec![[addr(0) & prefix_mask(b, len), 0, 0, 0]])
            }
            "hash:net" | "hash:net,port" => {
                let port = if self.spec.dimension == 2 {
                    Some(packet_port(pkt, flag(flags, 1))?)
                } else {
                    None
                };
                let b = bits(self.spec.family);
                let a = addr(0);
                let keys = self
                    .prefixes()
                    .iter()
                    .map(|&len| {
                        let net = a & prefix_mask(b, len);
                        match port {
                            None => [net, u128::from(len), 0, 0],
                            Some((p, q)) => [net, u128::from(len), u128::from(p), u128::from(q)],
                        }
                    })
                    .collect();
                Some(keys)
            }
            "hash:ip,port" | "hash:ip,port,ip" => {
                let (p, q) = packet_port(pkt, flag(flags, 1))?;
                let last = if self.spec.dimension == 3 { addr(2) } else { 0 };
                Some(vec![[addr(0), u128::from(p), u128::from(q), last]])
            }
            "bitmap:port" => {
                let (_, q) = packet_port(pkt, flag(flags, 0))?;
                if q < self.spec.low || q > self.spec.high {
                    return None;
                }
                Some(vec![[u128::from(q), 0, 0, 0]])
            }
            _ => None,
        }
    }

    /// The host key the SET target adds or deletes.
    fn host_key(&mut self, pkt: &Packet<'_>, flags: &[bool]) -> Option<Key> {
        if self.is_net() {
            let a = if flag(flags, 0) { pkt.src } else { pkt.dst };
            let len = u128::from(bits(self.spec.family));
            if self.spec.dimension == 1 {
                return Some([a, len, 0, 0]);
            }
            let (p, q) = packet_port(pkt, flag(flags, 1))?;
            return Some([a, len, u128::from(p), u128::from(q)]);
        }
        self.keys_of_packet(pkt, flags)?.into_iter().next()
    }
}

/// Every set of a ruleset (list:set members are indices into it).
#[derive(Clone, Debug, Default)]
pub struct Sets {
    pub sets: Vec<IpSet>,
}

impl Sets {
    fn applies(set: &IpSet, pkt: &Packet<'_>, flags: &[bool]) -> bool {
        (set.spec.family == 0 || set.spec.family == pkt.family) && flags.len() >= set.spec.dimension
    }

    /// MATCH, NO or NOMATCH, with the key of the deciding element and its set.
    pub fn lookup(
        &mut self,
        index: usize,
        pkt: &Packet<'_>,
        flags: &[bool],
        now: f64,
        depth: u8,
    ) -> (i8, Option<(usize, Key)>) {
        let Some(set) = self.sets.get_mut(index) else {
            return (NO, None);
        };
        if set.spec.type_name == "list:set" {
            if depth > 8 {
                return (NO, None);
            }
            let members = set.spec.members.clone();
            for m in members {
                let applies = self
                    .sets
                    .get(m)
                    .is_some_and(|s| Sets::applies(s, pkt, flags));
                if !applies {
                    continue;
                }
                let found = self.lookup(m, pkt, flags, now, depth + 1);
                if found.0 != NO {
                    return found;
                }
            }
            return (NO, None);
        }
        let Some(keys) = set.keys_of_packet(pkt, flags) else {
            return (NO, None);
        };
        for key in keys {
            if let Some(e) = set.elements.get(&key) {
                if e.alive(now) {
                    return (if e.nomatch { NOMATCH } else { MATCH }, Some((index, key)));
                }
            }
        }
        (NO, None)
    }

    pub fn element_mut(&mut self, at: (usize, Key)) -> Option<&mut Element> {
        self.sets.get_mut(at.0)?.elements.get_mut(&at.1)
    }

    pub fn counters(&self, index: usize) -> bool {
        self.sets.get(index).is_some_and(|s| s.spec.counters)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        index: usize,
        pkt: &Packet<'_>,
        flags: &[bool],
        now: f64,
        timeout: Option<u64>,
        exist: bool,
        depth: u8,
    ) {
        let Some(set) = self.sets.get_mut(index) else {
            return;
        };
        if set.spec.type_name == "list:set" {
            if depth > 8 {
                return;
            }
            let members = set.spec.members.clone();
            for m in members {
                if self
                    .sets
                    .get(m)
                    .is_some_and(|s| Sets::applies(s, pkt, flags))
                {
                    self.add(m, pkt, flags, now, timeout, exist, depth + 1);
                    return;
                }
            }
            return;
        }
        let Some(key) = set.host_key(pkt, flags) else {
            return;
        };
        let seconds = timeout.or(set.spec.timeout).filter(|&s| s != 0);
        let expires = seconds.map(|s| now + s as f64);
        let net = set.is_net();
        if net {
            set.prefixes = None;
        }
        match set.elements.get_mut(&key) {
            Some(old) if old.alive(now) => {
                if !exist {
                    return;
                }
                if net {
                    *old = Element {
                        expires,
                        ..Element::default()
                    };
                } else {
                    old.expires = expires;
                }
            }
            _ => {
                set.elements.insert(
                    key,
                    Element {
                        expires,
                        ..Element::default()
                    },
                );
            }
        }
    }

    pub fn del(&mut self, index: usize, pkt: &Packet<'_>, flags: &[bool], depth: u8) {
        let Some(set) = self.sets.get_mut(index) else {
            return;
        };
        if set.spec.type_name == "list:set" {
            if depth > 8 {
                return;
            }
            let members = set.spec.members.clone();
            for m in members {
                if self
                    .sets
                    .get(m)
                    .is_some_and(|s| Sets::applies(s, pkt, flags))
                {
                    self.del(m, pkt, flags, depth + 1);
                }
            }
            return;
        }
        if let Some(key) = set.host_key(pkt, flags) {
            if set.is_net() {
                set.prefixes = None;
            }
            set.elements.remove(&key);
        }
    }

    pub fn applies_to(&self, index: usize, pkt: &Packet<'_>, flags: &[bool]) -> bool {
        self.sets
            .get(index)
            .is_some_and(|s| Sets::applies(s, pkt, flags))
    }

    pub fn name(&self, index: usize) -> &str {
        self.sets.get(index).map_or("", |s| s.spec.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testpkt;

    fn spec(name: &str, type_name: &str, elements: Vec<(Vec<String>, Element)>) -> SetSpec {
        SetSpec {
            name: name.into(),
            type_name: type_name.into(),
            family: 4,
            dimension: 1,
            counters: false,
            timeout: None,
            nomatch_type: type_name.starts_with("hash:net"),
            netmask: 0,
            low: 0,
            high: 65535,
            members: vec![],
            elements,
        }
    }

    fn key(parts: &[u128]) -> Vec<String> {
        parts.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn nets_longest_prefix_nomatch_and_timeouts() {
        let nomatch = Element {
            nomatch: true,
            ..Element::default()
        };
        let nets = spec(
            "nets",
            "hash:net",
            vec![
                (key(&[0x0a00_0000, 24]), Element::default()),
                (key(&[0x0a00_0001, 32]), nomatch),
            ],
        );
        let seen = SetSpec {
            timeout: Some(5),
            ..spec("seen", "hash:ip", vec![])
        };
        let mut list = spec("all", "list:set", vec![]);
        list.family = 0;
        list.members = vec![1, 0];
        let mut sets = Sets {
            sets: vec![
                IpSet::new(nets).unwrap(),
                IpSet::new(seen).unwrap(),
                IpSet::new(list).unwrap(),
            ],
        };
        let a = testpkt::udp4([10, 0, 0, 1], [10, 0, 0, 9], 1, 2);
        let b = testpkt::udp4([10, 0, 0, 7], [10, 0, 0, 9], 1, 2);
        let c = testpkt::udp4([172, 16, 0, 1], [10, 0, 0, 9], 1, 2);
        let (a, b, c) = (
            testpkt::decode(&a),
            testpkt::decode(&b),
            testpkt::decode(&c),
        );
        let src = [true];
        assert_eq!(sets.lookup(0, &a, &src, 0.0, 0).0, NOMATCH);
        assert_eq!(sets.lookup(0, &b, &src, 0.0, 0).0, MATCH);
        assert_eq!(sets.lookup(0, &c, &src, 0.0, 0).0, NO);
        sets.add(2, &c, &src, 0.0, None, false, 0);
        assert_eq!(sets.lookup(2, &c, &src, 4.0, 0).0, MATCH);
        assert_eq!(sets.lookup(2, &c, &src, 5.0, 0).0, NO);
        // a jump of the clock is one comparison
        assert_eq!(sets.lookup(1, &c, &src, 1.7e9, 0).0, NO);
        sets.add(1, &c, &src, 1.7e9, Some(1), false, 0);
        assert_eq!(sets.lookup(1, &c, &src, 1.7e9, 0).0, MATCH);
        sets.del(2, &c, &src, 0);
        assert_eq!(sets.lookup(1, &c, &src, 1.7e9, 0).0, NO);
    }
}
