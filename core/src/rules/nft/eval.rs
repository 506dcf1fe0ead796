//! Evaluating an nft rule's expressions and statements for one packet
//! (nft_cmp.c, nft_range.c, nft_lookup.c, nft_dynset.c, nft_counter.c,
//! nft_limit.c, nft_quota.c, nft_meta.c/nft_ct.c set), and the targets that
//! need a key (verdict maps, nat with maps).

use std::borrow::Cow;

use crate::nat::{NatKind, NatRange};
use crate::rules::context::{Effects, Outcome, RuleCtx};
use crate::rules::matches::Hit;
use crate::rules::nft::load::{load, Loaded, Regs};
use crate::rules::nft::{CmpOp, Expr, NftMatch, NftVerdict, SetRef, SetWhat, Source, REG_BYTES};
use crate::rules::state::RuleState;
use crate::rules::targets::{self, log, mark, Step};

/// Loads `e`: its bytes, or the Hit that ends the rule's test.
fn value<'r>(
    ctx: &RuleCtx<'_>,
    fx: &Effects,
    state: &mut RuleState,
    e: &Expr,
    regs: &'r mut Regs,
) -> Result<&'r [u8], Hit> {
    match load(ctx, fx, state, e, regs) {
        Loaded::Len(n) => Ok(&regs[..n]),
        Loaded::Break => Err(Hit::No),
        Loaded::Unknown(why) => Err(Hit::Undecided(why.to_owned())),
    }
}

fn compare(v: &[u8], op: CmpOp, data: &[u8]) -> bool {
    // A shorter `data` compares a prefix (interface wildcards).
    let v = &v[..data.len().min(v.len())];
    match op {
        CmpOp::Eq => v == data,
        CmpOp::Ne => v != data,
        CmpOp::Lt => v < data,
        CmpOp::Gt => v > data,
        CmpOp::Le => v <= data,
        CmpOp::Ge => v >= data,
    }
}

/// The element `key` finds in the set of `r`.
fn find(state: &mut RuleState, r: &SetRef, key: &[u8], now: f64) -> Option<usize> {
    state.nft.sets.get_mut(r.slot)?.lookup(key, now)
}

/// A statement's value into `out` (its length), or the Hit that ends the rule.
fn source(
    ctx: &RuleCtx<'_>,
    fx: &Effects,
    state: &mut RuleState,
    s: &Source,
    out: &mut Regs,
) -> Result<usize, Hit> {
    match s {
        Source::Imm { data } => {
            let n = data.len().min(REG_BYTES);
            out[..n].copy_from_slice(&data[..n]);
            Ok(n)
        }
        Source::Load { expr } => value(ctx, fx, state, expr, out).map(<[u8]>::len),
        Source::Map { expr, map } => map_data(ctx, fx, state, (expr, map), out),
    }
}

/// The data of the element `expr` finds in `map` into `out` (its length).
fn map_data(
    ctx: &RuleCtx<'_>,
    fx: &Effects,
    state: &mut RuleState,
    (expr, map): (&Expr, &SetRef),
    out: &mut Regs,
) -> Result<usize, Hit> {
    let mut key = [0u8; REG_BYTES];
    let k = value(ctx, fx, state, expr, &mut key)?;
    let i = find(state, map, k, ctx.now).ok_or(Hit::No)?;
    let data = state.nft.sets[map.slot].data(i).ok_or(Hit::No)?;
    let n = data.len().min(REG_BYTES);
    out[..n].copy_from_slice(&data[..n]);
    Ok(n)
}

fn be_u32(b: &[u8]) -> u32 {
    b.iter().fold(0u32, |acc, &x| (acc << 8) | u32::from(x))
}

fn set_value(ctx: &RuleCtx<'_>, fx: &mut Effects, what: SetWhat, v: &[u8]) -> Hit {
    let n = be_u32(v);
    match what {
        SetWhat::MetaMark => {
            mark::mark(u32::MAX, n, fx);
        }
        SetWhat::CtMark => {
            mark::connmark_set(ctx, u32::MAX, n, fx);
        }
        SetWhat::CtZone => fx.effects.push(("zone".into(), n.into())),
    }
    Hit::Yes
}

pub fn eval(m: &NftMatch, ctx: &RuleCtx<'_>, fx: &mut Effects, state: &mut RuleState) -> Hit {
    let mut regs = [0u8; REG_BYTES];
    match m {
        NftMatch::Cmp { left, cmp, data } => match value(ctx, fx, state, left, &mut regs) {
            Ok(v) => compare(v, *cmp, data).into(),
            Err(hit) => hit,
        },
        NftMatch::Range {
            left,
            low,
            high,
            neg,
        } => match value(ctx, fx, state, left, &mut regs) {
            Ok(v) => ((&**low <= v && v <= &**high) != *neg).into(),
            Err(hit) => hit,
        },
        NftMatch::Lookup { left, set, neg } => match value(ctx, fx, state, left, &mut regs) {
            Ok(v) => (find(state, set, v, ctx.now).is_some() != *neg).into(),
            Err(hit) => hit,
        },
        NftMatch::Counter { slot, .. } => {
            if let Some(c) = state.nft.counters.get_mut(*slot) {
                c.0 += 1;
                c.1 += u64::from(ctx.pkt.ip_len);
            }
            Hit::Yes
        }
        NftMatch::Limit { spec, slot, .. } => match state.nft.limits.get_mut(*slot) {
            Some(b) => (b.take(spec, u64::from(ctx.pkt.ip_len), ctx.now) != spec.over).into(),
            None => Hit::No,
        },
        NftMatch::Quota {
            bytes, over, slot, ..
        } => match state.nft.quotas.get_mut(*slot) {
            Some(used) => {
                // Over once the bytes counted, this packet's included, pass the quota.
                *used += u64::from(ctx.pkt.ip_len);
                ((*used > *bytes) == *over).into()
            }
            None => Hit::No,
        },
        NftMatch::Log {
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
            Hit::Yes
        }
        NftMatch::Set { what, value: src } => match source(ctx, fx, state, src, &mut regs) {
            Ok(n) => set_value(ctx, fx, *what, &regs[..n]),
            Err(hit) => hit,
        },
        NftMatch::Effect { effect, value: v } => {
            fx.effects.push((Cow::Owned(effect.clone()), v.clone()));
            Hit::Yes
        }
        NftMatch::EffectMap {
            effect,
            key,
            map,
            values,
        } => match map_data(ctx, fx, state, (key, map), &mut regs) {
            Ok(n) => match values.get(be_u32(&regs[..n]) as usize) {
                Some(v) => {
                    fx.effects.push((Cow::Owned(effect.clone()), v.clone()));
                    Hit::Yes
                }
                None => Hit::No,
            },
            Err(hit) => hit,
        },
        NftMatch::Dynset {
            update,
            key,
            set,
            timeout,
        } => match value(ctx, fx, state, key, &mut regs) {
            Ok(v) => match state.nft.sets.get_mut(set.slot) {
                Some(s) => s.add(v, *timeout, *update, ctx.now).into(),
                None => Hit::No,
            },
            Err(hit) => hit,
        },
    }
}

/// A verdict map: the element the key finds decides; none found, the rule
/// does not match and the walk goes on.
pub fn vmap(
    left: &Expr,
    map: &SetRef,
    ctx: &RuleCtx<'_>,
    fx: &mut Effects,
    state: &mut RuleState,
) -> Step {
    let mut regs = [0u8; REG_BYTES];
    let key = match value(ctx, fx, state, left, &mut regs) {
        Ok(v) => v,
        Err(Hit::Undecided(why)) => return Step::Unknown(Cow::Owned(why)),
        Err(_) => return Step::Continue,
    };
    let found = find(state, map, key, ctx.now).and_then(|i| state.nft.sets[map.slot].verdict(i));
    match found {
        None | Some(NftVerdict::Continue) => Step::Continue,
        Some(NftVerdict::Accept) => Step::Verdict(Outcome::Accept),
        Some(NftVerdict::Drop) => Step::Verdict(Outcome::Drop),
        Some(NftVerdict::Queue) => Step::Verdict(Outcome::Queue),
        Some(NftVerdict::Return) => Step::Return,
        Some(NftVerdict::Jump { chain }) => Step::Jump(chain),
        Some(NftVerdict::Goto { chain }) => Step::Goto(chain),
    }
}

fn be_u128(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |acc, &x| (acc << 8) | u128::from(x))
}

/// nat with an address or port from a map or an expression.
pub fn nat(
    (kind, flags): (NatKind, u32),
    addr: Option<&Source>,
    port: Option<&Source>,
    ctx: &RuleCtx<'_>,
    fx: &mut Effects,
    state: &mut RuleState,
) -> Step {
    let mut range = NatRange {
        flags,
        ..NatRange::default()
    };
    let mut regs = [0u8; REG_BYTES];
    for (s, is_addr) in [(addr, true), (port, false)] {
        let Some(s) = s else { continue };
        let n = match source(ctx, fx, state, s, &mut regs) {
            Ok(n) => n,
            Err(Hit::Undecided(why)) => return Step::Unknown(Cow::Owned(why)),
            Err(_) => return Step::Continue,
        };
        if is_addr {
            // An address, or an interval's low and high halves.
            let width = if ctx.pkt.family == 4 { 4 } else { 16 };
            let low = be_u128(&regs[..width.min(n)]);
            let high = if n >= 2 * width {
                be_u128(&regs[width..2 * width])
            } else {
                low
            };
            range.min_addr = low;
            range.max_addr = high;
            range.flags |= crate::nat::range::MAP_IPS;
        } else {
            let p = be_u32(&regs[..n.min(2)]) as u16;
            range.min_port = p;
            range.max_port = p;
            range.flags |= crate::nat::range::PROTO_SPECIFIED;
        }
    }
    targets::nat::nat(kind, range, fx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_are_big_endian_and_prefixes() {
        assert!(compare(&[1, 0], CmpOp::Gt, &[0, 255]));
        assert!(compare(b"eth0\0\0", CmpOp::Eq, b"eth"));
        assert!(!compare(b"ppp0\0\0", CmpOp::Eq, b"eth"));
        assert!(compare(&[0, 5], CmpOp::Le, &[0, 5]));
    }
}
