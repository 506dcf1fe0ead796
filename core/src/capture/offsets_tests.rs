//! Records read again at their offsets give the frames a sequential read
//! gave: every pcap variant, pcapng with several sections, byte orders,
//! interfaces of their own link types and timestamp resolutions, Simple and
//! obsolete Packet Blocks, and records spread over several read buffers.

use std::path::{Path, PathBuf};

use super::offsets::{reopen, table};
use super::tests::{block, epb, gz, idb, option, pcap_bytes, sample, shb, tmp, w16, w32};
use super::*;

/// Everything a frame says, owned.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    index: u64,
    ts_bits: u64,
    data: Vec<u8>,
    linktype: u32,
    iface: Option<String>,
    orig_len: u32,
    iface_id: u32,
    ticks: u64,
    at: Location,
    untimed: bool,
    info: Option<IfaceInfo>,
}

fn seen(frame: &Frame<'_>, info: Option<&IfaceInfo>) -> Seen {
    Seen {
        index: frame.index,
        ts_bits: frame.ts.to_bits(),
        data: frame.data.to_vec(),
        linktype: frame.linktype,
        iface: frame.iface.as_deref().map(str::to_string),
        orig_len: frame.orig_len,
        iface_id: frame.iface_id,
        ticks: frame.ticks,
        at: frame.at,
        untimed: frame.untimed,
        info: info.cloned(),
    }
}

/// The frames of a sequential read, and the reader after it.
fn read_all(path: &Path) -> (Vec<Seen>, Reader) {
    let mut reader = open(path).unwrap();
    let mut frames = Vec::new();
    while let Some(step) = reader.next_described() {
        let (frame, info) = step.unwrap();
        frames.push(seen(&frame, info));
    }
    (frames, reader)
}

/// Read every frame of `path` again by offset, in `order`, and compare.
fn reads_again(path: &Path, order: impl Iterator<Item = usize>) {
    let (frames, reader) = read_all(path);
    assert!(!frames.is_empty());
    let table = table(path, &reader)
        .unwrap()
        .expect("a plain file has a layout");
    let mut again = reopen(path, &table).unwrap();
    for i in order {
        let want = &frames[i];
        // An untimed record borrows the time of the file's previous packet.
        let last = want
            .untimed
            .then(|| (f64::from_bits(want.ts_bits), want.ticks));
        let (frame, info) = again.read_at(want.at.offset, want.index, last).unwrap();
        assert_eq!(&seen(&frame, info), want, "frame {i} of {}", path.display());
    }
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = tmp(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn both_ways(path: &Path) {
    let n = read_all(path).0.len();
    reads_again(path, 0..n);
    reads_again(path, (0..n).rev());
    reads_again(path, (0..n).filter(|i| i % 3 == 1));
}

#[test]
fn pcap_records_read_again_in_every_variant() {
    for nsec in [false, true] {
        for big in [false, true] {
            let frames: Vec<(u64, Vec<u8>)> = sample(9)
                .into_iter()
                .map(|(t, d)| (if nsec { t * 1000 + 3 } else { t }, d))
                .collect();
            both_ways(&write("v.pcap", &pcap_bytes(&frames, 1, nsec, big)));
        }
    }
}

#[test]
fn records_beyond_one_read_buffer_read_again() {
    let frames: Vec<(u64, Vec<u8>)> = (0..700)
        .map(|i| {
            (
                i as u64 * 1_000,
                vec![(i % 251) as u8; 1000 + i * 37 % 9000],
            )
        })
        .collect();
    both_ways(&write("big.pcap", &pcap_bytes(&frames, 101, false, false)));
}

/// Two sections of opposite byte orders; interfaces of three link types,
/// nanosecond, 2^-3 second and default resolutions, one with a time
/// offset; EPBs on each, an obsolete Packet Block, Simple Packet Blocks
/// borrowing the time before them, and blocks that are not packets.
fn pcapng_file() -> Vec<u8> {
    let mut bytes = shb(false);
    let mut eth = option(2, b"eth0", false);
    eth.extend(option(9, &[9], false));
    bytes.extend(idb(1, &eth, false, 0));
    let mut tun = option(2, b"tun0", false);
    tun.extend(option(9, &[0x83], false));
    tun.extend(option(14, &1000i64.to_le_bytes(), false));
    bytes.extend(idb(101, &tun, false, 0));
    bytes.extend(epb(0, 1_700_000_000_123_456_789, b"ether frame", false));
    bytes.extend(block(4, &[1, 0, 8, 0, 10, 0, 0, 1, b'a', 0, 0, 0], false));
    bytes.extend(epb(1, 77, b"raw on tun", false));
    let mut spb = 10u32.to_le_bytes().to_vec();
    spb.extend(b"0123456789");
    bytes.extend(block(3, &spb, false));
    bytes.extend(epb(0, 1_700_000_000_000_000_001, b"earlier", false));
    let mut pb = Vec::new();
    w16(&mut pb, 1, false);
    w16(&mut pb, 0, false);
    for v in [0u32, 90, 3, 9] {
        w32(&mut pb, v, false);
    }
    pb.extend(b"xyz");
    bytes.extend(block(2, &pb, false));
    bytes.extend(shb(true));
    bytes.extend(idb(113, &option(2, b"any", true), true, 0));
    bytes.extend(idb(1, &[], true, 4));
    bytes.extend(epb(1, 5_000_000, b"second section", true));
    let mut spb = Vec::new();
    w32(&mut spb, 10, true);
    spb.extend(b"9876543210");
    bytes.extend(block(3, &spb, true));
    bytes.extend(epb(0, 6_000_000, b"cooked", true));
    bytes
}

#[test]
fn pcapng_records_read_again_across_sections_and_interfaces() {
    let path = write("two.pcapng", &pcapng_file());
    let (frames, _) = read_all(&path);
    let kinds: Vec<(u32, bool)> = frames.iter().map(|f| (f.linktype, f.untimed)).collect();
    assert_eq!(
        kinds,
        [
            (1, false),
            (101, false),
            (1, true),
            (1, false),
            (101, false),
            (1, false),
            (113, true),
            (113, false)
        ]
    );
    both_ways(&path);
}

#[test]
fn a_file_that_changed_is_refused() {
    let path = write("changed.pcap", &pcap_bytes(&sample(3), 1, false, false));
    let (_, reader) = read_all(&path);
    let table = table(&path, &reader).unwrap().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend(b"more");
    std::fs::write(&path, bytes).unwrap();
    let err = reopen(&path, &table).err().unwrap();
    assert!(err
        .message()
        .ends_with("the file changed since it was indexed (its size or modification time differ)"));
}

#[test]
fn an_offset_that_holds_no_record_is_an_error() {
    let path = write("not-here.pcapng", &pcapng_file());
    let (frames, reader) = read_all(&path);
    let table = table(&path, &reader).unwrap().unwrap();
    let mut again = reopen(&path, &table).unwrap();
    // Byte 0 is the section header, not a packet.
    let err = again.read_at(0, 4, None).err().unwrap();
    assert!(
        err.message()
            .contains("no packet record at byte 0 (packet #5)"),
        "{err}"
    );
    // The reader still reads a record where there is one.
    let (frame, _) = again.read_at(frames[1].at.offset, 1, None).unwrap();
    assert_eq!(frame.data, b"raw on tun");
}

#[test]
fn a_compressed_file_has_no_layout() {
    let path = write("c.pcap.gz", &gz(&pcap_bytes(&sample(2), 1, false, false)));
    let (_, reader) = read_all(&path);
    assert_eq!(table(&path, &reader).unwrap(), None);
}
