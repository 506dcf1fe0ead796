//! connbytes match (xt_connbytes.c): the entry's packet or byte counters.

/// `counters`: (original packets, original bytes, reply packets, reply bytes).
/// `dirs`: 0 original, 1 reply, 2 both; `mode`: 0 packets, 1 bytes, 2 average packet size.
pub fn connbytes(
    counters: Option<[u64; 4]>,
    dirs: u8,
    mode: u8,
    low: u64,
    high: u64,
    neg: bool,
) -> bool {
    let Some(c) = counters else {
        return false;
    };
    let (packets, bytes) = match dirs {
        0 => (c[0], c[1]),
        1 => (c[2], c[3]),
        _ => (c[0].saturating_add(c[2]), c[1].saturating_add(c[3])),
    };
    let amount = match mode {
        0 => packets,
        1 => bytes,
        _ => bytes.checked_div(packets).unwrap_or(0),
    };
    (low <= amount && amount <= high) != neg
}

#[cfg(test)]
mod tests {
    #[test]
    fn amounts() {
        let c = Some([3, 300, 2, 1000]);
        assert!(super::connbytes(c, 0, 0, 3, 3, false));
        assert!(super::connbytes(c, 2, 1, 1300, 1300, false));
        assert!(super::connbytes(c, 2, 2, 260, 260, false));
        assert!(!super::connbytes(None, 2, 2, 0, u64::MAX, false));
    }
}
