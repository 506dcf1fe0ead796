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

`report(client, capture, ...)` writes `statewall report`'s page the same way.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import Client

    from statewall.dask.run import PartitionedRun
    from statewall.report.model import Caps

__all__ = ["replay", "report"]


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


def report(client: Client, capture: str | os.PathLike[str],
           output: str | os.PathLike[str] | None = None, *, filter: str | None = None,
           limit: int | None = None, title: str | None = None, caps: Caps | None = None,
           inexact: bool = False, **options: Any) -> str:
    """`statewall.report` on the cluster of `client`: the page of `capture`
    replayed through the machine `options` describe, as HTML text, also
    written to `output` when given; its model is a single run's. `filter`: a
    display filter (as `replay --filter`, not on conn or master) choosing the
    packets the details hold; `caps`: the detail kept (statewall.report.Caps).
    No second ruleset side by side. InexactRun as for `replay`, unless `inexact`
    (then the page lists what may differ)."""
    from statewall.api import machine_options
    from statewall.dask.cli import numbers_filtered
    from statewall.dask.report_run import partitioned_report
    from statewall.report import _chosen
    from statewall.select import Selection, parse_filter

    side_by_side = sorted({"rules_b", "rules6_b", "nft_b", "conn"} & options.keys())
    if side_by_side:
        raise ValueError(f"{', '.join(side_by_side)}: not available on the Dask engine (a second "
                         "ruleset side by side, and a connection by number, need one process: "
                         "statewall.report)")
    select = Selection.of(parse_filter(filter)) if filter is not None else None
    if select is not None and numbers_filtered(select.filter):
        raise ValueError(f"filter {filter!r}: connection numbers are known only after a "
                         "partitioned run: a filter on conn or master cannot run in one")
    page = partitioned_report(client, capture, machine_options(**options), select=select,
                              limit=limit, caps=caps, title=title, chosen=_chosen(filter, None),
                              inexact=inexact)
    if output is not None:
        with open(output, "w", encoding="utf-8") as out:
            out.write(page)
    return page
