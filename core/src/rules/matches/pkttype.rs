//! pkttype match (xt_pkttype.c): how the link layer addressed the frame;
//! locally sent packets are classed by their destination address.

use crate::packet::PktType;
use crate::rules::context::RuleCtx;
use crate::rules::model::Hook;

pub fn packet_class(ctx: &RuleCtx<'_>) -> &'static str {
    let pkt = ctx.pkt;
    let local = matches!(pkt.pkt_type, PktType::Host | PktType::Outgoing)
        && matches!(ctx.hook, Hook::Output | Hook::PostRouting);
    if !local {
        return match pkt.pkt_type {
            PktType::Host => "host",
            PktType::Broadcast => "broadcast",
            PktType::Multicast => "multicast",
            PktType::OtherHost => "otherhost",
            PktType::Outgoing => "outgoing",
            PktType::Loopback => "loopback",
            PktType::Other(_) => "other",
        };
    }
    if pkt.family == 4 {
        if pkt.dst >> 28 == 0xE {
            "multicast"
        } else if pkt.dst == 0xFFFF_FFFF {
            "broadcast"
        } else {
            "host"
        }
    } else if pkt.dst >> 120 == 0xFF {
        "multicast"
    } else {
        "host"
    }
}

pub fn pkttype(ctx: &RuleCtx<'_>, want: &str, neg: bool) -> bool {
    (packet_class(ctx) == want) != neg
}

#[cfg(test)]
mod tests {
    use crate::rules::testpkt;

    #[test]
    fn classes() {
        let data = testpkt::udp4([10, 0, 0, 5], [255, 255, 255, 255], 1, 2);
        let pkt = testpkt::decode(&data);
        let mut ctx = testpkt::ctx(&pkt);
        assert!(super::pkttype(&ctx, "host", false));
        ctx.hook = crate::rules::model::Hook::Output;
        assert!(super::pkttype(&ctx, "broadcast", false));
    }
}
