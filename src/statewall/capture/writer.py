"""Writing pcap and pcapng files: test fixtures, demo output and kernel-oracle input.

The files are what libpcap itself writes, so tcpdump, tshark and the kernel
replay tools read them; gzip output has a zero mtime so that the same frames
always give the same bytes.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import BinaryIO, Protocol

from statewall.capture.pcap import MAGIC_NSEC, MAGIC_USEC
from statewall.capture.pcapng import (
    BOM_BIG,
    BOM_LITTLE,
    BT_EPB,
    BT_IDB,
    BT_SHB,
    IF_NAME,
    IF_TSRESOL,
)

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276
DEFAULT_SNAPLEN = 262144

Destination = str | os.PathLike[str] | BinaryIO


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


def write_pcap(
    dest: Destination,
    frames: Iterable[tuple[float, bytes]],
    linktype: int = LINKTYPE_ETHERNET,
    nanosecond: bool = False,
    big_endian: bool = False,
    *,
    snaplen: int = DEFAULT_SNAPLEN,
    compress: bool = False,
) -> int:
    """Write `(timestamp, frame)` pairs as a classic pcap file; return the frame count.

    Frames longer than `snaplen` are cut to it, with the full length kept as
    the original length, as a capturing tool would.
    """
    order = ">" if big_endian else "<"
    units = 1_000_000_000 if nanosecond else 1_000_000
    record = struct.Struct(order + "IIII")
    count = 0
    with _opened(dest, compress) as out:
        magic = MAGIC_NSEC if nanosecond else MAGIC_USEC
        out.write(struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        for ts, data in frames:
            sec, frac = _split_time(ts, units)
            caplen = min(len(data), snaplen)
            out.write(record.pack(sec, frac, caplen, len(data)))
            out.write(data[:caplen])
            count += 1
    return count


def write_pcapng(
    dest: Destination,
    frames: Iterable[tuple[float, bytes, int]],
    interfaces: Sequence[tuple[int, str]],
    *,
    nanosecond: bool = False,
    big_endian: bool = False,
    compress: bool = False,
) -> int:
    """Write `(timestamp, frame, interface index)` triples as one pcapng section.

    `interfaces` lists `(linktype, name)` in index order; each becomes an
    Interface Description Block naming the interface. Returns the frame count.
    """
    order = ">" if big_endian else "<"
    units = 1_000_000_000 if nanosecond else 1_000_000
    count = 0
    with _opened(dest, compress) as out:
        bom = BOM_BIG if big_endian else BOM_LITTLE
        out.write(_block(order, BT_SHB, bom + struct.pack(order + "HHq", 1, 0, -1)))
        for linktype, name in interfaces:
            out.write(_block(order, BT_IDB, _idb_body(order, linktype, name, nanosecond)))
        for ts, data, ifid in frames:
            if not 0 <= ifid < len(interfaces):
                raise ValueError(f"frame {count} names interface {ifid}, "
                                 f"but {len(interfaces)} are described")
            ticks = _ticks(ts, units)
            head = struct.pack(order + "IIIII", ifid, ticks >> 32, ticks & 0xFFFFFFFF,
                               len(data), len(data))
            out.write(_block(order, BT_EPB, head + data))
            count += 1
    return count


def _idb_body(order: str, linktype: int, name: str, nanosecond: bool) -> bytes:
    body = struct.pack(order + "HHI", linktype, 0, 0)
    body += _option(order, IF_NAME, name.encode())
    if nanosecond:
        body += _option(order, IF_TSRESOL, b"\x09")
    return body + struct.pack(order + "HH", 0, 0)


def _option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + _pad4(value)


def _block(order: str, btype: int, body: bytes) -> bytes:
    body = _pad4(body)
    length = len(body) + 12
    return struct.pack(order + "II", btype, length) + body + struct.pack(order + "I", length)


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) & 3)


def _split_time(ts: float, units: int) -> tuple[int, int]:
    """Whole seconds and sub-second units, rounding without ever producing a full second."""
    ticks = _ticks(ts, units)
    return ticks // units, ticks % units


def _ticks(ts: float, units: int) -> int:
    if ts < 0 or not math.isfinite(ts):
        raise ValueError(f"timestamp {ts} cannot be stored in a capture file")
    sec = math.floor(ts)
    return sec * units + round((ts - sec) * units)


@contextmanager
def _opened(dest: Destination, compress: bool) -> Iterator[_Sink]:
    """Yield a binary sink; files opened here are closed here, callers' files only flushed."""
    if isinstance(dest, str | os.PathLike):
        with open(dest, "wb") as raw:
            if compress:
                with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
                    yield packed
            else:
                yield raw
    elif compress:
        with gzip.GzipFile(fileobj=dest, mode="wb", mtime=0) as packed:
            yield packed
    else:
        yield dest
        dest.flush()
