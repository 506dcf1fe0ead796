"""Partitions that read only their own packets, by offset, from the driver's index.

The driver indexes the capture once (`_core.index_capture`); each worker
reads its partition's records at their offsets and sets its clock from the
index. Captures built here cover what the index must carry: several files
of one link merged by timestamp (a connection's packets in both, an ICMP
error in one quoting a connection of the other), pcap in both timestamp
resolutions and byte orders, pcapng with two sections of opposite byte
orders and interfaces of their own link types and timestamp resolutions
(Simple Packet Blocks among them, which borrow the time before them),
timestamps that step back, and captures that break off midway. Every
command's output, exit code and error line must be the single run's, on a
dask.distributed LocalCluster of 2 and of 4 worker processes. Compressed
captures cannot be read by offset: every worker reads them whole, and the
run says so (`PartitionedRun.full_scan`).
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

import statewall
import statewall.dask
from statewall import _core
from statewall import builder as b
from statewall.capture import CaptureError
from statewall.capture.writer import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_RAW, write_pcap
from statewall.cli import main

COMMANDS = (["replay", "--format", "jsonl"], ["replay"], ["replay", "--summary-only"],
            ["table"], ["conns", "--format", "jsonl"])
Frames = list[tuple[float, bytes]]


@pytest.fixture(scope="module", params=(2, 4), ids=lambda n: f"{n}workers")
def cluster(request: pytest.FixtureRequest) -> Iterator[str]:
    with LocalCluster(n_workers=request.param, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=50) as local:
        yield local.scheduler_address


def run(capfd: pytest.CaptureFixture[bytes], argv: list[str]) -> tuple[int, bytes, bytes]:
    code = main(argv)
    out, err = capfd.readouterr()
    return code, out, err


def same_output(capfd: pytest.CaptureFixture[bytes], scheduler: str, captures: list[Path],
                *extra: str) -> list[tuple[int, bytes, bytes]]:
    """Every command on `captures`, single and partitioned: the same exit code,
    output and error line. Returns the single runs'."""
    singles = []
    for command in COMMANDS:
        argv = [command[0], *map(str, captures), *command[1:], *extra]
        single = run(capfd, argv)
        partitioned = run(capfd, [*argv, "--engine", "dask", "--scheduler", scheduler])
        assert partitioned == single, (command, single[2], partitioned[2])
        singles.append(single)
    assert singles[0][1], "nothing written: a vacuous comparison"
    return singles


def sessions(base: float, hosts: range, server: str) -> Frames:
    """TCP sessions and DNS queries from 192.0.2.x to `server`, interleaved in
    time, each query answered by an ICMP error quoting it, every eleventh
    packet stamped a second earlier than the one before it."""
    frames: Frames = []
    for x in hosts:
        client, t, sport = f"192.0.2.{x}", base + x * 0.013, 30000 + x
        query = b.udp(client, server, 40000 + x, 53, payload=b"q" * 12)
        frames += [(t, b.tcp(client, server, sport, 80, "S", 10, 0)),
                   (t + 0.2, b.tcp(server, client, 80, sport, "SA", 90, 11)),
                   (t + 0.4, b.tcp(client, server, sport, 80, "A", 11, 91)),
                   (t + 0.1, query),
                   (t + 0.3, b.icmp_error("203.0.113.7", client, 3, 3, query)),
                   (t + 0.9, b.tcp(client, server, sport, 80, "FA", 11, 91))]
    frames.sort(key=lambda f: f[0])
    return [(ts - 1.0 if i % 11 == 10 else ts, data) for i, (ts, data) in enumerate(frames)]


def test_merged_captures_give_the_single_runs_bytes(
        cluster: str, capfdbinary: pytest.CaptureFixture[bytes], tmp_path: Path) -> None:
    """Two files of one link: microseconds little-endian and nanoseconds
    big-endian, one connection's packets split between them."""
    first = sessions(100.0, range(1, 30), "198.51.100.1")
    second = sessions(100.005, range(30, 60), "198.51.100.2")
    split = b.tcp("192.0.2.1", "198.51.100.1", 30001, 80, "PA", 11, 91, payload=b"GET /")
    second.append((100.5, split))
    a, c = tmp_path / "a.pcap", tmp_path / "b.pcap"
    write_pcap(a, first, linktype=LINKTYPE_RAW)
    write_pcap(c, sorted(second, key=lambda f: f[0]), linktype=LINKTYPE_RAW, nanosecond=True,
               big_endian=True)
    same_output(capfdbinary, cluster, [a, c])


# --- pcapng by hand: sections, interfaces, resolutions --------------------------------------


def _block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) & 3)
    return struct.pack(order + "II", btype, len(body) + 12) + body + struct.pack(
        order + "I", len(body) + 12)


def _option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) & 3)


def _section(order: str) -> bytes:
    bom = b"\x1a\x2b\x3c\x4d" if order == ">" else b"\x4d\x3c\x2b\x1a"
    return _block(order, 0x0A0D0D0A, bom + struct.pack(order + "HHq", 1, 0, -1))


def _interface(order: str, linktype: int, name: str, tsresol: int | None) -> bytes:
    options = _option(order, 2, name.encode())
    if tsresol is not None:
        options += _option(order, 9, bytes([tsresol]))
    return _block(order, 1, struct.pack(order + "HHI", linktype, 0, 0) + options + b"\0" * 4)


def _enhanced(order: str, ifid: int, ticks: int, frame: bytes) -> bytes:
    head = struct.pack(order + "IIIII", ifid, ticks >> 32, ticks & 0xFFFFFFFF, len(frame),
                       len(frame))
    return _block(order, 6, head + frame)


def _simple(order: str, frame: bytes) -> bytes:
    return _block(order, 3, struct.pack(order + "I", len(frame)) + frame)


ETHER = bytes.fromhex("020000000001020000000002") + b"\x08\x00"
SLL = struct.pack("!HHH8sH", 0, 1, 6, bytes(8), 0x0800)


def pcapng_capture(path: Path, cut: int = 0) -> Path:
    """Section one (little-endian): Ethernet in microseconds and raw IP in
    nanoseconds; section two (big-endian): Linux cooked capture in 2^-20
    seconds, with Simple Packet Blocks. `cut`: bytes left off the end."""
    frames = sessions(200.0, range(1, 40), "198.51.100.3")
    half = len(frames) // 2
    out = _section("<") + _interface("<", LINKTYPE_ETHERNET, "eth0", None)
    out += _interface("<", LINKTYPE_RAW, "tun0", 9)
    for i, (ts, data) in enumerate(frames[:half]):
        if i % 2:
            out += _enhanced("<", 1, round(ts * 10**9), data)
        else:
            out += _enhanced("<", 0, round(ts * 10**6), ETHER + data)
    out += _section(">") + _interface(">", LINKTYPE_LINUX_SLL, "any", 0x94)
    for i, (ts, data) in enumerate(frames[half:]):
        if i % 5 == 4:
            out += _simple(">", SLL + data)
        else:
            out += _enhanced(">", 0, round(ts * 2**20), SLL + data)
    path.write_bytes(out[:len(out) - cut])
    return path


def test_pcapng_sections_and_interfaces_give_the_single_runs_bytes(
        cluster: str, capfdbinary: pytest.CaptureFixture[bytes], tmp_path: Path) -> None:
    capture = pcapng_capture(tmp_path / "two-sections.pcapng")
    frames = list(_core.CaptureFrames(str(capture)))
    assert {f.linktype for f in frames} == {LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL}
    assert any(b.ts < a.ts for a, b in zip(frames, frames[1:], strict=False))
    same_output(capfdbinary, cluster, [capture])


def test_captures_that_break_off_give_the_single_runs_bytes_and_error(
        cluster: str, capfdbinary: pytest.CaptureFixture[bytes], tmp_path: Path) -> None:
    """The packets before the break, then the error, as the single run gives them."""
    cut_ng = pcapng_capture(tmp_path / "cut.pcapng", cut=30)
    whole = tmp_path / "whole.pcap"
    write_pcap(whole, sessions(200.002, range(40, 70), "198.51.100.4"), linktype=LINKTYPE_RAW)
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole.read_bytes()[:-7])
    for captures in ([cut_ng], [cut], [whole, cut_ng]):
        singles = same_output(capfdbinary, cluster, captures)
        for code, _, err in singles:
            assert code == 3 and err.startswith(b"statewall: ") and b"truncated" in err


def test_the_table_is_listed_at_the_last_packet_of_all(
        cluster: str, capfdbinary: pytest.CaptureFixture[bytes], tmp_path: Path) -> None:
    """The capture's last packet is one host pair's, long after every other
    pair's: every partition lists its entries at that time, which only the
    index tells it; and earlier in the capture a stamp from far back."""
    frames = sessions(300.0, range(1, 25), "198.51.100.5")
    frames.insert(5, (10.0, b.udp("192.0.2.99", "198.51.100.9", 5000, 53)))
    frames.append((340.0, b.udp("192.0.2.200", "198.51.100.200", 5000, 53)))
    capture = tmp_path / "late.pcap"
    write_pcap(capture, frames, linktype=LINKTYPE_RAW)
    same_output(capfdbinary, cluster, [capture])
    for at in ("5", "30"):
        argv = ["table", str(capture), "--at", at]
        assert run(capfdbinary, [*argv, "--engine", "dask", "--scheduler", cluster]) == run(
            capfdbinary, argv)


def test_the_library_reads_by_index_and_says_when_it_cannot(cluster: str, tmp_path: Path) -> None:
    capture = pcapng_capture(tmp_path / "c.pcapng")
    packed = tmp_path / "c.pcapng.gz"
    packed.write_bytes(gzip.compress(capture.read_bytes()))
    expected = b"".join(statewall.load_firewall().replay_file(str(capture), "jsonl"))
    with Client(cluster) as client:
        indexed = statewall.dask.replay(client, capture, fmt="jsonl")
        whole = statewall.dask.replay(client, packed, fmt="jsonl")
        mixed = statewall.dask.replay(client, [capture, packed], fmt="jsonl")
    assert indexed.output == whole.output == expected
    assert indexed.full_scan is None
    assert whole.full_scan == f"{packed} is compressed"
    assert mixed.full_scan == f"{packed} is compressed"
    merged = b"".join(statewall.load_firewall().replay_file([str(capture), str(packed)], "jsonl"))
    assert mixed.output == merged


# --- the core's index, without a cluster ---------------------------------------------------


def partition_runs(capture: Path, parts: int, index: list[bytes] | list[str]) -> list[bytes]:
    out = []
    for part in range(parts):
        run = statewall.load_firewall().replay_file(str(capture), "summary",
                                                    partition=(part, parts), index=index[part])
        out.append(repr((b"".join(run), run.totals_part(), run.part_results()[:3])).encode())
    return out


def test_an_index_in_files_reads_as_one_in_memory(tmp_path: Path) -> None:
    capture = pcapng_capture(tmp_path / "c.pcapng")
    files = [str(tmp_path / f"part{n}.index") for n in range(3)]
    in_files = _core.index_capture([str(capture)], 3, files=files)
    in_memory = _core.index_capture([str(capture)], 3)
    assert in_files.packets == in_memory.packets == len(list(_core.CaptureFrames(str(capture))))
    assert [Path(f).read_bytes() for f in files] == [in_memory.part(n) for n in range(3)]
    by_bytes = partition_runs(capture, 3, [in_memory.part(n) for n in range(3)])
    assert partition_runs(capture, 3, files) == by_bytes


def test_an_index_of_another_run_or_capture_is_refused(tmp_path: Path) -> None:
    capture = tmp_path / "c.pcap"
    write_pcap(capture, sessions(1.0, range(1, 5), "198.51.100.1"), linktype=LINKTYPE_RAW)
    index = _core.index_capture([str(capture)], 2, limit=10)
    firewall = statewall.load_firewall()
    with pytest.raises(ValueError, match="partition 1 of 2, not 0 of 2"):
        firewall.replay_file(str(capture), "summary", 10, partition=(0, 2), index=index.part(1))
    with pytest.raises(ValueError, match="another limit or until"):
        firewall.replay_file(str(capture), "summary", partition=(1, 2), index=index.part(1))
    with pytest.raises(ValueError, match="not a partition's index"):
        firewall.replay_file(str(capture), "summary", 10, partition=(1, 2), index=b"nonsense")
    with capture.open("ab") as grown:
        grown.write(b"\0" * 16)
    run = firewall.replay_file(str(capture), "summary", 10, partition=(1, 2), index=index.part(1))
    with pytest.raises(CaptureError, match="the file changed since it was indexed"):
        list(run)
