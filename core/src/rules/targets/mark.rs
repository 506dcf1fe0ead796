//! MARK (xt_mark.c: mark_tg) and CONNMARK (xt_connmark.c: connmark_tg, revision 1).
//!
//! Every spelling is reduced at load to new = (old & ~mask) ^ xor. The
//! connection mark is not written here: the new value is handed back in
//! `Effects::connmark` for the owner of the entry to store.

use crate::rules::context::{Effects, RuleCtx};
use crate::rules::targets::Step;

pub fn mark(mask: u32, xor: u32, fx: &mut Effects) -> Step {
    fx.mark = (fx.mark & !mask) ^ xor;
    Step::Continue
}

fn set_conn(fx: &mut Effects, current: u32, value: u32) {
    fx.connmark_changed |= current != value;
    fx.connmark = Some(value);
    fx.effects.push(("connmark".into(), value.into()));
}

pub fn connmark_copy(
    ctx: &RuleCtx<'_>,
    save: bool,
    nfmask: u32,
    ctmask: u32,
    fx: &mut Effects,
) -> Step {
    if let Some(conn) = ctx.conn {
        let current = fx.connmark.unwrap_or(conn.mark);
        if save {
            let value = (current & !ctmask) ^ (fx.mark & nfmask);
            set_conn(fx, current, value);
        } else {
            fx.mark = (fx.mark & !nfmask) ^ (current & ctmask);
            fx.effects.push(("connmark".into(), current.into()));
        }
    }
    Step::Continue
}

pub fn connmark_set(ctx: &RuleCtx<'_>, mask: u32, xor: u32, fx: &mut Effects) -> Step {
    if let Some(conn) = ctx.conn {
        let current = fx.connmark.unwrap_or(conn.mark);
        set_conn(fx, current, (current & !mask) ^ xor);
    }
    Step::Continue
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_xmark() {
        let mut fx = Effects {
            mark: 0xff,
            ..Default::default()
        };
        mark(0x0f, 0x01, &mut fx);
        assert_eq!(fx.mark, 0xf1);
    }
}
