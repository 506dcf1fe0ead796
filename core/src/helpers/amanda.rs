//! The Amanda helper (nf_conntrack_amanda.c: amanda_help).
//!
//! Only REPLY packets are read. Each one first pushes the master's timeout
//! to `master_timeout` (300 s), because Amanda replies may come late. Then
//! the first `CONNECT ` line (anywhere in the payload, up to its newline) is
//! searched for `DATA `, `MESG `, `INDEX ` and `STATE `, each followed by at
//! most five digits: a port. Port 0 (no digits) stops the search. Each port
//! gives an expectation "initiator, any port → replier:port", TCP, 180 s, at
//! most 4 per master; a refused one drops the packet but the other keywords
//! are still processed.

use crate::conntrack::conn::{Conn, ConnId, CT_ESTABLISHED_REPLY, ORIGINAL};
use crate::conntrack::expect::ExpectPolicy;
use crate::helpers::common::{announce, exact_source, find, HelperEnv, HelperVerdict, NOTHING};
use crate::nat::helper::{expect_and_rewrite, is_translated, PayloadEdit};
use crate::packet::{Packet, PROTO_TCP};

pub const POLICY: ExpectPolicy = ExpectPolicy::new(4, 180);
/// Keyword, its name, the expectation's description.
const KEYWORDS: [(&[u8], &str, &str); 4] = [
    (b"DATA ", "DATA", "CONNECT DATA port"),
    (b"MESG ", "MESG", "CONNECT MESG port"),
    (b"INDEX ", "INDEX", "CONNECT INDEX port"),
    (b"STATE ", "STATE", "CONNECT STATE port"),
];
const MAX_DIGITS: usize = 5;

pub fn amanda_help(
    conn: &Conn,
    id: ConnId,
    ctinfo: u8,
    pkt: &Packet<'_>,
    env: &mut HelperEnv<'_>,
) -> HelperVerdict {
    if ctinfo < CT_ESTABLISHED_REPLY {
        return NOTHING;
    }
    let timeout = Some(env.table.params.amanda_master_timeout);
    let quiet = HelperVerdict {
        master_timeout: timeout,
        ..NOTHING
    };
    let data = pkt.payload();
    let Some(start) = find(data, b"CONNECT ", 0, data.len()) else {
        return quiet;
    };
    let start = start + 8;
    let Some(stop) = find(data, b"\n", start, data.len()) else {
        return quiet;
    };
    let line = data.get(start..stop).unwrap_or(&[]);
    let mut reasons: Vec<String> = Vec::new();
    let mut accept = true;
    let mut edits = Vec::new();
    for found in connect_ports(line) {
        let (port, description) = (found.port, found.description);
        let exp = exact_source(
            conn,
            id,
            "amanda",
            PROTO_TCP,
            conn.orig.src,
            conn.orig.dst,
            port,
            pkt,
            description,
        );
        let verdict = if is_translated(conn) {
            // Later keywords are found in the payload as earlier rewrites
            // left it, within the line's original bounds.
            let shift: i64 = edits
                .iter()
                .filter(|e: &&PayloadEdit| e.offset < start + found.at)
                .map(|e| i64::from(e.delta()))
                .sum();
            let at = (start + found.at) as i64 + shift;
            if at < 0 || at as usize + found.len > stop {
                continue;
            }
            let at = at as usize;
            expect_and_rewrite(
                env,
                exp,
                &POLICY,
                ORIGINAL,
                (at, at + found.len),
                found.keyword,
                &|port| port.to_string(),
            )
        } else {
            announce(env, exp, &POLICY)
        };
        accept = accept && verdict.accept;
        reasons.push(verdict.reason.into_owned());
        edits.extend(verdict.edits);
    }
    if reasons.is_empty() {
        return quiet;
    }
    HelperVerdict {
        accept,
        reason: reasons.join("; ").into(),
        master_timeout: timeout,
        edits,
    }
}

/// One announced port of a CONNECT line: the keyword, its description, and
/// where its digits are in the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectPort {
    pub port: u16,
    pub keyword: &'static str,
    pub description: &'static str,
    pub at: usize,
    pub len: usize,
}

/// The announced ports of one CONNECT line, in keyword order, up to a port 0.
pub fn connect_ports(line: &[u8]) -> Vec<ConnectPort> {
    let mut ports = Vec::new();
    for (keyword, name, description) in KEYWORDS {
        let Some(at) = find(line, keyword, 0, line.len()) else {
            continue;
        };
        let digits = line.get(at + keyword.len()..).unwrap_or(&[]);
        let mut value: u32 = 0;
        let mut len = 0;
        for &byte in digits.iter().take(MAX_DIGITS) {
            if !byte.is_ascii_digit() {
                break;
            }
            value = value * 10 + u32::from(byte - b'0');
            len += 1;
        }
        let port = value as u16;
        if port == 0 {
            break;
        }
        ports.push(ConnectPort {
            port,
            keyword: name,
            description,
            at: at + keyword.len(),
            len,
        });
    }
    ports
}
