"""The tasks a Dask worker runs: one partition of a replay, in two steps.

`run_part` replays the partition's packets, read by offset where the
partition's index lists them (the core's `partition=` and `index=`; without
an index, the whole capture, processing only the partition's packets), and
keeps the machine and its output in the worker's memory (`_RESIDENT`); it
returns what the driver needs to number the connections as a single run
would (which packet confirmed each of the partition's connections) and the
totals. `render_part`, pinned to the same worker, writes the partition's
share of the output with those numbers. Only options, indexes, numbers and
finished output travel; each worker reads the capture itself from storage
it shares with the driver, and on a local cluster writes its share of the
output to a file the driver reads (large results are several times slower
through the cluster's connections).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from statewall import _core
from statewall.api import MachineOptions, build_firewall
from statewall.capture import CaptureError
from statewall.engine import Firewall

if TYPE_CHECKING:
    from statewall.dask.report_run import ReportShare

# What `run_part` left for `render_part`, by (run id, partition).
_RESIDENT: dict[tuple[str, int], _Resident] = {}
_LOCK = threading.Lock()
# Seconds between progress reports to the driver.
PROGRESS_EVERY = 0.5


@dataclass(frozen=True)
class Job:
    """One command's replay, as every partition runs it. Paths are absolute:
    workers need not share the driver's working directory."""

    run_id: str
    captures: tuple[str, ...]  # several: of one link, merged by timestamp
    options: MachineOptions
    kind: str  # "replay", "table", "conns" or "report"
    fmt: str  # replay: text, jsonl, summary; table: proc, conntrack, json; conns: text, jsonl, tsv
    limit: int | None = None
    until: float | None = None
    filter: str | None = None  # replay, report: the packets shown; table: the entries listed
    explain: bool = False
    color: bool = False
    caps: _core.ReportCaps | None = None  # report: the detail kept (statewall.dask.report_run)


@dataclass(frozen=True)
class PartSummary:
    """What one partition's replay tells the driver."""

    part: int
    address: str  # the worker holding the partition for `render_part`
    confirms: bytes  # u64: the index of the packet that confirmed connection n, at n - 1
    peaks: tuple[int, int, int, int]  # entries, expectations, IPv4 and IPv6 fragment bytes
    strays: int
    totals: _core.TotalsPart
    packets: int
    first_ts: float | None
    now: float
    error: tuple[bool, str] | None  # (truncated, message) of the capture's error


@dataclass
class _Resident:
    firewall: Firewall
    run: _core.ReplayRun
    output: bytes  # the per-packet output, or b"" when it went to a file (`spill`)


def run_part(job: Job, part: int, parts: int, spill: str | None = None,
             index: bytes | str | None = None) -> PartSummary:
    """Replay the partition `part` of `parts` and keep it for `render_part`;
    `spill`: a folder for the per-packet output (`spill_path`), which then
    never needs to fit in memory; `index`: the partition's index, or the path
    of its file (`statewall.dask.index`; None: read the whole capture)."""
    from distributed import get_worker

    worker = get_worker()
    firewall = build_firewall(job.options, conn_log=job.kind in ("conns", "report"))
    replay_fmt = {"replay": job.fmt, "report": "report"}.get(job.kind, "summary")
    select = None
    if job.kind in ("replay", "report") and job.filter is not None:
        from statewall.select import Selection

        select = Selection(job.filter)
    run = firewall.replay_file(list(job.captures), replay_fmt, job.limit, job.until, select=select,
                               explain=job.explain, color=job.color, caps=job.caps,
                               partition=(part, parts), index=index)
    chunks: list[bytes] = []
    # Only a replay writes per-packet output (table and conns render theirs at the end).
    sink = None
    if spill is not None and job.kind == "replay":
        sink = open(spill_path(spill, job, part, "raw"), "wb")  # noqa: SIM115
    error: tuple[bool, str] | None = None
    topic = progress_topic(job.run_id)
    last = time.monotonic()
    try:
        for chunk in run:
            if sink is not None:
                sink.write(chunk)
            else:
                chunks.append(chunk)
            if time.monotonic() - last >= PROGRESS_EVERY:
                last = time.monotonic()
                worker.log_event(topic, {"part": part, "packets": run.packets})
    except CaptureError as err:
        from statewall.capture import CaptureTruncated

        error = (isinstance(err, CaptureTruncated), str(err))
    finally:
        if sink is not None:
            sink.close()
    worker.log_event(topic, {"part": part, "packets": run.packets})
    confirms, peaks, strays, _ = run.part_results()
    with _LOCK:
        _RESIDENT[(job.run_id, part)] = _Resident(firewall, run, b"".join(chunks))
    return PartSummary(part, worker.address, confirms, peaks, strays, run.totals_part(),
                       run.packets, run.first_ts, firewall.now, error)


def progress_topic(run_id: str) -> str:
    return f"statewall-progress-{run_id}"


def render_part(job: Job, part: int, numbers: bytes, when: float | None, origin: float,
                spill: str | None = None
                ) -> tuple[bytes, bytes] | list[tuple[int, dict[str, Any]]] | ReportShare:
    """The partition's share of the output, its connections numbered by
    `numbers` (u32, the run's number of connection n at n - 1): (marks, data)
    for `merge_keyed`, or for `table --format json` (number, entry) pairs.
    `when`: the table's time; `origin`: the capture's first packet's time.
    `spill`: the folder `run_part` was given: the data goes to `spill_path`
    there, and b"" comes back in its place. A report's share is its tally
    (`statewall.dask.report_run.report_share`)."""
    with _LOCK:
        resident = _RESIDENT.pop((job.run_id, part))
    if job.kind == "report":
        from statewall.dask.report_run import report_share

        return report_share(resident.firewall, resident.run, numbers)
    if job.kind == "replay" and spill is not None:
        _, _, _, marks = resident.run.part_results()
        raw, share = spill_path(spill, job, part, "raw"), spill_path(spill, job, part)
        if job.fmt == "jsonl":
            marks = _core.renumber_jsonl_file(raw, share, marks, numbers)
            os.unlink(raw)
        else:
            os.replace(raw, share)
        return marks, b""
    out = _render(resident, job, numbers, when, origin)
    if spill is None or isinstance(out, list):
        return out
    marks, data = out
    with open(spill_path(spill, job, part), "wb") as file:
        file.write(data)
    return marks, b""


def spill_path(spill: str, job: Job, part: int, stage: str = "out") -> str:
    """Where a partition's output goes in `spill`: "raw" as replayed, "out" as merged."""
    return os.path.join(spill, f"{job.run_id}-{part}.{stage}")


def _render(resident: _Resident, job: Job, numbers: bytes, when: float | None,
            origin: float) -> tuple[bytes, bytes] | list[tuple[int, dict[str, Any]]]:
    if job.kind == "replay":
        _, _, _, marks = resident.run.part_results()
        if job.fmt == "jsonl":
            return _core.renumber_jsonl(resident.output, marks, numbers)
        return marks, resident.output
    if job.kind == "conns":
        return _core.conn_log_renumbered(resident.firewall._core, job.fmt, numbers, origin,
                                         job.color)
    return _table(resident.firewall, job, numbers, when)


def _table(firewall: Firewall, job: Job, numbers: bytes,
           when: float | None) -> tuple[bytes, bytes] | list[tuple[int, dict[str, Any]]]:
    from array import array

    from statewall.cli_select import entry_json

    mapping = array("I")
    mapping.frombytes(numbers)
    at = firewall.now if when is None else when
    entries = firewall.connections(at, job.filter)
    if job.fmt == "json":
        out = []
        for conn in entries:
            value = entry_json(conn, at)
            value["id"] = mapping[conn.conn - 1]
            if conn.master is not None:
                value["master"] = mapping[conn.master - 1]
            out.append((value["id"], value))
        return out
    lines = firewall.table_lines(at, job.fmt, filter=job.filter)
    marks = array("Q")
    data = bytearray()
    for conn, line in zip(entries, lines, strict=True):
        data += line.encode()
        marks.extend((mapping[conn.conn - 1], len(data)))
    return marks.tobytes(), bytes(data)


def discard(run_id: str, part: int) -> None:
    """Forget a partition whose run is abandoned."""
    with _LOCK:
        _RESIDENT.pop((run_id, part), None)
