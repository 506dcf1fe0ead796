//! Test packets built as real bytes (with checksums), and the fields a
//! decoder would fill in, for the rule tests.

use crate::packet::{Packet, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use crate::rules::context::RuleCtx;
use crate::rules::model::Hook;

fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        for pair in part.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    let total = (20 + l4.len()) as u16;
    let mut h = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = checksum(&[&h]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(l4);
    h
}

fn pseudo(src: [u8; 4], dst: [u8; 4], proto: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&[0, proto]);
    p.extend_from_slice(&(len as u16).to_be_bytes());
    p
}

pub fn tcp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, flags: u8, opts: &[u8]) -> Vec<u8> {
    let hl = 20 + opts.len();
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&1000u32.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&[((hl / 4) as u8) << 4, flags]);
    t.extend_from_slice(&64240u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(opts);
    let c = checksum(&[&pseudo(src, dst, PROTO_TCP, t.len()), &t]);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, PROTO_TCP, &t)
}

pub fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&8u16.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    let c = checksum(&[&pseudo(src, dst, PROTO_UDP, u.len()), &u]);
    u[6..8].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, PROTO_UDP, &u)
}

pub fn icmp4(src: [u8; 4], dst: [u8; 4], ty: u8, code: u8) -> Vec<u8> {
    let mut i = vec![ty, code, 0, 0, 0, 7, 0, 1];
    let c = checksum(&[&i]);
    i[2..4].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, PROTO_ICMP, &i)
}

/// The fields of a well-formed IPv4 datagram built above.
pub fn decode(data: &[u8]) -> Packet<'_> {
    let mut p = Packet::new(0, 0.0, data, 4);
    let be16 = |at: usize| u16::from_be_bytes([data[at], data[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
    p.src = u128::from(be32(12));
    p.dst = u128::from(be32(16));
    p.proto = data[9];
    p.ttl = data[8];
    p.tos = data[1];
    p.ip_len = u32::from(be16(2));
    p.ip_id = u32::from(be16(4));
    p.l4_off = 20;
    match p.proto {
        PROTO_TCP => {
            p.sport = be16(20);
            p.dport = be16(22);
            p.seq = be32(24);
            p.ack = be32(28);
            p.tcp_flags = data[33];
            p.window = be16(34);
            p.payload_off = 20 + usize::from(data[32] >> 4) * 4;
        }
        PROTO_UDP => {
            p.sport = be16(20);
            p.dport = be16(22);
            p.payload_off = 28;
        }
        PROTO_ICMP => {
            p.icmp_type = data[20];
            p.icmp_code = data[21];
            p.icmp_id = be16(24);
            p.payload_off = 28;
        }
        _ => p.payload_off = 20,
    }
    p
}

pub fn ctx<'a>(pkt: &'a Packet<'a>) -> RuleCtx<'a> {
    RuleCtx {
        pkt,
        ctinfo: crate::conntrack::conn::CT_NEW,
        conn: None,
        master_helper: None,
        now: 0.0,
        hook: Hook::Input,
        iface_in: None,
        iface_out: None,
        local_out: false,
        mark: 0,
        nf_trace: false,
        conn_counters: None,
        conns: None,
    }
}
