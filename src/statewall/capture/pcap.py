"""The classic libpcap file format (pcap-savefile(5)).

A 24-byte file header (magic, version, snaplen, link type) followed by records
of a 16-byte header (seconds, microseconds or nanoseconds, captured length,
original length) and the captured bytes. The magic number tells both the byte
order and the timestamp resolution: a1b2c3d4 for microseconds, a1b23c4d for
nanoseconds.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from statewall.capture.source import ByteStream, CaptureError, Frame, refill, truncated

MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D

# (first four bytes, big endian, seconds per fractional unit)
_FORMATS: dict[bytes, tuple[bool, float]] = {
    struct.pack("<I", MAGIC_USEC): (False, 1e-6),
    struct.pack(">I", MAGIC_USEC): (True, 1e-6),
    struct.pack("<I", MAGIC_NSEC): (False, 1e-9),
    struct.pack(">I", MAGIC_NSEC): (True, 1e-9),
}
MAGICS = frozenset(_FORMATS)

FILE_HEADER_LEN = 24
RECORD_HEADER_LEN = 16
_FILE_HEADER = {False: struct.Struct("<IHHiIII"), True: struct.Struct(">IHHiIII")}
_RECORD_HEADER = {False: struct.Struct("<IIII"), True: struct.Struct(">IIII")}

# libpcap refuses records larger than its per-link-type maximum (256 KiB for
# most, 128 MiB at the very most); beyond that a length field is far likelier
# corrupt than real.
MAX_RECORD = 1 << 18
MAX_SNAPLEN = 1 << 27
# The link-type field's upper bits carry FCS information (LT_FCS_* in libpcap).
_LINKTYPE_MASK = 0x03FFFFFF


def read_frames(stream: ByteStream, head: bytes) -> Iterator[Frame]:
    """Yield every record of the file; `head` is what was read while sniffing the format."""
    big, scale = _FORMATS[head[:4]]
    buf = head
    if len(buf) < FILE_HEADER_LEN:
        buf = refill(stream, buf, 0, FILE_HEADER_LEN)
        if len(buf) < FILE_HEADER_LEN:
            raise truncated(
                stream, f"truncated pcap file header: {len(buf)} of {FILE_HEADER_LEN} bytes"
            )
    _, major, minor, _, _, snaplen, network = _FILE_HEADER[big].unpack_from(buf, 0)
    if major != 2:
        raise CaptureError(f"{stream.name}: unsupported pcap version {major}.{minor}")
    linktype = network & _LINKTYPE_MASK
    limit = max(min(snaplen, MAX_SNAPLEN), MAX_RECORD)
    unpack = _RECORD_HEADER[big].unpack_from
    base = 0  # file offset of buf[0]
    pos = FILE_HEADER_LEN
    index = 0
    new = tuple.__new__  # a third of the cost of Frame(...), which goes through Python code
    while True:
        if len(buf) - pos < RECORD_HEADER_LEN:
            base += pos
            buf = refill(stream, buf, pos, RECORD_HEADER_LEN)
            pos = 0
            if not buf:
                if stream.broken is not None:
                    raise truncated(stream, f"file ends at byte {base} (packet #{index + 1})")
                return
            if len(buf) < RECORD_HEADER_LEN:
                raise truncated(
                    stream,
                    f"truncated record header at byte {base} (packet #{index + 1}): "
                    f"{len(buf)} of {RECORD_HEADER_LEN} bytes present",
                )
        sec, frac, caplen, orig_len = unpack(buf, pos)
        end = pos + RECORD_HEADER_LEN + caplen
        if end > len(buf):
            if caplen > limit:
                raise CaptureError(
                    f"{stream.name}: corrupt packet record at byte {base + pos} "
                    f"(packet #{index + 1}): captured length {caplen} exceeds the "
                    f"maximum of {limit}"
                )
            base += pos
            buf = refill(stream, buf, pos, RECORD_HEADER_LEN + caplen)
            pos = 0
            end = RECORD_HEADER_LEN + caplen
            if end > len(buf):
                raise truncated(
                    stream,
                    f"truncated packet record at byte {base} (packet #{index + 1}): header "
                    f"says {caplen} bytes, {len(buf) - RECORD_HEADER_LEN} present",
                )
        yield new(Frame, (index, sec + frac * scale, buf[pos + RECORD_HEADER_LEN:end], linktype,
                    None, orig_len))
        index += 1
        pos = end

