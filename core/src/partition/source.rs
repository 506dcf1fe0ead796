//! The frames a replay reads: the whole capture, or one partition's own
//! frames, read by offset as its index lists them.
//!
//! A partition's frame comes with the clock the index noted at it, which
//! the partition sets before processing it (`python/part.rs`); the
//! capture's error, when the index carries one, follows the last frame, as
//! it follows the last frame of a sequential read.

use std::path::PathBuf;

use crate::capture::offsets::reopen;
use crate::capture::{Capture, CaptureError, ErrorKind, Frame, IfaceInfo, Reader};
use crate::partition::wire::{Carried, PartIndex};

/// A frame with its interface and, for a partition's frame, the clock at it.
pub type Step<'a> = (Frame<'a>, Option<&'a IfaceInfo>, Option<f64>);

pub enum Frames {
    /// Every frame of the capture, in order.
    Scan(Capture),
    /// One partition's frames, by offset.
    Indexed(Indexed),
}

impl Frames {
    /// The next frame, or the error that ends the capture (then None).
    pub fn next_step(&mut self) -> Option<Result<Step<'_>, CaptureError>> {
        match self {
            Frames::Scan(capture) => capture
                .next_described()
                .map(|step| step.map(|(frame, info)| (frame, info, None))),
            Frames::Indexed(indexed) => indexed.next_step(),
        }
    }
}

/// A partition's frames, read at the locations its index lists.
pub struct Indexed {
    paths: Vec<PathBuf>,
    index: PartIndex,
    /// Each file, opened when its first record is read.
    readers: Vec<Option<Reader>>,
    /// Entries read so far.
    position: u64,
    /// Times borrowed by untimed records, by entry, in order.
    carried: std::vec::IntoIter<Carried>,
    next_carried: Option<Carried>,
    done: bool,
}

impl Indexed {
    /// The frames of the index of a partition of the capture `paths`.
    pub fn new(paths: Vec<PathBuf>, mut index: PartIndex) -> Result<Self, String> {
        if paths.len() != index.trailer.files.len() {
            return Err(format!(
                "the index is of a capture of {} file(s), not {}",
                index.trailer.files.len(),
                paths.len()
            ));
        }
        let mut carried = std::mem::take(&mut index.trailer.carried).into_iter();
        Ok(Indexed {
            readers: paths.iter().map(|_| None).collect(),
            paths,
            index,
            position: 0,
            next_carried: carried.next(),
            carried,
            done: false,
        })
    }

    pub fn index(&self) -> &PartIndex {
        &self.index
    }

    fn next_step(&mut self) -> Option<Result<Step<'_>, CaptureError>> {
        if self.done {
            return None;
        }
        let entry = match self.index.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) => {
                self.done = true;
                return self.index.trailer.error().map(Err);
            }
            Err(err) => {
                self.done = true;
                return Some(Err(CaptureError::new(
                    ErrorKind::Corrupt,
                    format!("the partition's index cannot be read: {err}"),
                )));
            }
        };
        let last = match self.next_carried {
            Some(c) if c.entry == self.position => {
                self.next_carried = self.carried.next();
                Some((c.ts.0, c.ticks))
            }
            _ => None,
        };
        self.position += 1;
        let Indexed {
            paths,
            index,
            readers,
            done,
            ..
        } = self;
        let reader = match open_reader(readers, paths, index, entry.at.file as usize) {
            Ok(reader) => reader,
            Err(err) => {
                *done = true;
                return Some(Err(err));
            }
        };
        match reader.read_at(entry.at.offset, entry.index, last) {
            Ok((mut frame, info)) => {
                frame.at.file = entry.at.file;
                Some(Ok((frame, info, Some(entry.clock))))
            }
            Err(err) => {
                *done = true;
                Some(Err(err))
            }
        }
    }
}

/// The reader of `file`, opened on first use.
fn open_reader<'r>(
    readers: &'r mut [Option<Reader>],
    paths: &[PathBuf],
    index: &PartIndex,
    file: usize,
) -> Result<&'r mut Reader, CaptureError> {
    let missing = || {
        CaptureError::new(
            ErrorKind::Corrupt,
            format!("the partition's index names file {file}, which it does not describe"),
        )
    };
    let (Some(slot), Some(path)) = (readers.get_mut(file), paths.get(file)) else {
        return Err(missing());
    };
    if slot.is_none() {
        let table = index
            .trailer
            .files
            .get(file)
            .and_then(Option::as_ref)
            .ok_or_else(missing)?;
        *slot = Some(reopen(path, table)?);
    }
    slot.as_mut().ok_or_else(missing)
}
