//! Test helpers for the TCP tracker: real IPv4/IPv6 datagrams carrying one
//! TCP segment (checksums computed), decoded into `Packet` the way the
//! decoder would, and `Flow`, which plays the conntrack core's part for one
//! connection (new() then packet() on a miss, ctinfo from direction and
//! SEEN_REPLY, SEEN_REPLY set after an accepted reply, Repeat and IPS_DYING
//! honoured).

#![allow(dead_code)]

use _core::config::Sysctls;
use _core::conntrack::conn::{
    ctstate_name, Conn, Tuple, CT_ESTABLISHED, CT_ESTABLISHED_REPLY, CT_NEW, IPS_ASSURED,
    IPS_DYING, IPS_SEEN_REPLY, ORIGINAL, REPLY,
};
use _core::conntrack::l4proto::Action;
use _core::conntrack::proto_tcp as tcp;
use _core::packet::{Packet, TcpOptions, ACK, CWR, ECE, FIN, PROTO_TCP, PSH, RST, SYN, URG};

pub const CLIENT: u128 = 0x0A00_0001; // 10.0.0.1
pub const SERVER: u128 = 0x0A00_0002; // 10.0.0.2
pub const CPORT: u16 = 40000;
pub const SPORT: u16 = 80;
/// The spec's RST observations use these (max acks 201 / 501).
pub const ISN_C: u32 = 100;
pub const ISN_S: u32 = 500;
pub const WIN: u16 = 1000;

pub const SACK_PERM_OPT: &[u8] = b"\x01\x01\x04\x02";

pub fn wscale(shift: u8) -> Vec<u8> {
    vec![1, 3, 3, shift]
}

/// A SACK option (with two leading NOPs) carrying `blocks`.
pub fn sack_option(blocks: &[(u32, u32)]) -> Vec<u8> {
    let mut out = vec![1, 1, 5, (2 + 8 * blocks.len()) as u8];
    for (left, right) in blocks {
        out.extend_from_slice(&left.to_be_bytes());
        out.extend_from_slice(&right.to_be_bytes());
    }
    out
}

/// Scapy-style flag letters.
pub fn flags_of(letters: &str) -> u8 {
    letters
        .chars()
        .map(|letter| match letter {
            'S' => SYN,
            'A' => ACK,
            'F' => FIN,
            'R' => RST,
            'P' => PSH,
            'U' => URG,
            'E' => ECE,
            'C' => CWR,
            other => panic!("no flag letter {other}"),
        })
        .fold(0, |acc, bit| acc | bit)
}

/// The RFC 1071 sum of `data` added to `initial`, not yet folded.
fn sum_words(data: &[u8], initial: u64) -> u64 {
    let mut total = initial;
    for pair in data.chunks(2) {
        let hi = u64::from(pair[0]) << 8;
        let lo = pair.get(1).map_or(0, |&b| u64::from(b));
        total += hi | lo;
    }
    total
}

fn checksum(data: &[u8], initial: u64) -> u16 {
    let mut total = sum_words(data, initial);
    while total > 0xFFFF {
        total = (total & 0xFFFF) + (total >> 16);
    }
    !(total as u16)
}

fn pseudo_sum(family: u8, src: u128, dst: u128, length: usize) -> u64 {
    let mut header = Vec::new();
    if family == 4 {
        header.extend_from_slice(&(src as u32).to_be_bytes());
        header.extend_from_slice(&(dst as u32).to_be_bytes());
        header.extend_from_slice(&[0, PROTO_TCP]);
        header.extend_from_slice(&(length as u16).to_be_bytes());
    } else {
        header.extend_from_slice(&src.to_be_bytes());
        header.extend_from_slice(&dst.to_be_bytes());
        header.extend_from_slice(&(length as u32).to_be_bytes());
        header.extend_from_slice(&[0, 0, 0, PROTO_TCP]);
    }
    sum_words(&header, 0)
}

/// What to build: one TCP segment in an IP datagram.
#[derive(Clone, Debug)]
pub struct Spec {
    pub src: u128,
    pub dst: u128,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub payload: Vec<u8>,
    pub options: Vec<u8>,
    pub family: u8,
    pub doff: Option<u8>,
    pub bad_checksum: bool,
}

impl Spec {
    pub fn new(
        src: u128,
        dst: u128,
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
    ) -> Self {
        Spec {
            src,
            dst,
            sport,
            dport,
            seq,
            ack,
            flags,
            window: WIN,
            payload: Vec::new(),
            options: Vec::new(),
            family: 4,
            doff: None,
            bad_checksum: false,
        }
    }

    pub fn window(mut self, window: u16) -> Self {
        self.window = window;
        self
    }

    pub fn payload(mut self, payload: &[u8]) -> Self {
        self.payload = payload.to_vec();
        self
    }

    /// `len` bytes of `byte`.
    pub fn data(mut self, byte: u8, len: usize) -> Self {
        self.payload = vec![byte; len];
        self
    }

    pub fn options(mut self, options: &[u8]) -> Self {
        self.options = options.to_vec();
        self
    }

    pub fn family(mut self, family: u8) -> Self {
        self.family = family;
        self
    }

    pub fn doff(mut self, doff: u8) -> Self {
        self.doff = Some(doff);
        self
    }

    pub fn bad_checksum(mut self) -> Self {
        self.bad_checksum = true;
        self
    }

    pub fn build(&self) -> Seg {
        let mut options = self.options.clone();
        while options.len() % 4 != 0 {
            options.push(0);
        }
        let header_len = 20 + options.len();
        let offset = self.doff.unwrap_or((header_len / 4) as u8);
        let mut segment = Vec::with_capacity(header_len + self.payload.len());
        segment.extend_from_slice(&self.sport.to_be_bytes());
        segment.extend_from_slice(&self.dport.to_be_bytes());
        segment.extend_from_slice(&self.seq.to_be_bytes());
        segment.extend_from_slice(&self.ack.to_be_bytes());
        segment.push(offset << 4);
        segment.push(self.flags);
        segment.extend_from_slice(&self.window.to_be_bytes());
        segment.extend_from_slice(&[0, 0, 0, 0]);
        segment.extend_from_slice(&options);
        segment.extend_from_slice(&self.payload);
        let mut csum = checksum(
            &segment,
            pseudo_sum(self.family, self.src, self.dst, segment.len()),
        );
        if self.bad_checksum {
            csum ^= 0x5555;
        }
        segment[16..18].copy_from_slice(&csum.to_be_bytes());
        let mut data = Vec::new();
        if self.family == 4 {
            data.extend_from_slice(&[0x45, 0]);
            data.extend_from_slice(&((20 + segment.len()) as u16).to_be_bytes());
            data.extend_from_slice(&[0, 0, 0, 0, 64, PROTO_TCP, 0, 0]);
            data.extend_from_slice(&(self.src as u32).to_be_bytes());
            data.extend_from_slice(&(self.dst as u32).to_be_bytes());
            let ip_sum = checksum(&data, 0);
            data[10..12].copy_from_slice(&ip_sum.to_be_bytes());
        } else {
            data.extend_from_slice(&0x6000_0000u32.to_be_bytes());
            data.extend_from_slice(&(segment.len() as u16).to_be_bytes());
            data.extend_from_slice(&[PROTO_TCP, 64]);
            data.extend_from_slice(&self.src.to_be_bytes());
            data.extend_from_slice(&self.dst.to_be_bytes());
        }
        let l4_off = data.len();
        data.extend_from_slice(&segment);
        let tcp_options = if header_len > 20 {
            Some(Box::new(parse_tcp_options(
                &data,
                l4_off + 20,
                l4_off + header_len,
            )))
        } else {
            None
        };
        Seg {
            data,
            family: self.family,
            src: self.src,
            dst: self.dst,
            l4_off,
            payload_off: l4_off + header_len,
            sport: self.sport,
            dport: self.dport,
            flags: self.flags,
            seq: self.seq,
            ack: self.ack,
            window: self.window,
            tcp_options,
        }
    }
}

/// A segment from the client to the server.
pub fn orig(flags: u8, seq: u32, ack: u32) -> Spec {
    Spec::new(CLIENT, SERVER, CPORT, SPORT, seq, ack, flags)
}

/// A segment from the server to the client.
pub fn reply(flags: u8, seq: u32, ack: u32) -> Spec {
    Spec::new(SERVER, CLIENT, SPORT, CPORT, seq, ack, flags)
}

/// The decoder's summary of the options (as `decode::l4::parse_tcp_options`
/// gives it), written out here for the test packets.
fn parse_tcp_options(data: &[u8], mut pos: usize, end: usize) -> TcpOptions {
    let mut out = TcpOptions::default();
    let u32_at =
        |at: usize| u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
    if end - pos == 12 && data[pos..pos + 4] == [1, 1, 8, 10] {
        out.timestamp = Some((u32_at(pos + 4), u32_at(pos + 8)));
        return out;
    }
    while pos < end {
        let kind = data[pos];
        if kind == 0 {
            break;
        }
        if kind == 1 {
            pos += 1;
            continue;
        }
        if end - pos < 2 {
            break;
        }
        let size = usize::from(data[pos + 1]);
        if size < 2 || size > end - pos {
            break;
        }
        match kind {
            2 if size == 4 => out.mss = Some(u16::from_be_bytes([data[pos + 2], data[pos + 3]])),
            3 if size == 3 => out.wscale = Some(data[pos + 2]),
            4 if size == 2 => out.sack_perm = true,
            5 if out.sack_blocks.is_empty() && size >= 10 && (size - 2) % 8 == 0 => {
                out.sack_blocks = (pos + 2..pos + size)
                    .step_by(8)
                    .map(|p| (u32_at(p), u32_at(p + 4)))
                    .collect();
            }
            8 if size == 10 => out.timestamp = Some((u32_at(pos + 2), u32_at(pos + 6))),
            _ => {}
        }
        pos += size;
    }
    out
}

/// A built datagram and the fields the decoder would have filled in.
#[derive(Clone, Debug)]
pub struct Seg {
    pub data: Vec<u8>,
    pub family: u8,
    pub src: u128,
    pub dst: u128,
    pub l4_off: usize,
    pub payload_off: usize,
    pub sport: u16,
    pub dport: u16,
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub tcp_options: Option<Box<TcpOptions>>,
}

impl Seg {
    pub fn packet(&self) -> Packet<'_> {
        let mut pkt = Packet::new(0, 0.0, &self.data, self.family);
        pkt.src = self.src;
        pkt.dst = self.dst;
        pkt.proto = PROTO_TCP;
        pkt.ttl = 64;
        pkt.l4_off = self.l4_off;
        pkt.payload_off = self.payload_off;
        pkt.sport = self.sport;
        pkt.dport = self.dport;
        pkt.tcp_flags = self.flags;
        pkt.seq = self.seq;
        pkt.ack = self.ack;
        pkt.window = self.window;
        pkt.tcp_options = self.tcp_options.clone();
        pkt
    }
}

/// What the kernel would show for one packet: its ctstate and the entry afterwards.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    pub ctstate: &'static str,
    pub reason: String,
    /// None: no entry left.
    pub state: Option<&'static str>,
    pub timeout: Option<f64>,
    pub assured: bool,
}

/// The conntrack core's part, for one TCP flow between CLIENT:CPORT and SERVER:SPORT.
pub struct Flow {
    pub cfg: Sysctls,
    pub now: f64,
    pub conn: Option<Conn>,
    /// The last entry that accepted a packet (kept even when it died).
    pub last: Option<Conn>,
    /// How many entries were created (tells a reopened entry from the old one).
    pub created: u32,
}

impl Default for Flow {
    fn default() -> Self {
        Flow::new(Sysctls::default())
    }
}

impl Flow {
    pub fn new(cfg: Sysctls) -> Self {
        Flow {
            cfg,
            now: 1000.0,
            conn: None,
            last: None,
            created: 0,
        }
    }

    pub fn with(name: &str, value: u64) -> Self {
        let mut cfg = Sysctls::default();
        cfg.set(name, value).expect("a known sysctl");
        Flow::new(cfg)
    }

    pub fn o(&mut self, flags: u8, seq: u32, ack: u32) -> Seen {
        self.send(orig(flags, seq, ack))
    }

    pub fn r(&mut self, flags: u8, seq: u32, ack: u32) -> Seen {
        self.send(reply(flags, seq, ack))
    }

    pub fn send(&mut self, spec: Spec) -> Seen {
        let seg = spec.build();
        self.feed(&seg.packet(), true)
    }

    pub fn wait(&mut self, seconds: f64) {
        self.now += seconds;
    }

    pub fn feed(&mut self, pkt: &Packet, in_prerouting: bool) -> Seen {
        if let Some(error) = tcp::error(pkt, &self.cfg, in_prerouting) {
            return self.seen("INVALID", error.into_owned());
        }
        for _ in 0..2 {
            if self
                .conn
                .as_ref()
                .is_some_and(|conn| conn.expired(self.now))
            {
                self.conn = None;
            }
            let (mut conn, direction, fresh) = match self.conn.take() {
                None => {
                    let mut conn = Conn::new(
                        pkt.family,
                        PROTO_TCP,
                        0,
                        Tuple::new(pkt.src, pkt.dst, pkt.sport, pkt.dport),
                        Tuple::new(pkt.dst, pkt.src, pkt.dport, pkt.sport),
                        self.now,
                    );
                    if let Err(refused) = tcp::new(&mut conn, pkt, &self.cfg) {
                        return self.seen("INVALID", refused.into_owned());
                    }
                    self.created += 1;
                    (conn, ORIGINAL, true)
                }
                Some(conn) => {
                    let direction = if (pkt.src, pkt.sport) == (conn.orig.src, conn.orig.sport) {
                        ORIGINAL
                    } else {
                        REPLY
                    };
                    (conn, direction, false)
                }
            };
            let ctinfo = if direction == REPLY {
                CT_ESTABLISHED_REPLY
            } else if conn.status & IPS_SEEN_REPLY != 0 {
                CT_ESTABLISHED
            } else {
                CT_NEW
            };
            let (action, reason) =
                tcp::packet(&mut conn, pkt, direction, ctinfo, self.now, &self.cfg);
            match action {
                Action::Repeat => {
                    self.conn = None;
                    continue;
                }
                Action::Invalid => {
                    if !fresh {
                        self.conn = Some(conn);
                    }
                    return self.seen("INVALID", reason.into_owned());
                }
                Action::Accept => {}
                Action::Drop => panic!("TCP never drops"),
            }
            if direction == REPLY {
                conn.status |= IPS_SEEN_REPLY;
            }
            self.last = Some(conn.clone());
            self.conn = if conn.status & IPS_DYING != 0 {
                None
            } else {
                Some(conn)
            };
            return self.seen(ctstate_name(ctinfo), reason.into_owned());
        }
        panic!("reopened twice")
    }

    fn seen(&self, ctstate: &'static str, reason: String) -> Seen {
        match &self.conn {
            None => Seen {
                ctstate,
                reason,
                state: None,
                timeout: None,
                assured: false,
            },
            Some(conn) => Seen {
                ctstate,
                reason,
                state: Some(tcp::state_name(conn)),
                timeout: Some(conn.expires - self.now),
                assured: conn.status & IPS_ASSURED != 0,
            },
        }
    }

    pub fn td(&self) -> &_core::conntrack::tcp_window::TcpData {
        match &self.conn.as_ref().expect("an entry").proto_data {
            _core::conntrack::conn::ProtoData::Tcp(td) => td,
            other => panic!("not TCP data: {other:?}"),
        }
    }
}

pub fn handshake(flow: &mut Flow, syn_opts: &[u8], synack_opts: &[u8]) {
    flow.send(orig(SYN, ISN_C, 0).options(syn_opts));
    flow.send(reply(SYN | ACK, ISN_S, ISN_C + 1).options(synack_opts));
    let seen = flow.o(ACK, ISN_C + 1, ISN_S + 1);
    assert_eq!((seen.state, seen.assured), (Some("ESTABLISHED"), true));
}

/// Handshake, 100 bytes from the client, acked: peer max acks become 201 and 501.
pub fn established_with_data(flow: &mut Flow) {
    handshake(flow, b"", b"");
    flow.send(orig(ACK | PSH, ISN_C + 1, ISN_S + 1).data(b'x', 100));
    flow.r(ACK, ISN_S + 1, ISN_C + 101);
}
