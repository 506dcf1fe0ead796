//! nftables expressions and statements as rule data, evaluated by the one
//! rule walker: an nft rule becomes `Match::Nft` entries (its expressions and
//! its non-terminal statements, in rule order) and one target (a verdict, a
//! verdict map, reject, nat).
//!
//! Values are big-endian byte strings of the key's width, as nft registers
//! hold them once byte order is settled: one comparison serves addresses,
//! ports, marks and names. A concatenation pads each part to 4 bytes, as the
//! kernel lays parts out in 32-bit registers.
//!
//! Sets and maps: `Ruleset::nft_sets` is a list of its own beside the ipset
//! list (`Ruleset::sets`), because nft sets are keyed by byte strings of any
//! layout (concatenations, intervals, verdict and value data) where ipsets
//! have fixed types. A rule's anonymous set travels inside the rule and gets
//! a slot after the named sets when the ruleset is loaded. Elements added by
//! packets and their timeouts live in `RuleState` (`nft::state::NftState`).

pub mod eval;
pub mod load;
pub mod set;
pub mod state;

use serde::{Deserialize, Deserializer};

/// The widest key a rule may load (the kernel's 16 32-bit registers).
pub const REG_BYTES: usize = 64;

/// A byte string written as hex in the data.
pub type Bytes = Box<[u8]>;

fn de_hex<'de, D: Deserializer<'de>>(de: D) -> Result<Bytes, D::Error> {
    let text = String::deserialize(de)?;
    hex(&text).ok_or_else(|| serde::de::Error::custom(format!("bad hex bytes {text:?}")))
}

fn de_hex_opt<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Bytes>, D::Error> {
    let text = Option::<String>::deserialize(de)?;
    match text {
        None => Ok(None),
        Some(t) => hex(&t)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("bad hex bytes {t:?}"))),
    }
}

/// A ct key's direction: "original", "reply" or none (both, for counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CtDir {
    #[default]
    Both,
    Original,
    Reply,
}

fn de_dir<'de, D: Deserializer<'de>>(de: D) -> Result<CtDir, D::Error> {
    match Option::<String>::deserialize(de)?.as_deref() {
        None => Ok(CtDir::Both),
        Some("original") => Ok(CtDir::Original),
        Some("reply") => Ok(CtDir::Reply),
        Some(other) => Err(serde::de::Error::custom(format!(
            "bad ct direction {other:?}"
        ))),
    }
}

fn hex(text: &str) -> Option<Bytes> {
    if text.len() % 2 != 0 || text.len() > 2 * REG_BYTES {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Where a payload load starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Base {
    /// The link-layer header.
    Ll,
    /// The network header.
    Nh,
    /// The transport header.
    Th,
    /// What follows the transport header.
    Ih,
}

/// meta keys the core answers (names as nft spells them). iif/oif compare
/// interface names: statewall knows interfaces by name, not by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetaKey {
    Mark,
    Iifname,
    Oifname,
    Iif,
    Oif,
    Iiftype,
    Oiftype,
    L4proto,
    Nfproto,
    Protocol,
    Pkttype,
    Length,
    Skuid,
    Skgid,
    Time,
    Day,
    Hour,
    Random,
}

/// ct keys the core answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CtKey {
    State,
    Direction,
    Status,
    Mark,
    Zone,
    Helper,
    Expiration,
    L3proto,
    Protocol,
    #[serde(rename = "ip saddr", alias = "ip6 saddr", alias = "saddr")]
    Saddr,
    #[serde(rename = "ip daddr", alias = "ip6 daddr", alias = "daddr")]
    Daddr,
    ProtoSrc,
    ProtoDst,
    Bytes,
    Packets,
    Avgpkt,
}

/// A value the packet, its connection or the machine gives.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Key {
    /// `len` bytes at byte `offset` of the header at `base`.
    Payload {
        base: Base,
        offset: u32,
        len: u32,
    },
    Meta {
        key: MetaKey,
    },
    /// ct KEY, of one direction where given.
    Ct {
        key: CtKey,
        #[serde(default, deserialize_with = "de_dir")]
        dir: CtDir,
    },
    /// fib: `result` ("oif", "oifname", "type") of a route lookup of `addr`
    /// ("saddr"/"daddr"), restricted to the input or output interface.
    Fib {
        result: String,
        addr: String,
        #[serde(default)]
        iif: bool,
        #[serde(default)]
        oif: bool,
    },
    /// Parts, each padded to a multiple of 4 bytes.
    Concat {
        parts: Vec<Expr>,
    },
    /// `exthdr NAME exists`: 1 when the IPv6 extension header (by its
    /// protocol number) is in the header chain, else 0 (1 byte).
    Exthdr {
        hdr: u8,
    },
    /// numgen inc|random mod M offset O (4 bytes); `slot` is the counter of
    /// an `inc` generator, given at load.
    Numgen {
        random: bool,
        modulus: u32,
        #[serde(default)]
        offset: u32,
        #[serde(default)]
        slot: usize,
    },
}

/// A key, then its `steps` in order, then `(value & mask) ^ xor` when a
/// mask is given (nft bitwise: each `&`, `|` and `^` after the last shift
/// folds into that one mask and xor).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Expr {
    pub key: Key,
    #[serde(default)]
    pub steps: Vec<Bitwise>,
    #[serde(default, deserialize_with = "de_hex_opt")]
    pub mask: Option<Bytes>,
    #[serde(default, deserialize_with = "de_hex_opt")]
    pub xor: Option<Bytes>,
}

/// One nft bitwise operation on a loaded value, before the last shift.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Bitwise {
    /// `(value & mask) ^ xor`.
    MaskXor {
        #[serde(deserialize_with = "de_hex")]
        mask: Bytes,
        #[serde(deserialize_with = "de_hex")]
        xor: Bytes,
    },
    /// The value as one big-endian number, shifted left (`<<`) by `bits`,
    /// or right (`>>`) for a negative count; bits shifted out are lost.
    Shift { bits: i32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// Where a statement's value comes from.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Source {
    Imm {
        #[serde(deserialize_with = "de_hex")]
        data: Bytes,
    },
    Load {
        expr: Expr,
    },
    /// The data of `expr`'s element in a map (no element: the rule stops).
    Map {
        expr: Expr,
        map: SetRef,
    },
}

/// A named set (its index in `Ruleset::nft_sets`) or a rule's own anonymous one.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SetRef {
    #[serde(default)]
    pub set: usize,
    #[serde(default)]
    pub anon: Option<Box<SetSpec>>,
    /// The set's place in the state, given at load.
    #[serde(default)]
    pub slot: usize,
}

/// A verdict a verdict map's element holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum NftVerdict {
    Accept,
    Drop,
    Queue,
    Continue,
    Return,
    Jump { chain: usize },
    Goto { chain: usize },
}

/// One element: a key (or interval `key`..=`key_end`), its data and timeout.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Elem {
    #[serde(deserialize_with = "de_hex")]
    pub key: Bytes,
    #[serde(default, deserialize_with = "de_hex_opt")]
    pub key_end: Option<Bytes>,
    #[serde(default, deserialize_with = "de_hex_opt")]
    pub data: Option<Bytes>,
    #[serde(default)]
    pub verdict: Option<NftVerdict>,
    /// Seconds the element lives from when the ruleset is loaded.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// The catch-all element `*`: what an unmatched key finds.
    #[serde(default)]
    pub catchall: bool,
}

/// A set or map as the ruleset defines it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SetSpec {
    pub name: String,
    /// Width of a key in bytes (concatenation parts padded).
    pub key_len: usize,
    /// The padded width of each part of a concatenated key (empty: one part).
    #[serde(default)]
    pub fields: Vec<usize>,
    #[serde(default)]
    pub interval: bool,
    /// The timeout of elements added without one, in seconds.
    #[serde(default)]
    pub timeout: Option<f64>,
    #[serde(default)]
    pub size: Option<usize>,
    /// A map's data parts, padded (two for `ipv4_addr . inet_service`).
    #[serde(default)]
    pub data_fields: Vec<usize>,
    #[serde(default)]
    pub elements: Vec<Elem>,
}

/// `limit`: a token bucket in nanoseconds (nft_limit.c).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct LimitSpec {
    pub rate: u64,
    /// Seconds per `rate`.
    pub unit: u64,
    pub burst: u64,
    pub bytes: bool,
    pub over: bool,
}

/// What a `set` statement writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum SetWhat {
    #[serde(rename = "meta mark")]
    MetaMark,
    #[serde(rename = "ct mark")]
    CtMark,
    #[serde(rename = "ct zone")]
    CtZone,
}

/// One expression test or non-terminal statement of an nft rule.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum NftMatch {
    /// `left OP data`: `data` shorter than the key compares a prefix (`"eth*"`).
    Cmp {
        left: Expr,
        cmp: CmpOp,
        #[serde(deserialize_with = "de_hex")]
        data: Bytes,
    },
    Range {
        left: Expr,
        #[serde(deserialize_with = "de_hex")]
        low: Bytes,
        #[serde(deserialize_with = "de_hex")]
        high: Bytes,
        #[serde(default)]
        neg: bool,
    },
    Lookup {
        left: Expr,
        set: SetRef,
        #[serde(default)]
        neg: bool,
    },
    /// `counter`, anonymous or a named object (`name`: "TABLE NAME").
    Counter {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        slot: usize,
    },
    Limit {
        #[serde(default)]
        name: Option<String>,
        spec: LimitSpec,
        #[serde(default)]
        slot: usize,
    },
    /// `quota [over] BYTES [used USED]`.
    Quota {
        #[serde(default)]
        name: Option<String>,
        bytes: u64,
        #[serde(default)]
        used: u64,
        #[serde(default)]
        over: bool,
        #[serde(default)]
        slot: usize,
    },
    /// `log`, written as the LOG target writes its line.
    Log {
        #[serde(default)]
        prefix: String,
        #[serde(default)]
        tcp_sequence: bool,
        #[serde(default)]
        tcp_options: bool,
        #[serde(default)]
        ip_options: bool,
    },
    /// `meta mark set VALUE` / `ct mark set VALUE` / `ct zone set VALUE`.
    Set { what: SetWhat, value: Source },
    /// A conntrack template effect, as the CT target hands it over
    /// (("notrack", true), ("helper", "ftp"), ...).
    Effect {
        effect: String,
        value: serde_json::Value,
    },
    /// An effect whose value a map picks (`ct helper set udp dport map { 69 :
    /// "tftp" }`): the map's data is an index into `values`; no element, the
    /// rule stops.
    EffectMap {
        effect: String,
        key: Expr,
        map: SetRef,
        values: Vec<serde_json::Value>,
    },
    /// `add @set { KEY }` / `update @set { KEY timeout T }`.
    Dynset {
        update: bool,
        key: Expr,
        set: SetRef,
        #[serde(default)]
        timeout: Option<f64>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cmp_deserialises_from_hex() {
        let m: NftMatch = serde_json::from_str(
            r#"{"op": "cmp", "left": {"key": {"kind": "meta", "key": "mark"},
                "mask": "000000ff"}, "cmp": "eq", "data": "00000005"}"#,
        )
        .unwrap();
        let NftMatch::Cmp { left, data, .. } = m else {
            panic!("not a cmp")
        };
        assert_eq!(&*data, &[0, 0, 0, 5]);
        assert_eq!(left.mask.as_deref(), Some(&[0, 0, 0, 0xff][..]));
        assert_eq!(hex("0g"), None);
    }
}
