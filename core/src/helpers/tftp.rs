//! The TFTP helper (nf_conntrack_tftp.c: tftp_help).
//!
//! Every packet of a helped flow is looked at, in either direction and
//! already the very first one (before the entry is confirmed): a payload
//! starting with opcode 1 (RRQ) or 2 (WRQ) announces that the server will
//! answer from a fresh port. The expectation is built from the REPLY tuple
//! whichever side sent the request: "server, any port → client:client
//! port", UDP, 300 s, one per flow (a repeated request replaces it).

use crate::conntrack::conn::{Conn, ConnId, REPLY};
use crate::conntrack::expect::ExpectPolicy;
use crate::helpers::common::{announce, exact_source, HelperEnv, HelperVerdict, NOTHING};
use crate::nat::helper::{expect_following, is_translated};
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
    env: &mut HelperEnv<'_>,
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
    if is_translated(conn) {
        // The server answers the translated client; that answer is put
        // back to the client's own address and port.
        return expect_following(env, exp, &POLICY, REPLY, conn.orig.sport);
    }
    announce(env, exp, &POLICY)
}
