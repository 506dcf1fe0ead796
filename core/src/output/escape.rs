//! Text that reaches a terminal: control characters shown, never sent.
//!
//! Payload bytes quoted in reasons, and any text that comes from a ruleset
//! (comments, LOG prefixes, chain names), may hold ESC or other control
//! characters that a terminal would obey. One rule for all of them, the one
//! Python's `repr` follows: `\t`, `\n` and `\r` by name, any other C0
//! control, DEL or C1 control as `\xHH`. A backslash stays as it is, so
//! ordinary text (and iptables-save quoting) prints unchanged, and escaping
//! escaped text changes nothing.

use std::borrow::Cow;

use crate::output::Sink;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// C0 controls, DEL and the C1 controls (U+0080 to U+009F, which some
/// terminals read as escape sequences too).
pub fn is_control(ch: char) -> bool {
    matches!(ch, '\0'..='\x1f' | '\x7f'..='\u{9f}')
}

/// The escape of one control character or byte (`code` below 0x100).
pub fn push_control<S: Sink + ?Sized>(out: &mut S, code: u8) {
    match code {
        b'\t' => out.text("\\t"),
        b'\n' => out.text("\\n"),
        b'\r' => out.text("\\r"),
        _ => {
            out.text("\\x");
            out.ascii(&[HEX[usize::from(code >> 4)], HEX[usize::from(code & 0xf)]]);
        }
    }
}

/// Whether `text` may hold a control character: a C0 byte, DEL, or 0xC2,
/// the first byte of every C1 control in UTF-8 (and of some printable
/// characters, which the slow path then passes through).
fn may_hold_control(text: &str) -> bool {
    text.bytes().any(|b| b < 0x20 || b == 0x7f || b == 0xc2)
}

/// Append `text` with its control characters escaped.
pub fn push_escaped<S: Sink + ?Sized>(out: &mut S, text: &str) {
    if !may_hold_control(text) {
        out.text(text);
        return;
    }
    let mut plain_from = 0;
    for (at, ch) in text.char_indices() {
        if is_control(ch) {
            out.text(&text[plain_from..at]);
            // A control character is below U+00A0: its code fits a byte.
            push_control(out, u8::try_from(u32::from(ch)).unwrap_or(b'?'));
            plain_from = at + ch.len_utf8();
        }
    }
    out.text(&text[plain_from..]);
}

/// `text` with its control characters escaped (borrowed when there are none).
pub fn escape(text: &str) -> Cow<'_, str> {
    if !may_hold_control(text) || !text.chars().any(is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    push_escaped(&mut out, text);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_as_python_repr_shows_them() {
        assert_eq!(
            escape("x\x1b]0;PWNED\x07\x1b[2J"),
            "x\\x1b]0;PWNED\\x07\\x1b[2J"
        );
        assert_eq!(escape("a\tb\nc\rd\0e\x7f"), "a\\tb\\nc\\rd\\x00e\\x7f");
        assert_eq!(escape("csi\u{9b}31m"), "csi\\x9b31m");
    }

    #[test]
    fn ordinary_text_is_unchanged_and_escaping_twice_changes_nothing() {
        for text in [
            "",
            "plain",
            "C:\\dir \"quoted\"",
            "caf\u{e9} \u{a0}nbsp \u{b0}",
            "\u{1F600}",
        ] {
            assert!(matches!(escape(text), Cow::Borrowed(t) if t == text));
        }
        let once = escape("\x1b[31m\\x1b\u{85}").into_owned();
        assert_eq!(escape(&once), once);
        assert_eq!(once, "\\x1b[31m\\x1b\\x85");
    }

    #[test]
    fn every_control_and_nothing_else_is_escaped() {
        for code in 0u32..0x800 {
            let Some(ch) = char::from_u32(code) else {
                continue;
            };
            let text = ch.to_string();
            let shown = escape(&text);
            assert_eq!(shown != text, is_control(ch), "U+{code:04X}");
            assert!(shown.chars().all(|c| !is_control(c)), "U+{code:04X}");
        }
    }
}
