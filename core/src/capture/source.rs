//! The bytes under the format readers: a plain file, or a gzip stream
//! (RFC 1952) decompressed as it is read.
//!
//! gzip members are parsed here and only the deflate data goes to `flate2`,
//! so that a damaged stream still hands over every byte that decompresses:
//! a stream that breaks off, deflate data that goes bad, or a member whose
//! CRC or length trailer does not match. The break is remembered (`broken`)
//! and reported by the format reader with the record it cut, or after the
//! last complete record, with the offset of the damage in the compressed file.
//! Concatenated members are read as one stream, like `gzip -dc`; a trailer
//! mismatch does not stop the members after it, and the first mismatch is
//! reported at the end.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use flate2::{Crc, Decompress, FlushDecompress, Status};

use super::{CHUNK, GZIP_MAGIC};

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

/// Why a gzip stream stopped before its proper end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Break {
    /// The compressed file ends inside a member.
    EndsEarly,
    /// Damage at byte `at` of the compressed file.
    Corrupt { at: u64, what: String },
}

/// Where the bytes come from: a file, or standard input (which cannot seek,
/// and need not: every reader here only reads forward).
pub(crate) type Source = Box<dyn Read + Send + Sync>;

pub(crate) enum Input {
    /// A file, which can also be read at an offset (`seek`).
    File(File),
    Plain(Source),
    Gzip(Box<Gunzip>),
}

impl Input {
    pub(crate) fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::File(file) => read_retrying(file, out),
            Input::Plain(source) => read_retrying(source, out),
            Input::Gzip(gz) => gz.read(out),
        }
    }

    /// Read on from byte `at` of a file (`Unsupported` for other inputs).
    pub(crate) fn seek(&mut self, at: u64) -> io::Result<()> {
        match self {
            Input::File(file) => file.seek(SeekFrom::Start(at)).map(|_| ()),
            _ => Err(io::Error::from(io::ErrorKind::Unsupported)),
        }
    }

    /// Decompress from here on; `head` holds the bytes already read from the file.
    pub(crate) fn into_gzip(self, head: Vec<u8>) -> Input {
        match self {
            Input::File(file) => Input::Gzip(Box::new(Gunzip::new(Box::new(file), head))),
            Input::Plain(source) => Input::Gzip(Box::new(Gunzip::new(source, head))),
            gzip => gzip,
        }
    }

    pub(crate) fn broken(&self) -> Option<&Break> {
        match self {
            Input::Gzip(gz) => gz.broken.as_ref(),
            Input::File(_) | Input::Plain(_) => None,
        }
    }

    pub(crate) fn is_gzip(&self) -> bool {
        matches!(self, Input::Gzip(_))
    }
}

fn read_retrying(input: &mut impl Read, out: &mut [u8]) -> io::Result<usize> {
    loop {
        match input.read(out) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

enum GzState {
    Header { first: bool },
    Body,
    Trailer,
    Done,
}

pub(crate) struct Gunzip {
    file: Source,
    /// Compressed bytes `inbuf[in_start..in_end]`; `in_base` is the file
    /// offset of `inbuf[0]`.
    inbuf: Vec<u8>,
    in_start: usize,
    in_end: usize,
    in_base: u64,
    file_eof: bool,
    state: GzState,
    inflate: Decompress,
    crc: Crc,
    broken: Option<Break>,
    /// The first trailer mismatch, reported once the data runs out.
    damage: Option<Break>,
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Gunzip {
    fn new(file: Source, head: Vec<u8>) -> Self {
        let in_end = head.len();
        Gunzip {
            file,
            inbuf: head,
            in_start: 0,
            in_end,
            in_base: 0,
            file_eof: false,
            state: GzState::Header { first: true },
            inflate: Decompress::new(false),
            crc: Crc::new(),
            broken: None,
            damage: None,
        }
    }

    fn pending(&self) -> &[u8] {
        self.inbuf.get(self.in_start..self.in_end).unwrap_or(&[])
    }

    fn in_offset(&self) -> u64 {
        self.in_base + self.in_start as u64
    }

    /// Read compressed bytes until `need` are pending; false at the end of the file.
    fn want(&mut self, need: usize) -> io::Result<bool> {
        while self.in_end - self.in_start < need {
            if self.file_eof {
                return Ok(false);
            }
            if self.in_start > 0 {
                self.inbuf.copy_within(self.in_start..self.in_end, 0);
                self.in_base += self.in_start as u64;
                self.in_end -= self.in_start;
                self.in_start = 0;
            }
            if self.inbuf.len() < self.in_end + CHUNK.max(need) {
                self.inbuf.resize(self.in_end + CHUNK.max(need), 0);
            }
            let room = self.inbuf.get_mut(self.in_end..).unwrap_or(&mut []);
            let got = loop {
                match self.file.read(room) {
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            if got == 0 {
                self.file_eof = true;
            }
            self.in_end += got;
        }
        Ok(true)
    }

    fn stop(&mut self, why: Break) {
        self.broken = Some(why);
        self.state = GzState::Done;
    }

    /// Parse a member header; returns false when the stream ends cleanly
    /// instead (only possible after the first member).
    fn header(&mut self, first: bool) -> io::Result<bool> {
        if !first {
            // Zero padding after a member is allowed (gzip(1) allows it too).
            loop {
                if !self.want(1)? {
                    return Ok(false);
                }
                let zeros = self.pending().iter().take_while(|&&b| b == 0).count();
                self.in_start += zeros;
                if self.in_start < self.in_end {
                    break;
                }
            }
        }
        let at = self.in_offset();
        let whole = self.want(10)?;
        let head = self.pending();
        let prefix = head.get(..head.len().min(2)).unwrap_or(&[]);
        if !GZIP_MAGIC.starts_with(prefix) || prefix.is_empty() {
            let what = format!(
                "bytes after the last gzip member are not a gzip member (they start with {})",
                hex(head.get(..head.len().min(8)).unwrap_or(&[]))
            );
            self.stop(Break::Corrupt { at, what });
            return Ok(true);
        }
        if !whole {
            self.stop(Break::EndsEarly);
            return Ok(true);
        }
        let method = head.get(2).copied().unwrap_or(0);
        let flags = head.get(3).copied().unwrap_or(0);
        if method != 8 {
            self.stop(Break::Corrupt {
                at,
                what: format!("unknown compression method {method}"),
            });
            return Ok(true);
        }
        let mut len = 10;
        if flags & FEXTRA != 0 {
            if !self.want(len + 2)? {
                self.stop(Break::EndsEarly);
                return Ok(true);
            }
            let p = self.pending();
            let xlen = usize::from(p.get(len).copied().unwrap_or(0))
                | usize::from(p.get(len + 1).copied().unwrap_or(0)) << 8;
            len += 2 + xlen;
            if !self.want(len)? {
                self.stop(Break::EndsEarly);
                return Ok(true);
            }
        }
        for flag in [FNAME, FCOMMENT] {
            if flags & flag == 0 {
                continue;
            }
            loop {
                if let Some(nul) = self
                    .pending()
                    .get(len..)
                    .and_then(|p| p.iter().position(|&b| b == 0))
                {
                    len += nul + 1;
                    break;
                }
                let have = self.in_end - self.in_start;
                if !self.want(have + 1)? {
                    self.stop(Break::EndsEarly);
                    return Ok(true);
                }
            }
        }
        if flags & FHCRC != 0 {
            // The header CRC is skipped unchecked (the trailer's CRC-32 covers the data).
            len += 2;
            if !self.want(len)? {
                self.stop(Break::EndsEarly);
                return Ok(true);
            }
        }
        self.in_start += len;
        self.inflate.reset(false);
        self.crc.reset();
        self.state = GzState::Body;
        Ok(true)
    }

    fn trailer(&mut self) -> io::Result<()> {
        let at = self.in_offset();
        if !self.want(8)? {
            self.stop(Break::EndsEarly);
            return Ok(());
        }
        let t = self.pending();
        let word = |i: usize| {
            t.get(i..i + 4)
                .and_then(|s| <[u8; 4]>::try_from(s).ok())
                .map_or(0, u32::from_le_bytes)
        };
        let (crc, size) = (word(0), word(4));
        if self.damage.is_none() {
            if crc != self.crc.sum() {
                let what = format!(
                    "CRC check failed (the trailer says {crc:#010x}, the data gives {:#010x})",
                    self.crc.sum()
                );
                self.damage = Some(Break::Corrupt { at, what });
            } else if size != self.crc.amount() {
                let what = format!(
                    "length check failed (the trailer says {size} bytes, the data has {})",
                    self.crc.amount()
                );
                self.damage = Some(Break::Corrupt { at: at + 4, what });
            }
        }
        self.in_start += 8;
        self.state = GzState::Header { first: false };
        Ok(())
    }

    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match self.state {
                GzState::Done => return Ok(0),
                GzState::Header { first } => {
                    if !self.header(first)? {
                        self.state = GzState::Done;
                        self.broken = self.damage.take();
                    }
                }
                GzState::Trailer => self.trailer()?,
                GzState::Body => {
                    if self.in_start == self.in_end && !self.want(1)? {
                        self.stop(Break::EndsEarly);
                        return Ok(0);
                    }
                    let (before_in, before_out) =
                        (self.inflate.total_in(), self.inflate.total_out());
                    let input = self.inbuf.get(self.in_start..self.in_end).unwrap_or(&[]);
                    let status = self.inflate.decompress(input, out, FlushDecompress::None);
                    let consumed = (self.inflate.total_in() - before_in) as usize;
                    let produced = (self.inflate.total_out() - before_out) as usize;
                    self.crc.update(out.get(..produced).unwrap_or(&[]));
                    self.in_start += consumed;
                    match status {
                        Ok(Status::StreamEnd) => self.state = GzState::Trailer,
                        Ok(Status::Ok | Status::BufError) => {
                            if produced == 0 && consumed == 0 {
                                // No progress although input is pending and
                                // output has room: ask for more input, or the
                                // stream is cut.
                                let have = self.in_end - self.in_start;
                                if !self.want(have + 1)? {
                                    self.stop(Break::EndsEarly);
                                    return Ok(0);
                                }
                            }
                        }
                        Err(_) => {
                            let at = self.in_offset();
                            self.stop(Break::Corrupt {
                                at,
                                what: "invalid deflate data".to_string(),
                            });
                        }
                    }
                    if produced > 0 {
                        return Ok(produced);
                    }
                }
            }
        }
    }
}
