"""Capture files in and out: pcap and pcapng readers that stream, and their writers."""

from statewall.capture.source import (
    CaptureError,
    CaptureReader,
    CaptureTruncated,
    Frame,
    open_capture,
)
from statewall.capture.writer import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    write_pcap,
    write_pcapng,
)

__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_RAW",
    "CaptureError",
    "CaptureReader",
    "CaptureTruncated",
    "Frame",
    "open_capture",
    "write_pcap",
    "write_pcapng",
]
