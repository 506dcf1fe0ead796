//! IPv4 and IPv6 header decoding, with the checks the kernel makes before
//! netfilter.
//!
//! `ip_rcv_core` and `ip6_rcv_core` drop a datagram before the PREROUTING
//! hook when its header is implausible: wrong version, IPv4 header length
//! below 20 or beyond the packet, bad IPv4 header checksum, total/payload
//! length larger than what arrived, an IPv6 multicast source. Those become
//! errors in layer "ipv4"/"ipv6". Trailing link padding beyond the stated
//! length is trimmed, as `pskb_trim_rcsum` does, so `Packet::data` is exactly
//! the datagram.
//!
//! IPv6 extension headers are walked the way `ipv6_skip_exthdr` walks them
//! (hop-by-hop, routing, fragment, destination options, AH; stop at anything
//! else, fail at "no next header"). A walk that fails leaves an error in
//! layer "ipv6-ext": such a packet does reach netfilter but conntrack cannot
//! find its layer-4 header (`ipv6_get_l4proto`), so it is INVALID.
//!
//! A quoted datagram (the one an ICMP error carries) is decoded leniently: it
//! is usually cut short, its checksum is not checked, and its stated length
//! is kept in `ip_len` without complaint. Its `error` is set only when the IP
//! header itself (with any IPv6 extension headers) cannot be read; a quoted
//! fragment keeps `fragment`, and judging the quoted layer-4 bytes is left to
//! the ICMP tracker.

use super::ipv4_options::compile_ipv4_options;
use super::l4::{decode_l4, tcp_header};
use super::{be16, be32, byte, fail};
use crate::checksum::ipv4_header_ok;
use crate::packet::{FragmentInfo, Layer, Packet, PROTO_TCP};

pub const IP_MF: u16 = 0x2000;
pub const IP_OFFSET: u16 = 0x1FFF;

pub const NEXTHDR_HOP: u8 = 0;
pub const NEXTHDR_ROUTING: u8 = 43;
pub const NEXTHDR_FRAGMENT: u8 = 44;
pub const NEXTHDR_AUTH: u8 = 51;
pub const NEXTHDR_NONE: u8 = 59;
pub const NEXTHDR_DEST: u8 = 60;

/// The extension headers `ipv6_skip_exthdr` steps over (and "no next header").
#[inline]
pub fn is_ipv6_ext_header(nexthdr: u8) -> bool {
    matches!(
        nexthdr,
        NEXTHDR_HOP
            | NEXTHDR_ROUTING
            | NEXTHDR_FRAGMENT
            | NEXTHDR_AUTH
            | NEXTHDR_NONE
            | NEXTHDR_DEST
    )
}

/// Decode a bare IP datagram (version from its first nibble); never panics.
///
/// `quoted` selects the lenient decoding of a datagram quoted by an ICMP
/// error. `frame_len` stays 0 and `link_type` 0: there is no frame.
pub fn decode_datagram(data: &[u8], index: u64, ts: f64, quoted: bool) -> Packet<'_> {
    let version = data.first().map_or(0, |b| b >> 4);
    if version != 4 && version != 6 {
        let mut pkt = Packet::new(index, ts, &[], 0);
        pkt.data = data;
        if data.is_empty() {
            fail(&mut pkt, Layer::Ip, 0, "empty datagram");
        } else {
            fail(
                &mut pkt,
                Layer::Ip,
                0,
                format!("not an IP packet (IP version {version})"),
            );
        }
        return pkt;
    }
    let mut pkt = Packet::new(index, ts, &[], version);
    decode_into(&mut pkt, data, 0, quoted);
    pkt
}

/// Fill `pkt` from the datagram that starts at `buf[off]` (family already chosen).
pub(crate) fn decode_into<'a>(pkt: &mut Packet<'a>, buf: &'a [u8], off: usize, quoted: bool) {
    if pkt.family == 4 {
        decode_ipv4(pkt, buf, off, quoted);
    } else {
        decode_ipv6(pkt, buf, off, quoted);
    }
}

/// Fill `pkt` from the IPv4 datagram at `buf[off]` (the hot path: no dispatch).
pub(crate) fn decode_ipv4<'a>(pkt: &mut Packet<'a>, buf: &'a [u8], off: usize, quoted: bool) {
    let rest = buf.get(off..).unwrap_or(&[]);
    let avail = rest.len();
    if avail < 20 {
        pkt.data = rest;
        fail(
            pkt,
            Layer::Ipv4,
            off,
            format!("truncated header: {avail} of 20 bytes"),
        );
        return;
    }
    let vihl = byte(rest, 0);
    let tot_len = usize::from(be16(rest, 2));
    let ident = be16(rest, 4);
    let frag = be16(rest, 6);
    let proto = byte(rest, 9);
    pkt.src = u128::from(be32(rest, 12));
    pkt.dst = u128::from(be32(rest, 16));
    pkt.proto = proto;
    pkt.ttl = byte(rest, 8);
    pkt.tos = byte(rest, 1);
    pkt.ip_id = u32::from(ident);
    pkt.ip_len = tot_len as u32;
    let ihl = usize::from(vihl & 15) << 2;
    if vihl >> 4 != 4 {
        pkt.data = rest;
        fail(
            pkt,
            Layer::Ipv4,
            off,
            format!("IP version {} in an IPv4 header", vihl >> 4),
        );
        return;
    }
    if ihl < 20 || ihl > avail {
        pkt.data = rest;
        fail(
            pkt,
            Layer::Ipv4,
            off,
            format!("bad header length {ihl} ({avail} bytes present)"),
        );
        return;
    }
    let end = if quoted {
        if ihl <= tot_len && tot_len < avail {
            tot_len
        } else {
            avail
        }
    } else {
        if !ipv4_header_ok(rest.get(..ihl).unwrap_or(&[])) {
            pkt.data = rest;
            fail(pkt, Layer::Ipv4, off + 10, "bad IPv4 header checksum");
            return;
        }
        if tot_len > avail || tot_len < ihl {
            pkt.data = rest;
            let cause = if tot_len > avail {
                format!("truncated datagram: {avail} of {tot_len} bytes")
            } else {
                format!("total length {tot_len} below header length {ihl}")
            };
            fail(pkt, Layer::Ipv4, off + 2, cause);
            return;
        }
        if ihl > 20 {
            pkt.ip_options = compile_ipv4_options(rest.get(20..ihl).unwrap_or(&[]));
        }
        tot_len
    };
    let data = rest.get(..end).unwrap_or(rest);
    pkt.data = data;
    pkt.l4_off = ihl;
    if frag & (IP_MF | IP_OFFSET) != 0 {
        pkt.fragment = Some(FragmentInfo {
            ident: u32::from(ident),
            offset: u32::from(frag & IP_OFFSET) << 3,
            more: frag & IP_MF != 0,
            next_proto: proto,
            unfrag_len: ihl as u32,
        });
        if frag & IP_OFFSET != 0 {
            pkt.payload_off = ihl;
            return;
        }
    }
    if proto == PROTO_TCP && !quoted && data.len() >= ihl + 20 {
        tcp_header(pkt, data, ihl, data.len() - ihl, off);
    } else {
        decode_l4(pkt, data, ihl, proto, off, quoted);
    }
}

fn decode_ipv6<'a>(pkt: &mut Packet<'a>, buf: &'a [u8], off: usize, quoted: bool) {
    let rest = buf.get(off..).unwrap_or(&[]);
    let avail = rest.len();
    if avail < 40 {
        pkt.data = rest;
        fail(
            pkt,
            Layer::Ipv6,
            off,
            format!("truncated header: {avail} of 40 bytes"),
        );
        return;
    }
    let vtcfl = be32(rest, 0);
    let plen = usize::from(be16(rest, 4));
    let nexthdr = byte(rest, 6);
    let mut addr = [0u8; 16];
    addr.copy_from_slice(rest.get(8..24).unwrap_or(&[0; 16]));
    pkt.src = u128::from_be_bytes(addr);
    addr.copy_from_slice(rest.get(24..40).unwrap_or(&[0; 16]));
    pkt.dst = u128::from_be_bytes(addr);
    pkt.tos = (vtcfl >> 20) as u8;
    pkt.ttl = byte(rest, 7);
    pkt.ip_len = (plen + 40) as u32;
    if vtcfl >> 28 != 6 {
        pkt.data = rest;
        fail(
            pkt,
            Layer::Ipv6,
            off,
            format!("IP version {} in an IPv6 header", vtcfl >> 28),
        );
        return;
    }
    let end = if quoted {
        if 40 + plen < avail {
            40 + plen
        } else {
            avail
        }
    } else {
        let bad = if pkt.src >> 120 == 0xFF {
            Some("multicast source address".into())
        } else if plen == 0 && nexthdr == NEXTHDR_HOP {
            Some("jumbogram (payload length 0 with a hop-by-hop header) is not supported".into())
        } else if plen + 40 > avail {
            Some(format!(
                "truncated datagram: {avail} of {} bytes",
                plen + 40
            ))
        } else {
            None
        };
        if let Some(cause) = bad {
            pkt.data = rest;
            fail(pkt, Layer::Ipv6, off + 4, cause);
            return;
        }
        40 + plen
    };
    let data = rest.get(..end).unwrap_or(rest);
    pkt.data = data;
    ipv6_exthdrs(pkt, data, nexthdr, off, quoted);
}

/// Skip extension headers to the layer-4 header (`ipv6_skip_exthdr`).
fn ipv6_exthdrs<'a>(pkt: &mut Packet<'a>, data: &'a [u8], first: u8, base: usize, quoted: bool) {
    let mut nexthdr = first;
    let mut pos = 40usize;
    let size = data.len();
    while is_ipv6_ext_header(nexthdr) {
        if nexthdr == NEXTHDR_NONE {
            // A header that claimed more than was there can leave `pos` past
            // the end: offsets stay inside the datagram.
            let at = pos.min(size);
            pkt.proto = nexthdr;
            pkt.l4_off = at;
            pkt.payload_off = at;
            if !quoted {
                // Quoted: the ICMPv6 tracker names this case itself.
                fail(
                    pkt,
                    Layer::Ipv6Ext,
                    base + at,
                    "no next header (59): no layer-4 header to track",
                );
            }
            return;
        }
        if pos + 2 > size {
            break;
        }
        let hdrlen = if nexthdr == NEXTHDR_FRAGMENT {
            if pos + 8 > size {
                break;
            }
            let frag = be16(data, pos + 2);
            if pkt.fragment.is_none() {
                let ident = be32(data, pos + 4);
                pkt.ip_id = ident;
                pkt.fragment = Some(FragmentInfo {
                    ident,
                    offset: u32::from(frag & 0xFFF8),
                    more: frag & 1 != 0,
                    next_proto: byte(data, pos),
                    unfrag_len: pos as u32,
                });
            }
            if frag & 0xFFF8 != 0 {
                pkt.proto = byte(data, pos);
                pkt.l4_off = pos + 8;
                pkt.payload_off = pos + 8;
                return;
            }
            8
        } else if nexthdr == NEXTHDR_AUTH {
            (usize::from(byte(data, pos + 1)) + 2) << 2
        } else {
            (usize::from(byte(data, pos + 1)) + 1) << 3
        };
        nexthdr = byte(data, pos);
        pos += hdrlen;
    }
    pkt.proto = nexthdr;
    if pos > size || is_ipv6_ext_header(nexthdr) {
        pkt.l4_off = size;
        pkt.payload_off = size;
        fail(
            pkt,
            Layer::Ipv6Ext,
            base + pos.min(size),
            "truncated extension header",
        );
        return;
    }
    decode_l4(pkt, data, pos, nexthdr, base, quoted);
}
