//! Test helpers: packets built byte by byte (with correct checksums and the
//! fields the decoder sets, the quoted datagram of an error included), and a
//! small stand-in for the conntrack table that runs the trackers in the
//! order `nf_conntrack_in` does.

#![allow(dead_code)]

use std::collections::HashMap;

use _core::config::Sysctls;
use _core::conntrack::conn::{
    Conn, ConnId, Tuple, CT_ESTABLISHED, CT_ESTABLISHED_REPLY, CT_INVALID, CT_NEW, CT_RELATED,
    CT_RELATED_REPLY, CT_UNTRACKED, IPS_CONFIRMED, IPS_EXPECTED, IPS_SEEN_REPLY, ORIGINAL, REPLY,
};
use _core::conntrack::l4proto::{Action, ConnLookup};
use _core::conntrack::proto_icmp::{self, IcmpErrorOutcome};
use _core::conntrack::proto_sctp;
use _core::packet::{
    DecodeError, FragmentInfo, Layer, Packet, PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP,
};
use _core::reason::Reason;

/// A datagram's bytes and the fields a decoder would set for it.
#[derive(Clone, Debug, Default)]
pub struct Built {
    pub bytes: Vec<u8>,
    pub family: u8,
    pub src: u128,
    pub dst: u128,
    pub proto: u8,
    pub ttl: u8,
    pub l4_off: usize,
    pub payload_off: usize,
    pub sport: u16,
    pub dport: u16,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub icmp_id: u16,
    pub fragment: Option<FragmentInfo>,
    pub error: Option<DecodeError>,
    pub inner: Option<Box<Built>>,
}

impl Built {
    /// The decoded view of these bytes.
    pub fn packet(&self) -> Packet<'_> {
        let mut pkt = Packet::new(0, 0.0, &self.bytes, self.family);
        pkt.src = self.src;
        pkt.dst = self.dst;
        pkt.proto = self.proto;
        pkt.ttl = self.ttl;
        pkt.l4_off = self.l4_off;
        pkt.payload_off = self.payload_off;
        pkt.sport = self.sport;
        pkt.dport = self.dport;
        pkt.icmp_type = self.icmp_type;
        pkt.icmp_code = self.icmp_code;
        pkt.icmp_id = self.icmp_id;
        pkt.fragment = self.fragment;
        pkt.error = self.error.clone().map(Box::new);
        pkt.inner = self.inner.as_ref().map(|inner| Box::new(inner.packet()));
        pkt
    }

    /// Spoil the ICMP/ICMPv6 checksum (its low byte).
    pub fn bad_checksum(mut self) -> Self {
        self.bytes[self.l4_off + 3] ^= 0xFF;
        self
    }

    pub fn truncated(mut self, len: usize) -> Self {
        self.bytes.truncate(len);
        self
    }
}

pub fn fold(mut total: u64) -> u64 {
    while total >> 16 != 0 {
        total = (total & 0xFFFF) + (total >> 16);
    }
    total
}

pub fn sum16(data: &[u8]) -> u64 {
    let mut total = 0u64;
    for pair in data.chunks(2) {
        let hi = u64::from(pair[0]) << 8;
        let lo = pair.get(1).map_or(0, |&b| u64::from(b));
        total += hi | lo;
    }
    total
}

pub fn v6_pseudo(src: u128, dst: u128, proto: u8, length: usize) -> u64 {
    let mut head = Vec::with_capacity(40);
    head.extend_from_slice(&src.to_be_bytes());
    head.extend_from_slice(&dst.to_be_bytes());
    head.extend_from_slice(&(length as u32).to_be_bytes());
    head.extend_from_slice(&[0, 0, 0, proto]);
    sum16(&head)
}

pub fn ip_header(
    family: u8,
    src: u128,
    dst: u128,
    proto: u8,
    payload_len: usize,
    ttl: u8,
    frag_offset: u32,
) -> Vec<u8> {
    if family == 4 {
        let mut head = Vec::with_capacity(20);
        head.extend_from_slice(&[0x45, 0]);
        head.extend_from_slice(&((20 + payload_len) as u16).to_be_bytes());
        head.extend_from_slice(&7u16.to_be_bytes());
        head.extend_from_slice(&((frag_offset / 8) as u16).to_be_bytes());
        head.extend_from_slice(&[ttl, proto, 0, 0]);
        head.extend_from_slice(&(src as u32).to_be_bytes());
        head.extend_from_slice(&(dst as u32).to_be_bytes());
        let check = !fold(sum16(&head)) as u16;
        head[10..12].copy_from_slice(&check.to_be_bytes());
        return head;
    }
    let mut head = Vec::with_capacity(40);
    head.extend_from_slice(&(6u32 << 28).to_be_bytes());
    head.extend_from_slice(&(payload_len as u16).to_be_bytes());
    head.extend_from_slice(&[proto, ttl]);
    head.extend_from_slice(&src.to_be_bytes());
    head.extend_from_slice(&dst.to_be_bytes());
    head
}

#[allow(clippy::too_many_arguments)]
pub fn ip_packet(
    family: u8,
    src: u128,
    dst: u128,
    proto: u8,
    segment: &[u8],
    ttl: u8,
    sport: u16,
    dport: u16,
    frag_offset: u32,
) -> Built {
    let mut bytes = ip_header(family, src, dst, proto, segment.len(), ttl, frag_offset);
    bytes.extend_from_slice(segment);
    let l4_off = if family == 4 { 20 } else { 40 };
    Built {
        bytes,
        family,
        src,
        dst,
        proto,
        ttl,
        l4_off,
        payload_off: l4_off + 8,
        sport,
        dport,
        fragment: (frag_offset != 0).then_some(FragmentInfo {
            ident: 7,
            offset: frag_offset,
            more: false,
            next_proto: proto,
            unfrag_len: l4_off as u32,
        }),
        ..Built::default()
    }
}

/// A UDP datagram with checksum 0 (accepted unchecked).
pub fn udp(src: u128, dst: u128, sport: u16, dport: u16, family: u8) -> Built {
    let mut segment = Vec::new();
    for word in [sport, dport, 12, 0] {
        segment.extend_from_slice(&word.to_be_bytes());
    }
    segment.extend_from_slice(b"ping");
    ip_packet(family, src, dst, 17, &segment, 64, sport, dport, 0)
}

/// An ICMP (family 4) or ICMPv6 (family 6) message with a correct checksum.
#[allow(clippy::too_many_arguments)]
pub fn icmp_full(
    family: u8,
    src: u128,
    dst: u128,
    icmp_type: u8,
    code: u8,
    ident: u16,
    body: &[u8],
    ttl: u8,
) -> Built {
    let proto = if family == 4 {
        PROTO_ICMP
    } else {
        PROTO_ICMPV6
    };
    let mut message = vec![icmp_type, code, 0, 0];
    message.extend_from_slice(&ident.to_be_bytes());
    message.extend_from_slice(&1u16.to_be_bytes());
    message.extend_from_slice(body);
    let seed = if family == 4 {
        0
    } else {
        v6_pseudo(src, dst, PROTO_ICMPV6, message.len())
    };
    let check = !fold(seed + sum16(&message)) as u16;
    message[2..4].copy_from_slice(&check.to_be_bytes());
    let mut pkt = ip_packet(
        family,
        src,
        dst,
        proto,
        &message,
        ttl,
        ident,
        u16::from(icmp_type) << 8 | u16::from(code),
        0,
    );
    pkt.icmp_type = icmp_type;
    pkt.icmp_code = code;
    pkt.icmp_id = ident;
    pkt
}

pub fn icmp(src: u128, dst: u128, icmp_type: u8, code: u8, ident: u16) -> Built {
    icmp_full(4, src, dst, icmp_type, code, ident, b"", 64)
}

pub fn icmp6(src: u128, dst: u128, icmp_type: u8, code: u8, ident: u16) -> Built {
    icmp_full(6, src, dst, icmp_type, code, ident, b"", 64)
}

/// What a decoder makes of `original` quoted (possibly truncated) inside an error.
pub fn quoted(original: &Built, keep: Option<usize>) -> Built {
    let len = keep
        .unwrap_or(original.bytes.len())
        .min(original.bytes.len());
    let mut inner = Built {
        bytes: original.bytes[..len].to_vec(),
        family: original.family,
        src: original.src,
        dst: original.dst,
        proto: original.proto,
        ttl: original.ttl,
        l4_off: original.l4_off,
        fragment: original.fragment,
        icmp_type: original.icmp_type,
        icmp_code: original.icmp_code,
        icmp_id: original.icmp_id,
        ..Built::default()
    };
    if len < original.l4_off {
        let layer = if original.family == 4 {
            Layer::Ipv4
        } else {
            Layer::Ipv6
        };
        inner.error = Some(DecodeError::new(layer, 0, "truncated"));
        return inner;
    }
    let l4_bytes = len - original.l4_off;
    if l4_bytes >= 4 || !matches!(original.proto, 6 | 17 | 132 | 136) {
        inner.sport = original.sport;
        inner.dport = original.dport;
    }
    if matches!(original.proto, 1 | 58) && l4_bytes < 8 {
        inner.sport = 0;
        inner.dport = 0;
    }
    inner
}

/// An ICMP/ICMPv6 error quoting `about` (its first `keep` bytes).
pub fn icmp_err(
    family: u8,
    src: u128,
    dst: u128,
    icmp_type: u8,
    code: u8,
    about: &Built,
    keep: Option<usize>,
) -> Built {
    let inner = quoted(about, keep);
    let mut pkt = icmp_full(family, src, dst, icmp_type, code, 0, &inner.bytes, 64);
    pkt.inner = Some(Box::new(inner));
    pkt
}

pub const CLIENT: u128 = 0x0A63_0101; // 10.99.1.1
pub const SERVER: u128 = 0x0A63_0201; // 10.99.2.1
pub const ROUTER: u128 = 0x0A63_02FE; // 10.99.2.254
pub const OTHER: u128 = 0x0A63_0302; // 10.99.3.2
pub const CLIENT6: u128 = 0xFD99_0001_0000_0000_0000_0000_0000_0001;
pub const SERVER6: u128 = 0xFD99_0002_0000_0000_0000_0000_0000_0001;
pub const ROUTER6: u128 = 0xFD99_0002_0000_0000_0000_0000_0000_00FE;
pub const LINK_LOCAL6: u128 = 0xFE80_0000_0000_0000_0000_0000_0000_0001;

/// An ICMPv6 redirect: target, destination, then one ND option quoting `about`.
pub fn redirect6(
    src: u128,
    dst: u128,
    about: Option<&Built>,
    ttl: u8,
    code: u8,
    option: u8,
    option_len: u8,
) -> Built {
    let mut body = Vec::new();
    body.extend_from_slice(&ROUTER6.to_be_bytes());
    body.extend_from_slice(&SERVER6.to_be_bytes());
    if let Some(about) = about {
        body.extend_from_slice(&[option, option_len, 0, 0, 0, 0, 0, 0]);
        body.extend_from_slice(&about.bytes);
    }
    let mut pkt = icmp_full(6, src, dst, 137, code, 0, &body, ttl);
    if let Some(about) = about {
        pkt.inner = Some(Box::new(quoted(about, None)));
    }
    pkt
}

/// What conntrack attached to one packet.
#[derive(Clone, Debug)]
pub struct CtResult {
    pub ctinfo: u8,
    pub conn: Option<ConnId>,
    pub reason: Reason,
}

impl CtResult {
    fn none(ctinfo: u8, reason: Reason) -> Self {
        CtResult {
            ctinfo,
            conn: None,
            reason,
        }
    }
}

/// A table of confirmed entries, indexed under both tuples.
#[derive(Default)]
pub struct MiniTable {
    pub cfg: Sysctls,
    pub conns: Vec<Conn>,
    alive: Vec<bool>,
    index: HashMap<(u8, u8, Tuple, u16), (ConnId, u8)>,
    /// The clock of the packet being classified; None: entries never expire.
    now: Option<f64>,
}

impl MiniTable {
    pub fn new(cfg: Sysctls) -> Self {
        MiniTable {
            cfg,
            ..MiniTable::default()
        }
    }

    /// A lookup-only table holding `conns` (they never expire).
    pub fn with(conns: Vec<Conn>) -> Self {
        let mut table = MiniTable::default();
        for conn in conns {
            table.insert(conn);
        }
        table
    }

    pub fn insert(&mut self, conn: Conn) -> ConnId {
        let id = ConnId(self.conns.len() as u32);
        self.index.insert(
            (conn.family, conn.proto, conn.orig, conn.zone),
            (id, ORIGINAL),
        );
        self.index.insert(
            (conn.family, conn.proto, conn.reply, conn.zone),
            (id, REPLY),
        );
        self.conns.push(conn);
        self.alive.push(true);
        id
    }

    pub fn count(&self) -> usize {
        self.alive.iter().filter(|&&alive| alive).count()
    }

    pub fn get(&self, id: ConnId) -> &Conn {
        &self.conns[id.0 as usize]
    }

    fn remove(&mut self, id: ConnId) {
        let conn = &self.conns[id.0 as usize];
        self.index
            .remove(&(conn.family, conn.proto, conn.orig, conn.zone));
        self.index
            .remove(&(conn.family, conn.proto, conn.reply, conn.zone));
        self.alive[id.0 as usize] = false;
    }

    /// One forwarded packet: classification at PREROUTING, then confirmation.
    pub fn step(&mut self, built: &Built, now: f64) -> CtResult {
        let pkt = built.packet();
        self.now = Some(now);
        let cfg = self.cfg.clone();
        if let Some(err) = &pkt.error {
            return CtResult::none(CT_INVALID, format!("malformed: {err}").into());
        }
        if pkt.is_later_fragment() {
            return CtResult::none(
                CT_INVALID,
                "a non-first fragment reached conntrack unreassembled".into(),
            );
        }
        let icmp_like = pkt.proto == PROTO_ICMP || pkt.proto == PROTO_ICMPV6;
        if icmp_like {
            match proto_icmp::error_handler(&pkt, &cfg, true, 0, self) {
                IcmpErrorOutcome::NotAnError => {}
                IcmpErrorOutcome::Related {
                    conn,
                    direction,
                    reason,
                } => {
                    let ctinfo = if direction == REPLY {
                        CT_RELATED_REPLY
                    } else {
                        CT_RELATED
                    };
                    return CtResult {
                        ctinfo,
                        conn: Some(conn),
                        reason,
                    };
                }
                IcmpErrorOutcome::Untracked(reason) => return CtResult::none(CT_UNTRACKED, reason),
                IcmpErrorOutcome::Invalid(reason) => return CtResult::none(CT_INVALID, reason),
            }
        }
        let error = if icmp_like {
            proto_icmp::error(&pkt, &cfg, true)
        } else if pkt.proto == PROTO_SCTP {
            proto_sctp::error(&pkt, &cfg, true)
        } else {
            None
        };
        if let Some(reason) = error {
            return CtResult::none(CT_INVALID, reason);
        }
        let tuple = Tuple::new(pkt.src, pkt.dst, pkt.sport, pkt.dport);
        let found = self.lookup(pkt.family, pkt.proto, &tuple, 0);
        let (mut conn, direction, existing) = match found {
            Some((id, direction)) => (self.get(id).clone(), direction, Some(id)),
            None => {
                let reply = if icmp_like {
                    proto_icmp::invert(pkt.family, &tuple)
                } else {
                    Some(Tuple::new(pkt.dst, pkt.src, pkt.dport, pkt.sport))
                };
                let Some(reply) = reply else {
                    return CtResult::none(CT_INVALID, "no reply type".into());
                };
                let mut conn = Conn::new(pkt.family, pkt.proto, 0, tuple, reply, now);
                let made = if icmp_like {
                    proto_icmp::new(&mut conn, &pkt, &cfg)
                } else if pkt.proto == PROTO_SCTP {
                    proto_sctp::new(&mut conn, &pkt, &cfg)
                } else {
                    Ok(())
                };
                if let Err(reason) = made {
                    return CtResult::none(CT_INVALID, reason);
                }
                (conn, ORIGINAL, None)
            }
        };
        let ctinfo = if direction == REPLY {
            CT_ESTABLISHED_REPLY
        } else if conn.status & IPS_SEEN_REPLY != 0 {
            CT_ESTABLISHED
        } else if conn.status & IPS_EXPECTED != 0 {
            CT_RELATED
        } else {
            CT_NEW
        };
        let (action, reason) = if icmp_like {
            proto_icmp::packet(&mut conn, &pkt, direction, ctinfo, now, &cfg)
        } else if pkt.proto == PROTO_SCTP {
            proto_sctp::packet(&mut conn, &pkt, direction, ctinfo, now, &cfg)
        } else {
            conn.set_timeout(now, 30.0);
            (Action::Accept, "udp".into())
        };
        if action == Action::Invalid {
            // The tracker may have learnt something before refusing.
            if let Some(id) = existing {
                self.conns[id.0 as usize] = conn;
            }
            return CtResult::none(CT_INVALID, reason);
        }
        assert_eq!(action, Action::Accept, "{reason}");
        if direction == REPLY {
            conn.status |= IPS_SEEN_REPLY;
        }
        let id = match existing {
            Some(id) => {
                self.conns[id.0 as usize] = conn;
                id
            }
            None => {
                conn.status |= IPS_CONFIRMED;
                self.insert(conn)
            }
        };
        CtResult {
            ctinfo,
            conn: Some(id),
            reason,
        }
    }
}

impl ConnLookup for MiniTable {
    fn lookup(&mut self, family: u8, proto: u8, tuple: &Tuple, zone: u16) -> Option<(ConnId, u8)> {
        let (id, direction) = *self.index.get(&(family, proto, *tuple, zone))?;
        if let Some(now) = self.now {
            if self.get(id).expires <= now {
                self.remove(id);
                return None;
            }
        }
        Some((id, direction))
    }

    fn conn(&self, id: ConnId) -> &Conn {
        self.get(id)
    }
}

/// A UDP entry CLIENT:1091 → SERVER:53 (or the given addresses).
pub fn udp_conn(src: u128, dst: u128, family: u8) -> Conn {
    Conn::new(
        family,
        17,
        0,
        Tuple::new(src, dst, 1091, 53),
        Tuple::new(dst, src, 53, 1091),
        0.0,
    )
}

pub fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}
