"""Capture readers and writers: shared traces, tcpdump as an independent reader,
hand-assembled pcapng blocks, round trips, and damaged files."""

from __future__ import annotations

import contextlib
import gzip
import io
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statewall.capture import (
    CaptureError,
    CaptureTruncated,
    Frame,
    open_capture,
    write_pcap,
    write_pcapng,
)
from statewall.capture.source import CHUNK

TCPDUMP = shutil.which("tcpdump")
needs_tcpdump = pytest.mark.skipif(TCPDUMP is None, reason="tcpdump is not installed")


def read_all(path: Path) -> list[Frame]:
    with open_capture(path) as reader:
        return list(reader)


def read_until_error(path: Path) -> tuple[list[Frame], CaptureError | None]:
    frames: list[Frame] = []
    try:
        with open_capture(path) as reader:
            for frame in reader:
                frames.append(frame)
    except CaptureError as exc:
        return frames, exc
    return frames, None


def sample_frames(count: int = 5, start: float = 1_700_000_000.25) -> list[tuple[float, bytes]]:
    """Ethernet frames of EtherType 0x88b5 (local experimental), so tcpdump prints their length."""
    header = b"\x02" * 6 + b"\x04" * 6 + b"\x88\xb5"
    return [(start + i * 0.5 + i * 1e-6, header + bytes([i]) * (40 + 7 * i)) for i in range(count)]


def tcpdump_records(path: Path) -> list[tuple[str, int]]:
    """(timestamp text at nanosecond precision, original length) for each packet, per tcpdump."""
    assert TCPDUMP is not None
    out = subprocess.run(
        [TCPDUMP, "-r", str(path), "-nn", "-tt", "-e", "--time-stamp-precision=nano", "-q"],
        capture_output=True, text=True, check=True,
    ).stdout
    records = []
    for line in out.splitlines():
        stamp = re.match(r"(\d+\.\d{9}) ", line)
        if stamp:
            length = re.search(r"length (\d+)", line)
            records.append((stamp.group(1), int(length.group(1)) if length else -1))
    return records


# --- The shared traces ------------------------------------------------------------------


def shared_trace_counts(shared: Path) -> dict[str, int]:
    counts = {}
    for line in (shared / "traces" / "SOURCES.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 5 and cells[1].startswith("`") and cells[4].isdigit():
            counts[cells[1].strip("`")] = int(cells[4])
    return counts


@pytest.mark.shared
def test_every_shared_trace_reads_to_its_documented_packet_count(shared: Path) -> None:
    counts = shared_trace_counts(shared)
    assert len(counts) >= 39
    for name, expected in counts.items():
        frames = read_all(shared / "traces" / name)
        assert len(frames) == expected, name
        assert [f.index for f in frames] == list(range(expected))
        assert all(f.linktype == 1 for f in frames), name


@pytest.mark.shared
@needs_tcpdump
@pytest.mark.parametrize("name", [
    "tcp-handshake-only.pcapng",
    "icmp-time-exceeded-traceroute-icmp.pcapng",
    "udp-dns-query-response.pcap",
    "ip-frag-dns-udp-ipv4-ipv6.pcap",
    "irc-dcc-send-and-chat.pcapng",
])
def test_shared_trace_timestamps_and_lengths_match_tcpdump(shared: Path, name: str) -> None:
    path = shared / "traces" / name
    frames = read_all(path)
    records = tcpdump_records(path)
    assert len(records) == len(frames)
    for frame, (stamp, _) in zip(frames, records, strict=True):
        assert frame.ts == pytest.approx(float(stamp), abs=1e-6)
    for frame in frames:
        assert frame.orig_len == len(frame.data)


# --- Round trips and tcpdump reading what we write --------------------------------------


@pytest.mark.parametrize("nanosecond", [False, True])
@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("compress", [False, True])
def test_pcap_round_trip(tmp_path: Path, nanosecond: bool, big_endian: bool,
                         compress: bool) -> None:
    path = tmp_path / "t.pcap"
    frames = sample_frames()
    write_pcap(path, frames, linktype=101, nanosecond=nanosecond, big_endian=big_endian,
               compress=compress)
    with open_capture(path) as reader:
        got = list(reader)
        assert reader.format == "pcap" and reader.compressed == compress
    assert [(f.data, f.linktype, f.iface, f.orig_len) for f in got] == [
        (data, 101, None, len(data)) for _, data in frames
    ]
    precision = 1e-9 if nanosecond else 1e-6
    for frame, (ts, _) in zip(got, frames, strict=True):
        assert abs(frame.ts - ts) <= precision + 1e-7


def test_pcap_nanosecond_fraction_survives(tmp_path: Path) -> None:
    path = tmp_path / "ns.pcap"
    write_pcap(path, [(5.000000123, b"x")], nanosecond=True)
    assert struct.unpack_from("<IIII", path.read_bytes(), 24)[:2] == (5, 123)
    assert read_all(path)[0].ts == pytest.approx(5.000000123, abs=1e-12)


def test_pcap_magic_and_header_fields_match_libpcap(tmp_path: Path) -> None:
    path = tmp_path / "h.pcap"
    write_pcap(path, [], big_endian=True, nanosecond=True, linktype=113)
    assert path.read_bytes() == bytes.fromhex("a1b23c4d 0002 0004 00000000 00000000"
                                              " 00040000 00000071")


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcapng_round_trip_with_several_interfaces(tmp_path: Path, big_endian: bool,
                                                   nanosecond: bool) -> None:
    path = tmp_path / "t.pcapng"
    frames = [(ts, data, i % 3) for i, (ts, data) in enumerate(sample_frames(7))]
    interfaces = [(1, "eth0"), (101, "tun0"), (113, "any")]
    write_pcapng(path, frames, interfaces, big_endian=big_endian, nanosecond=nanosecond)
    got = read_all(path)
    assert [(f.data, f.linktype, f.iface) for f in got] == [
        (data, interfaces[i][0], interfaces[i][1]) for _, data, i in frames
    ]
    for frame, (ts, _, _) in zip(got, frames, strict=True):
        assert abs(frame.ts - ts) <= 1e-6 + 1e-7


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "plain-name.pcapng"
    write_pcapng(path, [(1.5, b"abc", 0)], [(1, "eth0")], compress=True)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    with open_capture(path) as reader:
        assert reader.compressed
        assert [f.data for f in reader] == [b"abc"]


def test_writer_accepts_an_open_binary_file() -> None:
    sink = io.BytesIO()
    assert write_pcap(sink, sample_frames(2)) == 2
    assert sink.getvalue()[:4] == bytes.fromhex("d4c3b2a1")


def test_frames_spanning_read_chunks_are_reassembled(tmp_path: Path) -> None:
    path = tmp_path / "big.pcap"
    frames = [(float(i), bytes([i % 251]) * (1000 + i * 37 % 9000)) for i in range(600)]
    assert sum(len(d) + 16 for _, d in frames) > 2 * CHUNK
    write_pcap(path, frames)
    assert [f.data for f in read_all(path)] == [d for _, d in frames]


@needs_tcpdump
@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
@pytest.mark.parametrize("big_endian", [False, True])
def test_tcpdump_reads_what_we_write(tmp_path: Path, fmt: str, big_endian: bool) -> None:
    path = tmp_path / f"t.{fmt}"
    frames = sample_frames(4)
    if fmt == "pcap":
        write_pcap(path, frames, nanosecond=True, big_endian=big_endian)
    else:
        write_pcapng(path, [(ts, d, 0) for ts, d in frames], [(1, "eth0")],
                     nanosecond=True, big_endian=big_endian)
    records = tcpdump_records(path)
    assert [r[1] for r in records] == [len(d) for _, d in frames]
    assert [float(r[0]) for r in records] == pytest.approx([ts for ts, _ in frames], abs=1e-6)


# --- pcapng blocks assembled by hand ----------------------------------------------------


def block(btype: int, body: bytes, order: str = "<") -> bytes:
    body += b"\0" * (-len(body) & 3)
    return struct.pack(order + "II", btype, len(body) + 12) + body + struct.pack(
        order + "I", len(body) + 12)


def option(code: int, value: bytes, order: str = "<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) & 3)


def shb(order: str = "<") -> bytes:
    return block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)


def idb(linktype: int, options: bytes = b"", order: str = "<", snaplen: int = 0) -> bytes:
    return block(1, struct.pack(order + "HHI", linktype, 0, snaplen) + options, order)


def epb(ifid: int, ticks: int, data: bytes, order: str = "<", orig: int | None = None) -> bytes:
    head = struct.pack(order + "IIIII", ifid, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                       len(data) if orig is None else orig)
    return block(6, head + data, order)


def test_pcapng_timestamp_resolution_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "res.pcapng"
    path.write_bytes(
        shb()
        + idb(1, option(9, b"\x83") + option(14, struct.pack("<q", 1000)))  # 2^-3 s, +1000 s
        + idb(1, option(9, b"\x03"))  # milliseconds
        + idb(1)  # default: microseconds
        + epb(0, 12, b"a") + epb(1, 2500, b"b") + epb(2, 3_000_001, b"c")
    )
    assert [f.ts for f in read_all(path)] == [1001.5, 2.5, pytest.approx(3.000001)]


def test_pcapng_simple_and_obsolete_packet_blocks(tmp_path: Path) -> None:
    path = tmp_path / "spb.pcapng"
    spb = block(3, struct.pack("<I", 10) + b"0123456789")
    cut_spb = block(3, struct.pack("<I", 10) + b"0123456789")  # interface snaplen 4 cuts it
    obsolete = block(2, struct.pack("<HHIIII", 0, 0, 0, 7_000_000, 3, 9) + b"xyz")
    path.write_bytes(shb() + idb(1, option(2, b"eth0")) + spb + obsolete
                     + shb() + idb(1, snaplen=4) + cut_spb)
    frames = read_all(path)
    assert [(f.ts, f.data, f.orig_len, f.iface) for f in frames] == [
        (0.0, b"0123456789", 10, "eth0"),  # no timestamp and none before it
        (7.0, b"xyz", 9, "eth0"),
        (7.0, b"0123", 10, None),  # takes the previous packet's timestamp
    ]


def test_pcapng_skips_other_blocks_and_resets_interfaces_per_section(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pcapng"
    nrb = block(4, struct.pack("<HH", 1, 8) + bytes([10, 0, 0, 1]) + b"abc\0" + b"\0" * 4)
    isb = block(5, b"\0" * 12)
    custom = block(0x40000BAD, b"\0\0\0\x20hello")
    section1 = shb() + idb(1, option(2, b"eth0")) + nrb + epb(0, 1, b"a") + isb + custom
    section2 = (shb(">") + idb(101, option(2, b"tun0", ">"), ">") + idb(1, b"", ">")
                + epb(0, 2, b"b", ">") + block(0x12345678, b"unknown", ">") + epb(1, 3, b"c", ">"))
    path.write_bytes(section1 + section2)
    frames = read_all(path)
    assert [(f.index, f.data, f.linktype, f.iface) for f in frames] == [
        (0, b"a", 1, "eth0"), (1, b"b", 101, "tun0"), (2, b"c", 1, None),
    ]


def test_pcapng_packet_on_undescribed_interface_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "noif.pcapng"
    path.write_bytes(shb() + idb(1) + epb(0, 1, b"ok") + epb(1, 2, b"bad"))
    frames, error = read_until_error(path)
    assert [f.data for f in frames] == [b"ok"]
    assert isinstance(error, CaptureError) and not isinstance(error, CaptureTruncated)
    assert "interface 1" in str(error) and "packet #2" in str(error)


def test_pcapng_trailing_length_mismatch_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "trail.pcapng"
    bad = bytearray(epb(0, 1, b"x"))
    bad[-4:] = struct.pack("<I", 99)
    start = len(shb() + idb(1) + epb(0, 0, b"ok"))
    path.write_bytes(shb() + idb(1) + epb(0, 0, b"ok") + bytes(bad))
    frames, error = read_until_error(path)
    assert [f.data for f in frames] == [b"ok"]
    assert error is not None and f"at byte {start}" in str(error)


# --- Damaged files ---------------------------------------------------------------------


def test_truncated_pcap_message_names_file_offset_and_packet(tmp_path: Path) -> None:
    path = tmp_path / "trace.pcap"
    write_pcap(path, [(0.0, b"\0" * 100), (1.0, b"\1" * 74)])
    path.write_bytes(path.read_bytes()[:24 + 116 + 16 + 20])
    frames, error = read_until_error(path)
    assert len(frames) == 1
    assert isinstance(error, CaptureTruncated)
    assert str(error) == (f"{path}: truncated packet record at byte 140 (packet #2): "
                          "header says 74 bytes, 20 present")


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_every_cut_point_yields_the_complete_frames_then_truncated(tmp_path: Path,
                                                                     fmt: str) -> None:
    full = tmp_path / f"full.{fmt}"
    frames = sample_frames(3)
    if fmt == "pcap":
        write_pcap(full, frames)
        header, overhead = 24, 16
    else:
        write_pcapng(full, [(ts, d, 0) for ts, d in frames], [(1, "eth0")])
        header = len(shb()) + len(idb(1, option(2, b"eth0") + b"\0" * 4))
        overhead = 32
    content = full.read_bytes()
    ends = [header]
    for _, data in frames:
        ends.append(ends[-1] + overhead + len(data) + (-len(data) & 3 if fmt == "pcapng" else 0))
    assert ends[-1] == len(content)
    cut = tmp_path / f"cut.{fmt}"
    for size in range(4, len(content)):
        cut.write_bytes(content[:size])
        got, error = read_until_error(cut)
        complete = sum(1 for end in ends[1:] if end <= size)
        assert [f.data for f in got] == [d for _, d in frames[:complete]], size
        if size in ends or (fmt == "pcapng" and size == len(shb())):  # block boundaries
            assert error is None, size
        else:
            assert isinstance(error, CaptureTruncated), size
            assert str(cut) in str(error)


def test_truncated_gzip_yields_what_was_decompressed_then_truncated(tmp_path: Path) -> None:
    frames = [(float(i), bytes([i]) * 500) for i in range(200)]
    whole = tmp_path / "whole.pcap.gz"
    write_pcap(whole, frames, compress=True)
    cut = tmp_path / "cut.pcap.gz"
    packed = whole.read_bytes()
    for size, at_least in ((len(packed) - 8, 200), (len(packed) // 2, 1), (30, 0)):
        cut.write_bytes(packed[:size])
        got, error = read_until_error(cut)
        assert len(got) >= at_least, size
        assert [f.data for f in got] == [d for _, d in frames[:len(got)]]
        assert isinstance(error, CaptureTruncated), size
        assert "gzip stream ends early" in str(error)


@pytest.mark.parametrize(("flip", "what"), [(-6, "CRC check failed"), (-2, "length check failed")])
def test_damaged_gzip_trailer_delivers_every_packet_then_names_the_offset(
        tmp_path: Path, flip: int, what: str) -> None:
    frames = [(float(i), bytes([i]) * 500) for i in range(200)]
    plain = tmp_path / "plain.pcap"
    write_pcap(plain, frames)
    path = tmp_path / "crc.pcap.gz"
    packed = bytearray(gzip.compress(plain.read_bytes(), mtime=0))
    packed[flip] ^= 0x55
    path.write_bytes(bytes(packed))
    assert subprocess.run(["gzip", "-dc"], input=bytes(packed), capture_output=True).stdout == (
        plain.read_bytes())  # gzip(1) recovers every byte too (and complains)
    got, error = read_until_error(path)
    assert [f.data for f in got] == [d for _, d in frames]
    assert type(error) is CaptureError
    trailer = len(packed) - 8 + (4 if what.startswith("length") else 0)
    assert str(error).startswith(
        f"{path}: file ends at byte {plain.stat().st_size} (packet #201); "
        f"corrupt gzip data at byte {trailer} of the compressed file: {what} (the trailer says ")


def test_corrupt_deflate_data_delivers_what_decompressed_then_one_error(tmp_path: Path) -> None:
    frames = [(float(i), bytes([i % 256, i // 256]) * 150) for i in range(400)]
    plain = tmp_path / "plain.pcap"
    write_pcap(plain, frames)
    packed = bytearray(gzip.compress(plain.read_bytes(), compresslevel=1, mtime=0))
    middle = len(packed) // 2
    packed[middle:middle + 16] = b"\xff" * 16
    path = tmp_path / "bad.pcap.gz"
    path.write_bytes(bytes(packed))
    got, error = read_until_error(path)
    # Deflate data carries no check of its own: damage may decode into wrong
    # bytes for a while before it fails (the CRC would catch it at the end).
    assert 0 < len(got) < 400 and got[0].data == frames[0][1]
    assert isinstance(error, CaptureError) and str(error).startswith(f"{path}: ")
    assert re.search(r"\(packet #\d+\)", str(error))
    # Either the decompressor stops or the wrong bytes make a corrupt record.
    assert re.search(r"corrupt (gzip data|packet record) at byte \d+", str(error))


def test_iterating_a_closed_capture_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    write_pcap(path, sample_frames(2))
    with open_capture(path) as reader:
        assert next(iter(reader)).index == 0
    with pytest.raises(ValueError, match="closed"):
        next(iter(reader))


def test_unknown_magic_and_empty_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_bytes(b"hello world")
    with pytest.raises(CaptureError, match=r"notes\.txt: not a pcap, pcapng or gzip file "
                                           r"\(starts with 68 65 6c 6c 6f 20 77 6f\)"):
        open_capture(text)
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    with pytest.raises(CaptureError, match="empty file"):
        open_capture(empty)
    with pytest.raises(CaptureError, match="cannot open"):
        open_capture(tmp_path / "missing.pcap")


def test_implausible_record_length_is_corruption_not_truncation(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.pcap"
    write_pcap(path, [(0.0, b"abc")])
    path.write_bytes(path.read_bytes() + struct.pack("<IIII", 0, 0, 0x7FFFFFFF, 60))
    frames, error = read_until_error(path)
    assert [f.data for f in frames] == [b"abc"]
    assert type(error) is CaptureError and "packet #2" in str(error)


def test_corrupt_gzip_is_a_capture_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(b"\xd4\xc3\xb2\xa1" + b"\0" * 40)[:12] + b"\xff" * 40)
    with pytest.raises(CaptureError):
        read_all(path)


@settings(max_examples=300, deadline=None)
@given(prefix=st.sampled_from([b"\xd4\xc3\xb2\xa1\x02\0\x04\0", b"\x0a\x0d\x0d\x0a",
                               shb(), shb(">") + idb(1, order=">"), shb() + idb(1)]),
       tail=st.binary(max_size=300))
def test_any_bytes_either_read_or_raise_capture_error(tmp_path_factory: pytest.TempPathFactory,
                                                      prefix: bytes, tail: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "f"
    path.write_bytes(prefix + tail)
    with contextlib.suppress(CaptureError):
        read_all(path)
