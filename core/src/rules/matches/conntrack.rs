//! state match (xt_state.c: state_mt) and conntrack match (xt_conntrack.c:
//! conntrack_mt, revision 3).
//!
//! `--ctstate` is tested first; a packet with no entry (INVALID or
//! UNTRACKED) then matches exactly when `--ctstate` was given, whatever the
//! other options say; otherwise every other test must pass.

use crate::conntrack::conn::{
    Conn, CT_INVALID, CT_UNTRACKED, IPS_CONFIRMED, IPS_DST_NAT, IPS_SRC_NAT,
};
use crate::rules::context::RuleCtx;
use crate::rules::model::CtCheck;

pub const INVALID: u8 = 1;
pub const ESTABLISHED: u8 = 2;
pub const RELATED: u8 = 4;
pub const NEW: u8 = 8;
pub const UNTRACKED: u8 = 16;
pub const SNAT: u8 = 32;
pub const DNAT: u8 = 64;

/// The state bit of a ctinfo value.
pub fn state_bit(ctinfo: u8) -> u8 {
    match ctinfo {
        CT_INVALID => INVALID,
        CT_UNTRACKED => UNTRACKED,
        0 | 3 => ESTABLISHED,
        1 | 4 => RELATED,
        2 => NEW,
        _ => 0,
    }
}

pub fn state(ctinfo: u8, mask: u8, neg: bool) -> bool {
    (state_bit(ctinfo) & mask != 0) != neg
}

/// Whole seconds left; an unconfirmed entry shows 0.
fn expires(conn: &Conn, now: f64) -> u64 {
    if conn.status & IPS_CONFIRMED != 0 {
        u64::try_from(conn.remaining(now)).unwrap_or(0)
    } else {
        0
    }
}

fn check(c: &CtCheck, conn: &Conn, ctx: &RuleCtx<'_>) -> bool {
    match *c {
        CtCheck::Addr {
            which,
            addr,
            mask,
            neg,
        } => {
            let value = match which {
                0 => conn.orig.src,
                1 => conn.orig.dst,
                2 => conn.reply.src,
                _ => conn.reply.dst,
            };
            ((value & mask) == addr) != neg
        }
        CtCheck::Port {
            which,
            low,
            high,
            neg,
        } => {
            let value = match which {
                0 => conn.orig.sport,
                1 => conn.orig.dport,
                2 => conn.reply.sport,
                _ => conn.reply.dport,
            };
            (low <= value && value <= high) != neg
        }
        CtCheck::Proto { proto, neg } => (conn.proto == proto) != neg,
        CtCheck::Status { mask, neg } => (conn.status & mask != 0) != neg,
        CtCheck::Expire { low, high, neg } => {
            let left = expires(conn, ctx.now);
            (low <= left && left <= high) != neg
        }
        CtCheck::Dir { reply } => (ctx.ctinfo >= 3) == reply,
    }
}

pub fn conntrack(ctx: &RuleCtx<'_>, st: Option<(u8, bool)>, checks: &[CtCheck]) -> bool {
    if let Some((mask, neg)) = st {
        let mut bits = state_bit(ctx.ctinfo);
        if let Some(conn) = ctx.conn {
            if conn.status & IPS_SRC_NAT != 0 {
                bits |= SNAT;
            }
            if conn.status & IPS_DST_NAT != 0 {
                bits |= DNAT;
            }
        }
        if (bits & mask != 0) == neg {
            return false;
        }
    }
    match ctx.conn {
        None => st.is_some(),
        Some(conn) => checks.iter().all(|c| check(c, conn, ctx)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::conn::{Tuple, CT_ESTABLISHED_REPLY, CT_NEW};
    use crate::rules::testpkt;

    #[test]
    fn state_bits() {
        assert!(state(CT_NEW, NEW, false));
        assert!(state(CT_ESTABLISHED_REPLY, ESTABLISHED | RELATED, false));
        assert!(!state(CT_INVALID, NEW | ESTABLISHED, false));
        assert!(state(CT_INVALID, NEW, true));
        assert!(state(CT_UNTRACKED, UNTRACKED, false));
    }

    #[test]
    fn without_an_entry_only_ctstate_decides() {
        let data = testpkt::udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        let pkt = testpkt::decode(&data);
        let mut ctx = testpkt::ctx(&pkt);
        ctx.ctinfo = CT_INVALID;
        let proto = [CtCheck::Proto {
            proto: 6,
            neg: false,
        }];
        assert!(conntrack(&ctx, Some((INVALID, false)), &proto));
        assert!(!conntrack(&ctx, None, &proto));
        let conn = Conn::new(
            4,
            17,
            0,
            Tuple::new(1, 2, 3, 4),
            Tuple::new(2, 1, 4, 3),
            0.0,
        );
        ctx.conn = Some(&conn);
        ctx.ctinfo = CT_NEW;
        assert!(!conntrack(&ctx, Some((NEW, false)), &proto));
        let port = [CtCheck::Port {
            which: 1,
            low: 4,
            high: 4,
            neg: false,
        }];
        assert!(conntrack(&ctx, None, &port));
        assert!(conntrack(&ctx, None, &[CtCheck::Dir { reply: false }]));
        assert!(conntrack(
            &ctx,
            None,
            &[CtCheck::Expire {
                low: 0,
                high: 0,
                neg: false
            }]
        ));
    }
}
