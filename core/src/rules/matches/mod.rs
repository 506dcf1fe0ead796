//! Match extensions, one file each; `eval` dispatches on the typed match.

pub mod addrtype;
pub mod connbytes;
pub mod connlimit;
pub mod conntrack;
pub mod dscp;
pub mod ecn;
pub mod hashlimit;
pub mod helper;
pub mod hl;
pub mod icmp;
pub mod iprange;
pub mod length;
pub mod limit;
pub mod mac;
pub mod mark;
pub mod multiport;
pub mod owner;
pub mod pkttype;
pub mod recent;
pub mod rpfilter;
pub mod rt;
pub mod sctp;
pub mod set;
pub mod statistic;
pub mod string;
pub mod tcpmss;
pub mod tcpudp;

use crate::packet::Packet;
use crate::rules::context::{Effects, RuleCtx};
use crate::rules::model::Match;
use crate::rules::state::RuleState;

/// A match's answer. `Undecided` passes but leaves the rule's fate unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hit {
    No,
    Yes,
    Undecided(String),
}

impl From<bool> for Hit {
    fn from(b: bool) -> Hit {
        if b {
            Hit::Yes
        } else {
            Hit::No
        }
    }
}

/// Without a conntrack table to ask, every remembered connection still counts.
struct EveryoneAlive;

impl connlimit::ConnAlive for EveryoneAlive {
    fn alive(&self, _key: &connlimit::ConnKey, _now: f64) -> bool {
        true
    }
}

/// A non-first fragment carries no layer-4 header: port matches never match it.
pub fn later_fragment(pkt: &Packet<'_>) -> bool {
    pkt.is_later_fragment()
}

/// The packet's layer-4 fields are unusable (a later fragment or a decoding error).
pub fn no_l4(pkt: &Packet<'_>) -> bool {
    later_fragment(pkt) || pkt.error.is_some()
}

pub fn eval(m: &Match, ctx: &RuleCtx<'_>, fx: &mut Effects, state: &mut RuleState) -> Hit {
    match m {
        Match::Tcp {
            sport,
            dport,
            flags_mask,
            flags_cmp,
            flags_neg,
            option,
            option_neg,
        } => tcpudp::tcp(
            ctx.pkt,
            sport,
            dport,
            (*flags_mask, *flags_cmp, *flags_neg),
            *option,
            *option_neg,
        )
        .into(),
        Match::Udp { sport, dport } => tcpudp::ports(ctx.pkt, sport, dport).into(),
        Match::Icmp {
            icmp_type,
            code_low,
            code_high,
            neg,
            match_all,
        } => icmp::icmp(ctx.pkt, *icmp_type, *code_low, *code_high, *neg, *match_all).into(),
        Match::Multiport {
            ranges,
            src,
            dst,
            neg,
        } => multiport::multiport(ctx.pkt, ranges, *src, *dst, *neg).into(),
        Match::State { mask, neg } => conntrack::state(ctx.ctinfo, *mask, *neg).into(),
        Match::Conntrack { state: st, checks } => conntrack::conntrack(ctx, *st, checks).into(),
        Match::Mark { value, mask, neg } => mark::mark(fx.mark, *value, *mask, *neg).into(),
        Match::Connmark { value, mask, neg } => mark::connmark(ctx, fx, *value, *mask, *neg).into(),
        Match::Comment => Hit::Yes,
        Match::Mac { mac, neg } => mac::mac(ctx.pkt, mac, *neg).into(),
        Match::Iprange {
            src_low,
            src_high,
            src_neg,
            dst_low,
            dst_high,
            dst_neg,
        } => iprange::iprange(
            ctx.pkt,
            (*src_low, *src_high, *src_neg),
            (*dst_low, *dst_high, *dst_neg),
        )
        .into(),
        Match::Length { low, high, neg } => length::length(ctx.pkt, *low, *high, *neg).into(),
        Match::Hl { op, value, neg } => hl::hl(ctx.pkt, op, *value, *neg).into(),
        Match::Pkttype { want, neg } => pkttype::pkttype(ctx, want, *neg).into(),
        Match::Limit {
            cost,
            cap,
            credits_per_jiffy,
            hz,
            slot,
        } => match state.limits.get_mut(*slot) {
            Some(bucket) => bucket
                .take(ctx.now, *hz, *credits_per_jiffy, *cost, *cap)
                .into(),
            None => Hit::No,
        },
        Match::Helper { name, neg } => helper::helper(ctx.master_helper, name, *neg).into(),
        Match::Const { value, note } => {
            if !value {
                if let Some(note) = note {
                    fx.notes.push(note.clone());
                }
            }
            Hit::from(*value)
        }
        Match::Addrtype {
            src_mask,
            src_neg,
            dst_mask,
            dst_neg,
            limit_in,
            limit_out,
        } => addrtype::addrtype(
            ctx,
            &state.topology,
            *src_mask,
            *src_neg,
            *dst_mask,
            *dst_neg,
            *limit_in,
            *limit_out,
        )
        .into(),
        Match::StatisticRandom { threshold, neg } => {
            statistic::random(&mut state.rng, *threshold, *neg).into()
        }
        Match::StatisticNth {
            every, neg, slot, ..
        } => match state.nth.get_mut(*slot) {
            Some(counter) => statistic::nth(counter, *every, *neg).into(),
            None => Hit::No,
        },
        Match::Recent {
            table,
            command,
            invert,
            seconds,
            hitcount,
            use_dst,
            check_ttl,
            reap,
            hz,
        } => {
            let size = state.recent_size;
            match state.recent.get_mut(*table) {
                Some(t) => {
                    let rule = recent::Rule {
                        command,
                        invert: *invert,
                        seconds: *seconds,
                        hitcount: *hitcount,
                        use_dst: *use_dst,
                        check_ttl: *check_ttl,
                        reap: *reap,
                        hz: *hz,
                    };
                    recent::recent(t, size, rule, ctx).into()
                }
                None => Hit::No,
            }
        }
        Match::Hashlimit {
            table,
            invert,
            byte_mode,
            rate_match,
            hz,
        } => match state.hashlimit.get_mut(*table) {
            Some(t) => {
                let rule = hashlimit::Rule {
                    invert: *invert,
                    byte_mode: *byte_mode,
                    rate_match: *rate_match,
                    hz: *hz,
                };
                match t.check(rule, ctx.pkt, ctx.now) {
                    hashlimit::Answer::Hit(b) => b.into(),
                    hashlimit::Answer::Full => {
                        fx.hotdrop = Some(format!(
                            "hashlimit table {} is full ({} entries)",
                            t.spec.name, t.spec.max_entries
                        ));
                        Hit::No
                    }
                }
            }
            None => Hit::No,
        },
        Match::String {
            pattern,
            from,
            to,
            icase,
            neg,
        } => string::string(ctx.pkt, pattern, *from, *to, *icase, *neg).into(),
        Match::Rt {
            rt_type,
            segs,
            len,
            reserved,
            addrs,
            strict,
        } => rt::rt(
            ctx.pkt,
            rt::Params {
                rt_type: *rt_type,
                segs: *segs,
                len: *len,
                reserved: *reserved,
                addrs,
                strict: *strict,
            },
        )
        .into(),
        Match::Sctp {
            sport,
            dport,
            chunks,
        } => {
            if !sctp::ports(ctx.pkt, sport, dport) {
                return Hit::No;
            }
            match chunks {
                None => Hit::Yes,
                Some((kind, types, flags, neg)) => {
                    let found = match sctp::chunks(ctx.pkt, kind, types, flags) {
                        Ok(b) => b,
                        Err(why) => {
                            fx.hotdrop = Some(why.to_owned());
                            false
                        }
                    };
                    Hit::from(found != *neg)
                }
            }
        }
        Match::Dscp { code, neg } => dscp::dscp(ctx.pkt, *code, *neg).into(),
        Match::Tos { value, mask, neg } => dscp::tos(ctx.pkt, *value, *mask, *neg).into(),
        Match::Ecn { ect, tcp } => ecn::ecn(ctx.pkt, *ect, tcp).into(),
        Match::Tcpmss { low, high, neg } => tcpmss::tcpmss(ctx.pkt, *low, *high, *neg).into(),
        Match::Rpfilter {
            loose,
            accept_local,
            invert,
            ..
        } => rpfilter::rpfilter(ctx, &state.topology, *loose, *accept_local, *invert),
        Match::Owner {
            socket_exists,
            uid,
            gid,
            suppl_groups,
        } => owner::owner(
            ctx,
            *socket_exists,
            uid.as_ref(),
            gid.as_ref(),
            *suppl_groups,
        ),
        Match::Connbytes {
            dirs,
            mode,
            low,
            high,
            neg,
        } => {
            let counters = ctx.conn.and(ctx.conn_counters);
            connbytes::connbytes(counters, *dirs, *mode, *low, *high, *neg).into()
        }
        Match::Connlimit {
            limit,
            invert,
            by_dst,
            mask,
            slot,
        } => {
            let Some(groups) = state.connlimit.get_mut(*slot) else {
                return Hit::No;
            };
            let addr = if *by_dst { ctx.pkt.dst } else { ctx.pkt.src };
            let current = ctx.conn.map(connlimit::ConnKey::of);
            let n = match ctx.conns {
                Some(alive) => connlimit::count(groups, addr & mask, current, alive, ctx.now),
                None => connlimit::count(groups, addr & mask, current, &EveryoneAlive, ctx.now),
            };
            Hit::from((n > *limit) != *invert)
        }
        Match::Set {
            set: index,
            flags,
            invert,
            return_nomatch,
            update,
            packets,
            bytes,
        } => {
            let p = set::Params {
                set: *index,
                flags,
                invert: *invert,
                return_nomatch: *return_nomatch,
                update: *update,
                packets: *packets,
                bytes: *bytes,
            };
            set::set(&mut state.sets, p, ctx.pkt, ctx.now).into()
        }
        Match::Nft { expr } => crate::rules::nft::eval::eval(expr, ctx, fx, state),
        Match::NotPorted { name } => {
            Hit::Undecided(format!("match {name} is not evaluated by the core yet"))
        }
    }
}
