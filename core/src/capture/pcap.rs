//! The classic libpcap file format (pcap-savefile(5)).
//!
//! A 24-byte file header (magic, version, snaplen, link type) followed by
//! records of a 16-byte header (seconds, microseconds or nanoseconds,
//! captured length, original length) and the captured bytes. The magic tells
//! both the byte order and the timestamp resolution: a1b2c3d4 for
//! microseconds, a1b23c4d for nanoseconds.

use super::{u16_at, u32_at, CaptureError, IfaceInfo, Meta, Stream};

pub const MAGIC_USEC: u32 = 0xA1B2_C3D4;
pub const MAGIC_NSEC: u32 = 0xA1B2_3C4D;

const FILE_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;

// libpcap refuses records larger than its per-link-type maximum (256 KiB for
// most, 128 MiB at the very most); beyond that a length field is far likelier
// corrupt than real.
const MAX_RECORD: u32 = 1 << 18;
const MAX_SNAPLEN: u32 = 1 << 27;
// The link-type field's upper bits carry FCS information (LT_FCS_* in libpcap).
const LINKTYPE_MASK: u32 = 0x03FF_FFFF;

pub(crate) struct Pcap {
    big: bool,
    scale: f64,
    /// 6 (microseconds) or 9 (nanoseconds): the `if_tsresol` of the same units.
    resol: u8,
    /// The file's one interface, once the file header is read.
    iface: Option<IfaceInfo>,
    /// Link type and record-length limit, once the file header is read.
    header: Option<(u32, u32)>,
}

impl Pcap {
    /// The reader for a file starting with `magic`, if it is a pcap magic.
    pub(crate) fn sniff(magic: &[u8]) -> Option<Pcap> {
        let first: [u8; 4] = magic.try_into().ok()?;
        let (big, nsec) = match (u32::from_le_bytes(first), u32::from_be_bytes(first)) {
            (MAGIC_USEC, _) => (false, false),
            (MAGIC_NSEC, _) => (false, true),
            (_, MAGIC_USEC) => (true, false),
            (_, MAGIC_NSEC) => (true, true),
            _ => return None,
        };
        Some(Pcap {
            big,
            scale: if nsec { 1e-9 } else { 1e-6 },
            resol: if nsec { 9 } else { 6 },
            iface: None,
            header: None,
        })
    }

    /// The reader for a file whose header said this (`offsets`: its records
    /// are read again by offset, without the header).
    pub(crate) fn restored(big: bool, nsec: bool, linktype: u32, snaplen: u32) -> Pcap {
        let mut pcap = Pcap {
            big,
            scale: if nsec { 1e-9 } else { 1e-6 },
            resol: if nsec { 9 } else { 6 },
            iface: None,
            header: None,
        };
        pcap.header = Some(pcap.described(linktype, snaplen));
        pcap
    }

    /// (big-endian, nanoseconds, link type, snap length): what `restored` takes.
    pub(crate) fn layout(&self) -> Option<(bool, bool, u32, u32)> {
        let iface = self.iface.as_ref()?;
        Some((self.big, self.resol == 9, iface.linktype, iface.snaplen))
    }

    /// Keep the file header's facts: its interface, and the link type and
    /// record-length limit every record is read with.
    fn described(&mut self, linktype: u32, snaplen: u32) -> (u32, u32) {
        self.iface = Some(IfaceInfo {
            linktype,
            name: None,
            snaplen,
            tsresol: self.resol,
            tsoffset: 0,
        });
        (linktype, snaplen.clamp(MAX_RECORD, MAX_SNAPLEN))
    }

    fn file_header(&mut self, s: &mut Stream) -> Result<(u32, u32), CaptureError> {
        let got = s.fill(FILE_HEADER_LEN)?;
        if got < FILE_HEADER_LEN {
            return Err(s.truncated(format_args!(
                "truncated pcap file header: {got} of {FILE_HEADER_LEN} bytes"
            )));
        }
        let h = s.window();
        let (major, minor) = (u16_at(h, 4, self.big), u16_at(h, 6, self.big));
        if major != 2 {
            return Err(s.corrupt(format_args!("unsupported pcap version {major}.{minor}")));
        }
        let snaplen = u32_at(h, 16, self.big);
        let linktype = u32_at(h, 20, self.big) & LINKTYPE_MASK;
        s.start += FILE_HEADER_LEN;
        Ok(self.described(linktype, snaplen))
    }

    pub(crate) fn interface(&self) -> Option<&IfaceInfo> {
        self.iface.as_ref()
    }

    pub(crate) fn next(
        &mut self,
        s: &mut Stream,
        packet: u64,
    ) -> Result<Option<Meta>, CaptureError> {
        let (linktype, limit) = match self.header {
            Some(h) => h,
            None => {
                let h = self.file_header(s)?;
                self.header = Some(h);
                h
            }
        };
        let got = s.fill(RECORD_HEADER_LEN)?;
        if got < RECORD_HEADER_LEN {
            if got == 0 {
                return s.end_of_data(packet).map_or(Ok(None), Err);
            }
            return Err(s.truncated(format_args!(
                "truncated record header at byte {} (packet #{packet}): \
                 {got} of {RECORD_HEADER_LEN} bytes present",
                s.offset()
            )));
        }
        let at = s.offset();
        let h = s.window();
        let sec = u32_at(h, 0, self.big);
        let frac = u32_at(h, 4, self.big);
        let caplen = u32_at(h, 8, self.big);
        let orig_len = u32_at(h, 12, self.big);
        // Checked on every record, not only when the record overruns the
        // buffer: whether a length is corruption must not depend on where a
        // read happened to end.
        if caplen > limit {
            return Err(s.corrupt(format_args!(
                "corrupt packet record at byte {} (packet #{packet}): captured length {caplen} \
                 exceeds the maximum of {limit}",
                s.offset()
            )));
        }
        let total = RECORD_HEADER_LEN + caplen as usize;
        let got = s.fill(total)?;
        if got < total {
            return Err(s.truncated(format_args!(
                "truncated packet record at byte {} (packet #{packet}): header says {caplen} \
                 bytes, {} present",
                s.offset(),
                got - RECORD_HEADER_LEN
            )));
        }
        let from = s.start + RECORD_HEADER_LEN;
        s.start += total;
        Ok(Some(Meta {
            at,
            untimed: false,
            from,
            to: s.start,
            // `sec + frac * scale` in doubles: both integers are converted first.
            ts: f64::from(sec) + f64::from(frac) * self.scale,
            linktype,
            iface: None,
            orig_len,
            iface_id: 0,
            ticks: u64::from(sec) * 10u64.pow(u32::from(self.resol)) + u64::from(frac),
        }))
    }
}
