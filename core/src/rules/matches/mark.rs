//! mark (xt_mark.c: mark_mt) and connmark (xt_connmark.c: connmark_mt) matches.

use crate::rules::context::{Effects, RuleCtx};

pub fn mark(current: u32, value: u32, mask: u32, neg: bool) -> bool {
    ((current & mask) == value) != neg
}

/// Tests the entry's mark as an earlier CONNMARK of this walk left it.
pub fn connmark(ctx: &RuleCtx<'_>, fx: &Effects, value: u32, mask: u32, neg: bool) -> bool {
    match ctx.conn {
        None => false,
        Some(conn) => mark(fx.connmark.unwrap_or(conn.mark), value, mask, neg),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn value_and_mask() {
        assert!(super::mark(0x15, 0x5, 0xf, false));
        assert!(!super::mark(0x15, 0x5, 0xff, false));
        assert!(super::mark(0x15, 0x5, 0xff, true));
    }
}
