"""Captures in, decoded packets out, for the library's per-packet path.

A capture is streamed frame by frame (never loaded whole) and each frame is
decoded into a `Packet`, ready for `Firewall.process`. A truncated capture
still yields every complete packet before its error is raised. (Whole
replays go through `Firewall.replay_file` and `replay_batches`, which read
the capture in the core.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from statewall._core import decode_frame
from statewall.capture import open_capture
from statewall.packet import Packet


def read_packets(path: str | os.PathLike[str], limit: int | None = None) -> Iterator[Packet]:
    """Decode a capture lazily; the capture's errors propagate after the good packets."""
    with open_capture(path) as frames:
        for index, ts, data, linktype, iface, _orig_len in frames:
            if limit is not None and index >= limit:
                return
            yield decode_frame(index, ts, data, linktype, iface)
