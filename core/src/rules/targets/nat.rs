//! nat targets (xt_nat.c, xt_MASQUERADE.c, xt_REDIRECT.c, xt_NETMAP.c): checked
//! at load, not applied; the packet carries a note and the chain ends in ACCEPT.

use crate::rules::context::{Effects, Outcome};
use crate::rules::targets::Step;

pub fn nat(note: &str, spec: &str, fx: &mut Effects) -> Step {
    fx.notes.push(note.to_owned());
    fx.effects.push(("nat".into(), spec.into()));
    Step::Verdict(Outcome::Accept)
}

#[cfg(test)]
mod tests {
    #[test]
    fn noted_and_accepted() {
        let mut fx = Default::default();
        let step = super::nat(
            "NAT not applied: DNAT --to-destination 1.2.3.4",
            "DNAT --to-destination 1.2.3.4",
            &mut fx,
        );
        assert_eq!(step, super::Step::Verdict(super::Outcome::Accept));
        assert_eq!(fx.notes, ["NAT not applied: DNAT --to-destination 1.2.3.4"]);
        assert_eq!(fx.effects[0].0, "nat");
    }
}
