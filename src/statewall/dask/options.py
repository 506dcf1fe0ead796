"""The command-line options of the Dask engine, and how its errors exit.

Kept apart from the engine itself: the CLI registers these options on
every run, and `dask` is imported only when `--engine dask` is used.
"""

from __future__ import annotations

import argparse


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("engine")
    group.add_argument("--engine", choices=("single", "dask"), default="single",
                       help="single: this process (default); dask: partitions of the capture "
                            "on a Dask cluster, with the same output")
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="dask: the cluster's scheduler (tcp://host:8786); without it a local "
                            "cluster is started for the run")
    group.add_argument("--workers", type=int, metavar="N",
                       help="dask: worker processes of the local cluster (default: one per CPU); "
                            "with --scheduler, wait for N workers")
    group.add_argument("--inexact", action="store_true",
                       help="dask: run even where partitioning cannot keep every result exact "
                            "(what may differ is listed on stderr, and after the totals or in "
                            "the report's header)")


def classify_dask_error(error: Exception) -> tuple[int, str] | None:
    """The exit code and message of the Dask engine's own errors (None: not one)."""
    from statewall.cli import EXIT_ENVIRONMENT, EXIT_INEXACT
    from statewall.dask.cluster import DaskUnavailable
    from statewall.dask.run import InexactRun

    if isinstance(error, InexactRun):
        return EXIT_INEXACT, (f"--engine dask: not exact here: {error} (--inexact runs it "
                              "anyway, marked; --engine single runs it exactly)")
    if isinstance(error, DaskUnavailable):
        return EXIT_ENVIRONMENT, str(error)
    if type(error).__module__.startswith("distributed") or isinstance(error, TimeoutError):
        return EXIT_ENVIRONMENT, f"--engine dask: {type(error).__name__}: {error}"
    return None
