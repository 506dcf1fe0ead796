//! What a nat target asks for: the kernel's `nf_nat_range2`, with the
//! target kind it came from (for the reason a packet carries).

use serde::Deserialize;

// NF_NAT_RANGE_* flags (uapi nf_nat.h).
pub const MAP_IPS: u32 = 1 << 0;
pub const PROTO_SPECIFIED: u32 = 1 << 1;
pub const PROTO_RANDOM: u32 = 1 << 2;
pub const PERSISTENT: u32 = 1 << 3;
pub const PROTO_RANDOM_FULLY: u32 = 1 << 4;
pub const PROTO_OFFSET: u32 = 1 << 5;
pub const RANDOM_ALL: u32 = PROTO_RANDOM | PROTO_RANDOM_FULLY;

/// The nat targets of iptables (and, later, nftables' nat statements).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum NatKind {
    #[serde(rename = "SNAT")]
    Snat,
    #[serde(rename = "DNAT")]
    Dnat,
    #[serde(rename = "MASQUERADE")]
    Masquerade,
    #[serde(rename = "REDIRECT")]
    Redirect,
    #[serde(rename = "NETMAP")]
    Netmap,
}

impl NatKind {
    pub fn name(self) -> &'static str {
        match self {
            NatKind::Snat => "SNAT",
            NatKind::Dnat => "DNAT",
            NatKind::Masquerade => "MASQUERADE",
            NatKind::Redirect => "REDIRECT",
            NatKind::Netmap => "NETMAP",
        }
    }
}

/// An address and port range (addresses as u128, IPv4 in the low 32 bits).
/// `base_port` is the start of the original ports an offset mapping
/// (`--to-destination A:1000-2000/80`) counts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatRange {
    pub flags: u32,
    pub min_addr: u128,
    pub max_addr: u128,
    pub min_port: u16,
    pub max_port: u16,
    pub base_port: u16,
}

impl NatRange {
    /// One address, the ports left to the port selection (the null binding,
    /// MASQUERADE's and REDIRECT's address with the rule's ports).
    pub fn to_address(address: u128, ports: &NatRange) -> NatRange {
        NatRange {
            flags: ports.flags | MAP_IPS,
            min_addr: address,
            max_addr: address,
            ..*ports
        }
    }
}
