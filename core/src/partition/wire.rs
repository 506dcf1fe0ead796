//! A partition's index as bytes: its entries, then a trailer.
//!
//! ```text
//! entries   24 bytes each (`Entry::encode`), in capture order
//! trailer   JSON (`Trailer`)
//! length    u64 little-endian: the trailer's bytes
//! magic     b"SWINDEX1"
//! ```
//!
//! The entries come first so the pass can write them as it goes; the
//! trailer, which only the pass's end knows (the clock after the last
//! packet, the capture's error, the files' layouts), follows them and is
//! found from the end. Times travel as the bits of their doubles: the
//! partition's clock must be exactly the single run's.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::capture::offsets::FileTable;
use crate::capture::{CaptureError, ErrorKind};
use crate::partition::index::{Bounds, Entry, ENTRY_LEN};

const MAGIC: &[u8; 8] = b"SWINDEX1";

/// A double as the bits that make it, so it reads back exactly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "u64", into = "u64")]
pub struct Exact(pub f64);

impl From<u64> for Exact {
    fn from(bits: u64) -> Self {
        Exact(f64::from_bits(bits))
    }
}

impl From<Exact> for u64 {
    fn from(value: Exact) -> Self {
        value.0.to_bits()
    }
}

/// The time a record without a timestamp of its own borrows (a pcapng
/// Simple Packet Block takes the file's previous packet's, which may be
/// another partition's): at the partition's `entry`, seconds and ticks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Carried {
    pub entry: u64,
    pub ts: Exact,
    pub ticks: u64,
}

impl Carried {
    pub fn new(entry: u64, ts: f64, ticks: u64) -> Self {
        Carried {
            entry,
            ts: Exact(ts),
            ticks,
        }
    }
}

/// What a partition's index says beside its entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trailer {
    pub part: u32,
    pub parts: u32,
    pub limit: Option<u64>,
    pub until: Option<Exact>,
    /// The capture's first packet's time (every partition's run starts from it).
    pub first_ts: Option<Exact>,
    /// The clock after the last packet read: the latest timestamp of all.
    pub clock: Option<Exact>,
    pub entries: u64,
    /// The capture's error after the last packet read: (truncated, message).
    pub error: Option<(bool, String)>,
    /// Per file: what reading its records needs (None: none was read).
    pub files: Vec<Option<FileTable>>,
    pub carried: Vec<Carried>,
}

impl Trailer {
    pub fn new(
        (part, parts): (u32, u32),
        bounds: Bounds,
        (first_ts, clock): (Option<f64>, Option<f64>),
        entries: u64,
        error: Option<&CaptureError>,
        files: Vec<Option<FileTable>>,
        carried: Vec<Carried>,
    ) -> Self {
        Trailer {
            part,
            parts,
            limit: bounds.limit,
            until: bounds.until.map(Exact),
            first_ts: first_ts.map(Exact),
            clock: clock.map(Exact),
            entries,
            error: error.map(|e| (e.is_truncated(), e.message().to_string())),
            files,
            carried,
        }
    }

    pub fn bounds(&self) -> Bounds {
        Bounds {
            limit: self.limit,
            until: self.until.map(|u| u.0),
        }
    }

    pub fn error(&self) -> Option<CaptureError> {
        self.error.as_ref().map(|(truncated, message)| {
            let kind = if *truncated {
                ErrorKind::Truncated
            } else {
                ErrorKind::Corrupt
            };
            CaptureError::new(kind, message.clone())
        })
    }

    /// Append the trailer, its length and the magic to the entries in `out`.
    pub fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let json = serde_json::to_vec(self).map_err(io::Error::other)?;
        out.write_all(&json)?;
        out.write_all(&(json.len() as u64).to_le_bytes())?;
        out.write_all(MAGIC)
    }
}

trait Source: Read + Seek + Send + Sync {}
impl<T: Read + Seek + Send + Sync> Source for T {}

/// A partition's index being read: its trailer, and its entries in order.
pub struct PartIndex {
    pub trailer: Trailer,
    entries: Box<dyn Read + Send + Sync>,
    left: u64,
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

impl PartIndex {
    pub fn from_bytes(bytes: Vec<u8>) -> io::Result<Self> {
        Self::from_source(Cursor::new(bytes))
    }

    pub fn from_file(path: &Path) -> io::Result<Self> {
        Self::from_source(BufReader::with_capacity(1 << 16, File::open(path)?))
    }

    fn from_source(mut source: impl Source + 'static) -> io::Result<Self> {
        let not_index = || invalid("not a partition's index (statewall.dask)");
        let end = source.seek(SeekFrom::End(0))?;
        let tail = end.checked_sub(16).ok_or_else(not_index)?;
        source.seek(SeekFrom::Start(tail))?;
        let mut foot = [0u8; 16];
        source.read_exact(&mut foot)?;
        if &foot[8..] != MAGIC {
            return Err(not_index());
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&foot[..8]);
        let len = u64::from_le_bytes(len);
        let start = tail.checked_sub(len).ok_or_else(not_index)?;
        source.seek(SeekFrom::Start(start))?;
        let mut json = vec![0u8; usize::try_from(len).map_err(|_| not_index())?];
        source.read_exact(&mut json)?;
        let trailer: Trailer =
            serde_json::from_slice(&json).map_err(|err| invalid(format!("index: {err}")))?;
        if trailer.entries.checked_mul(ENTRY_LEN as u64) != Some(start) {
            return Err(invalid("index: its entries do not fill it"));
        }
        source.seek(SeekFrom::Start(0))?;
        Ok(PartIndex {
            left: trailer.entries,
            trailer,
            entries: Box::new(source),
        })
    }

    /// The next entry, None after the last.
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        if self.left == 0 {
            return Ok(None);
        }
        let mut bytes = [0u8; ENTRY_LEN];
        self.entries.read_exact(&mut bytes)?;
        self.left -= 1;
        Ok(Some(Entry::decode(&bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Location;

    #[test]
    fn an_index_reads_back_as_written() {
        let trailer = Trailer::new(
            (1, 3),
            Bounds {
                limit: Some(9),
                until: Some(0.1 + 0.2),
            },
            (Some(1.1), Some(1_700_000_000.000_000_1)),
            2,
            Some(&CaptureError::new(ErrorKind::Truncated, "x: cut".into())),
            vec![None],
            vec![Carried::new(1, 0.3, 7)],
        );
        let entries =
            [(0u64, 1.5f64, 24u64), (5, 2.5, 1 << 40)].map(|(index, clock, offset)| Entry {
                index,
                clock,
                at: Location { file: 0, offset },
            });
        let mut bytes = Vec::new();
        for entry in &entries {
            bytes.extend_from_slice(&entry.encode());
        }
        trailer.write(&mut bytes).unwrap();
        let mut index = PartIndex::from_bytes(bytes).unwrap();
        assert_eq!(index.trailer, trailer);
        assert_eq!(index.trailer.error().unwrap().message(), "x: cut");
        assert_eq!(index.next_entry().unwrap(), Some(entries[0]));
        assert_eq!(index.next_entry().unwrap(), Some(entries[1]));
        assert_eq!(index.next_entry().unwrap(), None);
    }

    #[test]
    fn other_bytes_are_refused() {
        for bytes in [Vec::new(), b"not an index at all, no".to_vec()] {
            let err = PartIndex::from_bytes(bytes).err().unwrap();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        }
    }
}
