//! LOG target (xt_LOG.c, nf_log_syslog.c: nf_log_ip_packet, nf_log_ip6_packet).
//!
//! Builds the line the kernel writes to its log, field by field, each field
//! followed by a space as the kernel prints it. TRACE lines reuse it.

use std::fmt::Write;

use crate::packet::Packet;
use crate::rules::context::RuleCtx;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub tcp_sequence: bool,
    pub tcp_options: bool,
    pub ip_options: bool,
}

/// The flags a traced packet is logged with (no socket owner).
pub const TRACE_FLAGS: Flags = Flags {
    tcp_sequence: true,
    tcp_options: true,
    ip_options: true,
};

const TCP_FLAG_NAMES: [(u8, &str); 8] = [
    (0x80, "CWR"),
    (0x40, "ECE"),
    (0x20, "URG"),
    (0x10, "ACK"),
    (0x08, "PSH"),
    (0x04, "RST"),
    (0x02, "SYN"),
    (0x01, "FIN"),
];

fn u16_at(d: &[u8], at: usize) -> u16 {
    match (d.get(at), d.get(at + 1)) {
        (Some(&a), Some(&b)) => u16::from_be_bytes([a, b]),
        _ => 0,
    }
}

fn hex_upper(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "{b:02X}");
    }
}

/// An address as Python's ipaddress prints it (IPv6: the first longest run
/// of two or more zero groups becomes `::`, no dotted IPv4 tail).
pub fn format_ip(out: &mut String, value: u128, family: u8) {
    if family == 4 {
        let v = (value & 0xFFFF_FFFF) as u32;
        let _ = write!(out, "{}", std::net::Ipv4Addr::from(v));
        return;
    }
    let groups: [u16; 8] = std::array::from_fn(|i| (value >> (112 - 16 * i)) as u16);
    let (mut best, mut best_len, mut run, mut run_len) = (usize::MAX, 0, 0, 0);
    for (i, &g) in groups.iter().enumerate() {
        if g == 0 {
            if run_len == 0 {
                run = i;
            }
            run_len += 1;
            if run_len > best_len {
                best = run;
                best_len = run_len;
            }
        } else {
            run_len = 0;
        }
    }
    if best_len < 2 {
        best = usize::MAX;
    }
    let mut i = 0;
    while i < 8 {
        if i == best {
            out.push_str(if i == 0 { "::" } else { ":" });
            i += best_len;
            continue;
        }
        let _ = write!(out, "{:x}", groups[i]);
        if i < 7 {
            out.push(':');
        }
        i += 1;
    }
}

fn tcp(out: &mut String, pkt: &Packet<'_>, seq: bool, opts: bool) {
    let (d, o) = (pkt.data, pkt.l4_off);
    if d.len() < o + 20 {
        let _ = write!(out, "INCOMPLETE [{} bytes] ", d.len().saturating_sub(o));
        return;
    }
    let _ = write!(out, "SPT={} DPT={} ", pkt.sport, pkt.dport);
    if seq {
        let _ = write!(out, "SEQ={} ACK={} ", pkt.seq, pkt.ack);
    }
    let off_byte = d.get(o + 12).copied().unwrap_or(0);
    let flags = d.get(o + 13).copied().unwrap_or(0);
    let _ = write!(
        out,
        "WINDOW={} RES=0x{:02x} ",
        pkt.window,
        (off_byte & 0x0F) << 2
    );
    for (bit, name) in TCP_FLAG_NAMES {
        if flags & bit != 0 {
            out.push_str(name);
            out.push(' ');
        }
    }
    let _ = write!(out, "URGP={} ", u16_at(d, o + 18));
    let header_len = usize::from(off_byte >> 4) * 4;
    if opts && header_len > 20 {
        out.push_str("OPT (");
        let end = d.len().min(o + header_len);
        hex_upper(out, d.get(o + 20..end).unwrap_or(&[]));
        out.push_str(") ");
    }
}

fn icmp(out: &mut String, pkt: &Packet<'_>, later: bool) {
    let v4 = pkt.proto == 1;
    out.push_str(if v4 { "PROTO=ICMP " } else { "PROTO=ICMPv6 " });
    if later {
        return;
    }
    let _ = write!(out, "TYPE={} CODE={} ", pkt.icmp_type, pkt.icmp_code);
    let echo = if v4 { [0, 8] } else { [128, 129] };
    if echo.contains(&pkt.icmp_type) {
        let _ = write!(
            out,
            "ID={} SEQ={} ",
            pkt.icmp_id,
            u16_at(pkt.data, pkt.l4_off + 6)
        );
    } else if let Some(inner) = &pkt.inner {
        out.push('[');
        ip(out, inner, Flags::default());
        out.push_str("] ");
    }
}

fn l4(out: &mut String, pkt: &Packet<'_>, flags: Flags) {
    let later = pkt.is_later_fragment();
    match pkt.proto {
        6 => {
            out.push_str("PROTO=TCP ");
            if !later {
                tcp(out, pkt, flags.tcp_sequence, flags.tcp_options);
            }
        }
        17 | 136 => {
            let name = if pkt.proto == 17 { "UDP" } else { "UDPLITE" };
            let _ = write!(out, "PROTO={name} ");
            if !later {
                let len = u16_at(pkt.data, pkt.l4_off + 4);
                let _ = write!(out, "SPT={} DPT={} LEN={len} ", pkt.sport, pkt.dport);
            }
        }
        1 | 58 => icmp(out, pkt, later),
        50 => out.push_str("PROTO=ESP "),
        51 => out.push_str("PROTO=AH "),
        2 => out.push_str("PROTO=IGMP "),
        p => {
            let _ = write!(out, "PROTO={p} ");
        }
    }
}

fn ip(out: &mut String, pkt: &Packet<'_>, flags: Flags) {
    let d = pkt.data;
    out.push_str("SRC=");
    format_ip(out, pkt.src, pkt.family);
    out.push_str(" DST=");
    format_ip(out, pkt.dst, pkt.family);
    if pkt.family == 6 {
        let flow = match d.get(1..4) {
            Some(b) => (u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2])) & 0xFFFFF,
            None => 0,
        };
        let _ = write!(
            out,
            " LEN={} TC={} HOPLIMIT={} FLOWLBL={flow} ",
            pkt.ip_len, pkt.tos, pkt.ttl
        );
        l4(out, pkt, flags);
        return;
    }
    let _ = write!(
        out,
        " LEN={} TOS=0x{:02X} PREC=0x{:02X} TTL={} ID={} ",
        pkt.ip_len,
        pkt.tos & 0x1E,
        pkt.tos & 0xE0,
        pkt.ttl,
        pkt.ip_id
    );
    let frag = u16_at(d, 6);
    for (bit, name) in [(0x8000, "CE "), (0x4000, "DF "), (0x2000, "MF ")] {
        if frag & bit != 0 {
            out.push_str(name);
        }
    }
    if frag & 0x1FFF != 0 {
        let _ = write!(out, "FRAG:{} ", frag & 0x1FFF);
    }
    let header_len = d.first().map_or(20, |b| usize::from(b & 0x0F) * 4);
    if flags.ip_options && header_len > 20 {
        out.push_str("OPT (");
        hex_upper(out, d.get(20..header_len.min(d.len())).unwrap_or(&[]));
        out.push_str(") ");
    }
    l4(out, pkt, flags);
}

/// The whole line; `mark` is the packet's mark at this point of the walk.
pub fn log_line(ctx: &RuleCtx<'_>, mark: u32, prefix: &str, flags: Flags) -> String {
    let pkt = ctx.pkt;
    let mut out = String::with_capacity(256);
    let _ = write!(
        out,
        "{prefix}IN={} OUT={} ",
        ctx.iface_in.unwrap_or(""),
        ctx.iface_out.unwrap_or("")
    );
    if ctx.iface_in.is_some() {
        match (pkt.link_src, pkt.link_dst) {
            (Some(src), Some(dst)) => {
                let ethertype: [u8; 2] = if pkt.family == 4 {
                    [8, 0]
                } else {
                    [0x86, 0xdd]
                };
                out.push_str("MAC=");
                let all = dst.iter().chain(src).chain(ethertype.iter());
                for (i, b) in all.enumerate() {
                    if i > 0 {
                        out.push(':');
                    }
                    let _ = write!(out, "{b:02x}");
                }
                out.push(' ');
            }
            _ => out.push_str("MAC= "),
        }
    }
    ip(&mut out, pkt, flags);
    if mark != 0 {
        let _ = write!(out, "MARK=0x{mark:x} ");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testpkt;

    fn v6(text: &str) -> String {
        let v: std::net::Ipv6Addr = text.parse().unwrap();
        let mut out = String::new();
        format_ip(&mut out, u128::from(v), 6);
        out
    }

    #[test]
    fn ipv6_text_as_python_prints_it() {
        assert_eq!(v6("2001:db8::1"), "2001:db8::1");
        assert_eq!(v6("::"), "::");
        assert_eq!(v6("::1"), "::1");
        assert_eq!(v6("1::"), "1::");
        assert_eq!(v6("1:0:2:0:0:3:0:0"), "1:0:2::3:0:0");
        assert_eq!(v6("1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7");
        assert_eq!(v6("::ffff:1.2.3.4"), "::ffff:102:304");
    }

    #[test]
    fn a_tcp_syn_line() {
        let data = testpkt::tcp4([10, 0, 0, 1], [10, 0, 0, 2], 40000, 22, 0x02, &[]);
        let pkt = testpkt::decode(&data);
        let mut ctx = testpkt::ctx(&pkt);
        ctx.iface_in = Some("eth0");
        let line = log_line(&ctx, 0, "x: ", Flags::default());
        assert_eq!(
            line,
            "x: IN=eth0 OUT= MAC= SRC=10.0.0.1 DST=10.0.0.2 LEN=40 TOS=0x00 PREC=0x00 TTL=64 \
             ID=1 DF PROTO=TCP SPT=40000 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0 "
        );
    }
}
