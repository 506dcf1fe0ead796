//! SET target (xt_set.c: set_target_v3): add the packet's element to a set or
//! delete it. Re-adding with `--exist` refreshes the timeout; without it the
//! kernel refuses the duplicate silently.

use crate::rules::context::{Effects, RuleCtx};
use crate::rules::ipset::Sets;
use crate::rules::targets::Step;

/// `changes`: (add?, set index, flags).
pub fn set(
    sets: &mut Sets,
    changes: &[(bool, usize, Vec<bool>)],
    timeout: Option<u64>,
    exist: bool,
    ctx: &RuleCtx<'_>,
    fx: &mut Effects,
) -> Step {
    let pkt = ctx.pkt;
    for (add, index, flags) in changes {
        if !sets.applies_to(*index, pkt, flags) {
            continue;
        }
        if *add {
            sets.add(*index, pkt, flags, ctx.now, timeout, exist, 0);
        } else {
            sets.del(*index, pkt, flags, 0);
        }
        let kind = if *add { "add" } else { "del" };
        fx.effects
            .push(("ipset".into(), serde_json::json!([kind, sets.name(*index)])));
    }
    Step::Continue
}
