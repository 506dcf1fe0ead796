//! Decoding captured frames into `Packet` values: link layer, IP, layer 4.
//!
//! Decoding never panics and never fails outright. A frame it cannot fully
//! decode comes back with `Packet::error` set, and the error's layer says how
//! far the kernel would get with it:
//!
//! * `link`: not an IP frame (ARP, LLDP...) or a broken link header; the IPv4
//!   and IPv6 hooks never see it (family 0).
//! * `ipv4`, `ipv6`: `ip_rcv_core`/`ip6_rcv_core` drop it before PREROUTING
//!   (bad header checksum, truncated datagram...); see
//!   `Layer::drops_before_netfilter`.
//! * `ipv6-ext`, `tcp`, `udp`, `icmp`, ...: the datagram reaches netfilter but
//!   conntrack cannot read the header it needs, so the packet is INVALID.
//!
//! The common frame (Ethernet, untagged IPv4, TCP or UDP) takes a straight
//! path that allocates nothing: the packet borrows the frame, and only rare
//! outcomes (errors, ICMP quotes, SYN-style TCP options) touch the heap.

pub mod ip;
pub mod ipv4_options;
pub mod l4;
pub mod link;

pub use ip::decode_datagram;
pub use ipv4_options::compile_ipv4_options;
pub use l4::parse_tcp_options;
pub use link::{decode_frame, SUPPORTED_LINKTYPES};

use crate::packet::{DecodeError, Layer, Packet};

/// Record a decoding error on `pkt` (rare path: the cause is formatted text).
#[cold]
fn fail(pkt: &mut Packet<'_>, layer: Layer, offset: usize, cause: impl Into<Box<str>>) {
    pkt.error = Some(Box::new(DecodeError::new(layer, offset, cause)));
}

/// Big-endian u16 at `at`, 0 past the end (callers check lengths first).
#[inline]
fn be16(data: &[u8], at: usize) -> u16 {
    match data.get(at..at + 2) {
        Some(&[a, b]) => u16::from_be_bytes([a, b]),
        _ => 0,
    }
}

/// Big-endian u32 at `at`, 0 past the end (callers check lengths first).
#[inline]
fn be32(data: &[u8], at: usize) -> u32 {
    match data.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// The byte at `at`, 0 past the end (callers check lengths first).
#[inline]
fn byte(data: &[u8], at: usize) -> u8 {
    data.get(at).copied().unwrap_or(0)
}
