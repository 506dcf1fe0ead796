//! JSON text exactly as Python's `json.dumps(..., separators=(",", ":"))`
//! writes it: ASCII only (`ensure_ascii`), floats as Python's `repr`.

use std::fmt::Write;

use crate::output::{Sink, StackText};

/// A JSON string literal with Python's escaping: `\"`, `\\`, the short
/// escapes for \n \r \t \b \f, `\u00XX` for other control characters and
/// `\uXXXX` (lowercase hex, surrogate pairs above the BMP) for non-ASCII.
pub fn push_str<S: Sink + ?Sized>(out: &mut S, text: &str) {
    out.ch('"');
    push_str_body(out, text);
    out.ch('"');
}

/// What `push_str` writes between the quotes.
pub fn push_str_body<S: Sink + ?Sized>(out: &mut S, text: &str) {
    let bytes = text.as_bytes();
    let mut plain_from = 0;
    let mut at = 0;
    while at < bytes.len() {
        // Eight bytes at a time while none needs escaping (most text).
        if let Some(chunk) = bytes.get(at..at + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !needs_escape(u64::from_le_bytes(word)) {
                at += 8;
                continue;
            }
        }
        let byte = bytes[at];
        // Printable ASCII other than the quote and the backslash goes as it is.
        if (b' '..=b'~').contains(&byte) && byte != b'"' && byte != b'\\' {
            at += 1;
            continue;
        }
        out.text(&text[plain_from..at]);
        let ch = text[at..].chars().next().unwrap_or('\u{fffd}');
        match ch {
            '"' => out.text("\\\""),
            '\\' => out.text("\\\\"),
            '\n' => out.text("\\n"),
            '\r' => out.text("\\r"),
            '\t' => out.text("\\t"),
            '\u{8}' => out.text("\\b"),
            '\u{c}' => out.text("\\f"),
            _ => {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    crate::sink_write!(out, "\\u{unit:04x}");
                }
            }
        }
        at += ch.len_utf8();
        plain_from = at;
    }
    out.text(&text[plain_from..]);
}

/// Whether any of the eight bytes of `word` is outside printable ASCII or
/// is a quote or a backslash (bit tricks on the whole word at once).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let control = word.wrapping_sub(0x20 * ONES) & !word & HIGH;
    let non_ascii = word & HIGH;
    let special = has_zero(word ^ (u64::from(b'"') * ONES))
        | has_zero(word ^ (u64::from(b'\\') * ONES))
        | has_zero(word ^ (0x7f * ONES));
    control | non_ascii | special != 0
}

/// A float as Python's `repr` (and so `json.dumps`) writes it: the shortest
/// text that reads back to the same value, in positional notation for
/// decimal exponents -4 to 15 (always with a fractional part) and in
/// scientific notation (`1e+16`, `1.5e-05`) outside that range.
pub fn push_f64<S: Sink + ?Sized>(out: &mut S, value: f64) {
    if value.is_nan() {
        out.text("NaN");
        return;
    }
    if value.is_infinite() {
        out.text(if value > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    // Rust's `{:e}` gives the shortest round-tripping digits, as repr does.
    // Written on the stack: this runs for every jsonl line.
    let mut sci = StackText::default();
    let _ = write!(sci, "{value:e}");
    let sci = sci.as_str();
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let mut digits = StackText::default();
    for ch in mantissa.chars().filter(|c| *c != '.') {
        let _ = digits.write_char(ch);
    }
    let digits = digits.as_str();
    out.text(sign);
    if (-4..16).contains(&exponent) {
        let point = exponent + 1; // digits before the decimal point
        if point <= 0 {
            out.text("0.");
            for _ in 0..-point {
                out.ch('0');
            }
            out.text(digits);
        } else {
            let point = point as usize;
            if digits.len() <= point {
                out.text(digits);
                for _ in digits.len()..point {
                    out.ch('0');
                }
                out.text(".0");
            } else {
                out.text(&digits[..point]);
                out.ch('.');
                out.text(&digits[point..]);
            }
        }
    } else {
        out.text(&digits[..1]);
        if digits.len() > 1 {
            out.ch('.');
            out.text(&digits[1..]);
        }
        crate::sink_write!(
            out,
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.abs()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(value: f64) -> String {
        let mut out = String::new();
        push_f64(&mut out, value);
        out
    }

    fn string(text: &str) -> String {
        let mut out = String::new();
        push_str(&mut out, text);
        out
    }

    #[test]
    fn floats_as_python_repr() {
        // Expected strings are Python 3.11's repr of the same values.
        assert_eq!(float(1.5), "1.5");
        assert_eq!(float(0.0), "0.0");
        assert_eq!(float(-0.0), "-0.0");
        assert_eq!(float(1700000000.0), "1700000000.0");
        assert_eq!(float(1700000000.000123), "1700000000.000123");
        assert_eq!(float(1e16), "1e+16");
        assert_eq!(float(1.5e16), "1.5e+16");
        assert_eq!(float(123456789012345.6), "123456789012345.6");
        assert_eq!(float(0.0001), "0.0001");
        assert_eq!(float(0.00001), "1e-05");
        assert_eq!(float(1.25e-7), "1.25e-07");
        assert_eq!(float(0.1), "0.1");
        assert_eq!(float(-2.5), "-2.5");
        assert_eq!(float(1e300), "1e+300");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(f64::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn strings_as_python_json_dumps() {
        assert_eq!(string("plain"), "\"plain\"");
        assert_eq!(string("NONE → SYN_SENT"), "\"NONE \\u2192 SYN_SENT\"");
        assert_eq!(
            string("a\"b\\c\nd\te\u{1}"),
            "\"a\\\"b\\\\c\\nd\\te\\u0001\""
        );
        assert_eq!(string("\u{1F600}"), "\"\\ud83d\\ude00\"");
        assert_eq!(string("\u{7f}"), "\"\\u007f\"");
    }
}
