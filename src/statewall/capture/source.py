"""Opening a capture file: format detection, gzip, and the frame stream contract.

Every packet source (capture files here; live sources elsewhere) yields `Frame`
values: timestamp, link-layer bytes, link type and interface. Decoding starts
from there.

The reader itself is in the Rust core (`statewall._core.CaptureFrames`, from
core/src/capture/): pcap and pcapng, plain or gzip-compressed, read in
`CHUNK`-sized pieces and never loaded whole. It builds one `Frame` per record
with no Python code in between, and on damage delivers every intact frame
first, then raises one `CaptureError` (or `CaptureTruncated`) naming the
file, the byte offset and the packet number. A gzip stream that breaks off
or goes bad (deflate data, CRC or length trailer) still hands over every
byte that decompresses.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import TracebackType
from typing import NamedTuple

from statewall import _core

# Bytes the reader asks of the file (or of the decompressor) per read.
CHUNK: int = _core.CAPTURE_CHUNK


class Frame(NamedTuple):
    """One captured link-layer frame, as the file recorded it.

    `ts` is a float, so nanosecond timestamps keep about a quarter of a
    microsecond of precision at present-day epochs: ample for conntrack
    timeouts, which count whole seconds (jiffies at most).
    """

    index: int  # type: ignore[assignment]  # shadows tuple.index; the name is the contract
    ts: float
    data: bytes
    linktype: int
    iface: str | None
    orig_len: int


class CaptureError(Exception):
    """A capture file that cannot be read further; the message says where and why."""


class CaptureTruncated(CaptureError):
    """The file ends inside a header or a record.

    Raised only once every complete frame before the cut has been yielded, so
    a capture cut short by a crashed tcpdump still replays up to the cut. A
    gzip stream that is damaged rather than cut (bad deflate data, a CRC or
    length trailer that does not match) raises the plain `CaptureError`, also
    after every frame that decompressed.
    """


class CaptureReader:
    """An open capture: a context manager and an iterator of `Frame`.

    `format` is "pcap" or "pcapng"; `compressed` tells whether the file was
    gzip-compressed. Iterating a second time continues where the first left off.
    """

    def __init__(self, frames: _core.CaptureFrames) -> None:
        self.name = frames.name
        self.format = frames.format
        self.compressed = frames.compressed
        self._frames = frames

    def __iter__(self) -> Iterator[Frame]:
        return self._frames

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._frames.close()


def open_capture(path: str | os.PathLike[str]) -> CaptureReader:
    """Open a pcap or pcapng file, gzip-compressed or not, judged by its magic bytes."""
    return CaptureReader(_core.CaptureFrames(os.fspath(path)))
