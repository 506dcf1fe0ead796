"""Measure statewall as users run it: whole processes, from start to exit.

Every figure times a complete `statewall` command (interpreter start, ruleset
load, capture read, replay, output) and reads the operating system's own
accounting of the finished child (wall clock, CPU time, peak resident memory). Each
command runs `--repeat` times after one warm-up; the median is reported.

Figures:
* replay with the 5-rule stateful ruleset (bench/rules/stateful.v4), jsonl to
  a file, and the same with `--summary-only` (no line per packet);
* the same capture through a real host ruleset
  (../shared/rulesets/netnet-ufw-server1.v4, the servers' network `--local`);
* what NAT costs: the stateful ruleset plus a masquerading nat table
  (bench/rules/masquerade.v4) over the same connections as a masquerading
  router sees them (bench/generate.py --nat-reply-to), against the stateful
  ruleset alone over the plain capture, both with the router's interfaces
  (`--iface`), jsonl to a file and `--summary-only`: the extra time per
  packet (both captures hold the same number of packets), wall clock and
  CPU time (user + system, which other load on the machine disturbs less);
  the two commands take turns, so that both meet the same load;
* nftables against iptables: the same stateful ruleset as nftables writes it
  (bench/rules/stateful.nft, what iptables-restore-translate makes of
  stateful.v4), and with the masquerading nat chain (bench/rules/masquerade.nft),
  each paired with its iptables form, jsonl to a file and `--summary-only`;
* the Dask engine (`--engine dask`): how fast the driver's index pass reads,
  decodes and places every packet and notes its record for its partition (the
  pass alone, timed in its process, and a whole process, interpreter start
  included); how fast a worker passes over the other partitions' packets when
  it reads a capture whole (what it does with a compressed capture, which
  cannot be read by offset); and against the single process: the same replay,
  jsonl to a file and `--summary-only`, on a local cluster of 1 and of 2
  worker processes started and stopped by the command (so the figure includes
  the cluster's start), after checking that the output is byte for byte the
  single run's;
* memory per tracked connection: the peak RSS of `statewall stats` over a
  SYN flood that leaves one entry per packet (nf_conntrack_max raised above
  the flood), less the peak RSS of the same command over a one-packet
  capture, divided by the entries;
* memory flat in capture length: the same flood once and twice as long at
  the default nf_conntrack_max (the table stays full);
* the report (`statewall report`, the stateful ruleset): the time it takes
  beyond the replay's (`--summary-only`; the two commands take turns), wall
  clock and CPU time, and the time the page takes to open in headless Chromium
  (Selenium, as tests/report_browser.py drives it): from the navigation's start
  to the page's ready mark (set once the page is laid out and painted), median
  of `--repeat` loads after a warm-up; skipped, saying why, without Chromium or
  Selenium;
* the peers, on the same capture in the same run, where installed
  (bench/setup.sh): nfstream's flow meter and tshark's one-line-per-packet
  output.

Usage: python bench/run.py [--repeat N] [--skip-peers] [--skip-memory] [--skip-report]
[--only FIGURE]
(generates the captures with bench/generate.py when they are missing or older
than it).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
SHARED_UFW = HERE.parent.parent / "shared" / "rulesets" / "netnet-ufw-server1.v4"
BENCH_CONNECTIONS = 100_000
GENERATOR = HERE / "generate.py"
# The masquerading router: clients on its LAN (10.0.0.0/8, bench/generate.py),
# servers and the default route behind its WAN interface, which holds WAN.
WAN = "203.0.113.1"
ROUTER = ["--iface", "lan=10.255.255.254/8", "--iface", f"wan={WAN}/24,0.0.0.0/0"]
FLOOD = 1_100_000  # SYNs: more than 1,000,000 entries left in the table
STATEWALL = [sys.executable, "-m", "statewall.cli"]


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float  # user + system time of the command
    max_rss_kib: int
    exit_code: int


def run_once(argv: list[str], stdout_path: Path | None) -> Run:
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if stdout_path:
            out.close()  # type: ignore[union-attr]
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode)


def median_run(argv: list[str], runs: list[Run]) -> Run:
    failed = [r.exit_code for r in runs if r.exit_code != 0]
    if failed:
        raise SystemExit(f"bench: {' '.join(argv)} exited with {failed[0]}")
    return Run(statistics.median(r.wall for r in runs), statistics.median(r.cpu for r in runs),
               int(statistics.median(r.max_rss_kib for r in runs)), 0)


def measure(argv: list[str], repeat: int, stdout_path: Path | None = None) -> Run:
    """Median wall time, CPU time and peak RSS of `repeat` runs after one warm-up."""
    run_once(argv, stdout_path)
    return median_run(argv, [run_once(argv, stdout_path) for _ in range(max(repeat, 1))])


def measure_pair(a: list[str], b: list[str], repeat: int,
                 stdout_path: Path | None = None) -> tuple[Run, Run]:
    """`measure` for two commands taking turns (A, B, A, B, ...), so that both
    meet the same load of the machine and their ratio holds under it."""
    run_once(a, stdout_path)
    run_once(b, stdout_path)
    runs = [(run_once(a, stdout_path), run_once(b, stdout_path)) for _ in range(max(repeat, 1))]
    return median_run(a, [x for x, _ in runs]), median_run(b, [y for _, y in runs])


def ensure_capture(path: Path, *args: str) -> Path:
    """Generate the capture unless one as new as the generator exists (the NAT
    figure compares two captures that must come from the same generator)."""
    if not path.exists() or path.stat().st_mtime < GENERATOR.stat().st_mtime:
        subprocess.run([sys.executable, str(GENERATOR), *args, "--out", str(path)], check=True)
    return path


def count_packets(path: Path) -> int:
    done = subprocess.run([*STATEWALL, "replay", str(path), "--summary-only"], check=True,
                          capture_output=True, text=True)
    return int(done.stdout.split(" packets", 1)[0])


def rate(packets: int, run: Run) -> str:
    return (f"{packets / run.wall:>12,.0f} packets/s  ({run.wall:.2f} s, "
            f"peak RSS {run.max_rss_kib / 1024:.0f} MiB)")


def speed(capture: Path, packets: int, repeat: int) -> None:
    rules = str(HERE / "rules" / "stateful.v4")
    jsonl = measure([*STATEWALL, "replay", str(capture), "--rules", rules, "--format", "jsonl"],
                    repeat, OUT / "replay.jsonl")
    print(f"replay --format jsonl > file, stateful ruleset: {rate(packets, jsonl)}")
    quiet = measure([*STATEWALL, "replay", str(capture), "--rules", rules, "--summary-only"], repeat)
    print(f"replay --summary-only, stateful ruleset:        {rate(packets, quiet)}")
    if SHARED_UFW.exists():
        host = measure([*STATEWALL, "replay", str(capture), "--rules", str(SHARED_UFW),
                        "--local", "198.51.100.0/24", "--format", "jsonl"], repeat, OUT / "ufw.jsonl")
        print(f"replay --format jsonl > file, ufw host ruleset: {rate(packets, host)}")
    else:
        print(f"ufw host ruleset: skipped ({SHARED_UFW} not found)")


def nat_cost(capture: Path, packets: int, repeat: int) -> None:
    """The stateful ruleset with and without MASQUERADE, over the same connections."""
    masqueraded = ensure_capture(OUT / "bench-nat.pcap", "--connections", str(BENCH_CONNECTIONS),
                                 "--nat-reply-to", WAN)
    if count_packets(masqueraded) != packets:
        raise SystemExit(f"bench: {masqueraded} and {capture} differ in length; delete them")
    plain_rules = HERE / "rules" / "stateful.v4"
    nat_rules = OUT / "stateful-masquerade.v4"
    nat_rules.write_text(plain_rules.read_text() + (HERE / "rules" / "masquerade.v4").read_text())
    for name, options, out in (("replay --format jsonl > file", ["--format", "jsonl"], "nat.jsonl"),
                               ("replay --summary-only", ["--summary-only"], None)):
        without, masq = measure_pair(
            [*STATEWALL, "replay", str(capture), "--rules", str(plain_rules), *ROUTER, *options],
            [*STATEWALL, "replay", str(masqueraded), "--rules", str(nat_rules), *ROUTER, *options],
            repeat, OUT / out if out else None)
        label = f"{name}, router, stateful ruleset"
        print(f"{label + ':':<70}{rate(packets, without)}")
        print(f"{label + ' + MASQUERADE:':<70}{rate(packets, masq)}")
        wall, cpu = masq.wall / without.wall, masq.cpu / without.cpu
        print(f"  NAT: {wall:.3f} x the time per packet ({wall - 1:+.1%}); "
              f"CPU time {cpu:.3f} x ({cpu - 1:+.1%})")


def nft_against_iptables(capture: Path, packets: int, repeat: int) -> None:
    """The same rules in both languages, taking turns: the nft form's time over the iptables form's."""
    rules = HERE / "rules"
    nat_nft = OUT / "stateful-masquerade.nft"
    nat_nft.write_text((rules / "stateful.nft").read_text() + (rules / "masquerade.nft").read_text())
    masqueraded = OUT / "bench-nat.pcap"
    pairs = (("stateful", capture, ["--rules", str(rules / "stateful.v4")],
              ["--nft", str(rules / "stateful.nft")]),
             ("stateful + MASQUERADE", masqueraded, ["--rules", str(OUT / "stateful-masquerade.v4")],
              ["--nft", str(nat_nft)]))
    for label, cap, iptables, nft in pairs:
        for name, options, out in (("jsonl > file", ["--format", "jsonl"], "nft.jsonl"),
                                   ("--summary-only", ["--summary-only"], None)):
            old, new = measure_pair(
                [*STATEWALL, "replay", str(cap), *iptables, *ROUTER, *options],
                [*STATEWALL, "replay", str(cap), *nft, *ROUTER, *options],
                repeat, OUT / out if out else None)
            print(f"{f'replay {name}, {label}, iptables:':<70}{rate(packets, old)}")
            print(f"{f'replay {name}, {label}, nftables:':<70}{rate(packets, new)}")
            print(f"  nftables: {new.wall / old.wall:.3f} x the iptables time per packet; "
                  f"CPU time {new.cpu / old.cpu:.3f} x")


def report(capture: Path, repeat: int) -> None:
    """What the report adds to the replay, and how long its page takes to open."""
    rules = str(HERE / "rules" / "stateful.v4")
    page = OUT / "report.html"
    replay, written = measure_pair(
        [*STATEWALL, "replay", str(capture), "--rules", rules, "--summary-only"],
        [*STATEWALL, "report", str(capture), "--rules", rules, "-o", str(page)], repeat)
    print(f"report -o file, stateful ruleset: {written.wall:.2f} s, "
          f"{written.wall - replay.wall:.2f} s beyond replay --summary-only "
          f"({replay.wall:.2f} s); CPU time {written.cpu - replay.cpu:.2f} s beyond; "
          f"page {page.stat().st_size / 2**20:.1f} MiB")
    sys.path.insert(0, str(HERE.parent / "tests"))
    from report_browser import browser_missing

    missing = browser_missing()
    if missing is not None:
        print(f"report opening in headless Chromium: skipped ({missing})")
        return
    marks = open_page(page, repeat)
    print(f"report opening in headless Chromium: {statistics.median(marks) / 1000:.2f} s "
          "to the page's ready mark")


def open_page(page: Path, repeat: int) -> list[float]:
    """Milliseconds from navigation to the page's ready mark, for `repeat` loads
    after a warm-up, each after a blank page (nothing of the last load kept)."""
    from report_browser import open_browser, page_url
    from selenium.webdriver.support.ui import WebDriverWait

    marks = []
    with open_browser() as driver:
        for _ in range(max(repeat, 1) + 1):
            driver.get("about:blank")
            driver.get(page_url(page))
            mark = WebDriverWait(driver, 120, poll_frequency=0.02).until(
                lambda d: d.execute_script("return document.documentElement.dataset.ready"))
            marks.append(float(mark))
    return marks[1:]


# The driver's index pass over the capture, for two partitions, kept in memory:
# prints the seconds the pass itself takes.
INDEX = ("import sys, time; from statewall import _core; start = time.perf_counter(); "
         "_core.index_capture([sys.argv[1]], 2); print(time.perf_counter() - start)")
# What every Dask worker does with another partition's packet when it reads the
# capture whole (a compressed one): read, decode the link and IP headers, find its
# partition, move the clock (a partition of a million holds none of the capture's
# packets, so nothing else runs).
SCAN = ("import sys; from statewall.engine import Firewall; "
        "run = Firewall().replay_file(sys.argv[1], 'summary', partition=(0, 1_000_000)); "
        "[None for _ in run]")


def inner_seconds(argv: list[str], repeat: int) -> float:
    """The median of the seconds a command prints, over `repeat` runs after a warm-up."""
    runs = [subprocess.run(argv, check=True, capture_output=True, text=True).stdout
            for _ in range(max(repeat, 1) + 1)]
    return statistics.median(float(out) for out in runs[1:])


def dask_engine(capture: Path, packets: int, repeat: int) -> None:
    index = [sys.executable, "-c", INDEX, str(capture)]
    alone = inner_seconds(index, repeat)
    print(f"{'index pass (2 partitions, in memory), the pass alone:':<58}"
          f"{packets / alone:>12,.0f} packets/s  ({alone:.2f} s)")
    whole = measure(index, repeat)
    print(f"{'index pass, a whole process:':<58}{rate(packets, whole)}")
    scan = measure([sys.executable, "-c", SCAN, str(capture)], repeat)
    print(f"{'full scan (a process, a partition of none):':<58}{rate(packets, scan)}")
    rules = ["--rules", str(HERE / "rules" / "stateful.v4")]
    for label, args, out in (("--format jsonl > file", ["--format", "jsonl"], "jsonl"),
                             ("--summary-only", ["--summary-only"], "summary")):
        argv = [*STATEWALL, "replay", str(capture), *rules, *args]
        single_out = OUT / f"single.{out}"
        single = measure(argv, repeat, single_out)
        print(f"{f'replay {label}, single process:':<58}{rate(packets, single)}")
        for workers in (1, 2):
            dask_out = OUT / f"dask{workers}.{out}"
            run = measure([*argv, "--engine", "dask", "--workers", str(workers)], repeat, dask_out)
            # Compared in chunks: a child's peak RSS starts from its parent's at fork.
            same = filecmp.cmp(dask_out, single_out, shallow=False)
            print(f"{f'replay {label}, --engine dask --workers {workers}:':<58}"
                  f"{rate(packets, run)}  {single.wall / run.wall:.2f} x the single process's "
                  f"speed; output {'identical' if same else 'DIFFERENT'}")


def memory(repeat: int) -> None:
    flood = ensure_capture(OUT / "flood.pcap", "--flood", str(FLOOD))
    half = ensure_capture(OUT / "flood-half.pcap", "--flood", str(FLOOD // 2))
    tiny = ensure_capture(OUT / "flood-one.pcap", "--flood", "1")
    big = ["--sysctl", f"nf_conntrack_max={2 * FLOOD}", "--sysctl", f"nf_conntrack_buckets={2 * FLOOD}"]
    full = measure([*STATEWALL, "stats", str(flood), *big], repeat)
    base = measure([*STATEWALL, "stats", str(tiny), *big], repeat)
    grown = (full.max_rss_kib - base.max_rss_kib) * 1024
    print(f"memory per tracked connection: {grown / FLOOD:,.0f} bytes "
          f"({grown / 2**20:.0f} MiB RSS growth for {FLOOD:,} entries)")
    once = measure([*STATEWALL, "stats", str(half)], repeat)
    twice = measure([*STATEWALL, "stats", str(flood)], repeat)
    print(f"flood at the default nf_conntrack_max: peak RSS {once.max_rss_kib / 1024:.0f} MiB "
          f"for {FLOOD // 2:,} SYNs, {twice.max_rss_kib / 1024:.0f} MiB for {FLOOD:,}")


def peers(capture: Path, packets: int, repeat: int) -> None:
    try:
        import nfstream  # noqa: F401
    except ImportError:
        print("nfstream: not installed (bench/setup.sh)")
    else:
        script = ("import sys; from nfstream import NFStreamer; "
                  "print(sum(1 for _ in NFStreamer(source=sys.argv[1], statistical_analysis=False, "
                  "n_dissections=0)))")
        flows = measure([sys.executable, "-c", script, str(capture)], repeat)
        print(f"nfstream (flow meter, no dissection):           {rate(packets, flows)}")
    if shutil.which("tshark"):
        shark = measure(["tshark", "-r", str(capture)], repeat, OUT / "tshark.txt")
        print(f"tshark -r (one line per packet) > file:         {rate(packets, shark)}")
    else:
        print("tshark: not installed (bench/setup.sh)")


def compile_package() -> None:
    """Write the package's bytecode, as an installed package has it, so that a
    checkout run with PYTHONDONTWRITEBYTECODE does not recompile its modules in
    every timed process."""
    import statewall

    folder = Path(statewall.__file__).parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(folder)], check=True,
                   stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="counted runs per figure (median)")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-report", action="store_true")
    parser.add_argument("--only", choices=FIGURES, help="measure this figure only")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    compile_package()
    capture = ensure_capture(OUT / "bench.pcap", "--connections", str(BENCH_CONNECTIONS))
    packets = count_packets(capture)
    print(f"capture: {capture} ({packets:,} packets, {BENCH_CONNECTIONS:,} TCP connections); "
          f"median of {args.repeat} runs after a warm-up")
    wanted = {args.only} if args.only else set(FIGURES) - {
        *(["memory"] if args.skip_memory else []), *(["peers"] if args.skip_peers else []),
        *(["report"] if args.skip_report else [])}
    for name in FIGURES:
        if name in wanted:
            if name == "memory":
                memory(args.repeat)
            else:
                FIGURE_RUNS[name](capture, packets, args.repeat)


FIGURES = ("speed", "nat", "nft", "report", "dask", "memory", "peers")
FIGURE_RUNS = {"speed": speed, "nat": nat_cost, "nft": nft_against_iptables,
               "report": lambda capture, _packets, repeat: report(capture, repeat),
               "dask": dask_engine, "peers": peers}


if __name__ == "__main__":
    main()
