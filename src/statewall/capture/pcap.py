"""The classic libpcap file format (pcap-savefile(5)): the constants the writer uses.

A 24-byte file header (magic, version, snaplen, link type) followed by records
of a 16-byte header (seconds, microseconds or nanoseconds, captured length,
original length) and the captured bytes. The magic number tells both the byte
order and the timestamp resolution: a1b2c3d4 for microseconds, a1b23c4d for
nanoseconds. The reader is in the Rust core (core/src/capture/pcap.rs).
"""

from __future__ import annotations

MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D
