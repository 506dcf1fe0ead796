//! The decoded packet: the one value that flows from decoding through defrag,
//! connection tracking and rule matching.
//!
//! A `Packet` borrows the bytes of its datagram (from the capture buffer, or
//! from the defragmenter's reassembly buffer) and carries the header fields
//! every later stage reads, decoded once. Addresses are `u128` for both
//! families (an IPv4 address sits in the low 32 bits): they hash, mask and
//! compare without branching on the family.
//!
//! Field conventions mirror the kernel's view of a packet after
//! defragmentation: `data` is the whole IP datagram (header included),
//! `l4_off` is where the layer-4 header starts and `payload_off` where the
//! layer-4 payload starts.

use std::fmt;
use std::sync::Arc;

// TCP flag bits as they sit in byte 13 of the header.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const URG: u8 = 0x20;
pub const ECE: u8 = 0x40;
pub const CWR: u8 = 0x80;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_GRE: u8 = 47;
pub const PROTO_ICMPV6: u8 = 58;
pub const PROTO_SCTP: u8 = 132;
pub const PROTO_UDPLITE: u8 = 136;

/// The layer a decoding error belongs to: it says how far the kernel gets
/// with the packet (see `Layer::drops_before_netfilter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Not an IP frame or a broken link header: the IP hooks never see it.
    Link,
    /// A bare datagram whose version nibble is neither 4 nor 6.
    Ip,
    Ipv4,
    Ipv6,
    Ipv6Ext,
    Tcp,
    Udp,
    Udplite,
    Icmp,
    Icmpv6,
    Sctp,
    Gre,
}

impl Layer {
    /// The name used in reasons ("ipv4 at byte 14: ...").
    pub fn name(self) -> &'static str {
        match self {
            Layer::Link => "link",
            Layer::Ip => "ip",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Ipv6Ext => "ipv6-ext",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Udplite => "udplite",
            Layer::Icmp => "icmp",
            Layer::Icmpv6 => "icmpv6",
            Layer::Sctp => "sctp",
            Layer::Gre => "gre",
        }
    }

    /// `ip_rcv_core` / `ip6_rcv_core` drop such a datagram before PREROUTING.
    pub fn drops_before_netfilter(self) -> bool {
        matches!(self, Layer::Ipv4 | Layer::Ipv6)
    }
}

/// A packet that cannot be fully decoded: the layer and byte offset at fault.
///
/// The cause is text because it is only ever shown to a person, and only
/// malformed packets (rare by nature) carry one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub layer: Layer,
    pub offset: usize,
    pub cause: Box<str>,
}

impl DecodeError {
    pub fn new(layer: Layer, offset: usize, cause: impl Into<Box<str>>) -> Self {
        DecodeError {
            layer,
            offset,
            cause: cause.into(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at byte {}: {}",
            self.layer.name(),
            self.offset,
            self.cause
        )
    }
}

impl std::error::Error for DecodeError {}

/// The TCP options conntrack's window tracking reads (kernel: tcp_options, tcp_sack).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    /// Shift count as sent (the kernel caps it at 14 when it uses it).
    pub wscale: Option<u8>,
    pub sack_perm: bool,
    /// (left edge, right edge) of each SACK block, at most four.
    pub sack_blocks: Vec<(u32, u32)>,
    /// (TSval, TSecr)
    pub timestamp: Option<(u32, u32)>,
}

/// Where a fragment sits in its datagram (IPv4 header fields or the IPv6 fragment header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentInfo {
    pub ident: u32,
    /// Byte offset of this fragment's payload in the datagram's payload.
    pub offset: u32,
    /// The MF flag.
    pub more: bool,
    /// Protocol of the datagram payload (IPv6: from the fragment header).
    pub next_proto: u8,
    /// Length of the headers that precede the fragmentable part.
    pub unfrag_len: u32,
}

/// What the kernel's IPv4 option parser (`ip_options_compile`, called from
/// `ip_rcv_options` after PREROUTING on any header longer than 20 bytes)
/// makes of the datagram's options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ipv4Options {
    /// No options: IPv6, a 20-byte header, or a datagram the option parser
    /// never sees (a quoted one, or one dropped earlier by `ip_rcv_core`).
    #[default]
    None,
    /// Options that parse and do not route by source.
    Ok,
    /// A loose (LSRR) or strict (SSRR) source route: dropped unless the
    /// receiving interface's accept_source_route allows it.
    SourceRouted { strict: bool },
    /// Options the parser rejects: a header error, the datagram is dropped.
    /// `pointer` is the byte (from the start of the IP header) a parameter
    /// problem message would point at.
    Malformed { pointer: u8, reason: &'static str },
}

/// How the link layer addressed the frame (the kernel's skb->pkt_type).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PktType {
    #[default]
    Host,
    Broadcast,
    Multicast,
    OtherHost,
    Outgoing,
    Loopback,
    /// A Linux cooked-capture packet type statewall has no name for.
    Other(u16),
}

impl PktType {
    pub fn name(self) -> String {
        match self {
            PktType::Host => "host".into(),
            PktType::Broadcast => "broadcast".into(),
            PktType::Multicast => "multicast".into(),
            PktType::OtherHost => "otherhost".into(),
            PktType::Outgoing => "outgoing".into(),
            PktType::Loopback => "loopback".into(),
            PktType::Other(n) => format!("type{n}"),
        }
    }
}

/// An interface name, shared by every packet captured on that interface.
pub type IfaceName = Arc<str>;

/// One IP datagram as conntrack and the rules see it.
///
/// `error` is set (and most layer-4 fields left at zero) when the packet
/// could not be fully decoded: conntrack treats it as INVALID with that
/// reason. `fragment` is set for a datagram that is only a piece of a larger
/// one; the defragmenter consumes those and the reassembled datagram is
/// decoded as a new `Packet`. `inner` holds the datagram an ICMP or ICMPv6
/// error quotes, decoded leniently (it is usually truncated).
#[derive(Clone, Debug)]
pub struct Packet<'a> {
    /// 0-based position in the capture.
    pub index: u64,
    /// Capture timestamp, seconds since the epoch.
    pub ts: f64,
    /// The whole IP datagram, header included (empty for non-IP frames).
    pub data: &'a [u8],
    /// 0 (not IP), 4 or 6.
    pub family: u8,
    pub src: u128,
    pub dst: u128,
    pub proto: u8,
    pub ttl: u8,
    pub tos: u8,
    /// The IP total length (IPv6: payload length + 40).
    pub ip_len: u32,
    pub ip_id: u32,
    pub l4_off: usize,
    pub payload_off: usize,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    /// Set when the TCP header carries options that window tracking reads
    /// (MSS, window scale, SACK-permitted, SACK blocks); it then holds every
    /// option read, timestamps included. A header whose only option is a
    /// timestamp (most data segments) leaves it `None`, so the common
    /// segment costs no allocation: `tcp_option_bytes` and
    /// `decode::parse_tcp_options` read any header's options on demand.
    pub tcp_options: Option<Box<TcpOptions>>,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub icmp_id: u16,
    pub fragment: Option<FragmentInfo>,
    pub error: Option<Box<DecodeError>>,
    pub iface_in: Option<IfaceName>,
    pub iface_out: Option<IfaceName>,
    /// Link-layer source and destination addresses when the link has them
    /// (Ethernet: 6 bytes; cooked captures: up to 8 bytes of the source).
    pub link_src: Option<&'a [u8]>,
    pub link_dst: Option<&'a [u8]>,
    /// The capture's link type (LINKTYPE_*), 0 for a bare datagram.
    pub link_type: u32,
    /// Length of the captured frame.
    pub frame_len: usize,
    pub pkt_type: PktType,
    pub inner: Option<Box<Packet<'a>>>,
    /// The IPv4 options outcome (see `Ipv4Options`).
    pub ip_options: Ipv4Options,
}

impl<'a> Packet<'a> {
    /// An empty packet of `family` over `data`; decoding fills in the rest.
    pub fn new(index: u64, ts: f64, data: &'a [u8], family: u8) -> Self {
        Packet {
            index,
            ts,
            data,
            family,
            src: 0,
            dst: 0,
            proto: 0,
            ttl: 0,
            tos: 0,
            ip_len: data.len() as u32,
            ip_id: 0,
            l4_off: 0,
            payload_off: 0,
            sport: 0,
            dport: 0,
            tcp_flags: 0,
            seq: 0,
            ack: 0,
            window: 0,
            tcp_options: None,
            icmp_type: 0,
            icmp_code: 0,
            icmp_id: 0,
            fragment: None,
            error: None,
            iface_in: None,
            iface_out: None,
            link_src: None,
            link_dst: None,
            link_type: 0,
            frame_len: data.len(),
            pkt_type: PktType::Host,
            inner: None,
            ip_options: Ipv4Options::None,
        }
    }

    /// The layer-4 payload (what helpers parse).
    pub fn payload(&self) -> &'a [u8] {
        self.data.get(self.payload_off..).unwrap_or(&[])
    }

    pub fn payload_len(&self) -> usize {
        self.data.len().saturating_sub(self.payload_off)
    }

    /// The option bytes of a fully decoded TCP header (empty when it has
    /// none); `None` when the packet has no complete TCP header. Meant for
    /// packets decoded on their own: a quoted datagram's TCP header is never
    /// fully decoded, so its answer means nothing.
    pub fn tcp_option_bytes(&self) -> Option<&'a [u8]> {
        if self.proto != PROTO_TCP || self.error.is_some() || self.is_later_fragment() {
            return None;
        }
        let doff = usize::from(*self.data.get(self.l4_off + 12)? >> 4) * 4;
        if doff < 20 || self.payload_off != self.l4_off + doff {
            return None;
        }
        self.data.get(self.l4_off + 20..self.payload_off)
    }

    /// A non-first fragment (offset > 0): no layer-4 header of its own.
    pub fn is_later_fragment(&self) -> bool {
        matches!(self.fragment, Some(f) if f.offset > 0)
    }
}
