//! The bytes of a translated datagram, as the kernel's NAT leaves them
//! (nf_nat_ipv4_manip_pkt, nf_nat_ipv6_manip_pkt and the ICMP error
//! translation of nf_nat_proto.c).
//!
//! The walk changes only the decoded fields (`manip`); this module writes
//! the final addressing into a copy of the datagram. Every checksum is
//! updated the way the kernel updates it: incrementally (RFC 1624) for the
//! IPv4 header and the TCP, UDP, UDP-Lite, DCCP and ICMP/ICMPv6 query
//! checksums, so one that was wrong on arrival stays wrong by the same
//! amount; SCTP's CRC32c and the checksum of a translated ICMP error are
//! computed afresh. A packet the kernel rewrites in several steps (DNAT,
//! then SNAT) comes out the same when rewritten once from first to last
//! addressing: the updates add up modulo 0xFFFF, and every update leaves
//! the field in the same canonical form.
//!
//! A quoted datagram is rewritten like a packet of its own, but within the
//! bytes the error carries: its layer-4 checksum only when the whole header
//! is there (TCP, DCCP, SCTP), at the offsets the quote gives.

use crate::checksum::{internet_checksum, pseudo_header_sum, replace};
use crate::conntrack::conn::{IPS_DST_NAT, IPS_DST_NAT_DONE, IPS_SRC_NAT, IPS_SRC_NAT_DONE};
use crate::conntrack::proto_sctp::crc32c;
use crate::engine::{Addressing, PacketRecord};
use crate::nat::manip::is_icmp_query;
use crate::packet::{Packet, PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP};
use crate::packet::{PROTO_GRE, PROTO_UDPLITE};

const PROTO_DCCP: u8 = 33;
const ICMP_REDIRECT: u8 = 5;
const ICMPV6_REDIRECT: u8 = 137;
/// The ICMP/ICMPv6 header before a quoted datagram.
const ICMP_HEADER: usize = 8;
/// The layer-4 bytes of a quoted datagram NAT must be able to write: the
/// 8 every tracked protocol's ports (or ICMP id) fit in.
const QUOTED_L4: usize = 8;
/// The whole headers whose checksum NAT updates, when that much is there.
const TCP_HEADER: usize = 20;
const DCCP_HEADER: usize = 12;
const SCTP_HEADER: usize = 12;

/// Why NAT drops an ICMP error related to a connection of `status` instead
/// of translating it (nf_nat_icmp_reply_translation failing), or None.
/// `translates`: the connection's binding changes the error's half.
///
/// A redirect is translated only about a connection NAT has seen at both
/// hooks and left alone; one whose quoted datagram is too short for its
/// headers to be rewritten is dropped.
pub fn icmp_error_drop(pkt: &Packet<'_>, status: u32, translates: bool) -> Option<String> {
    let ip_header = if pkt.family == 4 { 20 } else { 40 };
    let quote = pkt.l4_off + ICMP_HEADER;
    if pkt.data.len() < quote + ip_header {
        return Some(format!(
            "NAT cannot rewrite the quoted datagram: {} of its {ip_header} header bytes quoted",
            pkt.data.len().saturating_sub(quote)
        ));
    }
    let redirect = if pkt.family == 4 {
        ICMP_REDIRECT
    } else {
        ICMPV6_REDIRECT
    };
    if pkt.icmp_type == redirect {
        let both = IPS_SRC_NAT_DONE | IPS_DST_NAT_DONE;
        if status & both != both {
            return Some(
                "NAT drops a redirect about a connection not yet bound at both hooks".into(),
            );
        }
        if status & (IPS_SRC_NAT | IPS_DST_NAT) != 0 {
            return Some("NAT drops a redirect about a translated connection".into());
        }
    }
    if !translates {
        return None;
    }
    let inner = pkt.inner.as_deref()?;
    let l4 = quoted_l4(inner)?;
    let have = pkt.data.len().saturating_sub(quote + l4);
    (needs_l4(inner.proto) && have < QUOTED_L4).then(|| {
        format!(
            "NAT cannot rewrite the quoted datagram: {have} of {QUOTED_L4} layer-4 bytes quoted"
        )
    })
}

/// Where a quoted datagram's layer-4 header starts (relative to it), when
/// NAT rewrites it: not behind an IPv6 fragment header with an offset.
fn quoted_l4(inner: &Packet<'_>) -> Option<usize> {
    let later = inner.family == 6 && inner.is_later_fragment();
    (inner.l4_off > 0 && !later).then_some(inner.l4_off)
}

/// Protocols whose header NAT rewrites (the others pass unmodified).
fn needs_l4(proto: u8) -> bool {
    matches!(
        proto,
        PROTO_TCP
            | PROTO_UDP
            | PROTO_UDPLITE
            | PROTO_SCTP
            | PROTO_DCCP
            | PROTO_ICMP
            | PROTO_ICMPV6
            | PROTO_GRE
    )
}

/// The frame a packet leaves as: the captured frame with its datagram
/// rewritten when NAT translated it (link-layer header and trailer kept);
/// None when it leaves as captured (untranslated, or a fragment, whose
/// datagram is translated only once reassembled).
pub fn leaving_frame(frame: &[u8], pkt: &Packet<'_>, rec: &PacketRecord) -> Option<Vec<u8>> {
    if pkt.fragment.is_some() || pkt.family == 0 {
        return None;
    }
    // The datagram is a part of the frame: where it starts is the
    // distance between the two.
    let start = (pkt.data.as_ptr() as usize).checked_sub(frame.as_ptr() as usize)?;
    let end = start.checked_add(pkt.data.len())?;
    frame.get(start..end)?;
    // A NAT helper's payload rewrite and sequence adjustment included.
    let datagram = crate::nat::mangle::leaving_datagram(pkt, rec)?;
    let mut out = Vec::with_capacity(frame.len());
    out.extend_from_slice(&frame[..start]);
    out.extend_from_slice(&datagram);
    out.extend_from_slice(&frame[end..]);
    Some(out)
}

/// The bytes of `orig` leaving with the addresses and ports of `leaves`
/// and, for an ICMP error that was translated back, its quoted datagram
/// with those of `quoted`. Short data is rewritten as far as it goes.
pub fn rewrite_datagram(
    orig: &Packet<'_>,
    leaves: &Addressing,
    quoted: Option<&Addressing>,
) -> Vec<u8> {
    let mut buf = orig.data.to_vec();
    let outer = Header::of(orig, 0, Some(orig.l4_off));
    let inner = orig.inner.as_deref().zip(quoted);
    let Some((inner, quoted)) = inner else {
        outer.manip(&mut buf, &Addressing::of(orig), leaves);
        return buf;
    };
    let at = orig.l4_off + ICMP_HEADER;
    let header = Header::of(inner, at, quoted_l4(inner).map(|l4| at + l4));
    header.manip(&mut buf, &Addressing::of(inner), quoted);
    // The error's own checksum covers the quote: computed afresh (for
    // ICMPv6 with the addresses the error leaves with, which is what the
    // kernel's later incremental update of the pseudo-header comes to).
    let l4 = orig.l4_off;
    if buf.len() >= l4 + 4 {
        buf[l4 + 2..l4 + 4].fill(0);
        let initial = if orig.family == 6 {
            let len = (buf.len() - l4) as u32;
            pseudo_header_sum(6, leaves.src, leaves.dst, PROTO_ICMPV6, len)
        } else {
            0
        };
        let sum = internet_checksum(&buf[l4..], initial);
        buf[l4 + 2..l4 + 4].copy_from_slice(&sum.to_be_bytes());
    }
    let addresses_only = Header { l4: None, ..outer };
    addresses_only.manip(&mut buf, &Addressing::of(orig), leaves);
    buf
}

/// One IP header to rewrite, at `ip` in the buffer, with its layer-4
/// header at `l4` (None: leave the layer-4 bytes alone).
#[derive(Clone, Copy)]
struct Header {
    family: u8,
    proto: u8,
    ip: usize,
    l4: Option<usize>,
    /// An ICMP/ICMPv6 query, whose identifier NAT maps.
    query: bool,
}

impl Header {
    fn of(pkt: &Packet<'_>, ip: usize, l4: Option<usize>) -> Header {
        Header {
            family: pkt.family,
            proto: pkt.proto,
            ip,
            l4,
            query: is_icmp_query(pkt),
        }
    }

    fn address_bytes(&self, addr: u128) -> Vec<u8> {
        if self.family == 4 {
            (addr as u32).to_be_bytes().to_vec()
        } else {
            addr.to_be_bytes().to_vec()
        }
    }

    /// The pseudo-header words that change: both addresses, old and new.
    fn addresses(&self, at: &Addressing) -> Vec<u8> {
        let mut out = self.address_bytes(at.src);
        out.extend(self.address_bytes(at.dst));
        out
    }

    /// Set this header's addresses and ports from `from` to `to`: layer 4
    /// first, then the IP header (the kernel's order).
    fn manip(&self, buf: &mut [u8], from: &Addressing, to: &Addressing) {
        if let Some(l4) = self.l4 {
            self.manip_l4(buf, l4, from, to);
        }
        let (old, new) = (self.addresses(from), self.addresses(to));
        let (src_at, check_at) = if self.family == 4 {
            (self.ip + 12, Some(self.ip + 10))
        } else {
            (self.ip + 8, None)
        };
        if buf.len() < src_at + new.len() {
            return;
        }
        if let Some(at) = check_at {
            let check = be16(buf, at);
            put16(buf, at, replace(check, &old, &new));
        }
        buf[src_at..src_at + new.len()].copy_from_slice(&new);
    }

    fn manip_l4(&self, buf: &mut [u8], l4: usize, from: &Addressing, to: &Addressing) {
        let len = buf.len();
        if len < l4 + 4 {
            return;
        }
        let mut old = self.addresses(from);
        let mut new = self.addresses(to);
        let ports = |a: &Addressing| [a.sport.to_be_bytes(), a.dport.to_be_bytes()].concat();
        match self.proto {
            PROTO_TCP | PROTO_UDP | PROTO_UDPLITE | PROTO_DCCP => {
                old.extend(ports(from));
                new.extend(ports(to));
                buf[l4..l4 + 4].copy_from_slice(&ports(to));
                let check_at = if self.proto == PROTO_TCP { 16 } else { 6 };
                let whole = match self.proto {
                    PROTO_TCP => TCP_HEADER,
                    PROTO_DCCP => DCCP_HEADER,
                    _ => QUOTED_L4,
                };
                if len < l4 + whole {
                    return;
                }
                let at = l4 + check_at;
                let check = be16(buf, at);
                let udp = matches!(self.proto, PROTO_UDP | PROTO_UDPLITE);
                // UDP without a checksum keeps none; a UDP checksum that
                // comes out as 0 is sent as 0xFFFF (0 would mean none).
                if self.proto == PROTO_UDP && check == 0 {
                    return;
                }
                let sum = replace(check, &old, &new);
                put16(buf, at, if udp && sum == 0 { 0xFFFF } else { sum });
            }
            PROTO_SCTP => {
                buf[l4..l4 + 4].copy_from_slice(&ports(to));
                if len >= l4 + SCTP_HEADER {
                    buf[l4 + 8..l4 + 12].fill(0);
                    let crc = crc32c(&buf[l4..]);
                    buf[l4 + 8..l4 + 12].copy_from_slice(&crc.to_le_bytes());
                }
            }
            PROTO_ICMP | PROTO_ICMPV6 => {
                if len < l4 + ICMP_HEADER {
                    return;
                }
                if self.proto == PROTO_ICMP {
                    // ICMP has no pseudo-header: only the id counts.
                    old.clear();
                    new.clear();
                }
                if self.query {
                    old.extend(from.sport.to_be_bytes());
                    new.extend(to.sport.to_be_bytes());
                    put16(buf, l4 + 4, to.sport);
                }
                if !new.is_empty() {
                    let at = l4 + 2;
                    let check = be16(buf, at);
                    put16(buf, at, replace(check, &old, &new));
                }
            }
            _ => {}
        }
    }
}

fn be16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

fn put16(buf: &mut [u8], at: usize, value: u16) {
    buf[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

#[cfg(test)]
#[path = "rewrite_tests.rs"]
mod tests;
