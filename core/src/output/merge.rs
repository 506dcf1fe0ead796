//! Putting a partitioned run's output back together (python/part.rs).
//!
//! Each partition's output is a stream of pieces (a packet's lines, an
//! entry's, a connection's) with marks: (key, end offset) pairs, keys rising.
//! `merge_keyed` interleaves the partitions' pieces by key; `renumber_jsonl`
//! rewrites the connection numbers of jsonl replay lines. Both stream: only
//! the marks and one piece at a time are held, so outputs larger than memory
//! pass through files.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};

const KEY: &[u8] = b",\"conn\":";

/// Copy `data`'s lines (one piece per mark) to `out` with every `"conn":N`
/// written as `numbers[N - 1]`, moving the marks' end offsets to match.
/// Strings in a line escape their quotes, so `,"conn":` can only be the key
/// itself; only notes and NAT's fields follow it, so it is looked for from
/// the end of the line.
pub fn renumber_jsonl(
    data: &mut impl Read,
    out: &mut impl Write,
    marks: &mut [u64],
    numbers: &[u32],
) -> io::Result<()> {
    let mut line = Vec::new();
    let (mut start, mut written) = (0u64, 0u64);
    for end in marks.iter_mut().skip(1).step_by(2) {
        line.resize(end.saturating_sub(start) as usize, 0);
        data.read_exact(&mut line)?;
        start = *end;
        written += rewrite_line(&line, out, numbers)? as u64;
        *end = written;
    }
    Ok(())
}

/// Write `line` with its connection number mapped; returns the bytes written.
fn rewrite_line(line: &[u8], out: &mut impl Write, numbers: &[u32]) -> io::Result<usize> {
    let Some(at) = line.windows(KEY.len()).rposition(|w| w == KEY) else {
        out.write_all(line)?;
        return Ok(line.len());
    };
    let from = at + KEY.len();
    let digits = line[from..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let text = &line[from..from + digits];
    let local: Option<usize> = std::str::from_utf8(text).ok().and_then(|t| t.parse().ok());
    let global = local.and_then(|n| numbers.get(n.checked_sub(1)?));
    let number = global.map_or_else(|| text.to_vec(), |g| g.to_string().into_bytes());
    out.write_all(&line[..from])?;
    out.write_all(&number)?;
    out.write_all(&line[from + digits..])?;
    Ok(line.len() - digits + number.len())
}

/// Interleave the parts' pieces by key into `out`: each part is its marks
/// and a reader of its data, read once from start to end.
pub fn merge_keyed<R: Read>(parts: &mut [(Vec<u64>, R)], out: &mut impl Write) -> io::Result<()> {
    // (key, part, position of the piece's pair in the part's marks)
    let mut heap: BinaryHeap<Reverse<(u64, usize, usize)>> = parts
        .iter()
        .enumerate()
        .filter(|(_, (marks, _))| marks.len() >= 2)
        .map(|(part, (marks, _))| Reverse((marks[0], part, 0)))
        .collect();
    let mut piece = Vec::new();
    while let Some(Reverse((_, part, at))) = heap.pop() {
        let (marks, data) = &mut parts[part];
        let start = if at == 0 { 0 } else { marks[at - 1] };
        piece.resize(marks[at + 1].saturating_sub(start) as usize, 0);
        data.read_exact(&mut piece)?;
        out.write_all(&piece)?;
        if at + 3 < marks.len() {
            heap.push(Reverse((marks[at + 2], part, at + 2)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_interleave_by_key() {
        let mut parts = vec![
            (vec![0, 2, 3, 4], &b"a0b3"[..]),
            (vec![1, 2, 2, 4], &b"x1y2"[..]),
        ];
        let mut out = Vec::new();
        merge_keyed(&mut parts, &mut out).unwrap();
        assert_eq!(out, b"a0x1y2b3");
    }

    #[test]
    fn numbers_are_rewritten_and_marks_follow() {
        let data = b"{\"a\":\"\\\",\\\"conn\\\":1\",\"conn\":1,\"notes\":[]}\n{\"conn\":null}\n{\"x\":1,\"conn\":2}\n";
        let first = data.iter().position(|&b| b == b'\n').unwrap() as u64 + 1;
        let second = first + 15;
        let mut marks = vec![0, first, 4, second, 9, data.len() as u64];
        let mut out = Vec::new();
        renumber_jsonl(&mut &data[..], &mut out, &mut marks, &[7, 12345]).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert_eq!(
            text,
            "{\"a\":\"\\\",\\\"conn\\\":1\",\"conn\":7,\"notes\":[]}\n{\"conn\":null}\n{\"x\":1,\"conn\":12345}\n"
        );
        assert_eq!(marks[5], out.len() as u64);
        assert_eq!(marks[1], first);
    }
}
