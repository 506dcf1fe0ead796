//! The GRE tracker (net/netfilter/nf_conntrack_proto_gre.c).
//!
//! Plain GRE (version 0, and any version other than 1) is tracked like a
//! generic protocol, with both tuple keys 0: one entry per address pair.
//! Enhanced GRE (version 1, PPTP) carrying PPP is keyed by the call-id in its
//! header (the tuple's destination key); the source key comes from the PPTP
//! helper's keymap and is 0 without one. Version 1 with another payload
//! protocol cannot be turned into a tuple, so the packet is INVALID.
//!
//! Each entry keeps its own pair of timeouts, copied from the sysctls when it
//! is created so that the PPTP helper can raise them for its data channels
//! (`ct->proto.gre.timeout` / `stream_timeout`). Before a reply the short one
//! applies; from the packet after the first reply on, the stream one and
//! ASSURED.

use std::borrow::Cow;

use crate::config::Sysctls;
use crate::conntrack::conn::{Conn, ProtoData, IPS_ASSURED, IPS_SEEN_REPLY};
use crate::conntrack::l4proto::{Action, Outcome};
use crate::packet::Packet;
use crate::reason::Reason;

pub const NAME: &str = "gre";
pub const GRE_PROTO_PPP: u16 = 0x880B;
pub const GRE_VERSION_PPTP: u8 = 1;
/// Bytes of the enhanced GRE header up to and including the call-id.
pub const PPTP_KEY_HEADER_LEN: usize = 8;

const UNREPLIED: &str = "GRE: no reply seen yet (timeout)";
const STREAM: &str = "GRE: replied (stream_timeout, ASSURED)";

fn be16(data: &[u8], at: usize) -> Option<u16> {
    let bytes = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

/// (source key, destination key) of a GRE header at `off`, as `gre_pkt_to_tuple`.
///
/// None means no tuple can be built (version 1 carrying something other
/// than PPP). Headers too short to hold a key give keys 0/0, like the
/// kernel. The source key is always 0 here: the PPTP keymap is the helper's.
pub fn gre_keys(data: &[u8], off: usize) -> Option<(u16, u16)> {
    let available = data.len().saturating_sub(off);
    let version = data.get(off.wrapping_add(1)).map(|flags| flags & 0x07);
    if available < 4 || version != Some(GRE_VERSION_PPTP) {
        return Some((0, 0));
    }
    if available < PPTP_KEY_HEADER_LEN {
        return Some((0, 0));
    }
    if be16(data, off + 2) != Some(GRE_PROTO_PPP) {
        return None;
    }
    Some((0, be16(data, off + 6).unwrap_or(0)))
}

/// The only GRE packet conntrack refuses is one it cannot build a tuple for.
pub fn error(pkt: &Packet, _cfg: &Sysctls, _in_prerouting: bool) -> Option<Reason> {
    if gre_keys(pkt.data, pkt.l4_off).is_some() {
        return None;
    }
    let protocol = be16(pkt.data, pkt.l4_off.wrapping_add(2)).unwrap_or(0);
    Some(Cow::Owned(format!(
        "INVALID: GRE version 1 carrying protocol {protocol:#06x} \
         (only PPP over enhanced GRE can be tracked)"
    )))
}

fn own_timeouts(cfg: &Sysctls) -> ProtoData {
    ProtoData::Gre {
        timeout: clamp_u32(cfg.nf_conntrack_gre_timeout),
        stream_timeout: clamp_u32(cfg.nf_conntrack_gre_timeout_stream),
    }
}

fn clamp_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

pub fn new(conn: &mut Conn, _pkt: &Packet, cfg: &Sysctls) -> Result<(), Reason> {
    conn.proto_data = own_timeouts(cfg);
    Ok(())
}

/// The entry's (timeout, stream timeout), as /proc prints them.
pub fn timeouts(conn: &Conn) -> (u32, u32) {
    match conn.proto_data {
        ProtoData::Gre {
            timeout,
            stream_timeout,
        } => (timeout, stream_timeout),
        _ => (30, 180),
    }
}

pub fn packet(
    conn: &mut Conn,
    _pkt: &Packet,
    _direction: u8,
    _ctinfo: u8,
    now: f64,
    cfg: &Sysctls,
) -> Outcome {
    let (timeout, stream_timeout) = match conn.proto_data {
        ProtoData::Gre {
            timeout,
            stream_timeout,
        } => (timeout, stream_timeout),
        _ => {
            conn.proto_data = own_timeouts(cfg);
            timeouts(conn)
        }
    };
    let status = conn.status;
    if status & IPS_SEEN_REPLY == 0 {
        conn.refresh_acct(now, f64::from(timeout));
        return (Action::Accept, Cow::Borrowed(UNREPLIED));
    }
    conn.refresh_acct(now, f64::from(stream_timeout));
    conn.status |= IPS_ASSURED;
    (Action::Accept, Cow::Borrowed(STREAM))
}
