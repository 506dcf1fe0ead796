"""Measure replay speed and memory per tracked connection.

Runs the whole pipeline (read → decode → defrag → conntrack → hooks) over the
benchmark capture, twice: once for speed (packets per second, wall clock,
no instrumentation), once under tracemalloc for the bytes the conntrack table
holds per entry. Also reports each stage's share with a separate decode-only
pass, so a change to the hot path can be judged.

Usage: python bench/run.py [CAPTURE] [--repeat N]
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
import tracemalloc
from pathlib import Path

from statewall.capture import open_capture
from statewall.decode import decode_frame
from statewall.engine import Firewall
from statewall.replay import read_packets


def time_decode(path: Path) -> tuple[int, float]:
    start = time.perf_counter()
    count = 0
    with open_capture(path) as frames:
        for frame in frames:
            decode_frame(frame.index, frame.ts, frame.data, frame.linktype, frame.iface)
            count += 1
    return count, time.perf_counter() - start


def time_replay(path: Path) -> tuple[int, float, int]:
    firewall = Firewall()
    start = time.perf_counter()
    count = 0
    for pkt in read_packets(path):
        firewall.process(pkt)
        count += 1
    return count, time.perf_counter() - start, firewall.table.count


def table_bytes(path: Path) -> tuple[int, int]:
    """Bytes allocated and still held after the replay, and the table size."""
    gc.collect()
    tracemalloc.start()
    firewall = Firewall()
    for pkt in read_packets(path):
        firewall.process(pkt)
    gc.collect()
    current, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return current, firewall.table.count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture", type=Path, nargs="?",
                        default=Path(__file__).parent / "out" / "bench.pcap")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    count, seconds = time_decode(args.capture)
    print(f"read+decode:  {count} packets in {seconds:.2f} s = {count / seconds:,.0f} packets/s")
    best = None
    for _ in range(args.repeat):
        count, seconds, entries = time_replay(args.capture)
        best = seconds if best is None else min(best, seconds)
    assert best is not None
    print(f"full replay:  {count} packets in {best:.2f} s = {count / best:,.0f} packets/s "
          f"({entries} entries at the end)")
    print(f"max RSS:      {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if not args.skip_memory:
        held, entries = table_bytes(args.capture)
        print(f"memory held:  {held / 2**20:.1f} MiB for {entries} entries = "
              f"{held / max(entries, 1):.0f} bytes per tracked connection")


if __name__ == "__main__":
    main()
