//! UDP and UDP-Lite trackers (net/netfilter/nf_conntrack_proto_udp.c).
//!
//! Neither protocol has states: an entry only carries status bits and one
//! of two timeouts. What differs is when the long "stream" timeout and
//! ASSURED apply:
//!
//! * UDP (`nf_conntrack_udp_packet`): a reply must already have been seen
//!   *and* the entry must be more than 2 s old. The first reply itself never
//!   counts, because the core sets SEEN_REPLY only after the tracker has run.
//! * UDP-Lite (`nf_conntrack_udplite_packet`) kept the older rule: any
//!   packet after the first reply gets the stream timeout and ASSURED at once.
//!
//! Validation (`udp_error`, `udplite_error`) runs before the lookup; in the
//! kernel it runs at the top of the packet function, but nothing changes
//! state before it, so the verdicts are the same.

use std::borrow::Cow;

use crate::checksum;
use crate::config::Sysctls;
use crate::conntrack::conn::{Conn, IPS_ASSURED, IPS_SEEN_REPLY, REPLY};
use crate::conntrack::l4proto::{Action, Outcome};
use crate::packet::{Packet, PROTO_UDP, PROTO_UDPLITE};
use crate::reason::Reason;

pub const UDP_NAME: &str = "udp";
pub const UDPLITE_NAME: &str = "udplite";
pub const UDP_HEADER_LEN: usize = 8;
/// A replied UDP flow is a "stream" only once it has lived longer than this
/// (the kernel stores created + 2 s as `stream_ts` and compares strictly).
pub const UDP_STREAM_AGE: f64 = 2.0;

const UNREPLIED: &str = "UDP: no reply seen yet (nf_conntrack_udp_timeout)";
const FIRST_REPLY: &str =
    "UDP: first reply; streams start with the next packet (nf_conntrack_udp_timeout)";
const YOUNG: &str = "UDP: replied but not older than 2 s (nf_conntrack_udp_timeout)";
const STREAM: &str =
    "UDP: stream, replied and older than 2 s (nf_conntrack_udp_timeout_stream, ASSURED)";
const LITE_UNREPLIED: &str = "UDP-Lite: no reply seen yet (nf_conntrack_udp_timeout)";
const LITE_FIRST_REPLY: &str =
    "UDP-Lite: first reply; ASSURED from the next packet (nf_conntrack_udp_timeout)";
const LITE_STREAM: &str = "UDP-Lite: replied (nf_conntrack_udp_timeout_stream, ASSURED)";

fn segment<'a>(pkt: &Packet<'a>) -> &'a [u8] {
    pkt.data.get(pkt.l4_off..).unwrap_or(&[])
}

/// Header length, length field and (at PREROUTING) checksum, as `udp_error`.
pub fn udp_error(pkt: &Packet, cfg: &Sysctls, in_prerouting: bool) -> Option<Reason> {
    let seg = segment(pkt);
    let available = seg.len();
    if available < UDP_HEADER_LEN {
        return Some(Cow::Owned(format!(
            "INVALID: UDP short packet ({available} bytes, header needs 8)"
        )));
    }
    let length = usize::from(u16::from_be_bytes([seg[4], seg[5]]));
    if length > available || length < UDP_HEADER_LEN {
        return Some(Cow::Owned(format!(
            "INVALID: UDP truncated/malformed packet (length field {length}, \
             {available} bytes present)"
        )));
    }
    if seg[6] | seg[7] == 0 {
        // Checksum 0 means "none" and is accepted unchecked, for IPv6 too.
        return None;
    }
    let checked = in_prerouting && cfg.nf_conntrack_checksum != 0;
    if checked && !checksum::l4_checksum_ok(pkt.family, pkt.src, pkt.dst, PROTO_UDP, seg) {
        return Some(Cow::Borrowed("INVALID: UDP bad checksum"));
    }
    None
}

/// `udplite_error` including 6.18's checksum quirk (see `udplite_checksum_ok`).
pub fn udplite_error(pkt: &Packet, cfg: &Sysctls, in_prerouting: bool) -> Option<Reason> {
    udplite_error_with(pkt, cfg, in_prerouting, true)
}

/// `udplite_error` with the checksum computed as RFC 3828 defines it.
pub fn udplite_error_rfc3828(pkt: &Packet, cfg: &Sysctls, in_prerouting: bool) -> Option<Reason> {
    udplite_error_with(pkt, cfg, in_prerouting, false)
}

fn udplite_error_with(
    pkt: &Packet,
    cfg: &Sysctls,
    in_prerouting: bool,
    quirk: bool,
) -> Option<Reason> {
    let seg = segment(pkt);
    let available = seg.len();
    if available < UDP_HEADER_LEN {
        return Some(Cow::Owned(format!(
            "INVALID: UDP-Lite short packet ({available} bytes, header needs 8)"
        )));
    }
    let mut coverage = usize::from(u16::from_be_bytes([seg[4], seg[5]]));
    if coverage == 0 {
        coverage = available;
    } else if coverage < UDP_HEADER_LEN || coverage > available {
        return Some(Cow::Owned(format!(
            "INVALID: UDP-Lite invalid checksum coverage ({coverage}, \
             {available} bytes present)"
        )));
    }
    if seg[6] | seg[7] == 0 {
        return Some(Cow::Borrowed(
            "INVALID: UDP-Lite checksum missing (UDP-Lite requires one)",
        ));
    }
    if in_prerouting && cfg.nf_conntrack_checksum != 0 && !udplite_checksum_ok(pkt, coverage, quirk)
    {
        return Some(Cow::Borrowed("INVALID: UDP-Lite bad checksum"));
    }
    None
}

/// Verify the UDP-Lite checksum over its first `coverage` bytes.
///
/// Linux 6.18 asks for the partial checksum with protocol UDP (17) instead
/// of UDP-Lite (136); on IPv4 the helper also swaps the length and protocol
/// arguments, and the protocol slot only holds a byte. So the kernel accepts
/// IPv4 segments summed with "protocol" = length mod 256 and "length" = 17,
/// IPv6 segments summed with next-header 17, and rejects correct ones. With
/// `kernel_6_18_quirk` false the RFC 3828 pseudo-header (protocol 136) is used.
pub fn udplite_checksum_ok(pkt: &Packet, coverage: usize, kernel_6_18_quirk: bool) -> bool {
    let seg = segment(pkt);
    let segment_len = seg.len() as u32;
    let (family, src, dst) = (pkt.family, pkt.src, pkt.dst);
    let seed = if !kernel_6_18_quirk {
        checksum::pseudo_header_sum(family, src, dst, PROTO_UDPLITE, segment_len)
    } else if family == 4 {
        checksum::pseudo_header_sum(
            4,
            src,
            dst,
            (segment_len & 0xFF) as u8,
            u32::from(PROTO_UDP),
        )
    } else {
        checksum::pseudo_header_sum(family, src, dst, PROTO_UDP, segment_len)
    };
    let covered = seg.get(..coverage).unwrap_or(seg);
    checksum::verifies(checksum::add_carry(seed, checksum::ones_sum(covered)))
}

/// Any valid UDP datagram may start a flow.
pub fn new(_conn: &mut Conn, _pkt: &Packet, _cfg: &Sysctls) -> Result<(), Reason> {
    Ok(())
}

pub fn udp_packet(
    conn: &mut Conn,
    _pkt: &Packet,
    direction: u8,
    _ctinfo: u8,
    now: f64,
    cfg: &Sysctls,
) -> Outcome {
    let status = conn.status;
    if status & IPS_SEEN_REPLY == 0 {
        conn.refresh_acct(now, cfg.nf_conntrack_udp_timeout as f64);
        let reason = if direction == REPLY {
            FIRST_REPLY
        } else {
            UNREPLIED
        };
        return (Action::Accept, Cow::Borrowed(reason));
    }
    if now <= conn.created + UDP_STREAM_AGE {
        conn.refresh_acct(now, cfg.nf_conntrack_udp_timeout as f64);
        return (Action::Accept, Cow::Borrowed(YOUNG));
    }
    conn.refresh_acct(now, cfg.nf_conntrack_udp_timeout_stream as f64);
    conn.status |= IPS_ASSURED;
    (Action::Accept, Cow::Borrowed(STREAM))
}

pub fn udplite_packet(
    conn: &mut Conn,
    _pkt: &Packet,
    direction: u8,
    _ctinfo: u8,
    now: f64,
    cfg: &Sysctls,
) -> Outcome {
    let status = conn.status;
    if status & IPS_SEEN_REPLY == 0 {
        conn.refresh_acct(now, cfg.nf_conntrack_udp_timeout as f64);
        let reason = if direction == REPLY {
            LITE_FIRST_REPLY
        } else {
            LITE_UNREPLIED
        };
        return (Action::Accept, Cow::Borrowed(reason));
    }
    conn.refresh_acct(now, cfg.nf_conntrack_udp_timeout_stream as f64);
    conn.status |= IPS_ASSURED;
    (Action::Accept, Cow::Borrowed(LITE_STREAM))
}
