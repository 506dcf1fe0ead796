"""`statewall report --engine dask`: the page of a partitioned run, with the
model a single run gives.

Each partition replays the capture as a "report" run of its own packets
(`worker.run_part`): its tally counts them, noting where each count was first
met, and keeps, up to the caps, every detail the whole run may keep of them
(core/src/output/report_rows.rs). Once the driver has numbered the
connections, each partition hands over its tally in the run's numbers, its
log's share, its totals and its rules' and expectations' counters
(`report_share`); the driver merges the tallies and logs by the run's own
order, applying the caps once over all partitions (`_core.merged_report`,
core/src/output/report_merge.rs), and adds up the counters. What
partitioning cannot keep exact is refused or marked as for `replay`
(`statewall.dask.plan`); a marked page lists it in its header.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from statewall import _core
from statewall.engine import Firewall
from statewall.report.model import Caps, RunFacts, model_of, ruleset_entries

if TYPE_CHECKING:
    from distributed import Client

    from statewall.api import MachineOptions
    from statewall.dask.run import PartitionedRun
    from statewall.select import Selection

# The expectation counters the page shows (Firewall.stats): each partition counts its own.
EXPECTATION_STATS = ("expect_create", "expect_new", "expect_delete")


@dataclass(frozen=True)
class ReportShare:
    """One partition's part of the report, its connections numbered as the run's."""

    part: _core.ReportPart
    totals: _core.TotalsPart
    counters: list[tuple[int, int]]  # (packets, bytes) of each rule entry, in order
    stats: dict[str, int]  # EXPECTATION_STATS


def report_share(firewall: Firewall, run: _core.ReplayRun, numbers: bytes) -> ReportShare:
    """On the worker: the share of a partition's finished "report" `run` through
    `firewall`; `numbers` (u32) are the run's numbers of its connections."""
    part = run.report_part(numbers)
    stats = firewall.stats()
    return ReportShare(part, run.totals_part(),
                       [(e.packets, e.bytes) for e in ruleset_entries(firewall)],
                       {name: stats.get(name, 0) for name in EXPECTATION_STATS})


def merged_model(run: PartitionedRun, firewall: Firewall, *, caps: Caps,
                 meta: dict[str, Any]) -> dict[str, Any]:
    """The page's model of a partitioned "report" `run`; `firewall`, built as
    the workers built theirs, names the rules. The capture's error, if the
    run met one, is raised: a report of part of a capture makes no page."""
    if run.error is not None:
        raise run.error
    shares: list[ReportShare] = run.shares
    entries = [replace(entry, packets=sum(s.counters[entry.id][0] for s in shares),
                       bytes=sum(s.counters[entry.id][1] for s in shares))
               for entry in ruleset_entries(firewall)]
    facts = RunFacts(
        report=_core.merged_report(firewall._core, [s.part for s in shares], caps.core(),
                                   run.first_ts),
        totals=_core.merged_totals_values([s.totals for s in shares]),
        first_ts=run.first_ts, entries=entries,
        stats={name: sum(s.stats[name] for s in shares) for name in EXPECTATION_STATS},
        table_max=firewall.cfg.nf_conntrack_max)
    model = model_of(facts, caps=caps, meta=meta)
    if run.inexact:
        model["meta"]["inexact"] = list(run.inexact)
    return model


def report_job_fields(select: Selection | None, limit: int | None,
                      caps: Caps) -> dict[str, object]:
    """The `Job` fields of a report (`run.new_job`)."""
    return dict(kind="report", fmt="report", limit=limit, caps=caps.core(),
                filter=select.filter if select is not None else None)


def partitioned_report(client: Client, capture: str | os.PathLike[str],
                       machine: MachineOptions, *, select: Selection | None = None,
                       limit: int | None = None, caps: Caps | None = None,
                       title: str | None = None, chosen: str | None = None,
                       inexact: bool = False) -> str:
    """The page of `capture` replayed through `machine` on the cluster of
    `client` (`statewall.dask.report`); `chosen`: the selection in words."""
    from statewall.api import build_firewall
    from statewall.dask.cli import absolute
    from statewall.dask.plan import static_reasons
    from statewall.dask.run import InexactRun, new_job, run_job
    from statewall.report import report_meta
    from statewall.report.page import render_page

    caps = caps or Caps()
    firewall = build_firewall(machine)
    reasons = static_reasons(firewall)
    if reasons and not inexact:
        raise InexactRun(reasons)
    job = new_job(captures=(os.path.abspath(capture),), options=absolute(machine),
                  **report_job_fields(select, limit, caps))
    run = run_job(client, job, firewall.cfg, inexact=reasons if inexact else None)
    meta = report_meta(capture, machine, limit=limit, title=title, chosen=chosen)
    return render_page(merged_model(run, firewall, caps=caps, meta=meta))
