//! The index pass against a sequential read of the same capture: every
//! packet listed once, in its partition, where its record lies, with the
//! running maximum of all timestamps as its clock; then each partition's
//! frames read back by offset (`source::Frames::Indexed`) are the
//! sequential read's.

use std::path::PathBuf;

use crate::capture::tests::{block, epb, gz, idb, option, pcap_bytes, shb, tmp};
use crate::capture::{Capture, CaptureError, Location};
use crate::checksum::internet_checksum;
use crate::decode::decode_frame;
use crate::partition::index::{index_capture, Bounds, Entry, IndexError, Outcome};
use crate::partition::partition_of;
use crate::partition::source::{Frames, Indexed};
use crate::partition::wire::{PartIndex, Trailer};

const LINKTYPE_RAW: u32 = 101;
const PARTS: usize = 3;

/// An IPv4 UDP datagram from 192.0.2.`a` to 198.51.100.`b`.
fn udp(a: u8, b: u8) -> Vec<u8> {
    let mut ip = vec![0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0];
    ip.extend([192, 0, 2, a, 198, 51, 100, b]);
    let check = internet_checksum(&ip, 0);
    ip[10..12].copy_from_slice(&check.to_be_bytes());
    ip.extend([0x9c, 0x40, 0, 53, 0, 8, 0, 0]);
    ip
}

/// Frames of several host pairs, microsecond ticks, stepping back at times.
fn frames(seed: u64, count: u64) -> Vec<(u64, Vec<u8>)> {
    (0..count)
        .map(|i| {
            let step_back = if (i + seed) % 7 == 3 { 2_500_000 } else { 0 };
            let ticks = 1_000_000_000 + seed * 333 + i * 1_000_000 - step_back;
            (ticks, udp((i % 5) as u8 + 1, ((i + seed) % 3) as u8 + 1))
        })
        .collect()
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = tmp(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// (index, ts, clock, location, data) per frame of a sequential read, and its error.
type Read = (
    Vec<(u64, f64, f64, Location, Vec<u8>)>,
    Option<CaptureError>,
);

fn sequential(paths: &[PathBuf], bounds: Bounds) -> Read {
    let mut capture = Capture::open(paths).unwrap();
    let (mut out, mut clock, mut first) = (Vec::new(), f64::NEG_INFINITY, None);
    while let Some(step) = capture.next_described() {
        let frame = match step {
            Ok((frame, _)) => frame,
            Err(err) => return (out, Some(err)),
        };
        let first = *first.get_or_insert(frame.ts);
        if bounds.past_limit(frame.index) || bounds.past_until(first, frame.ts) {
            break;
        }
        clock = clock.max(frame.ts);
        out.push((frame.index, frame.ts, clock, frame.at, frame.data.to_vec()));
    }
    (out, None)
}

/// Each partition's trailer and entries.
fn index(paths: &[PathBuf], bounds: Bounds) -> Vec<(Trailer, Vec<Entry>)> {
    let mut sinks = vec![Vec::new(); PARTS];
    let outcome = index_capture(paths, bounds, &mut sinks).unwrap();
    assert!(matches!(outcome, Outcome::Indexed { .. }), "{outcome:?}");
    sinks
        .into_iter()
        .map(|bytes| {
            let mut part = PartIndex::from_bytes(bytes).unwrap();
            let mut entries = Vec::new();
            while let Some(entry) = part.next_entry().unwrap() {
                entries.push(entry);
            }
            (part.trailer, entries)
        })
        .collect()
}

/// The index of `paths` says what a sequential read says.
fn agrees(paths: &[PathBuf], bounds: Bounds) {
    let (frames, error) = sequential(paths, bounds);
    let parts = index(paths, bounds);
    let mut listed: Vec<(u64, f64, Location)> = Vec::new();
    for (part, (trailer, entries)) in parts.iter().enumerate() {
        assert_eq!((trailer.part, trailer.parts), (part as u32, PARTS as u32));
        assert_eq!(trailer.entries, entries.len() as u64);
        assert_eq!(trailer.first_ts.map(|t| t.0), frames.first().map(|f| f.1));
        assert_eq!(trailer.clock.map(|t| t.0), frames.last().map(|f| f.2));
        assert_eq!(
            trailer.error().map(|e| (e.kind(), e.message().to_string())),
            error.as_ref().map(|e| (e.kind(), e.message().to_string()))
        );
        assert!(entries.windows(2).all(|w| w[0].index < w[1].index));
        for entry in entries {
            let (_, ts, _, _, data) = &frames[entry.index as usize];
            let pkt = decode_frame(entry.index, *ts, data, LINKTYPE_RAW, None);
            assert_eq!(partition_of(&pkt, PARTS as u32), part as u32);
            listed.push((entry.index, entry.clock, entry.at));
        }
    }
    listed.sort_by_key(|l| l.0);
    let expected: Vec<(u64, f64, Location)> = frames.iter().map(|f| (f.0, f.2, f.3)).collect();
    assert_eq!(listed, expected);
    let used = parts.iter().filter(|(_, e)| !e.is_empty()).count();
    assert!(
        frames.len() < 10 || used > 1,
        "the packets spread over partitions"
    );
}

#[test]
fn every_packet_is_listed_once_with_the_running_maximum_as_its_clock() {
    let path = write(
        "steps-back.pcap",
        &pcap_bytes(&frames(0, 60), LINKTYPE_RAW, false, false),
    );
    let (seq, _) = sequential(std::slice::from_ref(&path), Bounds::default());
    assert!(
        seq.windows(2).any(|w| w[1].1 < w[0].1),
        "the clock steps back"
    );
    agrees(&[path], Bounds::default());
}

#[test]
fn merged_captures_are_indexed_in_merged_order() {
    let a = write(
        "a.pcap",
        &pcap_bytes(&frames(1, 40), LINKTYPE_RAW, false, false),
    );
    let nanoseconds: Vec<_> = frames(2, 30)
        .into_iter()
        .map(|(t, d)| (t * 1000, d))
        .collect();
    let b = write(
        "b.pcap",
        &pcap_bytes(&nanoseconds, LINKTYPE_RAW, true, true),
    );
    let paths = [a, b];
    let (seq, _) = sequential(&paths, Bounds::default());
    let switches = seq
        .windows(2)
        .filter(|w| w[0].3.file != w[1].3.file)
        .count();
    assert!(switches > 10, "the files interleave");
    agrees(&paths, Bounds::default());
}

#[test]
fn a_truncated_capture_lists_what_was_read_and_carries_its_error() {
    let whole = pcap_bytes(&frames(3, 50), LINKTYPE_RAW, false, false);
    let cut = write("cut.pcap", &whole[..whole.len() * 2 / 3]);
    let good = write(
        "good.pcap",
        &pcap_bytes(&frames(4, 50), LINKTYPE_RAW, false, false),
    );
    for paths in [vec![cut.clone()], vec![good, cut]] {
        let (_, error) = sequential(&paths, Bounds::default());
        assert!(error.is_some_and(|e| e.is_truncated()));
        agrees(&paths, Bounds::default());
    }
}

#[test]
fn the_pass_stops_where_a_replay_with_the_same_bounds_stops() {
    let path = write(
        "bounded.pcap",
        &pcap_bytes(&frames(5, 60), LINKTYPE_RAW, false, false),
    );
    for bounds in [
        Bounds {
            limit: Some(17),
            until: None,
        },
        Bounds {
            limit: None,
            until: Some(20.0),
        },
        Bounds {
            limit: Some(0),
            until: None,
        },
    ] {
        agrees(std::slice::from_ref(&path), bounds);
        let parts = index(std::slice::from_ref(&path), bounds);
        assert_eq!(parts[0].0.bounds(), bounds);
        let listed: u64 = parts.iter().map(|p| p.0.entries).sum();
        assert_eq!(
            listed,
            [17, 21, 0][bounds.limit.map_or(1, |l| if l > 0 { 0 } else { 2 })]
        );
    }
}

#[test]
fn a_compressed_capture_is_read_whole_and_a_bad_one_is_an_error() {
    let bytes = pcap_bytes(&frames(6, 5), LINKTYPE_RAW, false, false);
    let plain = write("plain.pcap", &bytes);
    let packed = write("packed.pcap.gz", &gz(&bytes));
    let mut sinks = vec![Vec::new(); PARTS];
    let outcome = index_capture(&[plain, packed.clone()], Bounds::default(), &mut sinks).unwrap();
    assert_eq!(
        outcome,
        Outcome::FullScan(format!("{} is compressed", packed.display()))
    );
    let junk = write("junk.pcap", b"not a capture");
    let err = index_capture(&[junk], Bounds::default(), &mut sinks).err();
    assert!(matches!(err, Some(IndexError::Capture(_))));
}

/// A pcapng file whose raw-IP interface has nanosecond stamps beside an
/// Ethernet one in microseconds, with Simple Packet Blocks (which borrow
/// the time of the packet before them, possibly another partition's).
fn pcapng_with_simple_blocks() -> Vec<u8> {
    let mut bytes = shb(false);
    bytes.extend(idb(101, &option(9, &[9], false), false, 0));
    let mut ether = option(2, b"eth0", false);
    ether.extend([0; 4]);
    bytes.extend(idb(1, &ether, false, 0));
    for (i, (ticks, data)) in frames(7, 40).into_iter().enumerate() {
        if i % 4 == 2 {
            let mut body = (data.len() as u32).to_le_bytes().to_vec();
            body.extend(&data);
            bytes.extend(block(3, &body, false));
        } else if i % 4 == 3 {
            let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0];
            frame.extend(&data);
            bytes.extend(epb(1, ticks, &frame, false));
        } else {
            bytes.extend(epb(0, ticks * 1000 + 7, &data, false));
        }
    }
    bytes
}

#[test]
fn each_partition_reads_back_its_own_frames_with_their_clocks() {
    let ng = write("simple.pcapng", &pcapng_with_simple_blocks());
    let nanoseconds: Vec<_> = frames(8, 45)
        .into_iter()
        .map(|(t, d)| (t * 1000 + 1, d))
        .collect();
    let whole = pcap_bytes(&nanoseconds, LINKTYPE_RAW, true, false);
    let cut = write("cut.pcap", &whole[..whole.len() - 5]);
    for paths in [vec![ng.clone()], vec![ng, cut]] {
        let mut capture = Capture::open(&paths).unwrap();
        let mut all = Vec::new();
        let mut clock = f64::NEG_INFINITY;
        let mut error = None;
        while let Some(step) = capture.next_described() {
            match step {
                Ok((frame, _)) => {
                    clock = clock.max(frame.ts);
                    let pkt = decode_frame(frame.index, frame.ts, frame.data, frame.linktype, None);
                    let part = partition_of(&pkt, PARTS as u32);
                    let ts = frame.ts.to_bits();
                    all.push((
                        part,
                        frame.index,
                        ts,
                        frame.data.to_vec(),
                        frame.untimed,
                        clock,
                    ));
                }
                Err(err) => error = Some(err.message().to_string()),
            }
        }
        assert!(all.iter().any(|f| f.4), "simple packet blocks are read");
        let mut sinks = vec![Vec::new(); PARTS];
        index_capture(&paths, Bounds::default(), &mut sinks).unwrap();
        for (part, bytes) in sinks.into_iter().enumerate() {
            let index = PartIndex::from_bytes(bytes).unwrap();
            let mut frames = Frames::Indexed(Indexed::new(paths.clone(), index).unwrap());
            let mut got = Vec::new();
            let mut got_error = None;
            while let Some(step) = frames.next_step() {
                match step {
                    Ok((frame, _, clock)) => {
                        let clock = clock.expect("an indexed frame has its clock");
                        got.push((
                            part as u32,
                            frame.index,
                            frame.ts.to_bits(),
                            frame.data.to_vec(),
                            frame.untimed,
                            clock,
                        ));
                    }
                    Err(err) => got_error = Some(err.message().to_string()),
                }
            }
            let want: Vec<_> = all.iter().filter(|f| f.0 == part as u32).cloned().collect();
            assert_eq!(got, want, "partition {part} of {paths:?}");
            assert_eq!(got_error, error);
        }
    }
}
