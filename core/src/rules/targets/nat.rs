//! nat targets (xt_nat.c, xt_MASQUERADE.c, xt_REDIRECT.c, xt_NETMAP.c): checked
//! at load, not applied; the packet carries a note and the chain ends in ACCEPT.

use crate::rules::context::{Effects, Outcome};
use crate::rules::targets::Step;

pub fn nat(note: &str, spec: &str, fx: &mut Effects) -> Step {
    fx.notes.push(note.to_owned());
    fx.effects.push(("nat".into(), spec.into()));
    Step::Verdict(Outcome::Accept)
}
