//! Frame builders for the decoder tests: real bytes with correct checksums.
#![allow(dead_code)]

pub const SRC4: [u8; 4] = [192, 0, 2, 1];
pub const DST4: [u8; 4] = [198, 51, 100, 7];
pub const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const DST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
pub const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;

pub fn csum(data: &[u8]) -> u16 {
    let mut total: u32 = 0;
    for pair in data.chunks(2) {
        total += u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
    }
    while total >> 16 != 0 {
        total = (total & 0xFFFF) + (total >> 16);
    }
    !(total as u16)
}

pub struct V4 {
    pub proto: u8,
    pub frag: u16,
    pub ident: u16,
    pub options: Vec<u8>,
    pub ttl: u8,
    pub tos: u8,
    pub tot_len: Option<u16>,
    pub src: [u8; 4],
    pub dst: [u8; 4],
}

impl Default for V4 {
    fn default() -> Self {
        V4 {
            proto: 6,
            frag: 0,
            ident: 0x1234,
            options: Vec::new(),
            ttl: 64,
            tos: 0,
            tot_len: None,
            src: SRC4,
            dst: DST4,
        }
    }
}

pub fn ipv4_with(payload: &[u8], v: V4) -> Vec<u8> {
    let ihl = 5 + v.options.len() / 4;
    let length = v.tot_len.unwrap_or((ihl * 4 + payload.len()) as u16);
    let mut hdr = vec![0x40 | ihl as u8, v.tos];
    hdr.extend_from_slice(&length.to_be_bytes());
    hdr.extend_from_slice(&v.ident.to_be_bytes());
    hdr.extend_from_slice(&v.frag.to_be_bytes());
    hdr.extend_from_slice(&[v.ttl, v.proto, 0, 0]);
    hdr.extend_from_slice(&v.src);
    hdr.extend_from_slice(&v.dst);
    hdr.extend_from_slice(&v.options);
    let sum = csum(&hdr);
    hdr[10..12].copy_from_slice(&sum.to_be_bytes());
    hdr.extend_from_slice(payload);
    hdr
}

pub fn ipv4(payload: &[u8], proto: u8) -> Vec<u8> {
    ipv4_with(
        payload,
        V4 {
            proto,
            ..V4::default()
        },
    )
}

pub struct V6 {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub hlim: u8,
    pub tclass: u8,
    pub plen: Option<u16>,
}

impl Default for V6 {
    fn default() -> Self {
        V6 {
            src: SRC6,
            dst: DST6,
            hlim: 64,
            tclass: 0,
            plen: None,
        }
    }
}

pub fn ipv6_with(payload: &[u8], nexthdr: u8, v: V6) -> Vec<u8> {
    let length = v.plen.unwrap_or(payload.len() as u16);
    let first: u32 = 6 << 28 | u32::from(v.tclass) << 20;
    let mut out = first.to_be_bytes().to_vec();
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&[nexthdr, v.hlim]);
    out.extend_from_slice(&v.src);
    out.extend_from_slice(&v.dst);
    out.extend_from_slice(payload);
    out
}

pub fn ipv6(payload: &[u8], nexthdr: u8) -> Vec<u8> {
    ipv6_with(payload, nexthdr, V6::default())
}

pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub options: Vec<u8>,
    pub data: Vec<u8>,
}

impl Default for Tcp {
    fn default() -> Self {
        Tcp {
            sport: 40000,
            dport: 80,
            flags: SYN,
            seq: 1000,
            ack: 0,
            window: 65535,
            options: Vec::new(),
            data: Vec::new(),
        }
    }
}

pub fn tcp_with(t: Tcp) -> Vec<u8> {
    let doff = (20 + t.options.len()) / 4;
    let mut out = Vec::new();
    out.extend_from_slice(&t.sport.to_be_bytes());
    out.extend_from_slice(&t.dport.to_be_bytes());
    out.extend_from_slice(&t.seq.to_be_bytes());
    out.extend_from_slice(&t.ack.to_be_bytes());
    out.extend_from_slice(&[(doff as u8) << 4, t.flags]);
    out.extend_from_slice(&t.window.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&t.options);
    out.extend_from_slice(&t.data);
    out
}

pub fn tcp() -> Vec<u8> {
    tcp_with(Tcp::default())
}

pub fn udp_with(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&dport.to_be_bytes());
    out.extend_from_slice(&(8 + data.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(data);
    out
}

pub fn udp() -> Vec<u8> {
    udp_with(5353, 53, b"")
}

pub fn ether_with(payload: &[u8], ethertype: u16, dst: [u8; 6], tags: &[u16]) -> Vec<u8> {
    let mut out = dst.to_vec();
    out.extend_from_slice(&MAC_A);
    for tpid in tags {
        out.extend_from_slice(&tpid.to_be_bytes());
        out.extend_from_slice(&100u16.to_be_bytes());
    }
    out.extend_from_slice(&ethertype.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

pub fn ether(payload: &[u8]) -> Vec<u8> {
    ether_with(payload, 0x0800, MAC_B, &[])
}

/// A hop-by-hop/destination/routing header of (body_len8 + 1) * 8 bytes.
pub fn ext(nexthdr: u8, body_len8: u8) -> Vec<u8> {
    let mut out = vec![nexthdr, body_len8];
    out.resize(8 + 8 * usize::from(body_len8), 0);
    out
}

pub fn frag6(nexthdr: u8, offset: u16, more: bool, ident: u32) -> Vec<u8> {
    let mut out = vec![nexthdr, 0];
    out.extend_from_slice(&(offset | u16::from(more)).to_be_bytes());
    out.extend_from_slice(&ident.to_be_bytes());
    out
}

pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}
