//! Tests of the defragmenter, with a small builder of fragment bytes and a
//! small decoder of its own that fills a `Packet` as `decode::decode_datagram`
//! does for the fields the defragmenter reads.

mod behaviour;
mod flood;
mod fuzz;
mod reference_cases;

use std::sync::Arc;

use super::{DefragOutcome, DefragResult, Defragmenter, Reassembled};
use crate::config::Sysctls;
use crate::packet::{DecodeError, FragmentInfo, Layer, Packet};

pub const SRC4: [u8; 4] = [192, 0, 2, 1];
pub const DST4: [u8; 4] = [192, 0, 2, 2];
pub const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const DST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

pub fn csum(data: &[u8]) -> u16 {
    let mut total: u64 = data
        .chunks(2)
        .map(|c| u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while total >> 16 != 0 {
        total = (total & 0xFFFF) + (total >> 16);
    }
    !(total as u16)
}

/// An ICMP echo request of `size` bytes with a correct checksum.
pub fn echo4(ident: u16, size: usize) -> Vec<u8> {
    let mut msg = vec![8, 0, 0, 0];
    msg.extend_from_slice(&ident.to_be_bytes());
    msg.extend_from_slice(&1u16.to_be_bytes());
    msg.extend((0..size - 8).map(|i| (i * 7) as u8));
    let sum = csum(&msg);
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
    msg
}

/// An ICMPv6 echo request of `size` bytes from SRC6 to DST6.
pub fn echo6(ident: u16, size: usize) -> Vec<u8> {
    let mut msg = vec![128, 0, 0, 0];
    msg.extend_from_slice(&ident.to_be_bytes());
    msg.extend_from_slice(&1u16.to_be_bytes());
    msg.extend((0..size - 8).map(|i| (i * 5) as u8));
    let sum = csum(&[pseudo6(msg.len(), 58), msg.clone()].concat());
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
    msg
}

pub fn pseudo6(len: usize, proto: u8) -> Vec<u8> {
    let mut p = [SRC6, DST6].concat();
    p.extend_from_slice(&(len as u32).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, proto]);
    p
}

/// IPv4 header options of a fragment.
#[derive(Clone, Debug)]
pub struct V4 {
    pub ttl: u8,
    pub tos: u8,
    pub df: bool,
    pub proto: u8,
    pub options: Vec<u8>,
    pub src: [u8; 4],
}

impl Default for V4 {
    fn default() -> Self {
        V4 {
            ttl: 64,
            tos: 0,
            df: false,
            proto: 1,
            options: Vec::new(),
            src: SRC4,
        }
    }
}

pub fn frag4(part: &[u8], ipid: u16, off: u16, more: bool) -> Vec<u8> {
    frag4_with(part, ipid, off, more, &V4::default())
}

pub fn frag4_with(part: &[u8], ipid: u16, off: u16, more: bool, o: &V4) -> Vec<u8> {
    let ihl = 5 + o.options.len() / 4;
    let fo = (off >> 3) | if more { 0x2000 } else { 0 } | if o.df { 0x4000 } else { 0 };
    let mut hdr = vec![0x40 | ihl as u8, o.tos];
    hdr.extend_from_slice(&((ihl * 4 + part.len()) as u16).to_be_bytes());
    hdr.extend_from_slice(&ipid.to_be_bytes());
    hdr.extend_from_slice(&fo.to_be_bytes());
    hdr.extend_from_slice(&[o.ttl, o.proto, 0, 0]);
    hdr.extend_from_slice(&o.src);
    hdr.extend_from_slice(&DST4);
    hdr.extend_from_slice(&o.options);
    let sum = csum(&hdr);
    hdr[10..12].copy_from_slice(&sum.to_be_bytes());
    hdr.extend_from_slice(part);
    hdr
}

/// IPv6 fragment options: the fragment header's next header, the traffic
/// class and extension headers placed before the fragment header.
#[derive(Clone, Debug)]
pub struct V6 {
    pub nexthdr: u8,
    pub tclass: u8,
    pub before: Vec<u8>,
}

impl Default for V6 {
    fn default() -> Self {
        V6 {
            nexthdr: 58,
            tclass: 0,
            before: Vec::new(),
        }
    }
}

pub fn frag6(part: &[u8], ident: u32, off: u16, more: bool) -> Vec<u8> {
    frag6_with(part, ident, off, more, &V6::default())
}

/// IPv6 + `before` (which must chain to 44) + fragment header + part.
pub fn frag6_with(part: &[u8], ident: u32, off: u16, more: bool, o: &V6) -> Vec<u8> {
    let mut payload = o.before.clone();
    payload.extend_from_slice(&[o.nexthdr, 0]);
    payload.extend_from_slice(&(off | u16::from(more)).to_be_bytes());
    payload.extend_from_slice(&ident.to_be_bytes());
    payload.extend_from_slice(part);
    let first_nh = if o.before.is_empty() { 44 } else { 60 };
    let mut out = ((6u32 << 28) | (u32::from(o.tclass) << 20))
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(&[first_nh, 64]);
    out.extend_from_slice(&SRC6);
    out.extend_from_slice(&DST6);
    out.extend_from_slice(&payload);
    out
}

fn be16(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

/// Decode a bare datagram as `statewall.decode.decode_datagram` does, for the
/// fields the defragmenter and these tests read (addresses, protocol, TTL,
/// TOS, identification, fragment info, layer-4 offset, ICMP type and id, and
/// errors by layer).
pub fn decode(data: &[u8], index: u64, ts: f64) -> Packet<'_> {
    let version = data.first().map_or(0, |b| b >> 4);
    let mut pkt = Packet::new(
        index,
        ts,
        data,
        if version == 4 || version == 6 {
            version
        } else {
            0
        },
    );
    pkt.ip_len = 0;
    match version {
        4 => decode4(&mut pkt, data),
        6 => decode6(&mut pkt, data),
        _ => pkt.error = Some(Box::new(DecodeError::new(Layer::Ip, 0, "not IP"))),
    }
    pkt
}

fn fail(pkt: &mut Packet<'_>, layer: Layer) {
    pkt.error = Some(Box::new(DecodeError::new(layer, 0, "bad")));
}

fn decode4<'a>(pkt: &mut Packet<'a>, data: &'a [u8]) {
    if data.len() < 20 {
        return fail(pkt, Layer::Ipv4);
    }
    let ihl = usize::from(data[0] & 15) << 2;
    let tot_len = usize::from(be16(data, 2));
    let frag = be16(data, 6);
    pkt.tos = data[1];
    pkt.ip_id = u32::from(be16(data, 4));
    pkt.ip_len = tot_len as u32;
    pkt.ttl = data[8];
    pkt.proto = data[9];
    pkt.src = u128::from(u32::from_be_bytes([data[12], data[13], data[14], data[15]]));
    pkt.dst = u128::from(u32::from_be_bytes([data[16], data[17], data[18], data[19]]));
    if ihl < 20 || ihl > data.len() {
        return fail(pkt, Layer::Ipv4);
    }
    let words: u64 = data[..ihl].chunks(2).map(|c| u64::from(be16(c, 0))).sum();
    if words % 0xFFFF != 0 {
        return fail(pkt, Layer::Ipv4);
    }
    if tot_len > data.len() || tot_len < ihl {
        return fail(pkt, Layer::Ipv4);
    }
    let data = &data[..tot_len];
    pkt.data = data;
    pkt.l4_off = ihl;
    if frag & 0x3FFF != 0 {
        pkt.fragment = Some(FragmentInfo {
            ident: u32::from(be16(data, 4)),
            offset: u32::from(frag & 0x1FFF) << 3,
            more: frag & 0x2000 != 0,
            next_proto: pkt.proto,
            unfrag_len: ihl as u32,
        });
        if frag & 0x1FFF != 0 {
            pkt.payload_off = ihl;
            return;
        }
    }
    l4(pkt, data, ihl);
}

fn decode6<'a>(pkt: &mut Packet<'a>, data: &'a [u8]) {
    if data.len() < 40 {
        return fail(pkt, Layer::Ipv6);
    }
    let plen = usize::from(be16(data, 4));
    let mut nexthdr = data[6];
    pkt.src = u128::from_be_bytes(data[8..24].try_into().unwrap());
    pkt.dst = u128::from_be_bytes(data[24..40].try_into().unwrap());
    pkt.tos = ((u32::from_be_bytes([data[0], data[1], data[2], data[3]]) >> 20) & 0xFF) as u8;
    pkt.ttl = data[7];
    pkt.ip_len = plen as u32 + 40;
    if pkt.src >> 120 == 0xFF || (plen == 0 && nexthdr == 0) || plen + 40 > data.len() {
        return fail(pkt, Layer::Ipv6);
    }
    let data = &data[..40 + plen];
    pkt.data = data;
    let mut pos = 40;
    let size = data.len();
    while matches!(nexthdr, 0 | 43 | 44 | 51 | 59 | 60) {
        if nexthdr == 59 {
            pkt.proto = 59;
            pkt.l4_off = pos;
            pkt.payload_off = pos;
            return fail(pkt, Layer::Ipv6Ext);
        }
        if pos + 2 > size {
            break;
        }
        let hdrlen;
        if nexthdr == 44 {
            if pos + 8 > size {
                break;
            }
            let frag = be16(data, pos + 2);
            if pkt.fragment.is_none() {
                let ident = u32::from_be_bytes(data[pos + 4..pos + 8].try_into().unwrap());
                pkt.ip_id = ident;
                pkt.fragment = Some(FragmentInfo {
                    ident,
                    offset: u32::from(frag & 0xFFF8),
                    more: frag & 1 != 0,
                    next_proto: data[pos],
                    unfrag_len: pos as u32,
                });
            }
            if frag & 0xFFF8 != 0 {
                pkt.proto = data[pos];
                pkt.l4_off = pos + 8;
                pkt.payload_off = pos + 8;
                return;
            }
            hdrlen = 8;
        } else if nexthdr == 51 {
            hdrlen = (usize::from(data[pos + 1]) + 2) << 2;
        } else {
            hdrlen = (usize::from(data[pos + 1]) + 1) << 3;
        }
        nexthdr = data[pos];
        pos += hdrlen;
    }
    pkt.proto = nexthdr;
    if pos > size || matches!(nexthdr, 0 | 43 | 44 | 51 | 59 | 60) {
        pkt.l4_off = size;
        pkt.payload_off = size;
        return fail(pkt, Layer::Ipv6Ext);
    }
    l4(pkt, data, pos);
}

/// The part of `decode_l4` the tests read: offsets, ICMP fields, short headers.
fn l4(pkt: &mut Packet<'_>, data: &[u8], off: usize) {
    pkt.l4_off = off;
    pkt.payload_off = off;
    let avail = data.len() - off;
    let (need, layer) = match pkt.proto {
        6 => (20, Layer::Tcp),
        17 => (8, Layer::Udp),
        1 => (8, Layer::Icmp),
        58 => (8, Layer::Icmpv6),
        _ => return,
    };
    if avail < need {
        return fail(pkt, layer);
    }
    if matches!(pkt.proto, 1 | 58) {
        pkt.icmp_type = data[off];
        pkt.icmp_code = data[off + 1];
        pkt.icmp_id = be16(data, off + 4);
    }
}

/// Push datagrams with increasing indices; remember every result.
pub struct Feed {
    pub defrag: Defragmenter,
    pub index: u64,
}

impl Feed {
    pub fn new() -> Self {
        Feed::with(Sysctls::default())
    }

    pub fn with(cfg: Sysctls) -> Self {
        Feed {
            defrag: Defragmenter::new(&cfg),
            index: 0,
        }
    }

    pub fn push(&mut self, datagram: &[u8]) -> DefragResult {
        self.push_at(datagram, 0.0, None)
    }

    pub fn push_at(&mut self, datagram: &[u8], now: f64, iface: Option<&str>) -> DefragResult {
        self.index += 1;
        let mut pkt = decode(datagram, self.index, now);
        pkt.iface_in = iface.map(Arc::from);
        self.defrag.push(&pkt, now, 0)
    }

    pub fn run(&mut self, datagrams: &[Vec<u8>]) -> Vec<&'static str> {
        datagrams.iter().map(|d| self.push(d).kind()).collect()
    }
}

/// The reassembled datagram of a "complete" result.
pub fn whole(result: DefragResult) -> Reassembled {
    match result.outcome {
        DefragOutcome::Complete(done) => *done,
        other => panic!("not complete: {other:?}"),
    }
}
