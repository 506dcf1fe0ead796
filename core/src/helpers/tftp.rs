//! The TFTP helper (nf_conntrack_tftp.c: tftp_help).
//!
//! Every packet of a helped flow is looked at, in either direction and
//! already the very first one (before the entry is confirmed): a payload
//! starting with opcode 1 (RRQ) or 2 (WRQ) announces that the server will
//! answer from a fresh port. The expectation is built from the REPLY tuple
//! whichever side sent the request: "server, any port → client:client
//! port", UDP, 300 s, one per flow (a repeated request replaces it).

use crate::conntrack::conn::{Conn, ConnId};
use crate::conntrack::expect::{ExpectPolicy, ExpectationTable};
use crate::helpers::common::{announce, exact_source, HelperVerdict, NOTHING};
use crate::packet::{Packet, PROTO_UDP};

pub const POLICY: ExpectPolicy = ExpectPolicy::new(1, 300);

/// The request an opcode names, if it is one.
pub fn request_name(payload: &[u8]) -> Option<&'static str> {
    match payload.get(..2)? {
        [0, 1] => Some("RRQ (read request)"),
        [0, 2] => Some("WRQ (write request)"),
        _ => None,
    }
}

pub fn tftp_help(
    conn: &Conn,
    id: ConnId,
    _ctinfo: u8,
    pkt: &Packet<'_>,
    now: f64,
    table: &mut ExpectationTable,
    expect_max: u64,
) -> HelperVerdict {
    let Some(description) = request_name(pkt.payload()) else {
        return NOTHING;
    };
    let exp = exact_source(
        conn,
        id,
        "tftp",
        PROTO_UDP,
        conn.reply.src,
        conn.reply.dst,
        conn.reply.dport,
        pkt,
        description,
    );
    announce(table, exp, &POLICY, now, expect_max)
}
