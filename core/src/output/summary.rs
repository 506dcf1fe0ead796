//! The one-line, tcpdump-like summary of a packet: endpoints, protocol and
//! its key fields ("192.0.2.1:40000 > 198.51.100.7:80 TCP [S] seq=1000 ack=0 win=64240").

use crate::output::addr::{push_address, push_endpoint, push_u64};
use crate::output::Sink;
use crate::packet::{
    Packet, ACK, CWR, ECE, FIN, PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP,
    PROTO_UDPLITE, PSH, RST, SYN, URG,
};

/// The protocol names summaries use.
pub fn proto_name(proto: u8) -> Option<&'static str> {
    Some(match proto {
        PROTO_TCP => "TCP",
        PROTO_UDP => "UDP",
        PROTO_UDPLITE => "UDPLITE",
        PROTO_ICMP => "ICMP",
        PROTO_ICMPV6 => "ICMPv6",
        PROTO_SCTP => "SCTP",
        47 => "GRE",
        50 => "ESP",
        51 => "AH",
        89 => "OSPF",
        4 => "IPIP",
        41 => "IPv6",
        33 => "DCCP",
        2 => "IGMP",
        112 => "VRRP",
        _ => return None,
    })
}

/// TCP flags as letters in tcpdump's order; "-" for none.
pub fn push_tcp_flags<S: Sink + ?Sized>(out: &mut S, flags: u8) {
    const LETTERS: [(u8, char); 8] = [
        (SYN, 'S'),
        (FIN, 'F'),
        (RST, 'R'),
        (PSH, 'P'),
        (ACK, 'A'),
        (URG, 'U'),
        (ECE, 'E'),
        (CWR, 'C'),
    ];
    let mut any = false;
    for (bit, letter) in LETTERS {
        if flags & bit != 0 {
            out.ch(letter);
            any = true;
        }
    }
    if !any {
        out.ch('-');
    }
}

/// Whether a protocol has ports in its header (and so in its tuple).
pub fn has_ports(proto: u8) -> bool {
    matches!(proto, PROTO_TCP | PROTO_UDP | PROTO_UDPLITE | PROTO_SCTP)
}

/// The packet's own source and destination ports, when its protocol has
/// ports and it carries the layer-4 header (not a later fragment).
pub fn packet_ports(pkt: &Packet) -> Option<(u16, u16)> {
    (pkt.family != 0 && has_ports(pkt.proto) && !pkt.is_later_fragment())
        .then_some((pkt.sport, pkt.dport))
}

/// Append the summary of `pkt` to `out`.
pub fn push_summary<S: Sink + ?Sized>(out: &mut S, pkt: &Packet) {
    let family = pkt.family;
    if family == 0 {
        out.text("non-IP frame");
        return;
    }
    let proto = pkt.proto;
    let later_fragment = pkt.is_later_fragment();
    if let Some((sport, dport)) = packet_ports(pkt) {
        push_endpoint(out, family, pkt.src, sport);
        out.text(" > ");
        push_endpoint(out, family, pkt.dst, dport);
    } else {
        push_address(out, family, pkt.src);
        out.text(" > ");
        push_address(out, family, pkt.dst);
    }
    out.ch(' ');
    match proto_name(proto) {
        Some(name) => out.text(name),
        None => {
            out.text("proto ");
            push_u64(out, u64::from(proto));
        }
    }
    let stack_error =
        matches!(&pkt.error, Some(error) if matches!(error.layer.name(), "link" | "ipv4" | "ipv6"));
    if stack_error {
        out.text(" (malformed)");
    } else if later_fragment {
        // A later fragment has no layer-4 header: nothing more to show.
    } else if proto == PROTO_TCP {
        out.text(" [");
        push_tcp_flags(out, pkt.tcp_flags);
        out.text("] seq=");
        push_u64(out, u64::from(pkt.seq));
        out.text(" ack=");
        push_u64(out, u64::from(pkt.ack));
        out.text(" win=");
        push_u64(out, u64::from(pkt.window));
        let payload = pkt.payload_len();
        if payload > 0 {
            out.text(" len=");
            push_u64(out, payload as u64);
        }
    } else if proto == PROTO_ICMP || proto == PROTO_ICMPV6 {
        out.text(" type=");
        push_u64(out, u64::from(pkt.icmp_type));
        out.text(" code=");
        push_u64(out, u64::from(pkt.icmp_code));
        if pkt.inner.is_none() {
            out.text(" id=");
            push_u64(out, u64::from(pkt.icmp_id));
        }
    } else if has_ports(proto) {
        out.text(" len=");
        push_u64(out, pkt.payload_len() as u64);
    }
    if let Some(fragment) = pkt.fragment {
        out.text(" frag id=");
        crate::sink_write!(out, "{:#x}", fragment.ident);
        out.text(" off=");
        push_u64(out, u64::from(fragment.offset));
        if fragment.more {
            out.ch('+');
        }
    }
}

/// The summary of `pkt`.
pub fn summary(pkt: &Packet) -> String {
    let mut out = String::with_capacity(96);
    push_summary(&mut out, pkt);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_letters_in_tcpdump_order() {
        for (flags, text) in [(0x12u8, "SA"), (0x11, "FA"), (0xff, "SFRPAUEC"), (0, "-")] {
            let mut out = String::new();
            push_tcp_flags(&mut out, flags);
            assert_eq!(out, text);
        }
    }

    #[test]
    fn tcp_summary_from_fields() {
        let data = [0u8; 45];
        let mut pkt = Packet::new(0, 0.0, &data, 4);
        pkt.src = 0xC000_0201;
        pkt.dst = 0xC633_6407;
        pkt.proto = PROTO_TCP;
        pkt.sport = 40000;
        pkt.dport = 80;
        pkt.tcp_flags = PSH | ACK;
        pkt.seq = 7;
        pkt.ack = 9;
        pkt.window = 502;
        pkt.l4_off = 20;
        pkt.payload_off = 40;
        assert_eq!(
            summary(&pkt),
            "192.0.2.1:40000 > 198.51.100.7:80 TCP [PA] seq=7 ack=9 win=502 len=5"
        );
    }
}
