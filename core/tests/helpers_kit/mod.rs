//! A small host for the helper and expectation tests: real IPv4/IPv6 +
//! TCP/UDP bytes with correct checksums, and a minimal connection table
//! (lookup by tuple, NEW / ESTABLISHED / RELATED, confirm, discard, destroy)
//! standing in for the conntrack core, with raw-table `CT --helper` rules
//! and no filter rules.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::IpAddr;

use _core::config::{HelperParams, Sysctls};
use _core::conntrack::conn::*;
use _core::conntrack::expect::{master_usable, proc_expect_line, ExpectationTable};
use _core::helpers::common::HelperEnv;
use _core::helpers::{assign_helper, run_helper};
use _core::nat::NatRng;
use _core::packet::{Packet, PROTO_TCP, PROTO_UDP};

pub const C4: &str = "10.77.0.1";
pub const S4: &str = "10.77.0.2";
pub const C6: &str = "fd77::1";
pub const S6: &str = "fd77::2";

pub fn ip(text: &str) -> u128 {
    match text.parse::<IpAddr>().expect("address") {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

pub fn family_of(text: &str) -> u8 {
    if text.contains(':') {
        6
    } else {
        4
    }
}

fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in part.iter() {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(hi) << 8;
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// A whole datagram: IP header + `l4` (whose checksum field at `csum_at`
/// is filled in). Returns the bytes and the L4 offset.
fn datagram(src: &str, dst: &str, proto: u8, mut l4: Vec<u8>, csum_at: usize) -> (Vec<u8>, usize) {
    let (s, d) = (ip(src), ip(dst));
    let len = l4.len();
    if family_of(src) == 4 {
        let (s, d) = ((s as u32).to_be_bytes(), (d as u32).to_be_bytes());
        let pseudo = [&s[..], &d[..], &[0, proto], &(len as u16).to_be_bytes()].concat();
        let c = checksum(&[&pseudo, &l4]);
        l4[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
        let mut h = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
        h[2..4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
        h.extend_from_slice(&s);
        h.extend_from_slice(&d);
        let c = checksum(&[&h]);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.extend_from_slice(&l4);
        (h, 20)
    } else {
        let (s, d) = (s.to_be_bytes(), d.to_be_bytes());
        let pseudo = [
            &s[..],
            &d[..],
            &(len as u32).to_be_bytes(),
            &[0, 0, 0, proto],
        ]
        .concat();
        let c = checksum(&[&pseudo, &l4]);
        l4[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
        let mut h = vec![0x60, 0, 0, 0];
        h.extend_from_slice(&(len as u16).to_be_bytes());
        h.extend_from_slice(&[proto, 64]);
        h.extend_from_slice(&s);
        h.extend_from_slice(&d);
        h.extend_from_slice(&l4);
        (h, 40)
    }
}

/// Raw bytes plus the header fields a decoder would read.
#[derive(Clone, Debug)]
pub struct Raw {
    pub bytes: Vec<u8>,
    pub family: u8,
    pub proto: u8,
    pub src: u128,
    pub dst: u128,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub l4_off: usize,
    pub payload_off: usize,
}

impl Raw {
    pub fn packet(&self, index: u64, ts: f64) -> Packet<'_> {
        let mut p = Packet::new(index, ts, &self.bytes, self.family);
        p.src = self.src;
        p.dst = self.dst;
        p.proto = self.proto;
        p.sport = self.sport;
        p.dport = self.dport;
        p.seq = self.seq;
        p.ack = self.ack;
        p.tcp_flags = self.flags;
        p.l4_off = self.l4_off;
        p.payload_off = self.payload_off;
        p
    }
}

fn flag_bits(flags: &str) -> u8 {
    flags.chars().fold(0, |acc, c| {
        acc | match c {
            'F' => 0x01,
            'S' => 0x02,
            'R' => 0x04,
            'P' => 0x08,
            'A' => 0x10,
            _ => 0,
        }
    })
}

#[allow(clippy::too_many_arguments)]
pub fn tcp(
    src: &str,
    dst: &str,
    sport: u16,
    dport: u16,
    flags: &str,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> Raw {
    let bits = flag_bits(flags);
    let mut l4 = Vec::with_capacity(20 + payload.len());
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&dport.to_be_bytes());
    l4.extend_from_slice(&seq.to_be_bytes());
    l4.extend_from_slice(&ack.to_be_bytes());
    l4.extend_from_slice(&[0x50, bits, 0xFF, 0xFF, 0, 0, 0, 0]);
    l4.extend_from_slice(payload);
    let (bytes, l4_off) = datagram(src, dst, PROTO_TCP, l4, 16);
    Raw {
        bytes,
        family: family_of(src),
        proto: PROTO_TCP,
        src: ip(src),
        dst: ip(dst),
        sport,
        dport,
        seq,
        ack,
        flags: bits,
        l4_off,
        payload_off: l4_off + 20,
    }
}

pub fn syn(src: &str, dst: &str, sport: u16, dport: u16) -> Raw {
    tcp(src, dst, sport, dport, "S", 0, 0, b"")
}

pub fn udp(src: &str, dst: &str, sport: u16, dport: u16, payload: &[u8]) -> Raw {
    let mut l4 = Vec::with_capacity(8 + payload.len());
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&dport.to_be_bytes());
    l4.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    l4.extend_from_slice(&[0, 0]);
    l4.extend_from_slice(payload);
    let (bytes, l4_off) = datagram(src, dst, PROTO_UDP, l4, 6);
    Raw {
        bytes,
        family: family_of(src),
        proto: PROTO_UDP,
        src: ip(src),
        dst: ip(dst),
        sport,
        dport,
        seq: 0,
        ack: 0,
        flags: 0,
        l4_off,
        payload_off: l4_off + 8,
    }
}

/// What happened to one packet.
#[derive(Clone, Debug)]
pub struct Seen {
    pub state: &'static str,
    pub accepted: bool,
    pub reason: String,
    pub id: Option<ConnId>,
}

type Key = (u8, u8, u16, Tuple);

/// conntrack + helpers, as a host whose only rules are raw-table CT --helper rules.
/// The kit's entries as the expectation table's hooks read masters.
struct ConnsView<'a>(&'a [Option<Conn>]);

impl _core::conntrack::l4proto::ConnView for ConnsView<'_> {
    fn get_conn(&self, id: ConnId) -> Option<&Conn> {
        self.0.get(id.0 as usize).and_then(Option::as_ref)
    }
}

pub struct Machine {
    pub cfg: Sysctls,
    pub exp: ExpectationTable,
    pub rules: HashMap<(u8, u16), &'static str>,
    pub index: u64,
    pub events: Vec<(&'static str, u16)>,
    pub conns: Vec<Option<Conn>>,
    free: Vec<u32>,
    by_tuple: HashMap<Key, (ConnId, u8)>,
    confirmed: u32,
    /// Judge masters as the table does without the core's view (the
    /// `ExpectHooks` path).
    pub use_hooks: bool,
    pub rng: NatRng,
}

impl Default for Machine {
    fn default() -> Self {
        Machine::new(Sysctls::default(), HelperParams::default())
    }
}

impl Machine {
    /// What a helper reads and writes besides its connection.
    fn helper_env(&mut self, now: f64) -> HelperEnv<'_> {
        HelperEnv {
            table: &mut self.exp,
            now,
            expect_max: self.cfg.nf_conntrack_expect_max,
            rng: &mut self.rng,
        }
    }

    pub fn new(cfg: Sysctls, params: HelperParams) -> Self {
        let mut exp = ExpectationTable::new(params);
        exp.set_events(true);
        let rules = HashMap::from([
            ((PROTO_TCP, 21), "ftp"),
            ((PROTO_TCP, 6667), "irc"),
            ((PROTO_UDP, 69), "tftp"),
            ((PROTO_UDP, 10080), "amanda"),
        ]);
        Machine {
            rng: NatRng::new(0),
            cfg,
            exp,
            rules,
            index: 0,
            events: Vec::new(),
            conns: Vec::new(),
            free: Vec::new(),
            by_tuple: HashMap::new(),
            confirmed: 0,
            use_hooks: false,
        }
    }

    pub fn conn(&self, id: ConnId) -> &Conn {
        self.conns[id.0 as usize].as_ref().expect("live entry")
    }

    pub fn conn_mut(&mut self, id: ConnId) -> &mut Conn {
        self.conns[id.0 as usize].as_mut().expect("live entry")
    }

    pub fn count(&self) -> usize {
        self.conns.iter().filter(|c| c.is_some()).count()
    }

    fn drain_events(&mut self) {
        for e in self.exp.take_events() {
            self.events.push((e.kind.name(), e.dport));
        }
    }

    fn reserve(&mut self) -> ConnId {
        match self.free.pop() {
            Some(slot) => ConnId(slot),
            None => {
                self.conns.push(None);
                ConnId((self.conns.len() - 1) as u32)
            }
        }
    }

    fn key(conn: &Conn, t: &Tuple) -> Key {
        (conn.family, conn.proto, conn.zone, *t)
    }

    pub fn destroy(&mut self, id: ConnId, now: f64) {
        if let Some(conn) = self.conns[id.0 as usize].take() {
            self.by_tuple.remove(&Self::key(&conn, &conn.orig));
            self.by_tuple.remove(&Self::key(&conn, &conn.reply));
            self.free.push(id.0);
        }
        self.exp.master_destroyed(id, now);
        self.drain_events();
    }

    /// Drop every entry whose time is up at `now`.
    pub fn expire(&mut self, now: f64) {
        let dead: Vec<ConnId> = (0..self.conns.len())
            .filter(|&i| self.conns[i].as_ref().is_some_and(|c| c.expired(now)))
            .map(|i| ConnId(i as u32))
            .collect();
        for id in dead {
            let when = self.conn(id).expires;
            self.destroy(id, when);
        }
    }

    fn timeout(&self, conn: &Conn) -> f64 {
        let seen = conn.status & IPS_SEEN_REPLY != 0;
        (if conn.proto == PROTO_UDP {
            self.cfg.nf_conntrack_udp_timeout
        } else if seen {
            self.cfg.nf_conntrack_tcp_timeout_established
        } else {
            self.cfg.nf_conntrack_tcp_timeout_syn_sent
        }) as f64
    }

    pub fn send(&mut self, raw: &Raw, now: f64) -> Seen {
        self.send_with(raw, now, false)
    }

    /// One datagram through conntrack, the filter and the confirm step.
    pub fn send_with(&mut self, raw: &Raw, now: f64, filter_drops: bool) -> Seen {
        let pkt = raw.packet(self.index, now);
        self.index += 1;
        let tuple = Tuple::new(pkt.src, pkt.dst, pkt.sport, pkt.dport);
        let key = (pkt.family, pkt.proto, 0u16, tuple);
        let mut found = self.by_tuple.get(&key).copied();
        if let Some((id, _)) = found {
            if self.conn(id).expired(now) {
                let when = self.conn(id).expires;
                self.destroy(id, when);
                found = None;
            }
        }
        let seen = if let Some((id, dir)) = found {
            let mut conn = self.conns[id.0 as usize].take().expect("live");
            let ctinfo = if dir == REPLY {
                conn.status |= IPS_SEEN_REPLY;
                CT_ESTABLISHED_REPLY
            } else if conn.status & IPS_SEEN_REPLY != 0 {
                CT_ESTABLISHED
            } else if conn.status & IPS_EXPECTED != 0 {
                CT_RELATED
            } else {
                CT_NEW
            };
            let t = self.timeout(&conn);
            conn.set_timeout(now, t);
            let verdict = run_helper(&mut conn, id, ctinfo, &pkt, &mut self.helper_env(now));
            self.conns[id.0 as usize] = Some(conn);
            Seen {
                state: ctstate_name(ctinfo),
                accepted: verdict.accept,
                reason: verdict.reason.into_owned(),
                id: Some(id),
            }
        } else {
            let id = self.reserve();
            let reply = Tuple::new(pkt.dst, pkt.src, pkt.dport, pkt.sport);
            let mut conn = Conn::new(pkt.family, pkt.proto, 0, tuple, reply, now);
            conn.first_packet = pkt.index;
            let master = if self.use_hooks {
                let view = ConnsView(&self.conns);
                // A stream that does not record: the events stay in the
                // expectation table, where `drain_events` reads them.
                let mut stream = _core::conntrack::events::EventLog::new(false);
                _core::conntrack::l4proto::ExpectHooks::match_new(
                    &mut self.exp,
                    id,
                    &conn,
                    pkt.index,
                    now,
                    &view,
                    &mut stream,
                )
            } else {
                let conns = &self.conns;
                let usable = |m: ConnId| {
                    Some(
                        conns
                            .get(m.0 as usize)
                            .and_then(|c| c.as_ref())
                            .is_some_and(master_usable),
                    )
                };
                self.exp.find_new(Some(id), &conn, pkt.index, now, &usable)
            };
            let mut ctinfo = CT_NEW;
            if let Some(m) = master {
                conn.master = Some(m);
                conn.status |= IPS_EXPECTED;
                conn.mark = self.conn(m).mark;
                ctinfo = CT_RELATED;
            }
            let t = self.timeout(&conn);
            conn.set_timeout(now, t);
            let rule = self.rules.get(&(pkt.proto, pkt.dport)).copied();
            assign_helper(&mut conn, rule, false);
            let state = ctstate_name(ctinfo);
            if filter_drops {
                self.free.push(id.0);
                self.exp.master_destroyed(id, now);
                self.drain_events();
                return Seen {
                    state,
                    accepted: false,
                    reason: "dropped by a filter rule".into(),
                    id: None,
                };
            }
            let verdict = run_helper(&mut conn, id, ctinfo, &pkt, &mut self.helper_env(now));
            if !verdict.accept {
                self.free.push(id.0);
                self.exp.master_destroyed(id, now);
                self.drain_events();
                return Seen {
                    state,
                    accepted: false,
                    reason: verdict.reason.into_owned(),
                    id: None,
                };
            }
            self.confirmed += 1;
            conn.id = self.confirmed;
            conn.status |= IPS_CONFIRMED;
            self.by_tuple
                .insert(Self::key(&conn, &conn.orig), (id, ORIGINAL));
            self.by_tuple
                .insert(Self::key(&conn, &conn.reply), (id, REPLY));
            self.conns[id.0 as usize] = Some(conn);
            if !self.use_hooks {
                // The core's view judges masters; nothing to tell the table.
            } else {
                let conn_id = self.confirmed;
                self.exp.master_confirmed(id, conn_id);
            }
            Seen {
                state,
                accepted: verdict.accept,
                reason: verdict.reason.into_owned(),
                id: Some(id),
            }
        };
        self.drain_events();
        seen
    }

    pub fn listing(&self, now: f64) -> Vec<String> {
        let mut lines: Vec<String> = self
            .exp
            .live(now)
            .into_iter()
            .map(|e| proc_expect_line(e, now))
            .collect();
        lines.sort();
        lines
    }

    pub fn dports(&self, now: f64) -> Vec<u16> {
        self.exp.live(now).iter().map(|e| e.dport).collect()
    }
}

/// One TCP connection between two endpoints, with consistent sequence numbers.
pub struct Tcp {
    pub c: &'static str,
    pub s: &'static str,
    pub cport: u16,
    pub sport: u16,
    pub cseq: u32,
    pub sseq: u32,
}

impl Tcp {
    pub fn new(c: &'static str, s: &'static str, cport: u16, sport: u16) -> Self {
        Tcp {
            c,
            s,
            cport,
            sport,
            cseq: 1000,
            sseq: 50000,
        }
    }

    pub fn open(&mut self, b: &mut Machine, now: f64) -> Vec<Seen> {
        let syn = b.send(
            &tcp(
                self.c,
                self.s,
                self.cport,
                self.sport,
                "S",
                self.cseq - 1,
                0,
                b"",
            ),
            now,
        );
        let synack = b.send(
            &tcp(
                self.s,
                self.c,
                self.sport,
                self.cport,
                "SA",
                self.sseq - 1,
                self.cseq,
                b"",
            ),
            now,
        );
        let ack = self.client(b, b"", now);
        vec![syn, synack, ack]
    }

    pub fn client_at(&mut self, b: &mut Machine, data: &[u8], now: f64, advance: bool) -> Seen {
        let flags = if data.is_empty() { "A" } else { "PA" };
        let seen = b.send(
            &tcp(
                self.c, self.s, self.cport, self.sport, flags, self.cseq, self.sseq, data,
            ),
            now,
        );
        if advance {
            self.cseq = self.cseq.wrapping_add(data.len() as u32);
        }
        seen
    }

    pub fn client(&mut self, b: &mut Machine, data: &[u8], now: f64) -> Seen {
        self.client_at(b, data, now, true)
    }

    pub fn server_at(&mut self, b: &mut Machine, data: &[u8], now: f64, advance: bool) -> Seen {
        let flags = if data.is_empty() { "A" } else { "PA" };
        let seen = b.send(
            &tcp(
                self.s, self.c, self.sport, self.cport, flags, self.sseq, self.cseq, data,
            ),
            now,
        );
        if advance {
            self.sseq = self.sseq.wrapping_add(data.len() as u32);
        }
        seen
    }

    pub fn server(&mut self, b: &mut Machine, data: &[u8], now: f64) -> Seen {
        self.server_at(b, data, now, true)
    }
}

/// An FTP control connection whose client announced `port_cmd` after a first line.
pub fn ftp_with_port(b: &mut Machine, now: f64, port_cmd: &[u8], cport: u16) -> Tcp {
    let mut ctl = Tcp::new(C4, S4, cport, 21);
    ctl.open(b, now);
    ctl.client(b, b"USER a\r\n", now);
    ctl.client(b, port_cmd, now);
    ctl
}

pub const PORT_40000: &[u8] = b"PORT 10,77,0,1,156,64\r\n";

pub fn data_syn(b: &mut Machine, now: f64, sport: u16, dport: u16) -> Seen {
    b.send(&tcp(S4, C4, sport, dport, "S", 7000, 0, b""), now)
}
