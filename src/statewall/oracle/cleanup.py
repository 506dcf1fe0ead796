"""Removing the kernel oracle's namespaces: always, even after a run that could not.

A run removes its namespaces when it ends, and that removal must not be cut
short: `signals_deferred` holds SIGINT and SIGTERM while it runs and delivers
them afterwards, so Ctrl-C still interrupts (exit 130) but only once the
namespaces are gone. Commands started meanwhile (`ip netns del`) inherit the
blocked signals, so a Ctrl-C sent to the whole terminal cannot kill them
halfway either.

SIGKILL cannot be held. Before creating its namespaces a run therefore writes
a claim under /run/statewall/netns/: its PID, the start time the kernel gave
that process, the boot it ran in, its PID namespace and the names it is about
to create. `remove_leftovers` deletes the namespaces of claims whose owner is
gone: no such process, a zombie, or another process that reused the PID (its
start time differs). A claim from another PID namespace cannot be judged from
here and is left alone, as is every namespace no claim names.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

from statewall.oracle.netns import NETNS_RUN_DIR, OracleError

CLAIM_DIR = Path("/run/statewall/netns")
HELD_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})

# What signal.signal returns: a function, SIG_DFL/SIG_IGN, or None (set outside Python).
Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Run the body with SIGINT and SIGTERM held; deliver them once it is done.

    The calling thread blocks both, and its children inherit that. In the main
    thread, handlers also record a signal another thread received; elsewhere
    Python cannot install handlers (and delivers signals to the main thread).
    """
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    previous: dict[signal.Signals, Handler] = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, hold) for sig in HELD_SIGNALS}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
    try:
        yield
    finally:
        # Take what arrived while blocked, so it is delivered once, below,
        # to the handlers in force after the body.
        while (info := signal.sigtimedwait(HELD_SIGNALS, 0)) is not None:
            pending.append(info.si_signo)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for signum in dict.fromkeys(pending):
            signal.raise_signal(signum)


@dataclass(frozen=True)
class Owner:
    """A process, told apart from a later one that reuses its PID."""

    pid: int
    start: int  # /proc/PID/stat starttime: clock ticks after boot
    boot: str  # /proc/sys/kernel/random/boot_id
    pidns: int  # inode of the PID namespace its PID belongs to


def _start_time(pid: int) -> tuple[int, str] | None:
    """(start time, state letter) of `pid`, None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold anything: fields after it.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19]), fields[0]


def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def _pidns() -> int:
    return os.stat("/proc/self/ns/pid").st_ino


def this_process() -> Owner:
    found = _start_time(os.getpid())
    if found is None:
        raise OracleError("cannot read this process's start time from /proc")
    return Owner(os.getpid(), found[0], _boot_id(), _pidns())


def owner_alive(owner: Owner) -> bool | None:
    """Whether the owner still runs; None when it ran in another PID namespace."""
    if owner.boot != _boot_id():
        return False
    if owner.pidns != _pidns():
        return None
    found = _start_time(owner.pid)
    return found is not None and found[0] == owner.start and found[1] != "Z"


@dataclass(frozen=True)
class Claim:
    """The namespaces one run creates, and the run."""

    token: str
    owner: Owner
    namespaces: tuple[str, ...]

    @property
    def path(self) -> Path:
        return CLAIM_DIR / f"{self.token}.json"


def claim(namespaces: Sequence[str], owner: Owner | None = None) -> Claim:
    """Record that this process (or `owner`) is about to create `namespaces`."""
    made = Claim(secrets.token_hex(8), owner or this_process(), tuple(namespaces))
    record = {"owner": asdict(made.owner), "namespaces": list(made.namespaces)}
    try:
        CLAIM_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = made.path.with_suffix(".partial")
        partial.write_text(json.dumps(record) + "\n")
        os.replace(partial, made.path)  # a claim is read whole or not at all
    except OSError as e:
        raise OracleError(f"cannot record the namespaces' owner in {CLAIM_DIR}: "
                          f"{e.strerror}") from None
    return made


def release(made: Claim) -> None:
    """Forget a claim: its namespaces are gone, or kept on purpose."""
    with suppress(FileNotFoundError):
        made.path.unlink()


def read_claims() -> list[Claim]:
    """Every claim on this machine, oldest first; unreadable files are skipped."""
    claims: list[Claim] = []
    try:
        paths = sorted(CLAIM_DIR.glob("*.json"), key=lambda p: p.stat().st_mtime)
    except OSError:
        return []
    for path in paths:
        try:
            record = json.loads(path.read_text())
            owner = Owner(**record["owner"])
            names = tuple(str(name) for name in record["namespaces"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        claims.append(Claim(path.stem, owner, names))
    return claims


def _delete_namespace(name: str) -> None:
    """Stop what still runs inside (a dead run's `conntrack -E`), then delete it."""
    if not os.path.exists(f"{NETNS_RUN_DIR}/{name}"):
        return
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True,
                          check=False).stdout.split()
    for pid in pids:
        with suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    done = subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0 and os.path.exists(f"{NETNS_RUN_DIR}/{name}"):
        raise OracleError(f"`ip netns del {name}` failed: {done.stderr.strip()}")


def remove_leftovers() -> list[Claim]:
    """Delete the namespaces of every claim whose owner is gone; return those claims."""
    removed: list[Claim] = []
    for found in read_claims():
        if owner_alive(found.owner) is not False:
            continue
        with signals_deferred():
            for name in found.namespaces:
                _delete_namespace(name)
            release(found)
        removed.append(found)
    return removed
