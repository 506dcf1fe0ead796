//! REJECT target (ipt_REJECT.c, ip6t_REJECT.c): drop and answer; the answer is recorded.

use crate::rules::context::{Effects, Outcome};
use crate::rules::targets::Step;

pub fn reject(with: &str, fx: &mut Effects) -> Step {
    fx.reject_with = Some(with.to_owned());
    Step::Verdict(Outcome::Reject)
}

#[cfg(test)]
mod tests {
    #[test]
    fn records_the_answer() {
        let mut fx = Default::default();
        let step = super::reject("tcp-reset", &mut fx);
        assert_eq!(step, super::Step::Verdict(super::Outcome::Reject));
        assert_eq!(fx.reject_with.as_deref(), Some("tcp-reset"));
    }
}
