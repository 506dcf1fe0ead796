//! Capture files in: pcap (pcap-savefile(5)) and pcapng (draft-ietf-opsawg-pcapng),
//! plain or gzip-compressed, read as a stream of frames.
//!
//! `open` sniffs the format from the magic bytes (gzip first, then the capture
//! format inside it) and returns a `Reader`, a lending iterator: each
//! `Frame` borrows its bytes from the reader's buffer, so reading allocates
//! nothing per frame. Damage costs no readable packet: every complete frame
//! before it is delivered first, then one `CaptureError` naming the file, the
//! byte offset and the 1-based packet number; `ErrorKind::Truncated` marks a
//! file that simply stops.
//!
//! The path `-` is standard input, read the same way: the readers only ever
//! read forward, so a pipe serves as well as a file. Each frame says where
//! its record lies (`Frame::at`), so that a plain file's records can be read
//! again one by one at their offsets (`offsets`, for a partitioned run).
//!
//! Plain files are read in `CHUNK`-sized pieces into one reused buffer rather
//! than memory-mapped. On a 100 MB pcap in the page cache both walk the
//! records in the same time (13-14 ms either way, measured), and reads need no
//! `unsafe` and cannot die of SIGBUS when another process truncates the file
//! under us (a tcpdump still writing, a rotated capture).

mod merge;
pub mod offsets;
mod pcap;
mod pcapng;
mod source;
mod tsdiv;
pub mod writer;

use std::fmt;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

pub use merge::Capture;
use source::{Break, Input, Source};

/// Bytes asked of the file (or of the decompressor) per read.
pub const CHUNK: usize = 1 << 20;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// One captured link-layer frame, as the file recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame<'a> {
    /// 0-based position among the file's packets.
    pub index: u64,
    /// Seconds since the epoch: `sec + frac * scale` in doubles (pcap), or
    /// `ticks / units` rounded once plus the interface's offset (pcapng).
    pub ts: f64,
    pub data: &'a [u8],
    pub linktype: u32,
    /// The interface name (pcapng `if_name`), when the file gives one.
    pub iface: Option<Arc<str>>,
    pub orig_len: u32,
    /// The interface the frame was captured on: an index into the reader's
    /// interfaces over the whole file (pcapng numbers them per section).
    pub iface_id: u32,
    /// The timestamp as recorded, in its interface's units (`tsresol`),
    /// before any offset: what a writer copies to keep it exact.
    pub ticks: u64,
    /// Where the frame's record lies (`offsets` reads it there again).
    pub at: Location,
    /// The record carries no timestamp of its own (a pcapng Simple Packet
    /// Block): `ts` and `ticks` are the file's previous packet's.
    pub untimed: bool,
}

/// Where a record lies: which file of the capture (its position among the
/// files merged, 0 for a single file) and the byte offset of the record's
/// start (pcap record header, pcapng block) in that file, decompressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Location {
    pub file: u32,
    pub offset: u64,
}

/// What a capture says about an interface, as a pcapng Interface
/// Description Block holds it (a pcap file has one, from its header).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IfaceInfo {
    pub linktype: u32,
    pub name: Option<Arc<str>>,
    /// 0: no limit.
    pub snaplen: u32,
    /// The `if_tsresol` byte: a power of 10, or of 2 with the top bit set.
    pub tsresol: u8,
    /// Seconds added to every timestamp (`if_tsoffset`).
    pub tsoffset: i64,
}

/// Whether an error is damage or a file that stops early (in Python
/// `statewall.capture.source.CaptureTruncated`, a subclass of `CaptureError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Corrupt,
    Truncated,
}

/// A capture that cannot be read further; the message says where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError {
    kind: ErrorKind,
    message: String,
}

impl CaptureError {
    /// An error of `kind` whose message (starting with the file name) is `message`.
    pub fn new(kind: ErrorKind, message: String) -> Self {
        CaptureError { kind, message }
    }

    fn corrupt(message: String) -> Self {
        CaptureError {
            kind: ErrorKind::Corrupt,
            message,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn is_truncated(&self) -> bool {
        self.kind == ErrorKind::Truncated
    }

    /// The whole message, starting with the file name.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CaptureError {}

/// The text of an OS error as Python's `strerror` gives it (without Rust's
/// " (os error N)" suffix), so messages read the same from both languages.
pub(crate) fn strerror(err: &io::Error) -> String {
    let text = err.to_string();
    match err.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .unwrap_or(&text)
            .to_string(),
        None => text,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    Pcapng,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::Pcapng => "pcapng",
        }
    }
}

/// The byte stream under a format parser: a window `buf[start..end]` on
/// the (decompressed) file, `base` being the stream offset of `buf[0]`.
pub(crate) struct Stream {
    name: Arc<str>,
    input: Input,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    base: u64,
}

impl Stream {
    /// Make `need` bytes available from `start`, fewer only at the end of the
    /// data; returns how many are available.
    fn fill(&mut self, need: usize) -> Result<usize, CaptureError> {
        let have = self.end - self.start;
        if have >= need {
            return Ok(have);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.start = 0;
            self.end = have;
        }
        while self.end < need {
            if self.end == self.buf.len() {
                // Grow by doubling, not to `need` at once: a corrupt length
                // must not allocate far more than the file holds.
                let size = need.min(self.buf.len().saturating_mul(2).max(CHUNK));
                self.buf.resize(size, 0);
            }
            let Some(room) = self.buf.get_mut(self.end..) else {
                break;
            };
            let got = self.input.read(room).map_err(|err| {
                CaptureError::corrupt(format!("{}: read error: {}", self.name, strerror(&err)))
            })?;
            if got == 0 {
                break;
            }
            self.end += got;
        }
        Ok(self.end - self.start)
    }

    /// Read on from stream offset `at`: within the bytes held, or by
    /// seeking the file (a plain file only).
    fn seek_to(&mut self, at: u64) -> Result<(), CaptureError> {
        if at >= self.base && at - self.base <= self.end as u64 {
            self.start = (at - self.base) as usize;
            return Ok(());
        }
        self.input.seek(at).map_err(|err| {
            self.corrupt(format_args!("cannot read at byte {at}: {}", strerror(&err)))
        })?;
        self.base = at;
        self.start = 0;
        self.end = 0;
        Ok(())
    }

    /// The unread bytes (after `fill`).
    fn window(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    /// Stream offset of the next unread byte.
    fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    fn corrupt(&self, message: impl fmt::Display) -> CaptureError {
        CaptureError::corrupt(format!("{}: {message}", self.name))
    }

    /// The error for a file that stops mid-record, naming a gzip stream that
    /// broke off or went bad (the latter is damage, not truncation).
    fn truncated(&self, message: impl fmt::Display) -> CaptureError {
        match self.input.broken() {
            None => CaptureError {
                kind: ErrorKind::Truncated,
                message: format!("{}: {message}", self.name),
            },
            Some(Break::EndsEarly) => CaptureError {
                kind: ErrorKind::Truncated,
                message: format!("{}: {message}; the gzip stream ends early", self.name),
            },
            Some(Break::Corrupt { at, what }) => CaptureError::corrupt(format!(
                "{}: {message}; corrupt gzip data at byte {at} of the compressed file: {what}",
                self.name
            )),
        }
    }

    /// At the end of the data: `None` for a clean end, else the error for a
    /// gzip stream that broke there (`packet` is the 1-based number of the
    /// packet that would have come next).
    fn end_of_data(&self, packet: u64) -> Option<CaptureError> {
        self.input.broken().map(|_| {
            self.truncated(format_args!(
                "file ends at byte {} (packet #{packet})",
                self.offset()
            ))
        })
    }
}

/// Where a frame's bytes lie in the buffer and what the record said about it.
pub(crate) struct Meta {
    /// Stream offset of the record's start.
    at: u64,
    untimed: bool,
    from: usize,
    to: usize,
    ts: f64,
    linktype: u32,
    iface: Option<Arc<str>>,
    orig_len: u32,
    iface_id: u32,
    ticks: u64,
}

enum State {
    Pcap(pcap::Pcap),
    Pcapng(pcapng::Pcapng),
}

/// An open capture: call `next_frame` until it returns `None`.
pub struct Reader {
    stream: Stream,
    format: Format,
    state: State,
    index: u64,
    done: bool,
}

/// The name of standard input in messages, and the path that means it.
pub const STDIN_NAME: &str = "standard input";
pub const STDIN_PATH: &str = "-";

/// Open a pcap or pcapng file, gzip-compressed or not, judged by its magic
/// bytes; `-` reads standard input.
pub fn open(path: impl AsRef<Path>) -> Result<Reader, CaptureError> {
    let path = path.as_ref();
    if path.as_os_str() == STDIN_PATH {
        return open_source(Arc::from(STDIN_NAME), Box::new(io::stdin()));
    }
    let name: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
    let file = open_file(path, &name)?;
    open_input(name, Input::File(file))
}

/// `path` opened for reading; `name` stands for it in messages.
fn open_file(path: &Path, name: &str) -> Result<File, CaptureError> {
    let cannot_open =
        |err: &io::Error| CaptureError::corrupt(format!("{name}: cannot open: {}", strerror(err)));
    let file = File::open(path).map_err(|err| cannot_open(&err))?;
    // File::open accepts a directory (reading it fails later); refuse it
    // here, with EISDIR.
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(cannot_open(&io::Error::from_raw_os_error(21)));
    }
    Ok(file)
}

/// Read a capture from any byte stream; `name` stands for it in messages.
pub fn open_source(
    name: Arc<str>,
    input: Box<dyn io::Read + Send + Sync>,
) -> Result<Reader, CaptureError> {
    let input: Source = input;
    open_input(name, Input::Plain(input))
}

fn new_stream(name: Arc<str>, input: Input) -> Stream {
    Stream {
        name,
        input,
        buf: vec![0; CHUNK],
        start: 0,
        end: 0,
        base: 0,
    }
}

fn open_input(name: Arc<str>, input: Input) -> Result<Reader, CaptureError> {
    let mut stream = new_stream(name, input);
    stream.fill(GZIP_MAGIC.len())?;
    if stream.window().starts_with(&GZIP_MAGIC) {
        let head = stream.window().to_vec();
        stream.input = stream.input.into_gzip(head);
        stream.start = 0;
        stream.end = 0;
        let got = stream.fill(8)?;
        if got < 4 && stream.input.broken().is_some() {
            return Err(stream.truncated(format_args!("only {got} bytes decompress")));
        }
    } else {
        stream.fill(8)?;
    }
    let head = stream.window();
    let magic = head.get(..4).unwrap_or(head);
    let state = if let Some(pcap) = pcap::Pcap::sniff(magic) {
        State::Pcap(pcap)
    } else if magic == pcapng::SHB_MAGIC {
        State::Pcapng(pcapng::Pcapng::new())
    } else {
        return Err(stream.corrupt(describe_unknown(head)));
    };
    let format = match state {
        State::Pcap(_) => Format::Pcap,
        State::Pcapng(_) => Format::Pcapng,
    };
    Ok(Reader {
        stream,
        format,
        state,
        index: 0,
        done: false,
    })
}

fn describe_unknown(head: &[u8]) -> String {
    if head.is_empty() {
        return "empty file, not a capture".to_string();
    }
    let magic = head.get(..4).unwrap_or(head);
    if magic == [0x34, 0xcd, 0xb2, 0xa1] || magic == [0xa1, 0xb2, 0xcd, 0x34] {
        return "modified (Kuznetsov) pcap format is not supported; convert it with editcap"
            .to_string();
    }
    let hex: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!(
        "not a pcap, pcapng or gzip file (starts with {})",
        hex.join(" ")
    )
}

impl Reader {
    /// The next frame, or the error that ends the capture (after which, and
    /// after the clean end, it returns `None`).
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, CaptureError>> {
        self.next_described()
            .map(|step| step.map(|(frame, _)| frame))
    }

    /// The next frame with its interface's description (what a writer
    /// needs beside the frame), as `next_frame`.
    pub fn next_described(
        &mut self,
    ) -> Option<Result<(Frame<'_>, Option<&IfaceInfo>), CaptureError>> {
        if self.done {
            return None;
        }
        let packet = self.index + 1;
        let step = match &mut self.state {
            State::Pcap(p) => p.next(&mut self.stream, packet),
            State::Pcapng(p) => p.next(&mut self.stream, packet),
        };
        match step {
            Ok(Some(meta)) => {
                let index = self.index;
                self.index += 1;
                Some(Ok(self.described(meta, index)))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }

    /// The frame `meta` describes, numbered `index`, with its interface.
    fn described(&self, meta: Meta, index: u64) -> (Frame<'_>, Option<&IfaceInfo>) {
        let iface = self.interface(meta.iface_id);
        let frame = Frame {
            index,
            ts: meta.ts,
            data: self.stream.buf.get(meta.from..meta.to).unwrap_or(&[]),
            linktype: meta.linktype,
            iface: meta.iface,
            orig_len: meta.orig_len,
            iface_id: meta.iface_id,
            ticks: meta.ticks,
            at: Location {
                file: 0,
                offset: meta.at,
            },
            untimed: meta.untimed,
        };
        (frame, iface)
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// An interface a frame named by `Frame::iface_id`.
    pub fn interface(&self, id: u32) -> Option<&IfaceInfo> {
        match &self.state {
            State::Pcap(p) => p.interface(),
            State::Pcapng(p) => p.interface(id),
        }
    }

    /// Whether the file was gzip-compressed.
    pub fn compressed(&self) -> bool {
        self.stream.input.is_gzip()
    }

    /// The file name used in error messages.
    pub fn name(&self) -> &str {
        &self.stream.name
    }
}

/// Fixed-width integer reads that cannot run past the slice (0 if they would;
/// callers check lengths first, this only keeps a mistake from panicking).
pub(crate) fn u16_at(b: &[u8], at: usize, big: bool) -> u16 {
    match b.get(at..at + 2).and_then(|s| <[u8; 2]>::try_from(s).ok()) {
        Some(a) if big => u16::from_be_bytes(a),
        Some(a) => u16::from_le_bytes(a),
        None => 0,
    }
}

pub(crate) fn u32_at(b: &[u8], at: usize, big: bool) -> u32 {
    match b.get(at..at + 4).and_then(|s| <[u8; 4]>::try_from(s).ok()) {
        Some(a) if big => u32::from_be_bytes(a),
        Some(a) => u32::from_le_bytes(a),
        None => 0,
    }
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod offsets_tests;
