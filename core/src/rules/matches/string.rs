//! string match (xt_string.c): a byte pattern anywhere in the datagram
//! between two offsets; `--icase` folds ASCII letters.

use crate::packet::Packet;

pub fn string(
    pkt: &Packet<'_>,
    pattern: &[u8],
    from: usize,
    to: usize,
    icase: bool,
    neg: bool,
) -> bool {
    let data = pkt.data;
    let end = to.min(data.len());
    let window = data.get(from.min(end)..end).unwrap_or(&[]);
    let found = !pattern.is_empty()
        && window.windows(pattern.len()).any(|w| {
            if icase {
                w.eq_ignore_ascii_case(pattern)
            } else {
                w == pattern
            }
        });
    found != neg
}

#[cfg(test)]
mod tests {
    use crate::rules::testpkt;

    #[test]
    fn patterns_and_windows() {
        let data = testpkt::tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 0x18, &[]);
        let pkt = testpkt::decode(&data);
        // the window field 64240 = 0xFAF0 sits at bytes 34..36
        assert!(super::string(&pkt, &[0xfa, 0xf0], 0, 65535, false, false));
        assert!(!super::string(&pkt, &[0xfa, 0xf0], 0, 35, false, false));
        assert!(super::string(&pkt, &[0xfa, 0xf0], 36, 65535, false, true));
        let mut text = data.clone();
        text.extend_from_slice(b"GET /Index");
        let pkt = testpkt::decode(&text);
        assert!(super::string(&pkt, b"get /index", 0, 65535, true, false));
        assert!(!super::string(&pkt, b"get /index", 0, 65535, false, false));
    }
}
