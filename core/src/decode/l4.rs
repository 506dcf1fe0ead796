//! Layer-4 headers: the parts conntrack's trackers and iptables matches read.
//!
//! Ports go into `sport`/`dport` following the tuple convention of `Packet`
//! (ICMP: identifier and type << 8 | code; GRE version 1: the PPTP call id as
//! destination, as `gre_pkt_to_tuple` does; anything else 0/0). TCP options
//! are read the way `tcp_options` and `tcp_sack` in nf_conntrack_proto_tcp.c
//! read them: a malformed option list ends the parse quietly instead of
//! failing the packet. Checksums are left to the trackers, which verify them
//! only when nf_conntrack_checksum asks.
//!
//! A quoted datagram (inside an ICMP error or an ICMPv6 redirect) never fails
//! at layer 4: whatever part of its header was quoted is read, and the ICMP
//! tracker judges whether that is enough for a tuple (4 bytes for port-based
//! protocols, 8 for ICMP), as `nf_conntrack_inet_error` does.

use super::ip::decode_datagram;
use super::{be16, be32, byte, fail};
use crate::packet::{
    Layer, Packet, TcpOptions, PROTO_GRE, PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP,
    PROTO_UDP, PROTO_UDPLITE,
};

pub const TCPOPT_EOL: u8 = 0;
pub const TCPOPT_NOP: u8 = 1;
pub const TCPOPT_MSS: u8 = 2;
pub const TCPOPT_WINDOW: u8 = 3;
pub const TCPOPT_SACK_PERM: u8 = 4;
pub const TCPOPT_SACK: u8 = 5;
pub const TCPOPT_TIMESTAMP: u8 = 8;
const NOP_NOP_TS: u32 = 0x0101_080A;

/// ICMP types whose body quotes the offending datagram (the kernel's icmp_is_err).
pub fn icmp_is_error(itype: u8) -> bool {
    matches!(itype, 3 | 4 | 5 | 11 | 12)
}

pub const GRE_PROTO_PPP: u16 = 0x880B;

// ICMPv6 redirect: the 40-byte message (header, target, destination), then
// the first option; a Redirected Header option (type 4) carries the packet
// 8 bytes further on.
pub const ICMPV6_REDIRECT: u8 = 137;
const REDIRECT_MSG_LEN: usize = 40;
const ND_OPT_REDIRECT_HDR: u8 = 4;
const REDIRECT_QUOTE_OFFSET: usize = REDIRECT_MSG_LEN + 8;

/// Fill the layer-4 fields of `pkt` from `data[off..]`; `base` only shifts error offsets.
pub(crate) fn decode_l4<'a>(
    pkt: &mut Packet<'a>,
    data: &'a [u8],
    off: usize,
    proto: u8,
    base: usize,
    quoted: bool,
) {
    pkt.l4_off = off;
    pkt.payload_off = off;
    let avail = data.len().saturating_sub(off);
    match proto {
        PROTO_TCP if avail >= 20 && !quoted => tcp_header(pkt, data, off, avail, base),
        PROTO_TCP => tcp_partial(pkt, data, off, avail, base, quoted),
        PROTO_UDP => ports(pkt, data, off, avail, base, quoted, Layer::Udp, 8),
        PROTO_UDPLITE => ports(pkt, data, off, avail, base, quoted, Layer::Udplite, 8),
        PROTO_SCTP => ports(pkt, data, off, avail, base, quoted, Layer::Sctp, 12),
        PROTO_ICMP => icmp(pkt, data, off, avail, base, quoted, Layer::Icmp),
        PROTO_ICMPV6 => icmp(pkt, data, off, avail, base, quoted, Layer::Icmpv6),
        PROTO_GRE => gre(pkt, data, off, avail, base, quoted),
        _ => {}
    }
}

#[cold]
fn short(pkt: &mut Packet<'_>, layer: Layer, at: usize, have: usize, need: usize) {
    fail(
        pkt,
        layer,
        at,
        format!("truncated header: {have} of {need} bytes"),
    );
}

/// A complete TCP header (at least 20 bytes present); the common case.
pub(crate) fn tcp_header(pkt: &mut Packet<'_>, data: &[u8], off: usize, avail: usize, base: usize) {
    pkt.sport = be16(data, off);
    pkt.dport = be16(data, off + 2);
    pkt.seq = be32(data, off + 4);
    pkt.ack = be32(data, off + 8);
    pkt.tcp_flags = byte(data, off + 13);
    pkt.window = be16(data, off + 14);
    let hlen = usize::from(byte(data, off + 12) >> 4) << 2;
    if hlen < 20 {
        fail(
            pkt,
            Layer::Tcp,
            base + off + 12,
            format!("bad data offset: header length {hlen}"),
        );
        return;
    }
    if hlen > avail {
        short(pkt, Layer::Tcp, base + off, avail, hlen);
        return;
    }
    pkt.payload_off = off + hlen;
    if hlen > 20 {
        let opts = data.get(off + 20..off + hlen).unwrap_or(&[]);
        if !is_timestamp_only(opts) {
            let parsed = parse_tcp_options(opts);
            if parsed.tracked() {
                pkt.tcp_options = Some(Box::new(parsed));
            }
        }
    }
}

/// The usual option block of an established Linux connection: two NOPs and a
/// timestamp, nothing window tracking needs.
#[inline]
fn is_timestamp_only(opts: &[u8]) -> bool {
    opts.len() == 12 && be32(opts, 0) == NOP_NOP_TS
}

/// A TCP header cut short: keep what is there (ports, sequence number).
fn tcp_partial(
    pkt: &mut Packet<'_>,
    data: &[u8],
    off: usize,
    avail: usize,
    base: usize,
    quoted: bool,
) {
    if avail >= 4 {
        pkt.sport = be16(data, off);
        pkt.dport = be16(data, off + 2);
    }
    if avail >= 8 {
        pkt.seq = be32(data, off + 4);
    }
    if avail >= 14 {
        pkt.tcp_flags = byte(data, off + 13);
    }
    if quoted {
        pkt.payload_off = data.len();
        return;
    }
    short(pkt, Layer::Tcp, base + off, avail, 20);
}

#[allow(clippy::too_many_arguments)]
fn ports(
    pkt: &mut Packet<'_>,
    data: &[u8],
    off: usize,
    avail: usize,
    base: usize,
    quoted: bool,
    layer: Layer,
    need: usize,
) {
    if avail >= 4 {
        pkt.sport = be16(data, off);
        pkt.dport = be16(data, off + 2);
    }
    if avail < need && !quoted {
        short(pkt, layer, base + off, avail, need);
        return;
    }
    pkt.payload_off = (off + need).min(data.len());
}

fn icmp<'a>(
    pkt: &mut Packet<'a>,
    data: &'a [u8],
    off: usize,
    avail: usize,
    base: usize,
    quoted: bool,
    layer: Layer,
) {
    if avail < 8 {
        if avail >= 2 {
            pkt.icmp_type = byte(data, off);
            pkt.icmp_code = byte(data, off + 1);
        }
        if !quoted {
            short(pkt, layer, base + off, avail, 8);
        }
        return;
    }
    let itype = byte(data, off);
    let code = byte(data, off + 1);
    let ident = be16(data, off + 4);
    pkt.icmp_type = itype;
    pkt.icmp_code = code;
    pkt.icmp_id = ident;
    pkt.sport = ident;
    pkt.dport = u16::from(itype) << 8 | u16::from(code);
    pkt.payload_off = off + 8;
    if quoted {
        return;
    }
    let start = if layer == Layer::Icmp {
        if icmp_is_error(itype) {
            off + 8
        } else {
            0
        }
    } else if itype < 128 {
        off + 8
    } else {
        redirected_header(data, off, itype)
    };
    if start != 0 {
        let quote = data.get(start..).unwrap_or(&[]);
        pkt.inner = Some(Box::new(decode_datagram(quote, pkt.index, pkt.ts, true)));
    }
}

/// Where an ICMPv6 redirect's quoted packet starts, or 0 if it has none.
///
/// `nf_conntrack_icmpv6_redirect` looks only at the first option after the
/// 40-byte redirect message; when that is a Redirected Header option, the
/// packet it carries (after the option's own 8 bytes) is what the redirect is
/// about. Code, hop limit and source are the tracker's checks, not ours.
fn redirected_header(data: &[u8], off: usize, itype: u8) -> usize {
    if itype != ICMPV6_REDIRECT || data.len().saturating_sub(off) < REDIRECT_QUOTE_OFFSET {
        return 0;
    }
    if byte(data, off + REDIRECT_MSG_LEN) != ND_OPT_REDIRECT_HDR {
        return 0;
    }
    off + REDIRECT_QUOTE_OFFSET
}

/// GRE keys as conntrack sees them (`gre_pkt_to_tuple`): only version 1 has
/// a tuple part.
///
/// Version 1 shorter than 8 bytes keeps keys 0/0. Version 1 carrying anything
/// but PPP has no tuple: an error for a packet of its own, but in a quoted
/// datagram that judgement is left to the ICMP tracker.
fn gre(pkt: &mut Packet<'_>, data: &[u8], off: usize, avail: usize, base: usize, quoted: bool) {
    if avail < 4 {
        return;
    }
    let flags = byte(data, off);
    let ver_byte = byte(data, off + 1);
    let version = ver_byte & 7;
    let bit = |set: bool| usize::from(set);
    let hlen = if version == 1 {
        8 + 4 * (bit(flags & 0x10 != 0) + bit(ver_byte & 0x80 != 0))
    } else {
        4 + 4 * (bit(flags & 0xC0 != 0) + bit(flags & 0x20 != 0) + bit(flags & 0x10 != 0))
    };
    pkt.payload_off = (off + hlen).min(data.len());
    if version != 1 || avail < 8 {
        return;
    }
    let protocol = be16(data, off + 2);
    if protocol != GRE_PROTO_PPP {
        if quoted {
            return;
        }
        fail(
            pkt,
            Layer::Gre,
            base + off + 2,
            format!("GRE version 1 carrying protocol 0x{protocol:04x}, not PPP"),
        );
        return;
    }
    pkt.dport = be16(data, off + 6);
}

impl TcpOptions {
    /// Whether window tracking reads anything here (timestamps it ignores).
    pub fn tracked(&self) -> bool {
        self.mss.is_some()
            || self.wscale.is_some()
            || self.sack_perm
            || !self.sack_blocks.is_empty()
    }
}

/// Read MSS, window scale, SACK-permitted, SACK blocks and timestamps from a
/// TCP header's option bytes.
///
/// Mirrors the stopping rules of the kernel's option walk: end-of-list, a
/// length below 2 or an option running past the header stops the parse and
/// keeps what was read so far. Like `tcp_sack`, only the first well-formed
/// SACK option counts. Allocates only for SACK blocks.
pub fn parse_tcp_options(opts: &[u8]) -> TcpOptions {
    let mut out = TcpOptions::default();
    if is_timestamp_only(opts) {
        out.timestamp = Some((be32(opts, 4), be32(opts, 8)));
        return out;
    }
    let end = opts.len();
    let mut pos = 0usize;
    while pos < end {
        let kind = byte(opts, pos);
        if kind == TCPOPT_EOL {
            break;
        }
        if kind == TCPOPT_NOP {
            pos += 1;
            continue;
        }
        if end - pos < 2 {
            break;
        }
        let size = usize::from(byte(opts, pos + 1));
        if size < 2 || size > end - pos {
            break;
        }
        match kind {
            TCPOPT_MSS if size == 4 => out.mss = Some(be16(opts, pos + 2)),
            TCPOPT_WINDOW if size == 3 => out.wscale = Some(byte(opts, pos + 2)),
            TCPOPT_SACK_PERM if size == 2 => out.sack_perm = true,
            TCPOPT_SACK if out.sack_blocks.is_empty() && size >= 10 && (size - 2) % 8 == 0 => {
                out.sack_blocks = (pos + 2..pos + size)
                    .step_by(8)
                    .map(|p| (be32(opts, p), be32(opts, p + 4)))
                    .collect();
            }
            TCPOPT_TIMESTAMP if size == 10 => {
                out.timestamp = Some((be32(opts, pos + 2), be32(opts, pos + 6)));
            }
            _ => {}
        }
        pos += size;
    }
    out
}
