//! Addresses as the tools people compare with print them.
//!
//! Two IPv6 spellings matter: glibc's `inet_ntop` (conntrack-tools, tcpdump,
//! statewall's own summaries), which compresses the longest run of zero
//! groups and writes an embedded IPv4 address in the last 32 bits of
//! `::a.b.c.d` and `::ffff:a.b.c.d`; and the kernel's `%pI6`
//! (/proc/net/nf_conntrack), which writes all eight groups in full.

use std::fmt::Write;

use crate::output::Sink;

/// Dotted quad (family 4) or inet_ntop text (family 6), appended to `out`.
pub fn push_address<S: Sink + ?Sized>(out: &mut S, family: u8, address: u128) {
    if family == 6 {
        push_inet_ntop6(out, address);
    } else {
        push_ipv4(out, address as u32);
    }
}

/// Dotted quad or inet_ntop text.
pub fn format_address(family: u8, address: u128) -> String {
    let mut out = String::with_capacity(40);
    push_address(&mut out, family, address);
    out
}

/// An address as the kernel (`expanded`: %pI6, /proc) or conntrack-tools
/// (inet_ntop) prints it; IPv4 is a dotted quad either way.
pub fn write_address<S: Sink + ?Sized>(out: &mut S, family: u8, address: u128, expanded: bool) {
    match (family, expanded) {
        (6, true) => push_ipv6_expanded(out, address),
        (6, false) => push_inet_ntop6(out, address),
        _ => push_ipv4(out, address as u32),
    }
}

/// `write_address` into a new string.
pub fn format_address_as(family: u8, address: u128, expanded: bool) -> String {
    let mut out = String::with_capacity(40);
    write_address(&mut out, family, address, expanded);
    out
}

/// `addr:port` for IPv4, `[addr]:port` for IPv6.
pub fn push_endpoint<S: Sink + ?Sized>(out: &mut S, family: u8, address: u128, port: u16) {
    if family == 6 {
        out.ch('[');
        push_inet_ntop6(out, address);
        out.text("]:");
    } else {
        push_ipv4(out, address as u32);
        out.ch(':');
    }
    push_u64(out, u64::from(port));
}

pub fn push_ipv4<S: Sink + ?Sized>(out: &mut S, address: u32) {
    // Built on the stack and appended once: every summary and line has two.
    let mut text = [0u8; 15];
    let mut len = 0;
    for (i, octet) in address.to_be_bytes().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            text[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            text[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        text[len] = b'0' + octet % 10;
        len += 1;
    }
    out.ascii(&text[..len]);
}

/// A decimal number without going through `fmt` (the hot path writes many).
pub fn push_u64<S: Sink + ?Sized>(out: &mut S, value: u64) {
    let mut digits = itoa::Buffer::new();
    out.ascii(digits.format(value).as_bytes());
}

fn groups(address: u128) -> [u16; 8] {
    let mut words = [0u16; 8];
    for (i, word) in words.iter_mut().enumerate() {
        *word = (address >> (112 - 16 * i)) as u16;
    }
    words
}

/// glibc's inet_ntop for AF_INET6.
pub fn push_inet_ntop6<S: Sink + ?Sized>(out: &mut S, address: u128) {
    let words = groups(address);
    // The first longest run of at least two zero groups is written as "::".
    let (mut best_base, mut best_len) = (usize::MAX, 0usize);
    let mut i = 0;
    while i < 8 {
        if words[i] == 0 {
            let start = i;
            while i < 8 && words[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                best_base = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best_base = usize::MAX;
    }
    let mut i = 0;
    while i < 8 {
        if i == best_base {
            out.ch(':');
            i += best_len;
            if i == 8 {
                out.ch(':');
            }
            continue;
        }
        if i > 0 {
            out.ch(':');
        }
        let embedded_v4 =
            i == 6 && best_base == 0 && (best_len == 6 || (best_len == 5 && words[5] == 0xffff));
        if embedded_v4 {
            push_ipv4(out, address as u32);
            return;
        }
        crate::sink_write!(out, "{:x}", words[i]);
        i += 1;
    }
}

/// An address as Python's `ipaddress` module prints it, the spelling of
/// statewall's reasons: a dotted quad, or IPv6 with the first
/// longest run of two or more zero groups compressed and no embedded
/// dotted quad (`::ffff:102:304`, unlike inet_ntop's `::ffff:1.2.3.4`).
/// Generic over the writer so a `Display` impl writes it without a buffer.
pub fn write_ipaddress_text<W: Write>(out: &mut W, family: u8, address: u128) -> std::fmt::Result {
    if family == 4 {
        let [a, b, c, d] = (address as u32).to_be_bytes();
        return write!(out, "{a}.{b}.{c}.{d}");
    }
    let words = groups(address);
    let (mut best_start, mut best_len, mut run_start, mut run_len) = (0, 0, 0, 0);
    for (i, &word) in words.iter().enumerate() {
        if word == 0 {
            if run_len == 0 {
                run_start = i;
            }
            run_len += 1;
            if run_len > best_len {
                best_start = run_start;
                best_len = run_len;
            }
        } else {
            run_len = 0;
        }
    }
    let write_groups = |out: &mut W, part: &[u16]| -> std::fmt::Result {
        for (i, word) in part.iter().enumerate() {
            if i > 0 {
                out.write_str(":")?;
            }
            write!(out, "{word:x}")?;
        }
        Ok(())
    };
    if best_len > 1 {
        write_groups(out, &words[..best_start])?;
        out.write_str("::")?;
        write_groups(out, &words[best_start + best_len..])
    } else {
        write_groups(out, &words)
    }
}

/// The kernel's %pI6: eight groups of four hex digits.
pub fn push_ipv6_expanded<S: Sink + ?Sized>(out: &mut S, address: u128) {
    for (i, word) in groups(address).into_iter().enumerate() {
        if i > 0 {
            out.ch(':');
        }
        crate::sink_write!(out, "{word:04x}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn ntop(text: &str) -> String {
        let mut out = String::new();
        push_inet_ntop6(&mut out, u128::from(text.parse::<Ipv6Addr>().unwrap()));
        out
    }

    #[test]
    fn ipv6_as_glibc_writes_it() {
        // Expected strings are those of Python's socket.inet_ntop (glibc).
        assert_eq!(ntop("2001:db8::1"), "2001:db8::1");
        assert_eq!(ntop("::"), "::");
        assert_eq!(ntop("::1"), "::1");
        assert_eq!(ntop("::ffff:192.0.2.1"), "::ffff:192.0.2.1");
        assert_eq!(ntop("::192.0.2.1"), "::192.0.2.1");
        assert_eq!(ntop("2001:db8:0:1:0:0:0:1"), "2001:db8:0:1::1");
        assert_eq!(ntop("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1");
        assert_eq!(ntop("1:0:1:0:1:0:1:0"), "1:0:1:0:1:0:1:0");
        assert_eq!(ntop("fe80::"), "fe80::");
        assert_eq!(ntop("ff02::1:ff00:1"), "ff02::1:ff00:1");
        assert_eq!(ntop("::ffff:0:1"), "::ffff:0.0.0.1");
        assert_eq!(ntop("::0.0.1.0"), "::100");
        assert_eq!(ntop("0:0:0:0:0:1:0:0"), "::1:0:0");
    }

    #[test]
    fn python_ipaddress_spelling() {
        let text = |family: u8, value: u128| {
            let mut out = String::new();
            write_ipaddress_text(&mut out, family, value).unwrap();
            out
        };
        // Expected strings are Python 3.11's str(ipaddress.ip_address(...)).
        let v6 = |t: &str| u128::from(t.parse::<Ipv6Addr>().unwrap());
        assert_eq!(text(6, v6("::ffff:1.2.3.4")), "::ffff:102:304");
        assert_eq!(text(6, v6("2001:db8::1")), "2001:db8::1");
        assert_eq!(text(6, v6("::")), "::");
        assert_eq!(text(6, v6("1:0:1:0:1:0:1:0")), "1:0:1:0:1:0:1:0");
        assert_eq!(text(6, v6("2001:0:0:1::1")), "2001:0:0:1::1");
        assert_eq!(text(4, 0xC000_0201), "192.0.2.1");
    }

    #[test]
    fn expanded_and_ipv4() {
        let mut out = String::new();
        push_ipv6_expanded(
            &mut out,
            u128::from("2001:db8::1".parse::<Ipv6Addr>().unwrap()),
        );
        assert_eq!(out, "2001:0db8:0000:0000:0000:0000:0000:0001");
        let mut v4 = String::new();
        push_endpoint(&mut v4, 4, 0xC000_0201, 80);
        assert_eq!(v4, "192.0.2.1:80");
        let mut v6 = String::new();
        push_endpoint(&mut v6, 6, 1, 53);
        assert_eq!(v6, "[::1]:53");
    }
}
