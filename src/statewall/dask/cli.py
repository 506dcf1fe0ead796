"""`replay`, `table`, `conns` and `report` with `--engine dask`: the same output as a single run.

The machine is built here first, as the single engine builds it, so a bad
option or ruleset is reported before any cluster starts; what partitioning
cannot keep exact is listed from it (`plan.static_reasons`) and refused
without `--inexact`. Then the run goes to the cluster (`run.run_job`) and
its merged output is written as the single engine writes its own.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from statewall.api import MachineOptions, build_firewall
from statewall.engine import Firewall

if TYPE_CHECKING:
    from statewall.dask.run import PartitionedRun
    from statewall.dask.worker import Job
    from statewall.select import Selection

STDIN = "-"


def dask_replay(args: argparse.Namespace, firewall: Firewall, select: Selection | None,
                fmt: str) -> int:
    from statewall.cli import EXIT_OK, replay_trailer, use_color

    if select is not None and (select.conn is not None or select.write is not None):
        _refuse_option("--conn" if select.conn is not None else "-w")
    if args.counters:
        _refuse_option("--counters")
    if select is not None:
        _refuse_numbers(select.filter)
    job_fields = dict(kind="replay", fmt=fmt, limit=args.limit, explain=args.explain,
                      color=use_color(args.color, sys.stdout),
                      filter=select.filter if select is not None else None)
    with _running(args, firewall, job_fields) as run:
        run.write_to_stdout()
    out = sys.stdout.buffer
    if fmt != "jsonl" and not args.no_summary and (run.error is None or run.packets):
        out.write(("\n".join(run.totals_lines) + "\n").encode())
        out.writelines(f"inexact: {reason}\n".encode() for reason in run.inexact)
    out.flush()
    replay_trailer(args, firewall, fmt, run.ipv6_packets)
    if run.error is not None:
        raise run.error
    return EXIT_OK


def dask_table(args: argparse.Namespace, firewall: Firewall, entries: str | None,
               at_value: float | None) -> int:
    from statewall.cli import EXIT_OK, at_time

    if args.expectations:
        _refuse_option("--expectations")
    _refuse_numbers(entries)

    def when(first_ts: float | None, now: float) -> float:
        if at_value is not None and first_ts is not None:
            return at_time(args.at, at_value, first_ts)
        return now

    with _running(args, firewall, dict(kind="table", fmt=args.format, limit=args.limit,
                                       until=at_value, filter=entries), when) as run:
        run.write_to_stdout()
    if run.error is not None:
        raise run.error
    return EXIT_OK


def dask_conns(args: argparse.Namespace, firewall: Firewall, color: bool) -> int:
    from statewall import _core
    from statewall.cli import EXIT_OK

    with _running(args, firewall, dict(kind="conns", fmt=args.format, limit=args.limit,
                                       color=color)) as run:
        if args.format == "tsv":
            sys.stdout.write(_core.CONNS_TSV_HEADER)
        run.write_to_stdout()
    if run.error is not None:
        raise run.error
    return EXIT_OK


def dask_report(args: argparse.Namespace, machine: MachineOptions,
                select: Selection | None) -> int:
    """`report --engine dask`: the page's model is the single run's
    (`statewall.dask.report_run`); no second ruleset side by side."""
    from statewall.cli import EXIT_OK, InputError, UsageError
    from statewall.dask.report_run import merged_model, report_job_fields
    from statewall.report import _chosen, report_meta
    from statewall.report.cli import write_page
    from statewall.report.model import Caps
    from statewall.report.page import render_page
    from statewall.rules.errors import RulesetError

    for option, value in (("--rules-b", args.rules_b), ("--rules6-b", args.rules6_b),
                          ("--nft-b", args.nft_b)):
        if value is not None:
            raise UsageError(f"{option} is not available with --engine dask (rulesets side "
                             "by side run in one process: --engine single)")
    if select is not None and (select.conn is not None or select.write is not None):
        _refuse_option("--conn" if select.conn is not None else "-w")
    if select is not None:
        _refuse_numbers(select.filter)
    try:
        firewall = build_firewall(machine)
    except RulesetError as error:
        raise InputError(str(error)) from None
    caps = Caps()
    meta = report_meta(args.capture, machine, limit=args.limit, title=args.title,
                       chosen=_chosen(args.filter, None))
    with _running(args, firewall, report_job_fields(select, args.limit, caps)) as run:
        model = merged_model(run, firewall, caps=caps, meta=meta)
    write_page(args.output, render_page(model))
    return EXIT_OK


@contextmanager
def _running(args: argparse.Namespace, firewall: Firewall, job_fields: dict[str, object],
             when: Callable[[float | None, float], float | None] | None = None
             ) -> Iterator[PartitionedRun]:
    """Check, plan and run the job on the cluster the options name; the run's
    output lasts as long as the context (on a local cluster, its workers
    hand it over in files in a temporary folder)."""
    from statewall.cli import UsageError, options_from
    from statewall.dask.cluster import connect
    from statewall.dask.plan import static_reasons
    from statewall.dask.run import InexactRun, new_job, run_job

    captures: list[str] = args.capture if isinstance(args.capture, list) else [args.capture]
    if STDIN in captures:
        raise UsageError("--engine dask: every worker reads the capture itself: give a file, "
                         "not standard input")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers {args.workers}: expected a number of workers (1 or more)")
    for capture in captures:
        _check_capture(capture)
    reasons = static_reasons(firewall)
    if reasons and not args.inexact:
        raise InexactRun(reasons)
    if reasons:
        sys.stderr.writelines(f"statewall: inexact (--inexact): {r}\n" for r in reasons)
    job: Job = new_job(captures=tuple(os.path.abspath(c) for c in captures),
                       options=absolute(options_from(args)), **job_fields)
    # A report's shares are tallies, not output: they come through the cluster.
    spills = job.kind != "report"
    with connect(args.scheduler, args.workers) as (client, local), \
            tempfile.TemporaryDirectory(prefix="statewall-dask-") as folder:
        run = run_job(client, job, firewall.cfg, inexact=reasons if args.inexact else None,
                      when=when, spill=folder if local and spills else None)
        for reason in run.inexact[len(reasons):]:
            sys.stderr.write(f"statewall: inexact (--inexact): {reason}\n")
        yield run


def _check_capture(path: str) -> None:
    """Open the capture here, so that one that cannot be read is reported
    before a cluster starts (CaptureError, exit 3)."""
    from statewall import _core

    _core.CaptureFrames(path)


def absolute(options: MachineOptions) -> MachineOptions:
    """`options` with absolute file names: a worker's working directory is its own."""
    def path(name: str | os.PathLike[str] | None) -> str | None:
        return None if name is None else os.path.abspath(name)

    return replace(options, rules=path(options.rules), rules6=path(options.rules6),
                   nft=path(options.nft),
                   ipsets=tuple(os.path.abspath(p) for p in options.ipsets),
                   sysctl_files=tuple(os.path.abspath(p) for p in options.sysctl_files))


def _refuse_option(option: str) -> None:
    from statewall.cli import UsageError

    raise UsageError(f"{option} is not available with --engine dask")


def _refuse_numbers(filter: str | None) -> None:
    if numbers_filtered(filter):
        from statewall.cli import UsageError

        raise UsageError("a filter on conn or master is not available with --engine dask "
                         "(connection numbers are known only after the run)")


def numbers_filtered(filter: str | None) -> bool:
    """Whether `filter` (statewall.select's JSON) tests connection numbers,
    which cannot run in a partition: its numbers are the partition's own
    until the run is over."""
    import json

    def fields(node: object) -> Iterator[object]:
        if isinstance(node, dict):
            yield node.get("field")
            for value in node.values():
                yield from fields(value)
        elif isinstance(node, list):
            for value in node:
                yield from fields(value)

    return filter is not None and bool({"conn", "master"} & set(fields(json.loads(filter))))
