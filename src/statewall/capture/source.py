"""Opening a capture file: format detection, gzip, and the frame stream contract.

Every packet source (capture files here; live sources elsewhere) yields `Frame`
values: timestamp, link-layer bytes, link type and interface. Decoding starts
from there.

Why hand-written readers rather than a library: dpkt and scapy build several
Python objects per record and run at a few hundred thousand records per second
at best, and dpkt hides damage (a short record silently ends the iteration).
Statewall needs the opposite on both counts: a loop that allocates one tuple and
one `bytes` per frame, and an error that names the file, the byte offset and
the packet number while every intact frame before the damage is still
delivered.

Files are read in large chunks (`CHUNK` bytes) and parsed in place with
precompiled `struct.Struct` unpackers; a capture is never loaded whole.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from types import TracebackType
from typing import BinaryIO, NamedTuple

CHUNK = 1 << 20

GZIP_MAGIC = b"\x1f\x8b"


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
    a capture cut short by a crashed tcpdump still replays up to the cut.
    """


class ByteStream:
    """Sequential chunked reads from a plain or gzip-compressed file.

    Reads use at most one underlying read per call (`read1` for gzip), so a
    compressed stream that breaks off still hands over every byte decompressed
    before the break; the break itself is remembered in `broken` and reported
    by the format reader together with the record it cut.
    """

    def __init__(self, name: str, raw: BinaryIO) -> None:
        self.name = name
        self.raw = raw
        self.gzip: gzip.GzipFile | None = None
        self.broken: str | None = None

    def start_gzip(self, head: bytes) -> None:
        """Switch to decompressing; `head` holds the bytes already read from the file."""
        self.gzip = gzip.GzipFile(fileobj=_Prefixed(head, self.raw), mode="rb")

    def read(self, size: int = CHUNK) -> bytes:
        try:
            if self.gzip is None:
                return self.raw.read(size)
            if self.broken is not None:
                return b""
            return self.gzip.read1(size)
        except EOFError:
            self.broken = "the gzip stream ends early"
            return b""
        except (gzip.BadGzipFile, zlib.error) as exc:
            raise CaptureError(f"{self.name}: corrupt gzip data: {exc}") from None
        except OSError as exc:
            raise CaptureError(f"{self.name}: read error: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self.gzip is not None:
            self.gzip.close()
        self.raw.close()


class _Prefixed:
    """A file object that first returns bytes already consumed by format sniffing."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self._head = head
        self._raw = raw

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0 or size >= len(self._head):
                head, self._head = self._head, b""
                return head
            head, self._head = self._head[:size], self._head[size:]
            return head
        return self._raw.read(size)

    def seek(self, offset: int, /) -> int:
        raise OSError("capture streams are read front to back")


def truncated(stream: ByteStream, message: str) -> CaptureTruncated:
    """Build the error for a file that stops mid-record (noting a broken gzip stream)."""
    if stream.broken is not None:
        message += f"; {stream.broken}"
    return CaptureTruncated(f"{stream.name}: {message}")


def refill(stream: ByteStream, buf: bytes, pos: int, need: int) -> bytes:
    """Keep the unread tail of `buf` and read on until `need` bytes are there (or the end)."""
    parts = [buf[pos:]]
    have = len(parts[0])
    while have < need:
        chunk = stream.read(max(CHUNK, need - have))
        if not chunk:
            break
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts)


class CaptureReader:
    """An open capture: a context manager and an iterator of `Frame`.

    `format` is "pcap" or "pcapng"; `compressed` tells whether the file was
    gzip-compressed. Iterating a second time continues where the first left off.
    """

    def __init__(self, stream: ByteStream, fmt: str, frames: Iterator[Frame]) -> None:
        self.name = stream.name
        self.format = fmt
        self.compressed = stream.gzip is not None
        self._stream = stream
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
        self._stream.close()


def open_capture(path: str | os.PathLike[str]) -> CaptureReader:
    """Open a pcap or pcapng file, gzip-compressed or not, judged by its magic bytes."""
    from statewall.capture import pcap, pcapng

    name = os.fspath(path)
    try:
        raw: BinaryIO = open(name, "rb", buffering=0)  # noqa: SIM115 - owned by the reader
    except OSError as exc:
        raise CaptureError(f"{name}: cannot open: {exc.strerror}") from None
    stream = ByteStream(name, raw)
    try:
        head = refill(stream, b"", 0, CHUNK)
        if head[:2] == GZIP_MAGIC:
            stream.start_gzip(head)
            head = refill(stream, b"", 0, CHUNK)
            if len(head) < 4 and stream.broken is not None:
                raise truncated(stream, f"only {len(head)} bytes decompress")
        magic = head[:4]
        if magic in pcap.MAGICS:
            return CaptureReader(stream, "pcap", pcap.read_frames(stream, head))
        if magic == pcapng.SHB_MAGIC:
            return CaptureReader(stream, "pcapng", pcapng.read_frames(stream, head))
        raise CaptureError(f"{name}: {_describe_unknown(head)}")
    except BaseException:
        stream.close()
        raise


def _describe_unknown(head: bytes) -> str:
    if not head:
        return "empty file, not a capture"
    if head[:4] in (b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34"):
        return "modified (Kuznetsov) pcap format is not supported; convert it with editcap"
    return f"not a pcap, pcapng or gzip file (starts with {head[:8].hex(' ')})"
