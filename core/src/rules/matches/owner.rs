//! owner match (xt_owner.c): which local socket sent the packet.
//!
//! A forwarded packet has no socket, and for such a packet the kernel's
//! answer does not depend on the ids at all: the match holds exactly when
//! every test the rule gives is negated (the tests a rule names, compared
//! with those it negates, must be the same set; `--suppl-groups` can never
//! be negated, so it makes the match fail). A packet the machine sent
//! itself may or may not belong to a socket, and a capture does not say
//! whose: the answer is undetermined there.

use crate::rules::context::RuleCtx;
use crate::rules::matches::Hit;
use crate::rules::model::OwnerIds;

pub const UNDETERMINED: &str =
    "owner: the capture does not say which local socket, if any, sent this packet";

pub fn owner(
    ctx: &RuleCtx<'_>,
    socket_exists: Option<bool>,
    uid: Option<&OwnerIds>,
    gid: Option<&OwnerIds>,
    suppl_groups: bool,
) -> Hit {
    if ctx.local_out {
        return Hit::Undecided(UNDETERMINED.into());
    }
    let all_negated = socket_exists.is_none_or(|neg| neg)
        && uid.is_none_or(|t| t.neg)
        && gid.is_none_or(|t| t.neg)
        && !suppl_groups;
    Hit::from(all_negated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testpkt;

    fn ids(neg: bool) -> OwnerIds {
        OwnerIds {
            ids: Some((0, 1000)),
            neg,
        }
    }

    #[test]
    fn without_a_socket_only_fully_negated_rules_match() {
        let data = testpkt::udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        let pkt = testpkt::decode(&data);
        let ctx = testpkt::ctx(&pkt);
        let (yes, no) = (ids(false), ids(true));
        assert_eq!(owner(&ctx, Some(false), None, None, false), Hit::No);
        assert_eq!(owner(&ctx, Some(true), None, None, false), Hit::Yes);
        assert_eq!(owner(&ctx, None, Some(&yes), None, false), Hit::No);
        assert_eq!(owner(&ctx, None, Some(&no), None, false), Hit::Yes);
        assert_eq!(
            owner(&ctx, Some(true), Some(&no), Some(&yes), false),
            Hit::No
        );
        assert_eq!(
            owner(&ctx, Some(true), Some(&no), Some(&no), false),
            Hit::Yes
        );
        assert_eq!(owner(&ctx, None, None, Some(&no), true), Hit::No);
    }

    #[test]
    fn the_machines_own_packets_are_undetermined() {
        let data = testpkt::udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        let pkt = testpkt::decode(&data);
        let mut ctx = testpkt::ctx(&pkt);
        ctx.local_out = true;
        assert!(matches!(
            owner(&ctx, Some(true), None, None, false),
            Hit::Undecided(_)
        ));
    }
}
