"""The pcapng file format (IETF draft-ietf-opsawg-pcapng).

A file is a sequence of blocks: `type, total length, body, total length`. A
Section Header Block (SHB) starts each section and fixes its byte order; the
Interface Description Blocks (IDB) that follow are numbered from 0 within the
section and give each interface its link type, snap length, name and
timestamp resolution. Packets come in Enhanced Packet Blocks (EPB), Simple
Packet Blocks (SPB, interface 0, no timestamp) or the obsolete Packet Block.
Every other block (name resolution, statistics, decryption secrets, custom
and unknown types) is skipped whole, as the format allows.

A Simple Packet Block carries no timestamp: its frame takes the timestamp of
the previous packet in the file (0.0 when it is the first), which keeps the
capture clock monotonic for the timeouts downstream.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from statewall.capture.source import ByteStream, CaptureError, Frame, refill, truncated

SHB_MAGIC = b"\x0a\x0d\x0d\x0a"

BT_SHB = 0x0A0D0D0A
BT_IDB = 0x00000001
BT_PB = 0x00000002  # obsolete Packet Block
BT_SPB = 0x00000003
BT_EPB = 0x00000006

BOM_LITTLE = b"\x4d\x3c\x2b\x1a"
BOM_BIG = b"\x1a\x2b\x3c\x4d"

OPT_ENDOFOPT = 0
IF_NAME = 2
IF_TSRESOL = 9
IF_TSOFFSET = 14

# Larger blocks are taken as corruption rather than allocated (libpcap uses
# the same order of magnitude).
MAX_BLOCK = 1 << 24

# Shortest well-formed block of each other type that carries fixed fields.
_MIN_LEN = {BT_SHB: 28, BT_IDB: 20, BT_SPB: 16}

_BLOCK_HEADER = {False: struct.Struct("<II"), True: struct.Struct(">II")}
_EPB = {False: struct.Struct("<IIIII"), True: struct.Struct(">IIIII")}
_PB = {False: struct.Struct("<HHIIII"), True: struct.Struct(">HHIIII")}
_U32 = {False: struct.Struct("<I"), True: struct.Struct(">I")}
_UNPACKERS = {
    big: (_BLOCK_HEADER[big].unpack_from, _U32[big].unpack_from, _EPB[big].unpack_from,
          _PB[big].unpack_from)
    for big in (False, True)
}
_SHB_VERSION = {False: struct.Struct("<HH"), True: struct.Struct(">HH")}
_IDB = {False: struct.Struct("<HHI"), True: struct.Struct(">HHI")}
_OPT = {False: struct.Struct("<HH"), True: struct.Struct(">HH")}
_I64 = {False: struct.Struct("<q"), True: struct.Struct(">q")}


class Interface(NamedTuple):
    """What an IDB says about the interface its packets were captured on."""

    linktype: int
    name: str | None
    snaplen: int  # 0 means no limit
    units: int  # timestamp units per second
    offset: int  # seconds added to every timestamp (if_tsoffset)


def read_frames(stream: ByteStream, head: bytes) -> Iterator[Frame]:
    """Yield the packets of every section; `head` is what was read while sniffing the format.

    One long loop on purpose: it is the per-packet hot path, and keeping the
    buffer, offsets and byte order in locals avoids attribute lookups per block.
    """
    buf = head
    base = 0  # file offset of buf[0]
    pos = 0
    index = 0
    new = tuple.__new__  # a third of the cost of Frame(...), which goes through Python code
    big = False  # the first block is a section header, which sets it
    header, u32, epb, pb = _UNPACKERS[big]
    ifaces: list[Interface] = []
    last_ts = 0.0
    while True:
        if len(buf) - pos < 12:
            base += pos
            buf = refill(stream, buf, pos, 12)
            pos = 0
            if not buf:
                if stream.broken is not None:
                    raise truncated(stream, f"file ends at byte {base} (packet #{index + 1})")
                return
            if len(buf) < 12:
                raise truncated(
                    stream,
                    f"truncated block header at byte {base} (packet #{index + 1}): "
                    f"{len(buf)} of 12 bytes present",
                )
        btype, blen = header(buf, pos)
        if btype == BT_SHB:
            big = _section_byte_order(stream, buf, pos, base + pos)
            header, u32, epb, pb = _UNPACKERS[big]
            blen = u32(buf, pos + 4)[0]
        if blen < 12 or blen & 3 or blen > MAX_BLOCK:
            raise _bad_length(stream, base + pos, index, blen)
        end = pos + blen
        if end > len(buf):
            base += pos
            buf = refill(stream, buf, pos, blen)
            pos = 0
            end = blen
            if end > len(buf):
                raise truncated(
                    stream,
                    f"truncated block at byte {base} (packet #{index + 1}): block length "
                    f"says {blen} bytes, {len(buf)} present",
                )
        if u32(buf, end - 4)[0] != blen:
            raise CaptureError(
                f"{stream.name}: corrupt block at byte {base + pos} (packet #{index + 1}): "
                f"trailing length does not repeat the block length {blen}"
            )
        if btype in (BT_EPB, BT_PB):
            if blen < 32:
                raise _bad_length(stream, base + pos, index, blen)
            if btype == BT_EPB:
                ifid, ts_high, ts_low, caplen, orig_len = epb(buf, pos + 8)
            else:
                ifid, _, ts_high, ts_low, caplen, orig_len = pb(buf, pos + 8)
            if ifid >= len(ifaces) or caplen > blen - 32:
                raise _bad_packet(stream, base + pos, index, ifid, len(ifaces), caplen)
            linktype, name, _, units, offset = ifaces[ifid]
            last_ts = ((ts_high << 32) | ts_low) / units + offset
            yield new(Frame, (index, last_ts, buf[pos + 28:pos + 28 + caplen], linktype, name,
                              orig_len))
            index += 1
        elif blen < _MIN_LEN.get(btype, 12):
            raise _bad_length(stream, base + pos, index, blen)
        elif btype == BT_SPB:
            if not ifaces:
                raise _bad_packet(stream, base + pos, index, 0, 0, 0)
            linktype, name, snaplen, _, _ = ifaces[0]
            orig_len = u32(buf, pos + 8)[0]
            caplen = min(orig_len, blen - 16, snaplen or orig_len)
            yield new(Frame, (index, last_ts, buf[pos + 12:pos + 12 + caplen], linktype, name,
                              orig_len))
            index += 1
        elif btype == BT_IDB:
            ifaces.append(_interface(stream, buf, pos, end, big, base))
        elif btype == BT_SHB:
            _check_version(stream, buf, pos, big, base)
            ifaces = []
        pos = end


def _section_byte_order(stream: ByteStream, buf: bytes, pos: int, offset: int) -> bool:
    bom = buf[pos + 8:pos + 12]
    if bom == BOM_LITTLE:
        return False
    if bom == BOM_BIG:
        return True
    raise CaptureError(
        f"{stream.name}: corrupt section header at byte {offset}: "
        f"byte-order magic is {bom.hex()}"
    )


def _check_version(stream: ByteStream, buf: bytes, pos: int, big: bool, base: int) -> None:
    major, minor = _SHB_VERSION[big].unpack_from(buf, pos + 12)
    if major != 1:
        raise CaptureError(
            f"{stream.name}: unsupported pcapng version {major}.{minor} "
            f"in the section at byte {base + pos}"
        )


def _interface(
    stream: ByteStream, buf: bytes, pos: int, end: int, big: bool, base: int
) -> Interface:
    """Read an IDB: link type, snap length and the options statewall uses."""
    linktype, _, snaplen = _IDB[big].unpack_from(buf, pos + 8)
    name: str | None = None
    units = 1_000_000
    offset = 0
    for code, value in _options(stream, buf, pos + 16, end - 4, big, base):
        if code == IF_NAME:
            name = value.rstrip(b"\0").decode("utf-8", "replace")
        elif code == IF_TSRESOL and value:
            exponent = value[0] & 0x7F
            units = 2**exponent if value[0] & 0x80 else 10**exponent
        elif code == IF_TSOFFSET and len(value) == 8:
            offset = _I64[big].unpack(value)[0]
    return Interface(linktype, name, snaplen, units, offset)


def _options(
    stream: ByteStream, buf: bytes, pos: int, end: int, big: bool, base: int
) -> Iterator[tuple[int, bytes]]:
    """Walk a block's options (code, length, value padded to 4 bytes) up to opt_endofopt."""
    unpack = _OPT[big].unpack_from
    while pos + 4 <= end:
        code, length = unpack(buf, pos)
        if code == OPT_ENDOFOPT:
            return
        value_end = pos + 4 + length
        if value_end > end:
            raise CaptureError(
                f"{stream.name}: corrupt option {code} at byte {base + pos}: "
                f"length {length} runs past the end of its block"
            )
        yield code, buf[pos + 4:value_end]
        pos = value_end + (-length & 3)


def _bad_packet(
    stream: ByteStream, offset: int, index: int, ifid: int, nifaces: int, caplen: int
) -> CaptureError:
    if ifid >= nifaces:
        what = f"interface {ifid} was not described (the section has {nifaces})"
    else:
        what = f"captured length {caplen} does not fit in the block"
    return CaptureError(f"{stream.name}: corrupt packet block at byte {offset} "
                        f"(packet #{index + 1}): {what}")


def _bad_length(stream: ByteStream, offset: int, index: int, blen: int) -> CaptureError:
    return CaptureError(f"{stream.name}: corrupt block at byte {offset} (packet #{index + 1}): "
                        f"invalid block length {blen}")
