//! The NAT halves of the conntrack helpers (nf_nat_ftp.c, nf_nat_irc.c,
//! nf_nat_tftp.c, nf_nat_amanda.c and nf_nat_helper.c).
//!
//! When the connection a helper reads is translated (SRC_NAT or DST_NAT),
//! the announcement in its payload names an address the peer cannot reach.
//! The helper then hands its expectation to the NAT half instead of
//! registering it: the expectation is re-aimed at the translated address
//! and a free port near the announced one (`find_port`), remembers the
//! announced port and the direction the connection will come in, and the
//! connection that fulfils it is translated like its master
//! (`follow_master`). The payload is rewritten to name the new address
//! and port (`PayloadEdit`); a TCP payload that changes length shifts the
//! later sequence numbers of its direction (`conntrack::seqadj`).

use crate::conntrack::conn::{Conn, ConnId, IPS_DST_NAT, IPS_SRC_NAT};
use crate::conntrack::core::ConntrackTable;
use crate::conntrack::expect::{ExpectNat, ExpectPolicy, Expectation, Refusal};
use crate::conntrack::l4proto::ExpectHooks;
use crate::helpers::common::{announce_noted, describe, HelperEnv, HelperVerdict};
use crate::nat::range::{NatRange, MAP_IPS, PROTO_SPECIFIED};
use crate::nat::{Manip, NatCore};

/// One change of a payload: `removed` bytes at `offset` (from the start of
/// the L4 payload, in the payload as earlier edits left it) replaced by
/// `inserted`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadEdit {
    pub offset: usize,
    pub removed: usize,
    pub inserted: Vec<u8>,
}

impl PayloadEdit {
    /// How much longer (or shorter) the payload gets.
    pub fn delta(&self) -> i32 {
        self.inserted.len() as i32 - self.removed as i32
    }
}

/// mangle_contents on a payload: apply `edits` in order. An edit reaching
/// past the end is clamped to it.
pub fn apply_edits(payload: &[u8], edits: &[PayloadEdit]) -> Vec<u8> {
    let mut out = payload.to_vec();
    for edit in edits {
        let start = edit.offset.min(out.len());
        let end = (edit.offset + edit.removed).min(out.len());
        out.splice(start..end, edit.inserted.iter().copied());
    }
    out
}

/// IPS_NAT_MASK: does the connection have a translation the peer must learn?
pub fn is_translated(conn: &Conn) -> bool {
    conn.status & (IPS_SRC_NAT | IPS_DST_NAT) != 0
}

/// nf_nat_exp_find_port: register `exp` at its announced port, or, while
/// the port clashes with another expectation, at up to 128 other ports
/// drawn at random above it. Returns the port registered.
pub fn find_port(
    env: &mut HelperEnv<'_>,
    mut exp: Expectation,
    policy: &ExpectPolicy,
) -> Result<(u16, Expectation), Refusal> {
    let min = exp.dport;
    let range = u32::from(u16::MAX - min);
    let mut attempts = range.min(128) as i64;
    loop {
        match env
            .table
            .related(exp.clone(), policy, env.now, env.expect_max)
        {
            Ok(_) => return Ok((exp.dport, exp)),
            Err(refusal) => {
                attempts -= 1;
                if !refusal.busy || attempts < 0 {
                    return Err(refusal);
                }
            }
        }
        // get_random_u32_between(min, min + range - 1): below 65534.
        let span = range.saturating_sub(1);
        let draw = if span > 0 {
            u32::from(env.rng.next_u16()) % span
        } else {
            0
        };
        exp.dport = min + draw as u16;
    }
}

/// The NAT path of a helper with a payload to rewrite: the expectation
/// goes to a free port (from the announced one), the connection that
/// fulfils it will come in the master's direction `exp_dir` and follow
/// its NAT, and `text` (given the port chosen) replaces `span` of the
/// payload. `what` names the rewrite in the reason ("PORT").
pub fn expect_and_rewrite(
    env: &mut HelperEnv<'_>,
    mut exp: Expectation,
    policy: &ExpectPolicy,
    exp_dir: u8,
    span: (usize, usize),
    what: &str,
    text: &dyn Fn(u16) -> String,
) -> HelperVerdict {
    let (helper, description) = (exp.helper, exp.description);
    exp.nat = Some(ExpectNat {
        saved_port: exp.dport,
        dir: exp_dir,
    });
    match find_port(env, exp, policy) {
        Ok((port, exp)) => {
            let inserted = text(port);
            let mut verdict = HelperVerdict::new(
                true,
                format!(
                    "{helper}: {description}, expecting {}; {what} rewritten to {inserted}",
                    describe(&exp)
                ),
            );
            verdict.edits.push(PayloadEdit {
                offset: span.0,
                removed: span.1 - span.0,
                inserted: inserted.into_bytes(),
            });
            verdict
        }
        Err(refusal) => HelperVerdict::new(
            false,
            format!(
                "dropped by the {helper} NAT helper: {description} but all ports in use ({})",
                refusal.reason
            ),
        ),
    }
}

/// The NAT path without a rewrite (TFTP): the expectation follows the
/// master's NAT; the request already names nothing to translate.
pub fn expect_following(
    env: &mut HelperEnv<'_>,
    mut exp: Expectation,
    policy: &ExpectPolicy,
    exp_dir: u8,
    saved_port: u16,
) -> HelperVerdict {
    exp.nat = Some(ExpectNat {
        saved_port,
        dir: exp_dir,
    });
    announce_noted(env, exp, policy, " (translated like its master)")
}

/// nf_nat_follow_master: the new connection `child`, expected by `master`,
/// gets its source translated to where the master's packets of the other
/// direction go, and its destination to where they come from, at the port
/// the announcement named.
pub fn follow_master(
    nat: &mut NatCore,
    table: &mut ConntrackTable,
    hooks: &mut dyn ExpectHooks,
    child: ConnId,
    master: ConnId,
    saved: ExpectNat,
    now: f64,
) {
    let Some(master) = table.conn(master) else {
        return;
    };
    let other = *master.tuple(saved.dir ^ 1);
    let source = NatRange {
        flags: MAP_IPS,
        min_addr: other.dst,
        max_addr: other.dst,
        ..NatRange::default()
    };
    nat.setup(table, hooks, child, &source, Manip::Src, now);
    let destination = NatRange {
        flags: MAP_IPS | PROTO_SPECIFIED,
        min_addr: other.src,
        max_addr: other.src,
        min_port: saved.saved_port,
        max_port: saved.saved_port,
        base_port: 0,
    };
    nat.setup(table, hooks, child, &destination, Manip::Dst, now);
}

/// The text `%pI4` / `%pI6` print: dotted quad, or eight groups of four
/// hex digits (uncompressed).
pub fn address_text(family: u8, address: u128) -> String {
    if family == 4 {
        std::net::Ipv4Addr::from(address as u32).to_string()
    } else {
        let groups: Vec<String> = address
            .to_be_bytes()
            .chunks(2)
            .map(|pair| format!("{:02x}{:02x}", pair[0], pair.get(1).copied().unwrap_or(0)))
            .collect();
        groups.join(":")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_apply_in_order_and_report_their_size() {
        let edits = [
            PayloadEdit {
                offset: 5,
                removed: 3,
                inserted: b"12345".to_vec(),
            },
            PayloadEdit {
                offset: 0,
                removed: 4,
                inserted: b"port".to_vec(),
            },
        ];
        assert_eq!(apply_edits(b"PORT abc\r\n", &edits), b"port 12345\r\n");
        assert_eq!((edits[0].delta(), edits[1].delta()), (2, 0));
    }

    #[test]
    fn addresses_print_as_the_kernel_prints_them() {
        assert_eq!(address_text(4, 0xCB00_7101), "203.0.113.1");
        assert_eq!(
            address_text(6, 0x2001_0db8_0000_0000_0000_0000_0000_0001),
            "2001:0db8:0000:0000:0000:0000:0000:0001"
        );
    }
}
