//! Captured frames out again, as pcapng (`replay -w`).
//!
//! Each frame keeps what the capture recorded: its bytes and original
//! length, its timestamp in its interface's own units (copied as recorded,
//! with the interface's `if_tsresol` and `if_tsoffset`, so nothing is
//! rounded), and its interface, described once by an Interface Description
//! Block (link type, snap length, name) written just before the first frame
//! that uses it. One section, little-endian; frames from several input
//! sections keep their interfaces apart.

use std::io::{self, Write};

use super::{Frame, IfaceInfo};

const BT_SHB: u32 = 0x0A0D_0D0A;
const BT_IDB: u32 = 1;
const BT_EPB: u32 = 6;
const BOM: u32 = 0x1A2B_3C4D;
const OPT_END: u16 = 0;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;
/// The resolution pcapng assumes when an IDB names none (microseconds).
const DEFAULT_TSRESOL: u8 = 6;

/// A pcapng file being written.
pub struct PcapngWriter<W: Write> {
    out: W,
    /// Output interface number for each input interface (`Frame::iface_id`).
    ids: Vec<Option<u32>>,
    next_id: u32,
    block: Vec<u8>,
}

impl<W: Write> PcapngWriter<W> {
    /// Start the file: its Section Header Block.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut block = Vec::with_capacity(64);
        begin(&mut block, BT_SHB);
        put32(&mut block, BOM);
        put16(&mut block, 1); // version 1.0
        put16(&mut block, 0);
        block.extend_from_slice(&(-1i64).to_le_bytes()); // section length not given
        option(&mut block, SHB_USERAPPL, b"statewall");
        put16(&mut block, OPT_END);
        put16(&mut block, 0);
        finish(&mut block);
        out.write_all(&block)?;
        Ok(PcapngWriter {
            out,
            ids: Vec::new(),
            next_id: 0,
            block,
        })
    }

    /// Append one frame; `iface` is its interface as the reader describes it.
    pub fn write(&mut self, frame: &Frame<'_>, iface: &IfaceInfo) -> io::Result<()> {
        let slot = frame.iface_id as usize;
        if self.ids.len() <= slot {
            self.ids.resize(slot + 1, None);
        }
        let id = match self.ids[slot] {
            Some(id) => id,
            None => {
                let id = self.next_id;
                self.describe(iface)?;
                self.ids[slot] = Some(id);
                self.next_id += 1;
                id
            }
        };
        let block = &mut self.block;
        block.clear();
        begin(block, BT_EPB);
        put32(block, id);
        put32(block, (frame.ticks >> 32) as u32);
        put32(block, frame.ticks as u32);
        put32(block, frame.data.len() as u32);
        put32(block, frame.orig_len);
        block.extend_from_slice(frame.data);
        pad(block);
        finish(block);
        self.out.write_all(block)
    }

    fn describe(&mut self, iface: &IfaceInfo) -> io::Result<()> {
        let block = &mut self.block;
        block.clear();
        begin(block, BT_IDB);
        // The link-type field is 16 bits wide; larger pcap values carry FCS
        // flags the reader has already masked off.
        put16(block, iface.linktype as u16);
        put16(block, 0);
        put32(block, iface.snaplen);
        if let Some(name) = &iface.name {
            option(block, IF_NAME, name.as_bytes());
        }
        if iface.tsresol != DEFAULT_TSRESOL {
            option(block, IF_TSRESOL, &[iface.tsresol]);
        }
        if iface.tsoffset != 0 {
            option(block, IF_TSOFFSET, &iface.tsoffset.to_le_bytes());
        }
        put16(block, OPT_END);
        put16(block, 0);
        finish(block);
        self.out.write_all(block)
    }

    /// Write out what is buffered and hand back the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn put16(block: &mut Vec<u8>, value: u16) {
    block.extend_from_slice(&value.to_le_bytes());
}

fn put32(block: &mut Vec<u8>, value: u32) {
    block.extend_from_slice(&value.to_le_bytes());
}

/// Type and a placeholder for the length, filled in by `finish`.
fn begin(block: &mut Vec<u8>, kind: u32) {
    put32(block, kind);
    put32(block, 0);
}

fn pad(block: &mut Vec<u8>) {
    let len = block.len();
    block.resize(len.next_multiple_of(4), 0);
}

fn option(block: &mut Vec<u8>, code: u16, value: &[u8]) {
    put16(block, code);
    put16(block, value.len() as u16);
    block.extend_from_slice(value);
    pad(block);
}

/// The total length, at the start and repeated at the end.
fn finish(block: &mut Vec<u8>) {
    let total = (block.len() + 4) as u32;
    block[4..8].copy_from_slice(&total.to_le_bytes());
    put32(block, total);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::capture::{open_source, Location};

    fn info(linktype: u32, name: Option<&str>, tsresol: u8, tsoffset: i64) -> IfaceInfo {
        IfaceInfo {
            linktype,
            name: name.map(Arc::from),
            snaplen: 262_144,
            tsresol,
            tsoffset,
        }
    }

    fn frame(data: &[u8], iface_id: u32, ticks: u64) -> Frame<'_> {
        Frame {
            index: 0,
            ts: 0.0,
            data,
            linktype: 0,
            iface: None,
            orig_len: data.len() as u32 + 10,
            iface_id,
            ticks,
            at: Location::default(),
            untimed: false,
        }
    }

    /// What the reader makes of the written file: (ts, bytes, linktype,
    /// interface name, original length, interface, ticks) per frame.
    type Read = (f64, Vec<u8>, u32, Option<String>, u32, u32, u64);

    fn read_back(bytes: Vec<u8>) -> (Vec<Read>, Vec<IfaceInfo>) {
        let mut reader = open_source(Arc::from("written"), Box::new(io::Cursor::new(bytes)))
            .expect("the written file opens");
        let mut frames = Vec::new();
        let mut ids = Vec::new();
        while let Some(frame) = reader.next_frame() {
            let f = frame.expect("every block reads");
            ids.push(f.iface_id);
            frames.push((
                f.ts,
                f.data.to_vec(),
                f.linktype,
                f.iface.as_deref().map(str::to_string),
                f.orig_len,
                f.iface_id,
                f.ticks,
            ));
        }
        let ifaces = ids
            .iter()
            .filter_map(|&id| reader.interface(id).cloned())
            .collect();
        (frames, ifaces)
    }

    #[test]
    fn frames_keep_bytes_times_and_interfaces() {
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        let eth = info(1, Some("eth0"), 9, 0);
        let raw = info(101, None, 0x80 | 20, 3600);
        w.write(&frame(b"abcde", 4, 1_700_000_000_123_456_789), &eth)
            .unwrap();
        w.write(&frame(b"xyz", 7, 5 << 20), &raw).unwrap();
        w.write(&frame(b"12345678", 4, 1_700_000_001_000_000_001), &eth)
            .unwrap();
        let (frames, ifaces) = read_back(w.finish().unwrap());
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].1, b"abcde");
        assert_eq!(frames[0].2, 1);
        assert_eq!(frames[0].3.as_deref(), Some("eth0"));
        assert_eq!(frames[0].4, 15);
        assert_eq!(frames[0].6, 1_700_000_000_123_456_789);
        // Interfaces are numbered in the order they are first used.
        assert_eq!(
            frames.iter().map(|f| f.5).collect::<Vec<_>>(),
            vec![0, 1, 0]
        );
        assert_eq!((frames[1].2, frames[1].3.as_deref()), (101, None));
        assert_eq!(frames[1].0, 5.0 + 3600.0);
        assert_eq!(frames[2].6, 1_700_000_001_000_000_001);
        assert_eq!(ifaces[0], eth);
        assert_eq!(ifaces[1], raw);
    }
}
