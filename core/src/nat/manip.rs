//! Rewriting a packet to its connection's binding (nf_nat_manip_pkt,
//! nf_nat_icmp_reply_translation).
//!
//! The walk rewrites the decoded fields every later hook and rule reads
//! (addresses, ports, the ICMP query id); the bytes of a packet that leaves
//! translated are rewritten once, when they are written out
//! (`rewrite_datagram`), with the checksums the kernel would leave.

use crate::conntrack::conn::{Conn, Tuple, IPS_DST_NAT, IPS_SRC_NAT, REPLY};
use crate::engine::Addressing;
use crate::nat::Manip;
use crate::packet::{Packet, PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP};

const PROTO_DCCP: u8 = 33;
const PROTO_UDPLITE: u8 = 136;

pub(crate) fn has_ports(proto: u8) -> bool {
    matches!(
        proto,
        PROTO_TCP | PROTO_UDP | PROTO_UDPLITE | PROTO_DCCP | PROTO_SCTP
    )
}

/// ICMP and ICMPv6 queries, whose identifier NAT maps like a port.
pub(crate) fn is_icmp_query(pkt: &Packet<'_>) -> bool {
    match pkt.proto {
        PROTO_ICMP => matches!(pkt.icmp_type, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18),
        PROTO_ICMPV6 => matches!(pkt.icmp_type, 128 | 129),
        _ => false,
    }
}

/// The status bit that says whether a packet of `direction` is rewritten
/// by `manip`: a source-translated connection has its replies'
/// destination rewritten, and the other way round.
pub fn status_bit(manip: Manip, direction: u8) -> u32 {
    let bit = match manip {
        Manip::Src => IPS_SRC_NAT,
        Manip::Dst => IPS_DST_NAT,
    };
    if direction == REPLY {
        bit ^ (IPS_SRC_NAT | IPS_DST_NAT)
    } else {
        bit
    }
}

/// The inverse of a tuple, as NAT reads it: addresses and ports swapped,
/// an ICMP identifier kept.
pub fn inverse(proto: u8, tuple: &Tuple) -> Tuple {
    if proto == PROTO_ICMP || proto == PROTO_ICMPV6 {
        Tuple::new(tuple.dst, tuple.src, tuple.sport, tuple.dport)
    } else {
        Tuple::new(tuple.dst, tuple.src, tuple.dport, tuple.sport)
    }
}

/// Set one half of the packet to the target tuple's (l4proto_manip_pkt and
/// the address rewrite of nf_nat_ipv4/ipv6_manip_pkt); returns the packet's
/// new addressing. The new values are worked out from one read of the
/// fields and stored once: reading a port pair back right after a two-byte
/// store to it would stall the processor's store forwarding on every
/// translated packet.
pub fn set_half(pkt: &mut Packet<'_>, target: &Tuple, manip: Manip) -> Addressing {
    let mut at = Addressing::of(pkt);
    let ports = has_ports(pkt.proto);
    match manip {
        Manip::Src => {
            at.src = target.src;
            if ports {
                at.sport = target.sport;
            }
        }
        Manip::Dst => {
            at.dst = target.dst;
            if ports {
                at.dport = target.dport;
            }
        }
    }
    if is_icmp_query(pkt) {
        pkt.icmp_id = target.sport;
        at.sport = target.sport;
    }
    at.store(pkt);
    at
}

/// nf_nat_packet: rewrite a packet of `direction` at a hook doing `manip`,
/// when the connection's binding changes that half. Returns the packet's
/// new addressing when it did.
pub fn translate(
    pkt: &mut Packet<'_>,
    conn: &Conn,
    manip: Manip,
    direction: u8,
) -> Option<Addressing> {
    if conn.status & status_bit(manip, direction) == 0 {
        return None;
    }
    let target = inverse(conn.proto, conn.tuple(direction ^ 1));
    Some(set_half(pkt, &target, manip))
}

/// nf_nat_icmp_reply_translation: an ICMP error about a translated
/// connection. The quoted packet is put back as the other direction's
/// tuple has it, and the outer header is addressed like a reply to it.
/// True when anything changed.
pub fn translate_icmp_error(
    pkt: &mut Packet<'_>,
    conn: &Conn,
    manip: Manip,
    direction: u8,
) -> bool {
    if conn.status & status_bit(manip, direction) == 0 {
        return false;
    }
    let other = *conn.tuple(direction ^ 1);
    if let Some(inner) = pkt.inner.as_deref_mut() {
        let inner_manip = match manip {
            Manip::Src => Manip::Dst,
            Manip::Dst => Manip::Src,
        };
        set_half(inner, &other, inner_manip);
    }
    let target = inverse(conn.proto, &other);
    match manip {
        Manip::Src => pkt.src = target.src,
        Manip::Dst => pkt.dst = target.dst,
    }
    true
}
