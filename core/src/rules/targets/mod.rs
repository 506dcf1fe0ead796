//! Target extensions, one file each; `run` applies a typed target.

pub mod ct;
pub mod log;
pub mod mark;
pub mod nat;
pub mod queue;
pub mod reject;
pub mod set;

use std::borrow::Cow;

use crate::nat::NatRange;
use crate::rules::context::{Effects, Outcome, RuleCtx};
use crate::rules::model::Target;
use crate::rules::state::RuleState;

/// What a target tells the walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// XT_CONTINUE: go on with the next rule.
    Continue,
    Verdict(Outcome),
    /// An nft verdict map's jump, goto and return.
    Jump(usize),
    Goto(usize),
    Return,
    /// Undetermined, with the reason.
    Unknown(Cow<'static, str>),
}

/// Runs an extension target (verdicts, jumps and gotos are the walker's).
pub fn run(target: &Target, ctx: &RuleCtx<'_>, fx: &mut Effects, state: &mut RuleState) -> Step {
    match target {
        Target::Log {
            prefix,
            tcp_sequence,
            tcp_options,
            ip_options,
        } => {
            let flags = log::Flags {
                tcp_sequence: *tcp_sequence,
                tcp_options: *tcp_options,
                ip_options: *ip_options,
            };
            let line = log::log_line(ctx, fx.mark, prefix, flags);
            fx.logs.push(line);
            Step::Continue
        }
        Target::Reject { with } => reject::reject(with, fx),
        Target::Mark { mask, xor } => mark::mark(*mask, *xor, fx),
        Target::ConnmarkCopy {
            save,
            nfmask,
            ctmask,
        } => mark::connmark_copy(ctx, *save, *nfmask, *ctmask, fx),
        Target::ConnmarkSet { mask, xor } => mark::connmark_set(ctx, *mask, *xor, fx),
        Target::Ct { effects } => ct::ct(effects, fx),
        Target::Trace => {
            fx.nf_trace = true;
            Step::Continue
        }
        Target::Nat {
            target,
            flags,
            min_addr,
            max_addr,
            min_port,
            max_port,
            base_port,
        } => nat::nat(
            *target,
            NatRange {
                flags: *flags,
                min_addr: min_addr.map_or(0, nat::address),
                max_addr: max_addr.map_or(0, nat::address),
                min_port: *min_port,
                max_port: *max_port,
                base_port: *base_port,
            },
            fx,
        ),
        Target::Nfqueue { num, bypass } => queue::nfqueue(*num, *bypass, fx),
        Target::Effect { effect, value } => {
            fx.effects.push((Cow::Owned(effect.clone()), value.clone()));
            Step::Continue
        }
        Target::Set {
            changes,
            timeout,
            exist,
        } => set::set(&mut state.sets, changes, *timeout, *exist, ctx, fx),
        Target::NftVmap { left, map } => crate::rules::nft::eval::vmap(left, map, ctx, fx, state),
        Target::NftNat {
            target,
            flags,
            addr,
            port,
        } => crate::rules::nft::eval::nat(
            (*target, *flags),
            addr.as_ref(),
            port.as_ref(),
            ctx,
            fx,
            state,
        ),
        Target::NotPorted { name } => Step::Unknown(Cow::Owned(format!(
            "target {name} is not evaluated by the core yet"
        ))),
        Target::None
        | Target::Verdict { .. }
        | Target::Jump { .. }
        | Target::Goto { .. }
        | Target::Unknown { .. } => Step::Continue,
    }
}
