//! A tracked connection (the kernel's `struct nf_conn`) and its constants.
//!
//! A connection owns two tuples, ORIGINAL and REPLY; the table indexes it
//! under both, so a packet matching either finds it, and which one matched
//! gives the packet's direction.
//!
//! For ICMP and ICMPv6 the 16-bit tuple parts follow the kernel's layout:
//! the "source port" is the echo identifier and the "destination port" is
//! `type << 8 | code`. For GRE they are the keys.

use crate::conntrack::proto_sctp::SctpData;
use crate::conntrack::seqadj::SeqAdj;
use crate::conntrack::tcp_window::TcpData;

// Directions (enum ip_conntrack_dir).
pub const ORIGINAL: u8 = 0;
pub const REPLY: u8 = 1;

// ctinfo values (enum ip_conntrack_info). INVALID and UNTRACKED are not
// ctinfo values in the kernel (no conntrack / the untracked object);
// statewall gives them numbers so a packet's classification is one value.
pub const CT_ESTABLISHED: u8 = 0;
pub const CT_RELATED: u8 = 1;
pub const CT_NEW: u8 = 2;
pub const CT_ESTABLISHED_REPLY: u8 = 3;
pub const CT_RELATED_REPLY: u8 = 4;
pub const CT_INVALID: u8 = 5;
pub const CT_UNTRACKED: u8 = 7;

/// The state name `-m conntrack --ctstate` and users know for a ctinfo.
pub fn ctstate_name(ctinfo: u8) -> &'static str {
    match ctinfo {
        CT_ESTABLISHED | CT_ESTABLISHED_REPLY => "ESTABLISHED",
        CT_RELATED | CT_RELATED_REPLY => "RELATED",
        CT_NEW => "NEW",
        CT_UNTRACKED => "UNTRACKED",
        _ => "INVALID",
    }
}

/// CTINFO2DIR: the direction a ctinfo implies.
pub fn direction_of(ctinfo: u8) -> u8 {
    if ctinfo >= CT_ESTABLISHED_REPLY {
        REPLY
    } else {
        ORIGINAL
    }
}

// Status bits (enum ip_conntrack_status).
pub const IPS_EXPECTED: u32 = 1 << 0;
pub const IPS_SEEN_REPLY: u32 = 1 << 1;
pub const IPS_ASSURED: u32 = 1 << 2;
pub const IPS_CONFIRMED: u32 = 1 << 3;
pub const IPS_SRC_NAT: u32 = 1 << 4;
pub const IPS_DST_NAT: u32 = 1 << 5;
pub const IPS_SEQ_ADJUST: u32 = 1 << 6;
pub const IPS_SRC_NAT_DONE: u32 = 1 << 7;
pub const IPS_DST_NAT_DONE: u32 = 1 << 8;
pub const IPS_DYING: u32 = 1 << 9;
pub const IPS_FIXED_TIMEOUT: u32 = 1 << 10;
pub const IPS_TEMPLATE: u32 = 1 << 11;
pub const IPS_UNTRACKED: u32 = 1 << 12;
pub const IPS_HELPER: u32 = 1 << 13;
/// Not a kernel bit: the tracker counted the packet it is handling
/// (`Conn::refresh_acct`). The table moves the packet into the accounting
/// and clears the bit before anything else reads the status; it lives in
/// the status word because a field of its own would grow every entry.
pub const IPS_ACCT_PENDING: u32 = 1 << 31;
/// Not a kernel bit: NAT bound the (unconfirmed) entry to a tuple it did not
/// find free (every port taken, or a fixed port it does not check), so
/// confirmation must look for a clash. Cleared when the entry is confirmed.
pub const IPS_NAT_UNVERIFIED: u32 = 1 << 30;

/// The status bits users see, in the order listings and results name them.
pub const STATUS_NAMES: [(u32, &str); 6] = [
    (IPS_EXPECTED, "EXPECTED"),
    (IPS_SEEN_REPLY, "SEEN_REPLY"),
    (IPS_ASSURED, "ASSURED"),
    (IPS_CONFIRMED, "CONFIRMED"),
    (IPS_SRC_NAT, "SRC_NAT"),
    (IPS_DST_NAT, "DST_NAT"),
];

/// One direction's tuple. Addresses are u128 for both families (IPv4 in the
/// low 32 bits); family, protocol and zone belong to the connection.
///
/// Packed to 4-byte alignment: with the u128s' natural 16-byte alignment
/// two tuples would waste 24 bytes of every entry in padding, and an entry
/// must stay small (memory per tracked connection). Fields are read by
/// value, never by reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C, packed(4))]
pub struct Tuple {
    pub src: u128,
    pub dst: u128,
    pub sport: u16,
    pub dport: u16,
}

impl Tuple {
    pub fn new(src: u128, dst: u128, sport: u16, dport: u16) -> Self {
        Tuple {
            src,
            dst,
            sport,
            dport,
        }
    }
}

/// The connection helpers statewall implements (nf_conntrack_ftp/irc/tftp/amanda).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HelperKind {
    Ftp,
    Irc,
    Tftp,
    Amanda,
}

impl HelperKind {
    pub const ALL: [HelperKind; 4] = [
        HelperKind::Ftp,
        HelperKind::Irc,
        HelperKind::Tftp,
        HelperKind::Amanda,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HelperKind::Ftp => "ftp",
            HelperKind::Irc => "irc",
            HelperKind::Tftp => "tftp",
            HelperKind::Amanda => "amanda",
        }
    }

    pub fn from_name(name: &str) -> Option<HelperKind> {
        HelperKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// Where a connection lives in the table's slab; stable for its lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u32);

/// What a protocol tracker keeps beside the tuples.
#[derive(Clone, Debug, Default)]
pub enum ProtoData {
    #[default]
    None,
    Tcp(TcpData),
    Sctp(SctpData),
    /// GRE's two timeouts as the entry was created (timeout, stream timeout).
    Gre {
        timeout: u32,
        stream_timeout: u32,
    },
}

/// One connection-tracking entry.
///
/// `expires` is an absolute time on the capture clock. `proto_state` is the
/// protocol's small state number (TCP/SCTP state; 0 elsewhere).
#[derive(Clone, Debug)]
pub struct Conn {
    pub orig: Tuple,
    pub reply: Tuple,
    pub family: u8,
    pub proto: u8,
    pub zone: u16,
    pub proto_state: u8,
    pub status: u32,
    pub mark: u32,
    /// The order of confirmation, from 1; 0 while unconfirmed.
    pub id: u32,
    pub helper: Option<HelperKind>,
    /// The master connection of an expected one.
    pub master: Option<ConnId>,
    /// The 0-based index of the packet that created the entry.
    pub first_packet: u64,
    /// Cached event bits (IPCT_*) delivered at the next confirm.
    pub events: u16,
    pub expires: f64,
    pub created: f64,
    pub proto_data: ProtoData,
    /// Sequence corrections after a helper resized a payload (boxed: rare).
    pub seqadj: Option<Box<SeqAdj>>,
}

impl Conn {
    pub fn new(family: u8, proto: u8, zone: u16, orig: Tuple, reply: Tuple, created: f64) -> Self {
        Conn {
            orig,
            reply,
            family,
            proto,
            zone,
            proto_state: 0,
            status: 0,
            mark: 0,
            id: 0,
            helper: None,
            master: None,
            first_packet: 0,
            events: 0,
            expires: created,
            created,
            proto_data: ProtoData::None,
            seqadj: None,
        }
    }

    /// The tuple of one direction.
    pub fn tuple(&self, direction: u8) -> &Tuple {
        if direction == ORIGINAL {
            &self.orig
        } else {
            &self.reply
        }
    }

    /// Re-arm the timeout to `now + seconds` (the kernel sets, never extends).
    pub fn set_timeout(&mut self, now: f64, seconds: f64) {
        if self.status & IPS_FIXED_TIMEOUT == 0 {
            self.expires = now + seconds;
        }
    }

    /// What a tracker calls for a packet it accepts (nf_ct_refresh_acct):
    /// re-arm the timeout, and count the packet in the accounting. Packets
    /// a tracker lets through without this (ignored TCP segments, a
    /// retransmitted SYN) are in no counter, as in the kernel.
    pub fn refresh_acct(&mut self, now: f64, seconds: f64) {
        self.set_timeout(now, seconds);
        self.status |= IPS_ACCT_PENDING;
    }

    /// Whole seconds left, as /proc and conntrack -L print them (truncated).
    pub fn remaining(&self, now: f64) -> i64 {
        let left = self.expires - now;
        if left > 0.0 {
            left as i64
        } else {
            0
        }
    }

    pub fn expired(&self, now: f64) -> bool {
        self.expires <= now
    }
}
