//! The pcapng file format (IETF draft-ietf-opsawg-pcapng).
//!
//! A file is a sequence of blocks: `type, total length, body, total length`.
//! A Section Header Block (SHB) starts each section and fixes its byte order;
//! the Interface Description Blocks (IDB) that follow are numbered from 0
//! within the section and give each interface its link type, snap length,
//! name and timestamp resolution. Packets come in Enhanced Packet Blocks
//! (EPB), Simple Packet Blocks (SPB, interface 0, no timestamp) or the
//! obsolete Packet Block. Every other block is skipped whole.
//!
//! An SPB carries no timestamp: its frame takes the timestamp of the previous
//! packet in the file (0.0 when it is the first), which keeps the capture
//! clock monotonic for the timeouts downstream.

use std::sync::Arc;

use super::tsdiv::{ticks_to_seconds, Units};
use super::{u16_at, u32_at, CaptureError, IfaceInfo, Meta, Stream};

pub const SHB_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

const BT_SHB: u32 = 0x0A0D_0D0A;
const BT_IDB: u32 = 1;
const BT_PB: u32 = 2;
const BT_SPB: u32 = 3;
const BT_EPB: u32 = 6;

const BOM_LITTLE: [u8; 4] = [0x4d, 0x3c, 0x2b, 0x1a];
const BOM_BIG: [u8; 4] = [0x1a, 0x2b, 0x3c, 0x4d];

const OPT_ENDOFOPT: u16 = 0;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;

// Larger blocks are taken as corruption rather than allocated (libpcap uses
// the same order of magnitude).
const MAX_BLOCK: u32 = 1 << 24;

/// What an IDB says about the interface its packets were captured on.
struct Interface {
    linktype: u32,
    name: Option<Arc<str>>,
    snaplen: u32, // 0 means no limit
    units: Units,
    offset: i64, // seconds added to every timestamp (if_tsoffset)
    /// Its number among all the file's interfaces (`Frame::iface_id`).
    global: u32,
}

/// Where a section starts, its byte order, and the number of its first
/// interface among the file's (its interfaces follow on from there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Section {
    pub at: u64,
    pub big: bool,
    pub first: u32,
}

pub(crate) struct Pcapng {
    big: bool,
    /// The current section's interfaces.
    ifaces: Vec<Interface>,
    /// Every section's, in file order.
    all: Vec<IfaceInfo>,
    /// Every section, in file order.
    sections: Vec<Section>,
    /// The section `ifaces` holds, when records are read by offset (`enter`).
    entered: Option<usize>,
    last_ts: f64,
    last_ticks: u64,
}

impl Pcapng {
    pub(crate) fn new() -> Self {
        Pcapng {
            big: false,
            ifaces: Vec::new(),
            all: Vec::new(),
            sections: Vec::new(),
            entered: None,
            last_ts: 0.0,
            last_ticks: 0,
        }
    }

    /// The reader for a file of these sections and interfaces (`offsets`:
    /// its records are read again by offset, after `enter`).
    pub(crate) fn restored(sections: Vec<Section>, all: Vec<IfaceInfo>) -> Self {
        Pcapng {
            all,
            sections,
            ..Pcapng::new()
        }
    }

    /// The sections and interfaces met so far: what `restored` takes.
    pub(crate) fn layout(&self) -> (&[Section], &[IfaceInfo]) {
        (&self.sections, &self.all)
    }

    /// Take up the section that holds stream offset `at`, and for a record
    /// that carries no timestamp, the time it borrows (`last`: seconds,
    /// ticks), before reading the record at `at`.
    pub(crate) fn enter(&mut self, at: u64, last: Option<(f64, u64)>) {
        let section = self.sections.partition_point(|s| s.at <= at).checked_sub(1);
        if section != self.entered {
            self.entered = section;
            self.ifaces.clear();
            if let Some(&Section { big, first, .. }) = section.and_then(|i| self.sections.get(i)) {
                let end = section
                    .and_then(|i| self.sections.get(i + 1))
                    .map_or(self.all.len(), |next| next.first as usize);
                self.big = big;
                let described = self.all.get(first as usize..end).unwrap_or(&[]);
                self.ifaces = (first..)
                    .zip(described)
                    .map(|(global, info)| Interface {
                        linktype: info.linktype,
                        name: info.name.clone(),
                        snaplen: info.snaplen,
                        units: units_of(info.tsresol),
                        offset: info.tsoffset,
                        global,
                    })
                    .collect();
            }
        }
        if let Some((ts, ticks)) = last {
            self.last_ts = ts;
            self.last_ticks = ticks;
        }
    }

    pub(crate) fn interface(&self, id: u32) -> Option<&IfaceInfo> {
        self.all.get(id as usize)
    }

    pub(crate) fn next(
        &mut self,
        s: &mut Stream,
        packet: u64,
    ) -> Result<Option<Meta>, CaptureError> {
        loop {
            let got = s.fill(12)?;
            let at = s.offset();
            if got < 12 {
                if got == 0 {
                    return s.end_of_data(packet).map_or(Ok(None), Err);
                }
                return Err(s.truncated(format_args!(
                    "truncated block header at byte {at} (packet #{packet}): {got} of 12 bytes present"
                )));
            }
            let w = s.window();
            let btype = u32_at(w, 0, self.big);
            if btype == BT_SHB {
                let bom = w.get(8..12).unwrap_or(&[]);
                self.big = if bom == BOM_LITTLE {
                    false
                } else if bom == BOM_BIG {
                    true
                } else {
                    let hex: String = bom.iter().map(|b| format!("{b:02x}")).collect();
                    return Err(s.corrupt(format_args!(
                        "corrupt section header at byte {at}: byte-order magic is {hex}"
                    )));
                };
            }
            let big = self.big;
            let blen = u32_at(w, 4, big);
            if blen < 12 || blen & 3 != 0 || blen > MAX_BLOCK {
                return Err(bad_length(s, at, packet, blen));
            }
            let len = blen as usize;
            let got = s.fill(len)?;
            if got < len {
                return Err(s.truncated(format_args!(
                    "truncated block at byte {at} (packet #{packet}): block length says {blen} \
                     bytes, {got} present"
                )));
            }
            let b = s.window().get(..len).unwrap_or(&[]);
            if u32_at(b, len - 4, big) != blen {
                return Err(s.corrupt(format_args!(
                    "corrupt block at byte {at} (packet #{packet}): trailing length does not \
                     repeat the block length {blen}"
                )));
            }
            let block_start = s.start;
            match btype {
                BT_EPB | BT_PB => {
                    if blen < 32 {
                        return Err(bad_length(s, at, packet, blen));
                    }
                    let (ifid, ts_high, ts_low) = if btype == BT_EPB {
                        (u32_at(b, 8, big), u32_at(b, 12, big), u32_at(b, 16, big))
                    } else {
                        (
                            u32::from(u16_at(b, 8, big)),
                            u32_at(b, 12, big),
                            u32_at(b, 16, big),
                        )
                    };
                    let caplen = u32_at(b, 20, big);
                    let orig_len = u32_at(b, 24, big);
                    let iface = match self.ifaces.get(ifid as usize) {
                        Some(iface) if caplen <= blen - 32 => iface,
                        _ => {
                            return Err(bad_packet(s, at, packet, ifid, self.ifaces.len(), caplen))
                        }
                    };
                    let ticks = (u64::from(ts_high) << 32) | u64::from(ts_low);
                    // ticks / units exactly, rounded once, then + offset in doubles.
                    self.last_ts = ticks_to_seconds(ticks, iface.units) + iface.offset as f64;
                    self.last_ticks = ticks;
                    s.start += len;
                    return Ok(Some(Meta {
                        at,
                        untimed: false,
                        from: block_start + 28,
                        to: block_start + 28 + caplen as usize,
                        ts: self.last_ts,
                        linktype: iface.linktype,
                        iface: iface.name.clone(),
                        orig_len,
                        iface_id: iface.global,
                        ticks,
                    }));
                }
                _ if blen < min_len(btype) => return Err(bad_length(s, at, packet, blen)),
                BT_SPB => {
                    let Some(iface) = self.ifaces.first() else {
                        return Err(bad_packet(s, at, packet, 0, 0, 0));
                    };
                    let orig_len = u32_at(b, 8, big);
                    let snap = if iface.snaplen == 0 {
                        orig_len
                    } else {
                        iface.snaplen
                    };
                    let caplen = orig_len.min(blen - 16).min(snap);
                    s.start += len;
                    return Ok(Some(Meta {
                        at,
                        untimed: true,
                        from: block_start + 12,
                        to: block_start + 12 + caplen as usize,
                        ts: self.last_ts,
                        linktype: iface.linktype,
                        iface: iface.name.clone(),
                        orig_len,
                        iface_id: iface.global,
                        // The previous packet's time, as `ts` (in that
                        // packet's units: equal whenever the units are).
                        ticks: self.last_ticks,
                    }));
                }
                BT_IDB => {
                    let global = self.all.len() as u32;
                    let (iface, info) = interface(s, b, at, big, global)?;
                    self.ifaces.push(iface);
                    self.all.push(info);
                }
                BT_SHB => {
                    let (major, minor) = (u16_at(b, 12, big), u16_at(b, 14, big));
                    if major != 1 {
                        return Err(s.corrupt(format_args!(
                            "unsupported pcapng version {major}.{minor} in the section at byte {at}"
                        )));
                    }
                    self.ifaces.clear();
                    self.sections.push(Section {
                        at,
                        big,
                        first: self.all.len() as u32,
                    });
                }
                _ => {}
            }
            s.start += len;
        }
    }
}

/// Shortest well-formed block of each type that carries fixed fields.
fn min_len(btype: u32) -> u32 {
    match btype {
        BT_SHB => 28,
        BT_IDB => 20,
        BT_SPB => 16,
        _ => 12,
    }
}

/// Read an IDB (`b` is the whole block at stream offset `at`): link type,
/// snap length and the options statewall uses.
fn interface(
    s: &Stream,
    b: &[u8],
    at: u64,
    big: bool,
    global: u32,
) -> Result<(Interface, IfaceInfo), CaptureError> {
    let mut iface = Interface {
        linktype: u32::from(u16_at(b, 8, big)),
        name: None,
        snaplen: u32_at(b, 12, big),
        units: Units::Pow10(6),
        offset: 0,
        global,
    };
    let mut tsresol = 6;
    let end = b.len() - 4;
    let mut pos = 16;
    while pos + 4 <= end {
        let code = u16_at(b, pos, big);
        let length = usize::from(u16_at(b, pos + 2, big));
        if code == OPT_ENDOFOPT {
            break;
        }
        let value_end = pos + 4 + length;
        if value_end > end {
            return Err(s.corrupt(format_args!(
                "corrupt option {code} at byte {}: length {length} runs past the end of its block",
                at + pos as u64
            )));
        }
        let value = b.get(pos + 4..value_end).unwrap_or(&[]);
        match code {
            IF_NAME => {
                let text = value.strip_suffix_nuls();
                iface.name = Some(Arc::from(String::from_utf8_lossy(text).as_ref()));
            }
            IF_TSRESOL => {
                if let Some(&first) = value.first() {
                    tsresol = first;
                    iface.units = units_of(first);
                }
            }
            IF_TSOFFSET => {
                if let Ok(raw) = <[u8; 8]>::try_from(value) {
                    iface.offset = if big {
                        i64::from_be_bytes(raw)
                    } else {
                        i64::from_le_bytes(raw)
                    };
                }
            }
            _ => {}
        }
        pos = value_end + (length.wrapping_neg() & 3);
    }
    let info = IfaceInfo {
        linktype: iface.linktype,
        name: iface.name.clone(),
        snaplen: iface.snaplen,
        tsresol,
        tsoffset: iface.offset,
    };
    Ok((iface, info))
}

/// Timestamp units from an `if_tsresol` byte: a power of 10, or of 2 with the top bit set.
fn units_of(tsresol: u8) -> Units {
    let exponent = tsresol & 0x7f;
    if tsresol & 0x80 != 0 {
        Units::Pow2(exponent)
    } else {
        Units::Pow10(exponent)
    }
}

trait StripNuls {
    fn strip_suffix_nuls(&self) -> &[u8];
}

impl StripNuls for [u8] {
    /// The bytes without their trailing NULs.
    fn strip_suffix_nuls(&self) -> &[u8] {
        let keep = self.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
        self.get(..keep).unwrap_or(&[])
    }
}

fn bad_packet(
    s: &Stream,
    at: u64,
    packet: u64,
    ifid: u32,
    nifaces: usize,
    caplen: u32,
) -> CaptureError {
    let what = if ifid as usize >= nifaces {
        format!("interface {ifid} was not described (the section has {nifaces})")
    } else {
        format!("captured length {caplen} does not fit in the block")
    };
    s.corrupt(format_args!(
        "corrupt packet block at byte {at} (packet #{packet}): {what}"
    ))
}

fn bad_length(s: &Stream, at: u64, packet: u64, blen: u32) -> CaptureError {
    s.corrupt(format_args!(
        "corrupt block at byte {at} (packet #{packet}): invalid block length {blen}"
    ))
}
