//! NFQUEUE target (xt_NFQUEUE.c): the packet goes to a queue no program reads here.

use crate::rules::context::{Effects, Outcome};
use crate::rules::targets::Step;

pub fn nfqueue(num: u16, bypass: bool, fx: &mut Effects) -> Step {
    fx.queue_num = num;
    if bypass {
        fx.notes
            .push("NFQUEUE --queue-bypass: accepted if no program listens on the queue".to_owned());
    }
    Step::Verdict(Outcome::Queue)
}

#[cfg(test)]
mod tests {
    #[test]
    fn queue_number_and_bypass_note() {
        let mut fx = Default::default();
        assert_eq!(
            super::nfqueue(3, true, &mut fx),
            super::Step::Verdict(super::Outcome::Queue)
        );
        assert_eq!(fx.queue_num, 3);
        assert_eq!(fx.notes.len(), 1);
    }
}
