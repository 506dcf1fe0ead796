"""The Dask cluster a run uses, and its progress line on a terminal.

Without a scheduler address a local cluster is started for the run (one
single-threaded worker process per partition) and shut down after it; with
one, the run uses the workers that cluster has (started by hand, by
dask-jobqueue or on Kubernetes), one partition per worker thread.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from statewall.wording import count

if TYPE_CHECKING:
    from distributed import Client


class DaskUnavailable(Exception):
    """dask[distributed] is not installed."""


def import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise DaskUnavailable("--engine dask needs dask and distributed: "
                              "pip install 'statewall[dask]'") from None
    return distributed


@contextmanager
def connect(scheduler: str | None, workers: int | None) -> Iterator[tuple[Client, bool]]:
    """A client of the cluster at `scheduler`, or of a local cluster of
    `workers` processes (default: the machine's CPUs), shut down after; and
    whether the cluster is local (its workers share this machine's files)."""
    distributed = import_distributed()
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as error:
            raise DaskUnavailable(f"--scheduler {scheduler}: no Dask scheduler answers there "
                                  f"({error})") from None
        with client:
            if workers is not None:
                client.wait_for_workers(workers, timeout=300)
            yield client, False
        return
    n = workers or os.cpu_count() or 1
    # Quiet, and on any free port: the cluster's own log lines and its dashboard
    # are not the command's output (a dashboard on the default port would warn
    # when another cluster holds it).
    with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=50) as cluster, \
            distributed.Client(cluster) as client:
        yield client, True


def slots(client: Client) -> list[str]:
    """One worker address per thread: where the partitions run."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    out = [address for address, worker in sorted(info.items())
           for _ in range(max(1, int(worker.get("nthreads", 1))))]
    if not out:
        raise DaskUnavailable("the Dask cluster has no workers")
    return out


class Progress:
    """`tasks done, packets/s` on stderr while a person watches; the workers
    report their packet counts as events (`statewall.dask.worker`)."""

    def __init__(self, client: Client, topic: str, tasks: int) -> None:
        self.enabled = sys.stderr.isatty()
        self.tasks = tasks
        self.done = 0
        self.packets: dict[int, int] = {}
        self.start = time.monotonic()
        self.lock = threading.Lock()
        self.shown = False
        if self.enabled:
            client.subscribe_topic(topic, self._event)  # type: ignore[no-untyped-call]

    def _event(self, event: tuple[float, dict[str, int]]) -> None:
        _, message = event
        with self.lock:
            self.packets[message["part"]] = message["packets"]
        self.show()

    def note(self, line: str) -> None:
        """One line for the person watching, above the progress line."""
        if self.enabled:
            with self.lock:
                sys.stderr.write(f"\r{line}\033[K\n")
                sys.stderr.flush()

    def task_done(self) -> None:
        self.done += 1
        self.show()

    def show(self) -> None:
        """Called from the main thread and from the client's event thread."""
        if not self.enabled:
            return
        with self.lock:
            packets = sum(self.packets.values())
            rate = packets / max(time.monotonic() - self.start, 1e-9)
            sys.stderr.write(f"\r{self.done}/{self.tasks} tasks done, "
                             f"{count(packets, 'packet')}, {rate:,.0f} packets/s\033[K")
            sys.stderr.flush()
            self.shown = True

    def clear(self) -> None:
        with self.lock:
            if self.shown:
                sys.stderr.write("\r\033[K")
                sys.stderr.flush()
                self.shown = False
            self.enabled = False  # late events print nothing more
