//! Packets built byte by byte for the conntrack tests (the real decoder is
//! not needed: the fields conntrack reads are filled in by hand).

// Builders take every header field a test may vary.
#![allow(clippy::too_many_arguments)]

use crate::conntrack::conn::ConnId;
use crate::conntrack::core::{ConntrackTable, CtResult};
use crate::conntrack::l4proto::NoExpectations;
use crate::packet::Packet;

fn fold(mut total: u64) -> u64 {
    while total >> 16 != 0 {
        total = (total & 0xFFFF) + (total >> 16);
    }
    total
}

pub fn sum16(data: &[u8]) -> u64 {
    data.chunks(2)
        .map(|pair| u64::from(pair[0]) << 8 | u64::from(*pair.get(1).unwrap_or(&0)))
        .sum()
}

pub fn pseudo(family: u8, src: u128, dst: u128, proto: u8, length: u32) -> u64 {
    let mut header = Vec::new();
    if family == 4 {
        header.extend_from_slice(&(src as u32).to_be_bytes());
        header.extend_from_slice(&(dst as u32).to_be_bytes());
        header.extend_from_slice(&[0, proto]);
        header.extend_from_slice(&(length as u16).to_be_bytes());
    } else {
        header.extend_from_slice(&src.to_be_bytes());
        header.extend_from_slice(&dst.to_be_bytes());
        header.extend_from_slice(&length.to_be_bytes());
        header.extend_from_slice(&[0, 0, 0, proto]);
    }
    sum16(&header)
}

/// The checksum field value for `covered` seeded with a pseudo-header sum
/// (0 is sent as 0xFFFF, as UDP does).
pub fn checksum(seed: u64, covered: &[u8]) -> u16 {
    let value = !fold(seed + sum16(covered)) as u16;
    if value == 0 {
        0xFFFF
    } else {
        value
    }
}

/// An IP datagram and the fields the decoder would have filled in.
#[derive(Clone, Debug)]
pub struct TestPacket {
    pub data: Vec<u8>,
    pub family: u8,
    pub src: u128,
    pub dst: u128,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    pub l4_off: usize,
    pub payload_off: usize,
}

impl TestPacket {
    pub fn packet(&self, index: u64, ts: f64) -> Packet<'_> {
        let mut pkt = Packet::new(index, ts, &self.data, self.family);
        pkt.src = self.src;
        pkt.dst = self.dst;
        pkt.proto = self.proto;
        pkt.ttl = 64;
        pkt.l4_off = self.l4_off;
        pkt.payload_off = self.payload_off;
        pkt.sport = self.sport;
        pkt.dport = self.dport;
        pkt
    }
}

fn ip_header(family: u8, src: u128, dst: u128, proto: u8, payload_len: usize) -> Vec<u8> {
    if family == 4 {
        let mut head = vec![0x45, 0];
        head.extend_from_slice(&((20 + payload_len) as u16).to_be_bytes());
        head.extend_from_slice(&[0, 1, 0, 0, 64, proto, 0, 0]);
        head.extend_from_slice(&(src as u32).to_be_bytes());
        head.extend_from_slice(&(dst as u32).to_be_bytes());
        let check = !fold(sum16(&head)) as u16;
        head[10..12].copy_from_slice(&check.to_be_bytes());
        head
    } else {
        let mut head = (6u32 << 28).to_be_bytes().to_vec();
        head.extend_from_slice(&(payload_len as u16).to_be_bytes());
        head.extend_from_slice(&[proto, 64]);
        head.extend_from_slice(&src.to_be_bytes());
        head.extend_from_slice(&dst.to_be_bytes());
        head
    }
}

/// Any protocol over IPv4/IPv6 with the given segment.
pub fn ip_packet(
    family: u8,
    src: u128,
    dst: u128,
    proto: u8,
    segment: &[u8],
    sport: u16,
    dport: u16,
    header_len: usize,
) -> TestPacket {
    let mut data = ip_header(family, src, dst, proto, segment.len());
    let l4_off = data.len();
    data.extend_from_slice(segment);
    TestPacket {
        data,
        family,
        src,
        dst,
        proto,
        sport,
        dport,
        l4_off,
        payload_off: l4_off + header_len,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sum {
    Good,
    Bad,
    Zero,
}

/// A UDP datagram; `length` overrides the length field.
pub fn udp_with(
    family: u8,
    src: u128,
    dst: u128,
    sport: u16,
    dport: u16,
    payload: &[u8],
    length: Option<u16>,
    sum: Sum,
) -> TestPacket {
    let real_len = 8 + payload.len();
    let mut segment = Vec::new();
    segment.extend_from_slice(&sport.to_be_bytes());
    segment.extend_from_slice(&dport.to_be_bytes());
    segment.extend_from_slice(&length.unwrap_or(real_len as u16).to_be_bytes());
    segment.extend_from_slice(&[0, 0]);
    segment.extend_from_slice(payload);
    if sum != Sum::Zero {
        let mut value = checksum(pseudo(family, src, dst, 17, real_len as u32), &segment);
        if sum == Sum::Bad {
            value ^= 0x0101;
        }
        segment[6..8].copy_from_slice(&value.to_be_bytes());
    }
    ip_packet(family, src, dst, 17, &segment, sport, dport, 8)
}

pub fn udp(src: u128, dst: u128, sport: u16, dport: u16) -> TestPacket {
    udp_with(4, src, dst, sport, dport, b"hello", None, Sum::Good)
}

/// A UDP-Lite datagram whose checksum was computed with the given pseudo-header.
pub fn udplite(
    family: u8,
    src: u128,
    dst: u128,
    sport: u16,
    dport: u16,
    payload: &[u8],
    coverage: u16,
    pseudo_proto: u8,
    pseudo_len: Option<u32>,
    with_checksum: bool,
) -> TestPacket {
    let total = 8 + payload.len();
    let mut segment = Vec::new();
    segment.extend_from_slice(&sport.to_be_bytes());
    segment.extend_from_slice(&dport.to_be_bytes());
    segment.extend_from_slice(&coverage.to_be_bytes());
    segment.extend_from_slice(&[0, 0]);
    segment.extend_from_slice(payload);
    let covered_len = if coverage == 0 {
        total
    } else {
        usize::from(coverage).min(total)
    };
    if with_checksum {
        let plen = pseudo_len.unwrap_or(total as u32);
        let value = checksum(
            pseudo(family, src, dst, pseudo_proto, plen),
            &segment[..covered_len],
        );
        segment[6..8].copy_from_slice(&value.to_be_bytes());
    }
    ip_packet(family, src, dst, 136, &segment, sport, dport, 8)
}

pub fn lite(src: u128, dst: u128, sport: u16, dport: u16) -> TestPacket {
    udplite(4, src, dst, sport, dport, b"lite", 0, 136, None, true)
}

/// Plain GRE (version 0): keys 0/0.
pub fn gre_v0(src: u128, dst: u128) -> TestPacket {
    let mut segment = vec![0, 0, 0x08, 0x00];
    segment.extend_from_slice(&[0; 20]);
    ip_packet(4, src, dst, 47, &segment, 0, 0, 0)
}

/// Enhanced GRE (version 1) with a call id; keys as the decoder gives them.
pub fn gre_v1(src: u128, dst: u128, call_id: u16, protocol: u16) -> TestPacket {
    let mut header = vec![0x30, 0x81];
    header.extend_from_slice(&protocol.to_be_bytes());
    header.extend_from_slice(&[0, 0]);
    header.extend_from_slice(&call_id.to_be_bytes());
    let (sport, dport) = crate::conntrack::proto_gre::gre_keys(&header, 0).unwrap_or((0, 0));
    header.extend_from_slice(&[0; 8]);
    ip_packet(4, src, dst, 47, &header, sport, dport, 0)
}

pub fn v4(text: &str) -> u128 {
    u128::from(u32::from(text.parse::<std::net::Ipv4Addr>().unwrap()))
}

pub fn v6(text: &str) -> u128 {
    u128::from(text.parse::<std::net::Ipv6Addr>().unwrap())
}

/// One forwarded packet: conntrack at PREROUTING, confirmation at POSTROUTING.
pub fn step(table: &mut ConntrackTable, pkt: &TestPacket, now: f64) -> CtResult {
    let mut hooks = NoExpectations;
    let mut result = table.classify(&pkt.packet(0, now), now, true, 0, &mut hooks);
    if result.drop {
        table.discard(&mut result);
    } else {
        table.confirm(&mut result, now, &mut hooks);
    }
    result
}

/// The entry behind a result (panics in tests only).
pub fn id(result: &CtResult) -> ConnId {
    result.conn.expect("the packet has an entry")
}

pub fn expires(table: &ConntrackTable, id: ConnId) -> f64 {
    table.conn(id).unwrap().expires
}

pub fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}
