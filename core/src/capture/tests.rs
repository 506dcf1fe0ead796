//! The capture reader on pcap, pcapng and gzip files built here byte by
//! byte, plus the gzip trailer regression and a property test over damaged
//! files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::write::GzEncoder;
use flate2::Compression;
use proptest::prelude::*;

use super::*;

// --- writers -------------------------------------------------------------------------

pub(crate) fn tmp(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "statewall-capture-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

pub(crate) fn gz(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

pub(crate) fn w16(out: &mut Vec<u8>, v: u16, big: bool) {
    out.extend_from_slice(&if big {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    });
}

pub(crate) fn w32(out: &mut Vec<u8>, v: u32, big: bool) {
    out.extend_from_slice(&if big {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    });
}

/// A pcap file as statewall's writer makes it; frames are (ticks, data).
pub(crate) fn pcap_bytes(
    frames: &[(u64, Vec<u8>)],
    linktype: u32,
    nsec: bool,
    big: bool,
) -> Vec<u8> {
    let units = if nsec { 1_000_000_000 } else { 1_000_000 };
    let mut out = Vec::new();
    w32(
        &mut out,
        if nsec {
            pcap::MAGIC_NSEC
        } else {
            pcap::MAGIC_USEC
        },
        big,
    );
    w16(&mut out, 2, big);
    w16(&mut out, 4, big);
    w32(&mut out, 0, big);
    w32(&mut out, 0, big);
    w32(&mut out, 262_144, big);
    w32(&mut out, linktype, big);
    for (ticks, data) in frames {
        w32(&mut out, (ticks / units) as u32, big);
        w32(&mut out, (ticks % units) as u32, big);
        w32(&mut out, data.len() as u32, big);
        w32(&mut out, data.len() as u32, big);
        out.extend_from_slice(data);
    }
    out
}

pub(crate) fn block(btype: u32, body: &[u8], big: bool) -> Vec<u8> {
    let mut body = body.to_vec();
    body.resize(body.len() + (body.len().wrapping_neg() & 3), 0);
    let mut out = Vec::new();
    w32(&mut out, btype, big);
    w32(&mut out, body.len() as u32 + 12, big);
    out.extend_from_slice(&body);
    w32(&mut out, body.len() as u32 + 12, big);
    out
}

pub(crate) fn option(code: u16, value: &[u8], big: bool) -> Vec<u8> {
    let mut out = Vec::new();
    w16(&mut out, code, big);
    w16(&mut out, value.len() as u16, big);
    out.extend_from_slice(value);
    out.resize(out.len() + (value.len().wrapping_neg() & 3), 0);
    out
}

pub(crate) fn shb(big: bool) -> Vec<u8> {
    let mut body = Vec::new();
    w32(&mut body, 0x1A2B_3C4D, big);
    w16(&mut body, 1, big);
    w16(&mut body, 0, big);
    body.extend_from_slice(&[0xff; 8]);
    block(0x0A0D_0D0A, &body, big)
}

pub(crate) fn idb(linktype: u16, options: &[u8], big: bool, snaplen: u32) -> Vec<u8> {
    let mut body = Vec::new();
    w16(&mut body, linktype, big);
    w16(&mut body, 0, big);
    w32(&mut body, snaplen, big);
    body.extend_from_slice(options);
    block(1, &body, big)
}

pub(crate) fn epb(ifid: u32, ticks: u64, data: &[u8], big: bool) -> Vec<u8> {
    let mut body = Vec::new();
    for v in [
        ifid,
        (ticks >> 32) as u32,
        ticks as u32,
        data.len() as u32,
        data.len() as u32,
    ] {
        w32(&mut body, v, big);
    }
    body.extend_from_slice(data);
    block(6, &body, big)
}

/// (index, ts, data, linktype, iface, orig_len) of a frame, owned.
type Owned = (u64, f64, Vec<u8>, u32, Option<String>, u32);

fn read_path(path: &Path) -> (Vec<Owned>, Option<CaptureError>) {
    let mut reader = match open(path) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut frames = Vec::new();
    let mut error = None;
    while let Some(item) = reader.next_frame() {
        match item {
            Ok(f) => frames.push((
                f.index,
                f.ts,
                f.data.to_vec(),
                f.linktype,
                f.iface.as_deref().map(String::from),
                f.orig_len,
            )),
            Err(e) => {
                assert!(error.is_none(), "two errors");
                error = Some(e);
            }
        }
    }
    assert!(reader.next_frame().is_none());
    (frames, error)
}

fn read_bytes(bytes: &[u8]) -> (Vec<Owned>, Option<CaptureError>) {
    let path = tmp("t.cap");
    std::fs::write(&path, bytes).unwrap();
    read_path(&path)
}

fn datas(frames: &[Owned]) -> Vec<Vec<u8>> {
    frames.iter().map(|f| f.2.clone()).collect()
}

pub(crate) fn sample(count: usize) -> Vec<(u64, Vec<u8>)> {
    let mut header = vec![2u8; 6];
    header.extend_from_slice(&[4; 6]);
    header.extend_from_slice(&[0x88, 0xb5]);
    (0..count)
        .map(|i| {
            let mut d = header.clone();
            d.extend(std::iter::repeat_n(i as u8, 40 + 7 * i));
            (1_700_000_000_250_000 + i as u64 * 500_001, d)
        })
        .collect()
}

// --- round trips ------------------------------------------------------------------------

#[test]
fn pcap_round_trip_every_variant() {
    for nsec in [false, true] {
        for big in [false, true] {
            for compress in [false, true] {
                let frames = sample(5);
                let scaled: Vec<(u64, Vec<u8>)> = frames
                    .iter()
                    .map(|(t, d)| (if nsec { t * 1000 + 7 } else { *t }, d.clone()))
                    .collect();
                let mut bytes = pcap_bytes(&scaled, 101, nsec, big);
                if compress {
                    bytes = gz(&bytes);
                }
                let path = tmp("t.pcap");
                std::fs::write(&path, &bytes).unwrap();
                let mut reader = open(&path).unwrap();
                assert_eq!(
                    (reader.format(), reader.compressed()),
                    (Format::Pcap, compress)
                );
                let mut got = Vec::new();
                while let Some(f) = reader.next_frame() {
                    let f = f.unwrap();
                    got.push((
                        f.index,
                        f.ts,
                        f.data.to_vec(),
                        f.linktype,
                        f.iface.clone(),
                        f.orig_len,
                    ));
                }
                for (i, (f, (ticks, data))) in got.iter().zip(&scaled).enumerate() {
                    let units = if nsec { 1_000_000_000 } else { 1_000_000 };
                    let scale = if nsec { 1e-9 } else { 1e-6 };
                    let ts = (ticks / units) as f64 + (ticks % units) as f64 * scale;
                    assert_eq!(
                        f,
                        &(i as u64, ts, data.clone(), 101, None, data.len() as u32)
                    );
                }
                assert_eq!(got.len(), 5);
            }
        }
    }
}

#[test]
fn pcap_nanosecond_fraction_survives() {
    let (frames, err) = read_bytes(&pcap_bytes(
        &[(5_000_000_123, b"x".to_vec())],
        1,
        true,
        false,
    ));
    assert!(err.is_none());
    assert!((frames[0].1 - 5.000000123).abs() < 1e-12);
}

#[test]
fn pcapng_round_trip_with_several_interfaces() {
    for big in [false, true] {
        let ifaces = [(1u16, "eth0"), (101, "tun0"), (113, "any")];
        let mut bytes = shb(big);
        for (lt, name) in ifaces {
            let mut opts = option(2, name.as_bytes(), big);
            opts.extend(option(9, &[9], big));
            opts.extend([0; 4]);
            bytes.extend(idb(lt, &opts, big, 0));
        }
        let frames = sample(7);
        for (i, (t, d)) in frames.iter().enumerate() {
            bytes.extend(epb(i as u32 % 3, t * 1000, d, big));
        }
        let (got, err) = read_bytes(&bytes);
        assert!(err.is_none());
        for (i, f) in got.iter().enumerate() {
            let (lt, name) = ifaces[i % 3];
            assert_eq!(
                (&f.2, f.3, f.4.as_deref()),
                (&frames[i].1, u32::from(lt), Some(name))
            );
            assert!((f.1 - frames[i].0 as f64 / 1e6).abs() < 1e-6);
        }
        assert_eq!(got.len(), 7);
    }
}

#[test]
fn gzip_is_detected_by_content_not_name() {
    let mut bytes = shb(false);
    bytes.extend(idb(1, &option(2, b"eth0", false), false, 0));
    bytes.extend(epb(0, 1_500_000, b"abc", false));
    let path = tmp("plain-name.pcapng");
    std::fs::write(&path, gz(&bytes)).unwrap();
    let reader = open(&path).unwrap();
    assert!(reader.compressed());
    assert_eq!(datas(&read_path(&path).0), vec![b"abc".to_vec()]);
}

#[test]
fn frames_spanning_read_chunks_are_reassembled() {
    let frames: Vec<(u64, Vec<u8>)> = (0..600)
        .map(|i| {
            (
                i as u64 * 1_000_000,
                vec![(i % 251) as u8; 1000 + i * 37 % 9000],
            )
        })
        .collect();
    assert!(frames.iter().map(|(_, d)| d.len() + 16).sum::<usize>() > 2 * CHUNK);
    let bytes = pcap_bytes(&frames, 1, false, false);
    for content in [bytes.clone(), gz(&bytes)] {
        let (got, err) = read_bytes(&content);
        assert!(err.is_none());
        assert_eq!(
            datas(&got),
            frames.iter().map(|f| f.1.clone()).collect::<Vec<_>>()
        );
    }
}

// --- pcapng blocks by hand ---------------------------------------------------------------

#[test]
fn pcapng_timestamp_resolution_and_offset() {
    let mut opts = option(9, &[0x83], false);
    opts.extend(option(14, &1000i64.to_le_bytes(), false));
    let mut bytes = shb(false);
    bytes.extend(idb(1, &opts, false, 0));
    bytes.extend(idb(1, &option(9, &[3], false), false, 0));
    bytes.extend(idb(1, &[], false, 0));
    bytes.extend(epb(0, 12, b"a", false));
    bytes.extend(epb(1, 2500, b"b", false));
    bytes.extend(epb(2, 3_000_001, b"c", false));
    let (got, err) = read_bytes(&bytes);
    assert!(err.is_none());
    assert_eq!(
        got.iter().map(|f| f.1).collect::<Vec<_>>(),
        vec![1001.5, 2.5, 3.000001]
    );
}

#[test]
fn pcapng_simple_and_obsolete_packet_blocks() {
    let mut spb_body = 10u32.to_le_bytes().to_vec();
    spb_body.extend(b"0123456789");
    let spb = block(3, &spb_body, false);
    let mut pb_body = Vec::new();
    w16(&mut pb_body, 0, false);
    w16(&mut pb_body, 0, false);
    for v in [0u32, 7_000_000, 3, 9] {
        w32(&mut pb_body, v, false);
    }
    pb_body.extend(b"xyz");
    let mut bytes = shb(false);
    bytes.extend(idb(1, &option(2, b"eth0", false), false, 0));
    bytes.extend(&spb);
    bytes.extend(block(2, &pb_body, false));
    bytes.extend(shb(false));
    bytes.extend(idb(1, &[], false, 4));
    bytes.extend(&spb);
    let (got, err) = read_bytes(&bytes);
    assert!(err.is_none());
    let seen: Vec<(f64, Vec<u8>, u32, Option<String>)> =
        got.into_iter().map(|f| (f.1, f.2, f.5, f.4)).collect();
    assert_eq!(
        seen,
        vec![
            (0.0, b"0123456789".to_vec(), 10, Some("eth0".into())),
            (7.0, b"xyz".to_vec(), 9, Some("eth0".into())),
            (7.0, b"0123".to_vec(), 10, None),
        ]
    );
}

#[test]
fn pcapng_skips_other_blocks_and_resets_interfaces_per_section() {
    let mut nrb = vec![1, 0, 8, 0, 10, 0, 0, 1];
    nrb.extend(b"abc\0\0\0\0\0");
    let mut bytes = shb(false);
    bytes.extend(idb(1, &option(2, b"eth0", false), false, 0));
    bytes.extend(block(4, &nrb, false));
    bytes.extend(epb(0, 1, b"a", false));
    bytes.extend(block(5, &[0; 12], false));
    bytes.extend(block(0x4000_0BAD, b"\0\0\0\x20hello", false));
    bytes.extend(shb(true));
    bytes.extend(idb(101, &option(2, b"tun0", true), true, 0));
    bytes.extend(idb(1, &[], true, 0));
    bytes.extend(epb(0, 2, b"b", true));
    bytes.extend(block(0x1234_5678, b"unknown", true));
    bytes.extend(epb(1, 3, b"c", true));
    let (got, err) = read_bytes(&bytes);
    assert!(err.is_none());
    let seen: Vec<_> = got.into_iter().map(|f| (f.0, f.2, f.3, f.4)).collect();
    assert_eq!(
        seen,
        vec![
            (0, b"a".to_vec(), 1, Some("eth0".to_string())),
            (1, b"b".to_vec(), 101, Some("tun0".to_string())),
            (2, b"c".to_vec(), 1, None),
        ]
    );
}

#[test]
fn pcapng_packet_on_undescribed_interface_is_an_error() {
    let mut bytes = shb(false);
    bytes.extend(idb(1, &[], false, 0));
    bytes.extend(epb(0, 1, b"ok", false));
    bytes.extend(epb(1, 2, b"bad", false));
    let (got, err) = read_bytes(&bytes);
    assert_eq!(datas(&got), vec![b"ok".to_vec()]);
    let err = err.unwrap();
    assert!(!err.is_truncated());
    assert!(
        err.message().contains("interface 1") && err.message().contains("packet #2"),
        "{err}"
    );
}

#[test]
fn pcapng_trailing_length_mismatch_is_an_error() {
    let mut bytes = shb(false);
    bytes.extend(idb(1, &[], false, 0));
    bytes.extend(epb(0, 0, b"ok", false));
    let start = bytes.len();
    let mut bad = epb(0, 1, b"x", false);
    let n = bad.len();
    bad[n - 4..].copy_from_slice(&99u32.to_le_bytes());
    bytes.extend(bad);
    let (got, err) = read_bytes(&bytes);
    assert_eq!(datas(&got), vec![b"ok".to_vec()]);
    assert!(err.unwrap().message().contains(&format!("at byte {start}")));
}

// --- damaged files ----------------------------------------------------------------------

#[test]
fn truncated_pcap_message_names_file_offset_and_packet() {
    let bytes = pcap_bytes(
        &[(0, vec![0; 100]), (1_000_000, vec![1; 74])],
        1,
        false,
        false,
    );
    let path = tmp("trace.pcap");
    std::fs::write(&path, &bytes[..24 + 116 + 16 + 20]).unwrap();
    let (got, err) = read_path(&path);
    assert_eq!(got.len(), 1);
    let err = err.unwrap();
    assert!(err.is_truncated());
    assert_eq!(
        err.message(),
        format!(
            "{}: truncated packet record at byte 140 (packet #2): header says 74 bytes, 20 present",
            path.display()
        )
    );
}

#[test]
fn every_cut_point_yields_the_complete_frames_then_truncated() {
    let frames = sample(3);
    for fmt in ["pcap", "pcapng"] {
        let (content, header, overhead) = if fmt == "pcap" {
            (pcap_bytes(&frames, 1, false, false), 24, 16)
        } else {
            let mut opts = option(2, b"eth0", false);
            opts.extend([0; 4]);
            let mut b = shb(false);
            b.extend(idb(1, &opts, false, 0));
            let header = b.len();
            for (t, d) in &frames {
                b.extend(epb(0, *t, d, false));
            }
            (b, header, 32)
        };
        let mut ends = vec![header];
        for (_, d) in &frames {
            let pad = if fmt == "pcapng" {
                d.len().wrapping_neg() & 3
            } else {
                0
            };
            ends.push(ends.last().unwrap() + overhead + d.len() + pad);
        }
        assert_eq!(*ends.last().unwrap(), content.len());
        for size in 4..content.len() {
            let (got, err) = read_bytes(&content[..size]);
            let complete = ends[1..].iter().filter(|&&e| e <= size).count();
            assert_eq!(
                datas(&got),
                frames[..complete]
                    .iter()
                    .map(|f| f.1.clone())
                    .collect::<Vec<_>>(),
                "{size}"
            );
            if ends.contains(&size) || (fmt == "pcapng" && size == shb(false).len()) {
                assert!(err.is_none(), "{size}");
            } else {
                assert!(err.unwrap().is_truncated(), "{size}");
            }
        }
    }
}

#[test]
fn truncated_gzip_yields_what_was_decompressed_then_truncated() {
    let frames: Vec<(u64, Vec<u8>)> = (0..200)
        .map(|i| (i * 1_000_000, vec![i as u8; 500]))
        .collect();
    let packed = gz(&pcap_bytes(&frames, 1, false, false));
    for (size, at_least) in [(packed.len() - 8, 200), (packed.len() / 2, 1), (30, 0)] {
        let (got, err) = read_bytes(&packed[..size]);
        assert!(got.len() >= at_least, "{size}");
        assert_eq!(
            datas(&got),
            frames[..got.len()]
                .iter()
                .map(|f| f.1.clone())
                .collect::<Vec<_>>()
        );
        let err = err.unwrap();
        assert!(
            err.is_truncated() && err.message().contains("gzip stream ends early"),
            "{err}"
        );
    }
}

#[test]
fn damaged_gzip_trailer_delivers_every_packet_then_names_the_offset() {
    let frames: Vec<(u64, Vec<u8>)> = (0..200)
        .map(|i| (i * 1_000_000, vec![i as u8; 500]))
        .collect();
    let plain = pcap_bytes(&frames, 1, false, false);
    let packed = gz(&plain);
    let n = packed.len();
    for (flip, at, what) in [
        (n - 6, n - 8, "CRC check failed"),
        (n - 2, n - 4, "length check failed"),
    ] {
        let mut bad = packed.clone();
        bad[flip] ^= 0x55;
        let path = tmp("crc.pcap.gz");
        std::fs::write(&path, &bad).unwrap();
        let (got, err) = read_path(&path);
        assert_eq!(got.len(), 200);
        let err = err.unwrap();
        assert!(!err.is_truncated());
        assert_eq!(
            err.message().split(": ").next().unwrap(),
            path.display().to_string(),
        );
        assert!(
            err.message()
                .contains(&format!("file ends at byte {} (packet #201)", plain.len())),
            "{err}"
        );
        assert!(
            err.message().contains(&format!(
                "corrupt gzip data at byte {at} of the compressed file: {what}"
            )),
            "{err}"
        );
    }
}

#[test]
fn concatenated_gzip_members_read_as_one_stream() {
    let frames = sample(4);
    let plain = pcap_bytes(&frames, 1, false, false);
    let mut two = gz(&plain[..100]);
    two.extend(gz(&plain[100..]));
    two.extend([0; 5]); // zero padding after the last member is allowed
    let (got, err) = read_bytes(&two);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got.len(), 4);
    two.extend(b"junk");
    let (got, err) = read_bytes(&two);
    assert_eq!(got.len(), 4);
    assert!(err.unwrap().message().contains("not a gzip member"));
}

#[test]
fn unknown_magic_and_empty_file() {
    let path = tmp("notes.txt");
    std::fs::write(&path, b"hello world").unwrap();
    assert_eq!(
        open(&path).err().unwrap().message(),
        format!(
            "{}: not a pcap, pcapng or gzip file (starts with 68 65 6c 6c 6f 20 77 6f)",
            path.display()
        )
    );
    let empty = tmp("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    assert!(open(&empty)
        .err()
        .unwrap()
        .message()
        .ends_with("empty file, not a capture"));
    let missing = tmp("x").with_file_name("missing.pcap");
    assert_eq!(
        open(&missing).err().unwrap().message(),
        format!(
            "{}: cannot open: No such file or directory",
            missing.display()
        )
    );
    let dir = tmp("x").parent().unwrap().to_path_buf();
    assert!(open(&dir)
        .err()
        .unwrap()
        .message()
        .ends_with("cannot open: Is a directory"));
    let gz_empty = tmp("e.gz");
    std::fs::write(&gz_empty, gz(b"")).unwrap();
    assert!(open(&gz_empty)
        .err()
        .unwrap()
        .message()
        .ends_with("empty file, not a capture"));
    std::fs::write(&gz_empty, &gz(b"\xd4\xc3\xb2\xa1")[..12]).unwrap();
    let err = open(&gz_empty).err().unwrap();
    assert!(
        err.is_truncated()
            && err
                .message()
                .contains("bytes decompress; the gzip stream ends early"),
        "{err}"
    );
}

#[test]
fn implausible_record_length_is_corruption_not_truncation() {
    let mut bytes = pcap_bytes(&[(0, b"abc".to_vec())], 1, false, false);
    for v in [0u32, 0, 0x7FFF_FFFF, 60] {
        w32(&mut bytes, v, false);
    }
    let (got, err) = read_bytes(&bytes);
    assert_eq!(datas(&got), vec![b"abc".to_vec()]);
    let err = err.unwrap();
    assert!(!err.is_truncated() && err.message().contains("packet #2"));
}

#[test]
fn corrupt_gzip_is_a_capture_error() {
    let mut bytes = gz(&[&b"\xd4\xc3\xb2\xa1"[..], &[0; 40]].concat())[..12].to_vec();
    bytes.extend([0xff; 40]);
    let (_, err) = read_bytes(&bytes);
    assert!(err.is_some());
}

// --- no panic, whatever the bytes --------------------------------------------------------

fn valid_captures() -> Vec<Vec<u8>> {
    let frames = sample(6);
    let mut ng = shb(false);
    ng.extend(idb(1, &option(2, b"eth0", false), false, 0));
    ng.extend(idb(101, &option(9, &[0x89], false), false, 0));
    for (i, (t, d)) in frames.iter().enumerate() {
        ng.extend(epb(i as u32 % 2, *t, d, false));
    }
    let mut ngbig = shb(true);
    ngbig.extend(idb(1, &[], true, 0));
    ngbig.extend(epb(0, 5, b"abc", true));
    let pc = pcap_bytes(&frames, 1, true, true);
    vec![gz(&ng), gz(&pc), ng, ngbig, pc]
}

static CASES: AtomicU64 = AtomicU64::new(0);

fn check_contract(bytes: &[u8]) {
    CASES.fetch_add(1, Ordering::Relaxed);
    let path = tmp("fuzz");
    std::fs::write(&path, bytes).unwrap();
    if let Ok(mut reader) = open(&path) {
        let mut n = 0;
        while let Some(item) = reader.next_frame() {
            match item {
                Ok(f) => {
                    assert_eq!(f.index, n);
                    n += 1;
                }
                Err(_) => break,
            }
        }
        assert!(reader.next_frame().is_none(), "something after the error");
    }
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// 1500 cases per property unless PROPTEST_CASES asks for more.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), .. ProptestConfig::default() })]

    #[test]
    fn damaged_captures_give_frames_then_at_most_one_error(
        which in 0usize..5,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let mut bytes = valid_captures().swap_remove(which);
        for (at, v) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = *v;
        }
        if do_cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        check_contract(&bytes);
    }

    #[test]
    fn random_tails_after_real_headers(
        prefix in 0usize..4,
        tail in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut bytes = match prefix {
            0 => b"\xd4\xc3\xb2\xa1\x02\0\x04\0".to_vec(),
            1 => b"\x0a\x0d\x0d\x0a".to_vec(),
            2 => shb(false),
            _ => [shb(true), idb(1, &[], true, 0)].concat(),
        };
        bytes.extend(tail);
        check_contract(&bytes);
        check_contract(&gz(&bytes));
    }
}

#[test]
fn cut_gzip_gives_a_prefix_of_the_frames() {
    for content in valid_captures() {
        let full = read_bytes(&content).0;
        for size in (0..content.len()).step_by(7) {
            let (got, _) = read_bytes(&content[..size]);
            assert_eq!(got[..], full[..got.len()], "{size}");
        }
    }
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn error_messages_byte_for_byte() {
    // (case, file bytes, truncated?, message after "name: "), the exact text users see.
    let cases = [
        ("kuznetsov", "34cdb2a1000000000000000000000000000000000000000000000000000000000000", false, "modified (Kuznetsov) pcap format is not supported; convert it with editcap"),
        ("version", "d4c3b2a10300010000000000000000000000000001000000", false, "unsupported pcap version 3.1"),
        ("short_header", "d4c3b2a102000400", true, "truncated pcap file header: 8 of 24 bytes"),
        ("bom", "0a0d0d0a1c0000000102030400000000000000000000000000000000", false, "corrupt section header at byte 0: byte-order magic is 01020304"),
        ("ng_version", "0a0d0d0a1c0000004d3c2b1a02000500ffffffffffffffff1c000000", false, "unsupported pcapng version 2.5 in the section at byte 0"),
        ("bad_len", "0a0d0d0a1c0000004d3c2b1a01000000ffffffffffffffff1c000000060000000d0000000000000000000000", false, "corrupt block at byte 28 (packet #1): invalid block length 13"),
        ("option", "0a0d0d0a1c0000004d3c2b1a01000000ffffffffffffffff1c000000010000001c000000010000000000000002002800616263641c000000", false, "corrupt option 2 at byte 44: length 40 runs past the end of its block"),
        ("spb_noif", "0a0d0d0a1c0000004d3c2b1a01000000ffffffffffffffff1c0000000300000014000000020000006162000014000000", false, "corrupt packet block at byte 28 (packet #1): interface 0 was not described (the section has 0)"),
        ("caplen", "0a0d0d0a1c0000004d3c2b1a01000000ffffffffffffffff1c0000000100000014000000010000000000000014000000060000002400000000000000000000000000000032000000320000007878000024000000", false, "corrupt packet block at byte 48 (packet #1): captured length 50 does not fit in the block"),
        ("short_block_hdr", "0a0d0d0a1c0000004d3c2b1a01000000ffffffffffffffff1c0000000600000020", true, "truncated block header at byte 28 (packet #1): 5 of 12 bytes present"),
    ];
    for (case, bytes, truncated, message) in cases {
        let path = tmp("c");
        std::fs::write(&path, unhex(bytes)).unwrap();
        let (frames, err) = read_path(&path);
        let err = err.unwrap();
        assert!(frames.is_empty(), "{case}");
        assert_eq!(err.is_truncated(), truncated, "{case}");
        assert_eq!(
            err.message(),
            format!("{}: {message}", path.display()),
            "{case}"
        );
    }
}
