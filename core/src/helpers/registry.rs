//! Which helpers exist, how one gets attached, and running it
//! (nf_conntrack_helper.c, nf_confirm in nf_conntrack_proto.c, xt_helper.c).
//!
//! Helpers are looked up by (name, family, L4 protocol); the port a helper
//! registered with only matters to the legacy automatic assignment that
//! kernels before 4.7 did by default (`helper_for_port`). Linux 6.x attaches
//! a helper only through the raw table's `CT --helper`, and only to an entry
//! that the packet creates and that no expectation claimed.
//!
//! The confirm step (nf_confirm) runs `run_helper` after the filter rules
//! accepted the packet; a refusing verdict drops the packet, and an
//! unconfirmed entry dropped with it must be reported to
//! `ExpectationTable::master_destroyed` (a TFTP request announces before its
//! entry is confirmed). Once confirmed, the table learns it through
//! `ExpectationTable::master_confirmed`.

use crate::conntrack::conn::{Conn, ConnId, HelperKind, CT_RELATED_REPLY, IPS_HELPER};
use crate::helpers::amanda::amanda_help;
use crate::helpers::common::{HelperEnv, HelperFn, HelperVerdict, NOTHING};
use crate::helpers::ftp::ftp_help;
use crate::helpers::irc::irc_help;
use crate::helpers::tftp::tftp_help;
use crate::packet::{Packet, PROTO_TCP, PROTO_UDP};

/// One registered helper (struct nf_conntrack_helper).
#[derive(Clone, Copy, Debug)]
pub struct HelperSpec {
    pub kind: HelperKind,
    pub name: &'static str,
    pub proto: u8,
    pub families: &'static [u8],
    /// The registration port: only used by legacy automatic assignment.
    pub port: u16,
    pub help: HelperFn,
}

pub static HELPERS: [HelperSpec; 4] = [
    HelperSpec {
        kind: HelperKind::Ftp,
        name: "ftp",
        proto: PROTO_TCP,
        families: &[4, 6],
        port: 21,
        help: ftp_help,
    },
    HelperSpec {
        kind: HelperKind::Irc,
        name: "irc",
        proto: PROTO_TCP,
        families: &[4],
        port: 6667,
        help: irc_help,
    },
    HelperSpec {
        kind: HelperKind::Tftp,
        name: "tftp",
        proto: PROTO_UDP,
        families: &[4, 6],
        port: 69,
        help: tftp_help,
    },
    HelperSpec {
        kind: HelperKind::Amanda,
        name: "amanda",
        proto: PROTO_UDP,
        families: &[4, 6],
        port: 10080,
        help: amanda_help,
    },
];

/// The registration of a helper kind.
pub fn spec_of(kind: HelperKind) -> &'static HelperSpec {
    match kind {
        HelperKind::Ftp => &HELPERS[0],
        HelperKind::Irc => &HELPERS[1],
        HelperKind::Tftp => &HELPERS[2],
        HelperKind::Amanda => &HELPERS[3],
    }
}

/// nf_conntrack_helper_try_module_get: the helper `CT --helper NAME` would attach.
pub fn find_helper(name: &str, family: u8, proto: u8) -> Option<&'static HelperSpec> {
    HELPERS
        .iter()
        .find(|spec| spec.name == name && spec.proto == proto && spec.families.contains(&family))
}

/// Legacy automatic assignment (kernels before 4.7): by the server's port.
pub fn helper_for_port(proto: u8, port: u16, family: u8) -> Option<HelperKind> {
    HELPERS
        .iter()
        .find(|spec| spec.proto == proto && spec.port == port && spec.families.contains(&family))
        .map(|spec| spec.kind)
}

/// __nf_ct_try_assign_helper, for an entry the packet has just created.
///
/// An expected connection gets no helper from a template (and FTP, IRC,
/// TFTP and Amanda expectations assign none). Returns the helper attached.
pub fn assign_helper(
    conn: &mut Conn,
    template_helper: Option<&str>,
    auto_helpers: bool,
) -> Option<HelperKind> {
    if conn.master.is_some() || conn.helper.is_some() {
        return conn.helper;
    }
    if let Some(name) = template_helper {
        let spec = find_helper(name, conn.family, conn.proto)?;
        conn.helper = Some(spec.kind);
        conn.status |= IPS_HELPER;
    } else if auto_helpers {
        conn.helper = helper_for_port(conn.proto, conn.reply.sport, conn.family);
    }
    conn.helper
}

/// nf_confirm's helper call: the entry's helper sees the packet after the
/// filter rules. Applies a master timeout the helper asks for.
///
/// Not for ICMP errors in the reply direction (RELATED_REPLY). An ICMP error
/// in the original direction reaches the helper in the kernel too, but none
/// of these helpers can find an announcement in it, so it is skipped here.
pub fn run_helper(
    conn: &mut Conn,
    id: ConnId,
    ctinfo: u8,
    pkt: &Packet<'_>,
    env: &mut HelperEnv<'_>,
) -> HelperVerdict {
    let Some(kind) = conn.helper else {
        return NOTHING;
    };
    if ctinfo == CT_RELATED_REPLY || pkt.proto != conn.proto {
        return NOTHING;
    }
    env.table.touch_master(id, conn, pkt.index);
    let verdict = (spec_of(kind).help)(conn, id, ctinfo, pkt, env);
    if let Some(seconds) = verdict.master_timeout {
        conn.set_timeout(env.now, f64::from(seconds));
    }
    verdict
}

/// What `-m helper` compares: the helper of the entry's MASTER (xt_helper.c).
/// `master` is the entry's master, resolved by the caller; the control
/// connection itself has no master, so it never matches.
pub fn helper_name_of(conn: Option<&Conn>, master: Option<&Conn>) -> Option<&'static str> {
    conn?.master?;
    master?.helper.map(HelperKind::name)
}
