"""Partitioned replay on a Dask cluster, with the output of a single process.

Packets are partitioned by the unordered pair of hosts of the connection
they belong to (core/src/partition/); the driver indexes the capture
once (`statewall.dask.index`) and each partition is replayed on a
worker, which reads its own packets from the capture by offset; the
driver numbers the connections as a single run does and interleaves the
partitions' output back into the capture's order (`statewall.dask.run`).
What partitioning cannot keep exact is refused unless accepted
(`statewall.dask.plan`).

`dask` and `distributed` are imported only when a run starts
(`pip install 'statewall[dask]'`):

    from distributed import Client
    import statewall.dask

    with Client("tcp://scheduler:8786") as client:
        run = statewall.dask.replay(client, "capture.pcap", rules="rules.v4", fmt="jsonl")
    open("out.jsonl", "wb").write(run.output)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import Client

    from statewall.dask.run import PartitionedRun

__all__ = ["replay"]


def replay(client: Client, capture: str | os.PathLike[str] | list[str | os.PathLike[str]], *,
           fmt: str = "jsonl",
           limit: int | None = None, inexact: bool = False, **options: Any) -> PartitionedRun:
    """Replay `capture` (a file, or a list of files of one link, merged by
    timestamp) on the cluster of `client` through the machine `options`
    describe (the arguments of `statewall.load_firewall`); `fmt`: "jsonl",
    "text" or "summary". The result's `output` is byte for byte what a single
    `statewall replay` writes before its totals, `totals_lines` the totals.
    InexactRun when what partitioning cannot keep exact is in play, unless
    `inexact` (then `PartitionedRun.inexact` lists it)."""
    from statewall.api import build_firewall, machine_options
    from statewall.dask.cli import absolute
    from statewall.dask.plan import static_reasons
    from statewall.dask.run import InexactRun, new_job, run_job

    machine = absolute(machine_options(**options))
    firewall = build_firewall(machine)
    reasons = static_reasons(firewall)
    if reasons and not inexact:
        raise InexactRun(reasons)
    captures = capture if isinstance(capture, list) else [capture]
    job = new_job(captures=tuple(os.path.abspath(c) for c in captures), options=machine,
                  kind="replay", fmt=fmt, limit=limit)
    return run_job(client, job, firewall.cfg, inexact=reasons if inexact else None)
