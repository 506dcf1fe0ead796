//! The index pass: one read of the capture that tells every partition where
//! its packets are, and what the clock reads at each of them.
//!
//! A single run processes each packet at `now`, the latest timestamp of all
//! packets up to and including it (captures step back at times). A
//! partition that reads only its own packets cannot see the others', so
//! the pass writes the clock beside each packet, with the packet's index in
//! the (merged) capture and where its record lies; the partition sets its
//! clock from there before each packet and, at the end, to the clock after
//! the capture's last packet. The pass decodes each frame's headers only as
//! far as the partition key needs, in the same decoder the replay uses.
//!
//! The pass stops where a replay with the same bounds (`limit`, `until`)
//! stops, and at the capture's error, which every partition reports after
//! its last packet, as a single run reports it after the packets it read.
//! Compressed files cannot be read at an offset: then the pass says why
//! (`Outcome::FullScan`) and every partition reads the whole capture.

use std::io::{self, Write};
use std::path::PathBuf;

use crate::capture::offsets::{table, FileTable};
use crate::capture::{Capture, CaptureError, Location};
use crate::decode::decode_frame;
use crate::partition::partition_of;
use crate::partition::wire::{Carried, Trailer};

/// Where a replay stops reading: after `limit` packets; before the first
/// packet later than `until` (below 1e9: seconds after the first packet).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bounds {
    pub limit: Option<u64>,
    pub until: Option<f64>,
}

impl Bounds {
    /// Whether the packet at `index` lies beyond the limit.
    pub fn past_limit(&self, index: u64) -> bool {
        self.limit.is_some_and(|limit| index >= limit)
    }

    /// Whether a packet at `ts` comes after `until`, the first packet being at `first`.
    pub fn past_until(&self, first: f64, ts: f64) -> bool {
        self.until.is_some_and(|until| {
            let at = if until >= 1e9 { until } else { first + until };
            ts > at
        })
    }
}

/// One packet of a partition: its index in the capture, the clock at it,
/// and where its record lies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    pub index: u64,
    pub clock: f64,
    pub at: Location,
}

/// Bits of an entry's packed location that hold the offset; the file's
/// number takes the bits above.
const OFFSET_BITS: u32 = 48;
/// Bytes of an entry as written: index, clock, location (u64 each, little-endian).
pub const ENTRY_LEN: usize = 24;

impl Entry {
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let packed = (u64::from(self.at.file) << OFFSET_BITS) | self.at.offset;
        let mut out = [0; ENTRY_LEN];
        out[..8].copy_from_slice(&self.index.to_le_bytes());
        out[8..16].copy_from_slice(&self.clock.to_bits().to_le_bytes());
        out[16..].copy_from_slice(&packed.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8; ENTRY_LEN]) -> Entry {
        let word = |i: usize| {
            let mut w = [0; 8];
            w.copy_from_slice(&bytes[i..i + 8]);
            u64::from_le_bytes(w)
        };
        let packed = word(16);
        Entry {
            index: word(0),
            clock: f64::from_bits(word(8)),
            at: Location {
                file: (packed >> OFFSET_BITS) as u32,
                offset: packed & ((1 << OFFSET_BITS) - 1),
            },
        }
    }
}

/// How the pass ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every partition's index is written; `packets` were indexed.
    Indexed { packets: u64 },
    /// The capture cannot be read by offset, for this reason: every
    /// partition reads it whole (nothing usable was written).
    FullScan(String),
}

/// Why the pass could not run.
#[derive(Debug)]
pub enum IndexError {
    /// The capture does not open (as a replay of it would fail at once).
    Capture(CaptureError),
    /// An index could not be written.
    Write(io::Error),
}

impl From<io::Error> for IndexError {
    fn from(err: io::Error) -> Self {
        IndexError::Write(err)
    }
}

/// What the pass keeps per partition until its trailer is written.
#[derive(Default)]
struct Share {
    entries: u64,
    carried: Vec<Carried>,
}

/// Index the capture `paths` (several: merged by timestamp) into `sinks`,
/// one per partition: each receives its packets' entries, then the
/// trailer (`wire`).
pub fn index_capture<W: Write>(
    paths: &[PathBuf],
    bounds: Bounds,
    sinks: &mut [W],
) -> Result<Outcome, IndexError> {
    let parts = u32::try_from(sinks.len()).unwrap_or(u32::MAX);
    let mut capture = Capture::open(paths).map_err(IndexError::Capture)?;
    if let Some(why) = unindexable(&capture, paths.len()) {
        return Ok(Outcome::FullScan(why));
    }
    let mut shares: Vec<Share> = sinks.iter().map(|_| Share::default()).collect();
    let mut first_ts = None;
    let mut clock: Option<f64> = None;
    let mut packets = 0u64;
    let mut error = None;
    loop {
        let frame = match capture.next_described() {
            None => break,
            Some(Err(err)) => {
                error = Some(err);
                break;
            }
            Some(Ok((frame, _))) => frame,
        };
        if bounds.past_limit(frame.index) {
            break;
        }
        let first = *first_ts.get_or_insert(frame.ts);
        if bounds.past_until(first, frame.ts) {
            break;
        }
        if frame.at.offset >> OFFSET_BITS != 0 {
            let path = paths
                .get(frame.at.file as usize)
                .cloned()
                .unwrap_or_default();
            return Ok(Outcome::FullScan(format!(
                "{}: records beyond byte 2^{OFFSET_BITS}",
                path.display()
            )));
        }
        let now = clock.map_or(frame.ts, |c| c.max(frame.ts));
        clock = Some(now);
        let pkt = decode_frame(frame.index, frame.ts, frame.data, frame.linktype, None);
        let part = partition_of(&pkt, parts) as usize;
        let (Some(sink), Some(share)) = (sinks.get_mut(part), shares.get_mut(part)) else {
            continue;
        };
        if frame.untimed {
            share
                .carried
                .push(Carried::new(share.entries, frame.ts, frame.ticks));
        }
        let entry = Entry {
            index: frame.index,
            clock: now,
            at: frame.at,
        };
        sink.write_all(&entry.encode())?;
        share.entries += 1;
        packets += 1;
    }
    let files = tables(paths, &capture).map_err(IndexError::Capture)?;
    for (part, (sink, share)) in sinks.iter_mut().zip(shares).enumerate() {
        let trailer = Trailer::new(
            (part as u32, parts),
            bounds,
            (first_ts, clock),
            share.entries,
            error.as_ref(),
            files.clone(),
            share.carried,
        );
        trailer.write(sink)?;
        sink.flush()?;
    }
    Ok(Outcome::Indexed { packets })
}

/// Why the capture cannot be read by offset, if it cannot.
fn unindexable(capture: &Capture, files: usize) -> Option<String> {
    if files > 1 << (64 - OFFSET_BITS) {
        return Some(format!(
            "{files} files: more than an index numbers ({})",
            1u64 << (64 - OFFSET_BITS)
        ));
    }
    capture
        .files()
        .iter()
        .find(|reader| reader.compressed())
        .map(|reader| format!("{} is compressed", reader.name()))
}

/// What reading each file by offset needs (None: none of its records was read).
fn tables(paths: &[PathBuf], capture: &Capture) -> Result<Vec<Option<FileTable>>, CaptureError> {
    paths
        .iter()
        .zip(capture.files())
        .map(|(path, reader)| table(path, reader))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_as_written() {
        let entry = Entry {
            index: 123_456_789_012,
            clock: 1_700_000_000.123_456_7,
            at: Location {
                file: 65_535,
                offset: (1 << OFFSET_BITS) - 1,
            },
        };
        assert_eq!(Entry::decode(&entry.encode()), entry);
    }

    #[test]
    fn bounds_stop_where_a_replay_stops() {
        let bounds = Bounds {
            limit: Some(3),
            until: Some(2.5),
        };
        assert!(!bounds.past_limit(2) && bounds.past_limit(3));
        assert!(!bounds.past_until(10.0, 12.5) && bounds.past_until(10.0, 12.6));
        let absolute = Bounds {
            limit: None,
            until: Some(1.7e9),
        };
        assert!(absolute.past_until(1.6e9, 1.7e9 + 1.0) && !absolute.past_until(1.6e9, 1.7e9));
    }
}
