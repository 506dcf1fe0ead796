//! A capture's records read again, one by one, at their byte offsets.
//!
//! A sequential read notes where each record lies (`Frame::at`) and, at its
//! end, what reading a record alone needs (`Layout`): the byte order and
//! timestamp units of a pcap file and its link type, or every section of a
//! pcapng file (where it starts, its byte order) and every interface (link
//! type, name, snap length, timestamp resolution and offset). A record is
//! then read by seeking to it and running the same parser a sequential read
//! runs, so it gives the same frame. Reads ahead keep their buffer, so
//! records read in file order cost one read per buffer, not one per record.
//!
//! Only plain files can be read this way (a gzip stream cannot seek). The
//! file's size and modification time are noted with its layout: a file that
//! changed since is refused rather than read at offsets that no longer hold
//! its records.

use std::path::Path;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::pcap::Pcap;
use super::pcapng::{Pcapng, Section};
use super::source::Input;
use super::{
    new_stream, open_file, strerror, CaptureError, Format, Frame, IfaceInfo, Reader, State,
};

/// What reading one file's records by offset needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileTable {
    pub size: u64,
    /// Seconds and nanoseconds since the epoch.
    pub modified: (u64, u32),
    pub layout: Layout,
}

/// What a file's headers say, for reading its records alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "lowercase")]
pub enum Layout {
    Pcap {
        big: bool,
        nsec: bool,
        linktype: u32,
        snaplen: u32,
    },
    Pcapng {
        sections: Vec<Section>,
        interfaces: Vec<IfaceInfo>,
    },
}

impl Reader {
    /// What reading this file's records by offset needs, from what was read
    /// so far (after the whole file: every section and interface); None for
    /// a compressed file, or a pcap file whose header was not read.
    pub fn layout(&self) -> Option<Layout> {
        if self.compressed() {
            return None;
        }
        match &self.state {
            State::Pcap(p) => {
                let (big, nsec, linktype, snaplen) = p.layout()?;
                Some(Layout::Pcap {
                    big,
                    nsec,
                    linktype,
                    snaplen,
                })
            }
            State::Pcapng(p) => {
                let (sections, interfaces) = p.layout();
                Some(Layout::Pcapng {
                    sections: sections.to_vec(),
                    interfaces: interfaces.to_vec(),
                })
            }
        }
    }

    /// Read the record at byte `at` (where a sequential read found a frame),
    /// numbered `index`; `last`: for a record without a timestamp of its own
    /// (`Frame::untimed`), the time it borrows, as (seconds, ticks).
    pub fn read_at(
        &mut self,
        at: u64,
        index: u64,
        last: Option<(f64, u64)>,
    ) -> Result<(Frame<'_>, Option<&IfaceInfo>), CaptureError> {
        self.stream.seek_to(at)?;
        let packet = index + 1;
        let step = match &mut self.state {
            State::Pcap(p) => p.next(&mut self.stream, packet),
            State::Pcapng(p) => {
                p.enter(at, last);
                p.next(&mut self.stream, packet)
            }
        };
        match step? {
            Some(meta) if meta.at == at => Ok(self.described(meta, index)),
            _ => Err(self.stream.corrupt(format_args!(
                "no packet record at byte {at} (packet #{packet}): the file changed since it \
                 was indexed"
            ))),
        }
    }
}

/// `reader`'s file at `path` as a table, once it has been read to its end.
pub fn table(path: &Path, reader: &Reader) -> Result<Option<FileTable>, CaptureError> {
    let Some(layout) = reader.layout() else {
        return Ok(None);
    };
    let (size, modified) = stat(path, reader.name())?;
    Ok(Some(FileTable {
        size,
        modified,
        layout,
    }))
}

fn stat(path: &Path, name: &str) -> Result<(u64, (u64, u32)), CaptureError> {
    let meta = std::fs::metadata(path)
        .map_err(|err| CaptureError::corrupt(format!("{name}: cannot open: {}", strerror(&err))))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or((0, 0), |d| (d.as_secs(), d.subsec_nanos()));
    Ok((meta.len(), modified))
}

/// Open `path` to read the records `table` describes by offset (`read_at`).
pub fn reopen(path: &Path, table: &FileTable) -> Result<Reader, CaptureError> {
    let name: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
    let file = open_file(path, &name)?;
    if stat(path, &name)? != (table.size, table.modified) {
        return Err(CaptureError::corrupt(format!(
            "{name}: the file changed since it was indexed (its size or modification time differ)"
        )));
    }
    let (state, format) = match &table.layout {
        &Layout::Pcap {
            big,
            nsec,
            linktype,
            snaplen,
        } => (
            State::Pcap(Pcap::restored(big, nsec, linktype, snaplen)),
            Format::Pcap,
        ),
        Layout::Pcapng {
            sections,
            interfaces,
        } => (
            State::Pcapng(Pcapng::restored(sections.clone(), interfaces.clone())),
            Format::Pcapng,
        ),
    };
    Ok(Reader {
        stream: new_stream(name, Input::File(file)),
        format,
        state,
        index: 0,
        done: false,
    })
}
