"""The driver of a partitioned run: partitions out, numbers and output back.

1. The capture is indexed once, here (`index.index_shares`), and every
   partition replays its own packets on a worker (`worker.run_part`),
   reading them by offset.
2. The connections are numbered as a single run numbers them: a
   connection's number is the rank of the packet that confirmed it among
   all partitions' confirmations (a packet belongs to one partition, so
   ties are within one, in its own order).
3. What the partitions' peaks cannot prove exact is refused, or marked
   with `inexact` (`plan.proven_reasons`).
4. Each partition writes its share of the output with the run's numbers
   (`worker.render_part`, on the worker that holds it), and the shares are
   interleaved by packet index (replay) or connection number (table, conns)
   in the core (`_core.merge_keyed`).
"""

from __future__ import annotations

import json
import uuid
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from statewall import _core
from statewall.capture import CaptureError, CaptureTruncated
from statewall.config import Sysctls
from statewall.dask.cluster import Progress, import_distributed, slots
from statewall.dask.index import index_shares
from statewall.dask.plan import proven_reasons
from statewall.dask.worker import (
    Job,
    PartSummary,
    discard,
    progress_topic,
    render_part,
    run_part,
    spill_path,
)

if TYPE_CHECKING:
    from distributed import Client


class InexactRun(Exception):
    """What partitioning cannot keep exact is in play, and `inexact` was not given."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


@dataclass
class PartitionedRun:
    """A partitioned run's output, as a single run writes it: `output`, or
    `write_to_stdout()` (which streams what the workers left in files)."""

    shares: list[Any]  # (marks, data) per partition, or table --format json's entries
    files: list[str] | None  # where each share's data is, when not in `shares`
    totals_lines: list[str]
    packets: int
    ipv6_packets: int
    first_ts: float | None
    partitions: int
    inexact: list[str] = field(default_factory=list)  # what may differ (only with inexact=True)
    error: CaptureError | None = None  # the capture's error, after what was read
    full_scan: str | None = None  # why every worker read the whole capture (None: by index)

    @property
    def output(self) -> bytes:
        """The lines: per packet (replay), per entry (table), per connection (conns)."""
        shares = self.shares
        if self.files is not None:
            shares = []
            for (marks, _), path in zip(self.shares, self.files, strict=True):
                with open(path, "rb") as data:
                    shares.append((marks, data.read()))
        return merge(shares)

    def write_to_stdout(self) -> None:
        """Write `output` to file descriptor 1, merged as it is written."""
        import sys

        sys.stdout.flush()
        if self.files is not None:
            _core.merge_keyed_files_to_stdout(
                [(marks, path) for (marks, _), path in zip(self.shares, self.files, strict=True)])
        else:
            sys.stdout.buffer.write(self.output)
            sys.stdout.buffer.flush()


def new_job(**fields: Any) -> Job:
    return Job(run_id=uuid.uuid4().hex, **fields)


def run_job(client: Client, job: Job, cfg: Sysctls, *, inexact: list[str] | None = None,
            when: Callable[[float | None, float], float | None] | None = None,
            spill: str | None = None) -> PartitionedRun:
    """Run `job` on the cluster of `client`. `inexact`: what is known to be
    inexact already, accepted (None: nothing may be inexact, InexactRun if
    the run shows something); `when`: the table's time from the first
    packet's time and the clock at the end; `spill`: a folder both the
    workers and this process can use, for the output (none: it comes through
    the cluster)."""
    distributed = import_distributed()
    places = slots(client)
    parts = len(places)
    index = index_shares(client, job, places, spill)
    progress = Progress(client, progress_topic(job.run_id), parts)
    if index.full_scan is not None:
        progress.note(f"statewall: {index.full_scan}: every worker reads the whole capture")
    futures = [client.submit(run_part, job, part, parts, spill, index.shares[part],
                             workers=[places[part]], allow_other_workers=True, pure=False,
                             key=f"statewall-part-{job.run_id}-{part}")
               for part in range(parts)]
    summaries: list[PartSummary] = []
    try:
        for future in distributed.as_completed(futures):
            summaries.append(future.result())
            progress.task_done()
        progress.clear()
        summaries.sort(key=lambda s: s.part)
        found = proven_reasons(cfg, [s.peaks for s in summaries], sum(s.strays for s in summaries))
        if found and inexact is None:
            raise InexactRun(found)
        first_ts = summaries[0].first_ts
        now = max(s.now for s in summaries)
        at = when(first_ts, now) if when is not None else None
    except BaseException:
        # The run ends here: the workers forget the partitions they hold.
        progress.clear()
        for s in summaries:
            distributed.fire_and_forget(
                client.submit(discard, job.run_id, s.part, workers=[s.address], pure=False))
        raise
    finally:
        index.remove()
    numbers = numbering([s.confirms for s in summaries])
    origin = first_ts if first_ts is not None else 0.0
    shares = client.gather([  # type: ignore[no-untyped-call]
        client.submit(render_part, job, s.part, numbers[s.part], at, origin, spill,
                      workers=[s.address], allow_other_workers=False, pure=False,
                      key=f"statewall-render-{job.run_id}-{s.part}")
        for s in summaries])
    files = None
    if spill is not None and not (shares and isinstance(shares[0], list)):
        files = [spill_path(spill, job, s.part) for s in summaries]
    error = next((s.error for s in summaries if s.error is not None), None)
    return PartitionedRun(
        shares=shares, files=files,
        totals_lines=_core.merged_totals_lines([s.totals for s in summaries]),
        packets=sum(s.packets for s in summaries),
        ipv6_packets=sum(s.totals[1] for s in summaries),
        first_ts=first_ts, partitions=parts, inexact=[*(inexact or ()), *found],
        error=None if error is None else (CaptureTruncated if error[0] else CaptureError)(error[1]),
        full_scan=index.full_scan)


def numbering(confirms: list[bytes]) -> list[bytes]:
    """For each partition, the run's number of its connection n at n - 1 (u32
    bytes), from the packet that confirmed each of them (u64 bytes)."""
    indexes = []
    for data in confirms:
        column = array("Q")
        column.frombytes(data)
        indexes.append(column)
    order = sorted((index, part, n) for part, column in enumerate(indexes)
                   for n, index in enumerate(column))
    out = [array("I", bytes(4 * len(column))) for column in indexes]
    for rank, (_, part, n) in enumerate(order, start=1):
        out[part][n] = rank
    return [column.tobytes() for column in out]


def merge(shares: list[Any]) -> bytes:
    """The partitions' shares as one output: (marks, data) pairs interleaved
    by key, or `table --format json`'s (number, entry) pairs as one array."""
    if shares and isinstance(shares[0], list):
        entries = sorted((pair for share in shares for pair in share), key=lambda p: p[0])
        return (json.dumps([entry for _, entry in entries], indent=1) + "\n").encode()
    return _core.merge_keyed(shares)
