"""Measure replay speed and memory per tracked connection.

Runs the whole pipeline (read → decode → defrag → conntrack → hooks) over the
benchmark capture, twice: once for speed (packets per second, wall clock,
no instrumentation), once under tracemalloc for the bytes the conntrack table
holds per entry. Also reports each stage's share with a separate decode-only
pass, so a change to the hot path can be judged.

With --profile N, instead profiles the replay of the first N packets
(cProfile, sorted by own time) to show where the hot path spends.

Usage: python bench/run.py [CAPTURE] [--repeat N] [--skip-memory] [--profile N]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import resource
import time
import tracemalloc
from pathlib import Path

from statewall.engine import Firewall
from statewall.replay import read_packets


def time_decode(path: Path) -> tuple[int, float]:
    """Reading and decoding alone, through the same generator the replay uses."""
    start = time.perf_counter()
    count = 0
    for _pkt in read_packets(path):
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


def profile(path: Path, limit: int, top: int = 30) -> None:
    """cProfile over the replay of the first `limit` packets (decoding included)."""
    firewall = Firewall()
    profiler = cProfile.Profile()
    profiler.enable()
    for pkt in read_packets(path, limit):
        firewall.process(pkt)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture", type=Path, nargs="?",
                        default=Path(__file__).parent / "out" / "bench.pcap")
    parser.add_argument("--repeat", type=int, default=1, help="best of N timings")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--profile", type=int, metavar="N", help="profile the first N packets")
    args = parser.parse_args()
    if args.profile:
        profile(args.capture, args.profile)
        return
    # Best of N: the run least disturbed by whatever else the machine is doing.
    count, seconds = min((time_decode(args.capture) for _ in range(max(args.repeat, 1))),
                         key=lambda result: result[1])
    print(f"read+decode:  {count} packets in {seconds:.2f} s = {count / seconds:,.0f} packets/s")
    count, seconds, entries = min((time_replay(args.capture) for _ in range(max(args.repeat, 1))),
                                  key=lambda result: result[1])
    print(f"full replay:  {count} packets in {seconds:.2f} s = {count / seconds:,.0f} packets/s "
          f"({entries} entries at the end)")
    print(f"max RSS:      {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if not args.skip_memory:
        held, entries = table_bytes(args.capture)
        print(f"memory held:  {held / 2**20:.1f} MiB for {entries} entries = "
              f"{held / max(entries, 1):.0f} bytes per tracked connection")


if __name__ == "__main__":
    main()
