//! What every helper shares: its verdict value and how an expectation is
//! announced.
//!
//! Packets a helper merely looks at get the shared `NOTHING` verdict, whose
//! reason is borrowed static text: the per-packet path allocates nothing
//! unless something happened.

use std::borrow::Cow;
use std::fmt::Write;

use crate::conntrack::conn::{Conn, ConnId, ORIGINAL};
use crate::conntrack::expect::{
    full_mask, write_address, write_endpoint, ExpectPolicy, Expectation, ExpectationTable,
};
use crate::nat::helper::PayloadEdit;
use crate::nat::NatRng;
use crate::output::escape::push_control;
use crate::packet::{Packet, PROTO_TCP, PROTO_UDP};
use crate::reason::Reason;

/// A helper's verdict on one packet: accept or drop, and why (empty:
/// nothing to say). `master_timeout` asks the caller to re-arm the master's
/// timeout to that many seconds (Amanda).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelperVerdict {
    pub accept: bool,
    pub reason: Reason,
    pub master_timeout: Option<u32>,
    /// The payload rewrites a NAT helper made, in order.
    pub edits: Vec<PayloadEdit>,
}

impl HelperVerdict {
    pub fn new(accept: bool, reason: impl Into<Reason>) -> Self {
        HelperVerdict {
            accept,
            reason: reason.into(),
            master_timeout: None,
            edits: Vec::new(),
        }
    }
}

pub const NOTHING: HelperVerdict = HelperVerdict {
    accept: true,
    reason: Cow::Borrowed(""),
    master_timeout: None,
    edits: Vec::new(),
};

/// What a helper works with besides the packet: the expectation table, the
/// time, nf_conntrack_expect_max, and the generator of the kernel's random
/// choices (a NAT helper's port search).
pub struct HelperEnv<'a> {
    pub table: &'a mut ExpectationTable,
    pub now: f64,
    pub expect_max: u64,
    pub rng: &'a mut NatRng,
}

/// A helper: the master with its id, the packet's ctinfo, the packet and
/// what it works with.
pub type HelperFn = fn(&Conn, ConnId, u8, &Packet<'_>, &mut HelperEnv<'_>) -> HelperVerdict;

/// The source address of the given direction's tuple (who sent the packet).
pub fn sender(conn: &Conn, direction: u8) -> u128 {
    if direction == ORIGINAL {
        conn.orig.src
    } else {
        conn.reply.src
    }
}

/// The usual shape: a known source host from any port to dst:dport.
#[allow(clippy::too_many_arguments)]
pub fn exact_source(
    master: &Conn,
    master_id: ConnId,
    helper: &'static str,
    proto: u8,
    src: u128,
    dst: u128,
    dport: u16,
    pkt: &Packet<'_>,
    description: &'static str,
) -> Expectation {
    let mut exp = Expectation::new(
        master,
        master_id,
        helper,
        proto,
        src,
        full_mask(master.family),
        0,
        0,
        dst,
        dport,
    );
    exp.packet_index = Some(pkt.index);
    exp.description = description;
    exp
}

/// 'TCP 10.0.0.2:any → 10.0.0.1:40000' (wildcarded source parts shown as any).
pub fn describe(exp: &Expectation) -> String {
    let mut out = String::with_capacity(80);
    match exp.proto {
        PROTO_TCP => out.push_str("TCP"),
        PROTO_UDP => out.push_str("UDP"),
        other => {
            let _ = write!(out, "{other}");
        }
    }
    out.push(' ');
    if exp.src_mask != 0 {
        if exp.family == 4 {
            write_address(&mut out, exp.family, exp.src, false);
        } else {
            out.push('[');
            write_address(&mut out, exp.family, exp.src, false);
            out.push(']');
        }
    } else {
        out.push_str("any");
    }
    if exp.sport_mask != 0 {
        let _ = write!(out, ":{}", exp.sport);
    } else {
        out.push_str(":any");
    }
    out.push_str(" → ");
    write_endpoint(&mut out, exp.family, exp.dst, exp.dport);
    out
}

/// Register `exp`; the helpers here drop the packet when the kernel refuses it.
pub fn announce(env: &mut HelperEnv<'_>, exp: Expectation, policy: &ExpectPolicy) -> HelperVerdict {
    announce_noted(env, exp, policy, "")
}

/// `announce`, with `note` after the expectation in the reason.
pub fn announce_noted(
    env: &mut HelperEnv<'_>,
    exp: Expectation,
    policy: &ExpectPolicy,
    note: &str,
) -> HelperVerdict {
    let shape = describe(&exp);
    let (helper, description) = (exp.helper, exp.description);
    match env.table.related(exp, policy, env.now, env.expect_max) {
        Ok(_) => HelperVerdict::new(
            true,
            format!("{helper}: {description}, expecting {shape}{note}"),
        ),
        Err(refusal) => HelperVerdict::new(
            false,
            format!(
                "dropped by the {helper} helper: {description} but cannot add the expectation \
                 {shape}: {}",
                refusal.reason
            ),
        ),
    }
}

/// Python's repr() of a bytes value (reasons quote payloads this way).
pub fn py_bytes_repr(data: &[u8]) -> String {
    let quote = if data.contains(&b'\'') && !data.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::with_capacity(data.len() + 3);
    out.push('b');
    out.push(char::from(quote));
    for &byte in data {
        match byte {
            b'\\' => out.push_str("\\\\"),
            _ if byte == quote => {
                out.push('\\');
                out.push(char::from(byte));
            }
            0x20..=0x7E => out.push(char::from(byte)),
            // Controls as all text output shows them; other bytes the same way.
            _ => push_control(&mut out, byte),
        }
    }
    out.push(char::from(quote));
    out
}

/// The first occurrence of `needle` lying wholly inside data[start..end]
/// (`end` clamped to the data; an empty needle or range finds nothing).
pub fn find(data: &[u8], needle: &[u8], start: usize, end: usize) -> Option<usize> {
    let end = end.min(data.len());
    if needle.is_empty() || start >= end {
        return None;
    }
    let hay = data.get(start..end)?;
    hay.windows(needle.len())
        .position(|w| w == needle)
        .map(|at| at + start)
}
