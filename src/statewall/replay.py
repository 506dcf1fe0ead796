"""Captures in, verdicts out: the library API behind `statewall replay` and `table`.

A capture is streamed frame by frame (never loaded whole), each frame is
decoded into a `Packet` and fed to a `Firewall`. A truncated capture still
yields every complete packet before its error is raised.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from statewall.capture import open_capture
from statewall.decode import decode_frame
from statewall.engine import Firewall
from statewall.packet import Packet
from statewall.verdict import PacketVerdict


def read_packets(path: str | os.PathLike[str], limit: int | None = None) -> Iterator[Packet]:
    """Decode a capture lazily; the capture's errors propagate after the good packets."""
    with open_capture(path) as frames:
        for index, ts, data, linktype, iface, _orig_len in frames:
            if limit is not None and index >= limit:
                return
            yield decode_frame(index, ts, data, linktype, iface)


def replay_capture(
    path: str | os.PathLike[str], firewall: Firewall, limit: int | None = None
) -> Iterator[PacketVerdict]:
    """Every packet's verdict, in capture order."""
    for pkt in read_packets(path, limit):
        yield firewall.process(pkt)


@dataclass
class Summary:
    """Totals printed after a replay: states, verdicts, connections, INVALID reasons."""

    packets: int = 0
    states: Counter[str] = field(default_factory=Counter)
    verdicts: Counter[str] = field(default_factory=Counter)
    invalid_reasons: Counter[str] = field(default_factory=Counter)
    connections: set[int] = field(default_factory=set)

    def add(self, verdict: PacketVerdict) -> None:
        self.packets += 1
        self.states[verdict.ctstate or "-"] += 1
        self.verdicts[verdict.verdict] += 1
        if verdict.conn_id is not None:
            self.connections.add(verdict.conn_id)
        if verdict.ctstate == "INVALID":
            self.invalid_reasons[verdict.reason.split("; ")[0]] += 1

    def lines(self) -> list[str]:
        def counts(counter: Counter[str]) -> str:
            return ", ".join(f"{name} {n}" for name, n in counter.most_common())

        out = [
            f"{self.packets} packets; {len(self.connections)} connections seen",
            f"states: {counts(self.states)}",
            f"verdicts: {counts(self.verdicts)}",
        ]
        if self.invalid_reasons:
            out.append("INVALID reasons:")
            out.extend(f"  {n:6d}  {reason}" for reason, n in self.invalid_reasons.most_common())
        return out
