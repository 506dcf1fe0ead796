//! Link-layer framing: find where the IP datagram starts in a captured frame.
//!
//! Each capture link type (pcap LINKTYPE_*) puts a different header in front
//! of the IP datagram. This module strips it, records what netfilter can see
//! of it (`-m mac` reads the Ethernet source, `-m pkttype` the packet type,
//! `-i`/`-o` the interface) and hands the rest to `decode::ip`. Frames that
//! carry no IP datagram (ARP, LLDP, STP...) come back with family 0 and a
//! "link" error: the kernel never shows them to the IPv4/IPv6 hooks at all.

use super::ip::{decode_into, decode_ipv4};
use super::{be16, byte, fail};
use crate::packet::{IfaceName, Layer, Packet, PktType};

pub const LINKTYPE_NULL: u32 = 0;
pub const LINKTYPE_ETHERNET: u32 = 1;
pub const LINKTYPE_RAW_12: u32 = 12;
pub const LINKTYPE_RAW_14: u32 = 14;
pub const LINKTYPE_RAW: u32 = 101;
pub const LINKTYPE_LOOP: u32 = 108;
pub const LINKTYPE_LINUX_SLL: u32 = 113;
pub const LINKTYPE_IPV4: u32 = 228;
pub const LINKTYPE_IPV6: u32 = 229;
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

pub const SUPPORTED_LINKTYPES: [u32; 10] = [
    LINKTYPE_NULL,
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW_12,
    LINKTYPE_RAW_14,
    LINKTYPE_RAW,
    LINKTYPE_LOOP,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL2,
];

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86DD;

/// 802.1Q, 802.1ad (QinQ service tag) and the pre-standard 0x9100 QinQ tag.
#[inline]
fn is_vlan_tag(ethertype: u16) -> bool {
    matches!(ethertype, 0x8100 | 0x88A8 | 0x9100)
}

/// Linux cooked capture packet types (the kernel's PACKET_HOST ... PACKET_OUTGOING).
fn sll_pkttype(code: u16) -> PktType {
    match code {
        0 => PktType::Host,
        1 => PktType::Broadcast,
        2 => PktType::Multicast,
        3 => PktType::OtherHost,
        4 => PktType::Outgoing,
        n => PktType::Other(n),
    }
}

// Address-family values BSD-style loopback headers use for IPv4 and IPv6
// (IPv6 differs between NetBSD/OpenBSD 24, FreeBSD 28 and Darwin 30).
const BSD_AF_INET: u32 = 2;
fn is_bsd_af_inet6(af: u32) -> bool {
    matches!(af, 24 | 28 | 30)
}

/// Decode one captured frame; never panics (bad input becomes `Packet::error`).
pub fn decode_frame(
    index: u64,
    ts: f64,
    frame: &[u8],
    linktype: u32,
    iface: Option<IfaceName>,
) -> Packet<'_> {
    let mut pkt = match linktype {
        LINKTYPE_ETHERNET if frame.len() >= 34 && byte(frame, 12) == 8 && byte(frame, 13) == 0 => {
            // The common case: Ethernet and untagged IPv4.
            let mut pkt = Packet::new(index, ts, &[], 4);
            decode_ipv4(&mut pkt, frame, 14, false);
            ethernet_addresses(&mut pkt, frame);
            pkt
        }
        LINKTYPE_ETHERNET => ethernet(index, ts, frame),
        LINKTYPE_RAW | LINKTYPE_RAW_12 | LINKTYPE_RAW_14 => by_version(index, ts, frame, 0),
        LINKTYPE_LINUX_SLL => sll(index, ts, frame),
        LINKTYPE_LINUX_SLL2 => sll2(index, ts, frame),
        LINKTYPE_IPV4 => fixed_family(index, ts, frame, 0, 4),
        LINKTYPE_IPV6 => fixed_family(index, ts, frame, 0, 6),
        LINKTYPE_NULL | LINKTYPE_LOOP => null(index, ts, frame),
        _ => not_ip(index, ts, 0, format!("unsupported link type {linktype}")),
    };
    pkt.link_type = linktype;
    pkt.frame_len = frame.len();
    if iface.is_some() {
        if pkt.pkt_type == PktType::Outgoing {
            pkt.iface_out = iface;
        } else {
            pkt.iface_in = iface;
        }
    }
    pkt
}

#[cold]
fn not_ip<'a>(index: u64, ts: f64, off: usize, cause: impl Into<Box<str>>) -> Packet<'a> {
    let mut pkt = Packet::new(index, ts, &[], 0);
    fail(&mut pkt, Layer::Link, off, cause);
    pkt
}

#[cold]
fn truncated<'a>(index: u64, ts: f64, frame: &[u8], what: &str, need: usize) -> Packet<'a> {
    let cause = format!("truncated {what} header: {} of {need} bytes", frame.len());
    not_ip(index, ts, 0, cause)
}

fn ethernet(index: u64, ts: f64, frame: &[u8]) -> Packet<'_> {
    if frame.len() < 14 {
        return truncated(index, ts, frame, "Ethernet", 14);
    }
    let mut off = 12;
    let mut ethertype = be16(frame, 12);
    while is_vlan_tag(ethertype) {
        off += 4;
        if frame.len() < off + 2 {
            // The offset names the tag that is cut short, inside the frame.
            return not_ip(index, ts, off.min(frame.len()), "truncated VLAN tag");
        }
        ethertype = be16(frame, off);
    }
    let mut pkt = by_ethertype(index, ts, frame, off + 2, ethertype);
    ethernet_addresses(&mut pkt, frame);
    pkt
}

fn ethernet_addresses<'a>(pkt: &mut Packet<'a>, frame: &'a [u8]) {
    let dst = frame.get(0..6);
    pkt.link_dst = dst;
    pkt.link_src = frame.get(6..12);
    if byte(frame, 0) & 1 != 0 {
        pkt.pkt_type = if dst == Some(&[0xFF; 6][..]) {
            PktType::Broadcast
        } else {
            PktType::Multicast
        };
    }
}

fn by_ethertype(index: u64, ts: f64, frame: &[u8], off: usize, ethertype: u16) -> Packet<'_> {
    match ethertype {
        ETH_P_IP => fixed_family(index, ts, frame, off, 4),
        ETH_P_IPV6 => fixed_family(index, ts, frame, off, 6),
        _ => not_ip(
            index,
            ts,
            off - 2,
            format!("not an IP packet (EtherType 0x{ethertype:04x})"),
        ),
    }
}

fn sll(index: u64, ts: f64, frame: &[u8]) -> Packet<'_> {
    if frame.len() < 16 {
        return truncated(index, ts, frame, "Linux cooked (SLL)", 16);
    }
    let mut pkt = cooked_payload(index, ts, frame, 16, be16(frame, 14));
    let pkttype = be16(frame, 0);
    let hatype = be16(frame, 2);
    let halen = be16(frame, 4);
    cooked_meta(&mut pkt, pkttype, hatype, halen, frame, 6);
    pkt
}

fn sll2(index: u64, ts: f64, frame: &[u8]) -> Packet<'_> {
    if frame.len() < 20 {
        return truncated(index, ts, frame, "Linux cooked v2 (SLL2)", 20);
    }
    let mut pkt = cooked_payload(index, ts, frame, 20, be16(frame, 0));
    let hatype = be16(frame, 8);
    let pkttype = u16::from(byte(frame, 10));
    let halen = u16::from(byte(frame, 11));
    cooked_meta(&mut pkt, pkttype, hatype, halen, frame, 12);
    pkt
}

fn cooked_payload(index: u64, ts: f64, frame: &[u8], start: usize, first: u16) -> Packet<'_> {
    let mut off = start;
    let mut proto = first;
    while is_vlan_tag(proto) {
        if frame.len() < off + 4 {
            return not_ip(index, ts, off, "truncated VLAN tag");
        }
        proto = be16(frame, off + 2);
        off += 4;
    }
    by_ethertype(index, ts, frame, off, proto)
}

/// Record the packet type and, for Ethernet devices, the link-layer source.
fn cooked_meta<'a>(
    pkt: &mut Packet<'a>,
    pkttype: u16,
    hatype: u16,
    halen: u16,
    frame: &'a [u8],
    at: usize,
) {
    pkt.pkt_type = sll_pkttype(pkttype);
    if hatype == 1 && halen == 6 {
        // ARPHRD_ETHER: the address is the sender's MAC.
        pkt.link_src = frame.get(at..at + 6);
    }
}

fn null(index: u64, ts: f64, frame: &[u8]) -> Packet<'_> {
    let Some(&[a, b, c, d]) = frame.get(0..4) else {
        return truncated(index, ts, frame, "BSD loopback", 4);
    };
    let little = u32::from_le_bytes([a, b, c, d]);
    let big = u32::from_be_bytes([a, b, c, d]);
    if little == BSD_AF_INET || big == BSD_AF_INET {
        return fixed_family(index, ts, frame, 4, 4);
    }
    if is_bsd_af_inet6(little) || is_bsd_af_inet6(big) {
        return fixed_family(index, ts, frame, 4, 6);
    }
    not_ip(
        index,
        ts,
        0,
        format!("not an IP packet (address family {little})"),
    )
}

fn by_version(index: u64, ts: f64, frame: &[u8], off: usize) -> Packet<'_> {
    let Some(&first) = frame.get(off) else {
        return not_ip(index, ts, off, "empty frame: no IP header");
    };
    let version = first >> 4;
    if version != 4 && version != 6 {
        return not_ip(
            index,
            ts,
            off,
            format!("not an IP packet (IP version {version})"),
        );
    }
    fixed_family(index, ts, frame, off, version)
}

fn fixed_family(index: u64, ts: f64, frame: &[u8], off: usize, family: u8) -> Packet<'_> {
    let mut pkt = Packet::new(index, ts, &[], family);
    decode_into(&mut pkt, frame, off, false);
    pkt
}
