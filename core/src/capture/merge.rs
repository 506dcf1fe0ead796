//! Several captures of one link read as one, frames in timestamp order.
//!
//! Each file is read as usual; the next frame handed out is the earliest of
//! the files' next frames (on a tie, the file given first), numbered in
//! the merged order, so every output names packets as the merged capture's.
//! A file's frames keep their own order (a capture's frames are in the
//! order they were captured, even when their clocks step back). A damaged
//! or truncated file ends the merged run at that point: the frames of the
//! other files after it are not read.

use std::path::Path;

use super::{open, CaptureError, Frame, IfaceInfo, Location, Reader};

/// The next frame of one file, copied out of its reader's buffer.
#[derive(Default)]
struct Head {
    ts: f64,
    data: Vec<u8>,
    linktype: u32,
    iface: Option<std::sync::Arc<str>>,
    orig_len: u32,
    iface_id: u32,
    ticks: u64,
    at: Location,
    untimed: bool,
    info: Option<IfaceInfo>,
}

/// One capture or several merged.
pub enum Capture {
    One(Reader),
    Many(Merged),
}

impl Capture {
    /// Open `paths` (one: read as it is; several: merged by timestamp).
    pub fn open(paths: &[impl AsRef<Path>]) -> Result<Capture, CaptureError> {
        match paths {
            [one] => Ok(Capture::One(open(one)?)),
            many => Ok(Capture::Many(Merged::open(many)?)),
        }
    }

    /// The next frame with what its capture says about its interface.
    pub fn next_described(
        &mut self,
    ) -> Option<Result<(Frame<'_>, Option<&IfaceInfo>), CaptureError>> {
        match self {
            Capture::One(reader) => reader.next_described(),
            Capture::Many(merged) => merged.next_described(),
        }
    }

    /// The files, in the order given (`Location::file` numbers them).
    pub fn files(&self) -> &[Reader] {
        match self {
            Capture::One(reader) => std::slice::from_ref(reader),
            Capture::Many(merged) => &merged.readers,
        }
    }
}

pub struct Merged {
    readers: Vec<Reader>,
    heads: Vec<Option<Head>>,
    /// The file whose head was handed out last: it is read again next time.
    refill: Option<usize>,
    index: u64,
    failed: bool,
}

impl Merged {
    fn open(paths: &[impl AsRef<Path>]) -> Result<Merged, CaptureError> {
        let readers = paths.iter().map(open).collect::<Result<Vec<_>, _>>()?;
        let mut merged = Merged {
            heads: readers.iter().map(|_| None).collect(),
            readers,
            refill: None,
            index: 0,
            failed: false,
        };
        for file in 0..merged.readers.len() {
            if let Err(err) = merged.read_head(file) {
                // Reported with the first frame asked for, as a single file's.
                merged.failed = true;
                return Err(err);
            }
        }
        Ok(merged)
    }

    /// Read the next frame of `file` into its head (None at its end).
    fn read_head(&mut self, file: usize) -> Result<(), CaptureError> {
        let mut head = self.heads[file].take();
        match self.readers[file].next_described() {
            None => Ok(()),
            Some(Err(err)) => Err(err),
            Some(Ok((frame, info))) => {
                let head = head.get_or_insert_with(Head::default);
                head.ts = frame.ts;
                head.data.clear();
                head.data.extend_from_slice(frame.data);
                head.linktype = frame.linktype;
                head.iface = frame.iface;
                head.orig_len = frame.orig_len;
                head.iface_id = frame.iface_id;
                head.ticks = frame.ticks;
                head.at = Location {
                    file: file as u32,
                    offset: frame.at.offset,
                };
                head.untimed = frame.untimed;
                if head.info.as_ref() != info {
                    head.info = info.cloned();
                }
                self.heads[file] = Some(std::mem::take(head));
                Ok(())
            }
        }
    }

    fn next_described(&mut self) -> Option<Result<(Frame<'_>, Option<&IfaceInfo>), CaptureError>> {
        if self.failed {
            return None;
        }
        if let Some(file) = self.refill.take() {
            if let Err(err) = self.read_head(file) {
                self.failed = true;
                return Some(Err(err));
            }
        }
        let file = self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|h| (i, h.ts)))
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))?
            .0;
        self.refill = Some(file);
        let index = self.index;
        self.index += 1;
        let head = self.heads[file].as_ref()?;
        Some(Ok((
            Frame {
                index,
                ts: head.ts,
                data: &head.data,
                linktype: head.linktype,
                iface: head.iface.clone(),
                orig_len: head.orig_len,
                iface_id: head.iface_id,
                ticks: head.ticks,
                at: head.at,
                untimed: head.untimed,
            },
            head.info.as_ref(),
        )))
    }
}
