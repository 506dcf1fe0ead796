"""The capture's index, built once by the driver and shared out to the partitions.

The core reads the capture once (`_core.index_capture`) and gives each
partition the list of its own packets' records (file, byte offset), each
with its index in the capture and the clock at it, a few dozen bytes per
packet; a worker then reads only those records, by offset, from the
storage it shares with the driver. With a folder the workers share (a
local cluster's spill folder) each partition's index is written there and
only its path travels; otherwise the index itself goes to the worker that
runs the partition (`Client.scatter`). A capture that cannot be read by
offset (a compressed one) is read whole by every worker instead: `full_scan`
says why.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from statewall import _core
from statewall.dask.worker import Job, spill_path

if TYPE_CHECKING:
    from distributed import Client


@dataclass(frozen=True)
class IndexShares:
    """Per partition, what `worker.run_part` takes as its `index`: the path of
    its index file, a future of its bytes, or None (it reads the whole capture)."""

    shares: list[Any]
    full_scan: str | None  # why the capture is read whole, or None
    files: list[str]  # the index files written, removed after the run

    def remove(self) -> None:
        for path in self.files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def index_shares(client: Client, job: Job, places: list[str], spill: str | None) -> IndexShares:
    """Index `job`'s capture for one partition per address in `places`."""
    parts = len(places)
    files = [spill_path(spill, job, part, "index") for part in range(parts)] if spill else None
    index = _core.index_capture(list(job.captures), parts, job.limit, job.until, files)
    if index.full_scan is not None:
        shares = IndexShares([None] * parts, index.full_scan, files or [])
        shares.remove()
        return shares
    if files is not None:
        return IndexShares(list(files), None, files)
    return IndexShares([client.scatter(  # type: ignore[no-untyped-call]
        index.part(part), workers=[place], hash=False) for part, place in enumerate(places)],
        None, [])
