//! Everything the core writes for people: addresses, packet summaries, and
//! the per-packet text and jsonl lines, which the Python side passes on
//! unchanged.

pub mod addr;
pub mod conns;
pub mod escape;
pub mod filter;
pub mod json;
pub mod merge;
pub mod nat;
pub mod partial;
pub mod record;
pub mod report;
pub mod report_merge;
pub mod report_rows;
pub mod summary;

/// Where the writers put text: a `String`, or the raw bytes of an output
/// buffer (the per-packet lines, which never need to be a Rust string).
pub trait Sink {
    fn text(&mut self, text: &str);
    /// Bytes known to be ASCII (digits, dots, hex).
    fn ascii(&mut self, bytes: &[u8]);
    fn ch(&mut self, ch: char);
}

impl Sink for String {
    fn text(&mut self, text: &str) {
        self.push_str(text);
    }

    fn ascii(&mut self, bytes: &[u8]) {
        self.push_str(std::str::from_utf8(bytes).unwrap_or(""));
    }

    fn ch(&mut self, ch: char) {
        self.push(ch);
    }
}

impl Sink for Vec<u8> {
    fn text(&mut self, text: &str) {
        self.extend_from_slice(text.as_bytes());
    }

    fn ascii(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn ch(&mut self, ch: char) {
        let mut buf = [0u8; 4];
        self.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    }
}

/// A short text formatted without allocating (numbers, hex groups).
pub struct StackText {
    buf: [u8; 48],
    len: usize,
}

impl Default for StackText {
    fn default() -> Self {
        StackText {
            buf: [0; 48],
            len: 0,
        }
    }
}

impl StackText {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let end = self.len + text.len();
        let room = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        room.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `format!` into a `Sink` without allocating (short texts only).
#[macro_export]
macro_rules! sink_write {
    ($out:expr, $($arg:tt)*) => {{
        let mut text = $crate::output::StackText::default();
        let _ = ::std::fmt::Write::write_fmt(&mut text, format_args!($($arg)*));
        $crate::output::Sink::text($out, text.as_str());
    }};
}
