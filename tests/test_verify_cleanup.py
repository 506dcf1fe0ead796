"""`statewall verify` never leaves its namespaces behind for good.

Ctrl-C or SIGTERM during the run's own cleanup waits until the namespaces are
gone (exit 130). SIGKILL cannot wait: the namespaces stay, and the next
`verify` or `verify --cleanup` removes them, knowing them by the claim the
killed run wrote; the namespaces of a run still going are never touched.
Each run is a real `statewall` process (tests/verify_driver.py stops it at the
moment a test needs).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

import statewall
from statewall import builder
from statewall.capture import write_pcap
from statewall.oracle import cleanup, netns
from statewall.oracle.scenarios import STATEFUL

pytestmark = pytest.mark.kernel

DRIVER = Path(__file__).with_name("verify_driver.py")
C, S = "192.0.2.1", "198.51.100.7"


def _env() -> dict[str, str]:
    src = str(Path(statewall.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": src, "PYTHONWARNINGS": "ignore"}


def statewall_run(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from statewall.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=120, env=_env())


def driver(mode: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(DRIVER), mode, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())


def names_in(stderr: str) -> tuple[str, ...]:
    announced = [line.split()[1:] for line in stderr.splitlines() if line.startswith("NS ")]
    assert len(announced) == 1, stderr
    return tuple(announced[0])


def wait_until_ready(proc: subprocess.Popen[str]) -> tuple[str, ...]:
    """The namespaces of a `hold` driver, once it holds before its first packet."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        if line == "READY\n":
            return names_in("".join(seen))
        seen.append(line)
    raise AssertionError(f"the run ended before holding: {''.join(seen)}")


def present(names: Sequence[str]) -> set[str]:
    return set(names) & set(netns.list_namespaces())


def claims_of(names: Sequence[str]) -> list[cleanup.Claim]:
    return [c for c in cleanup.read_claims() if set(c.namespaces) & set(names)]


@pytest.fixture
def inputs(tmp_path: Path, kernel: None) -> Iterator[list[str]]:
    """`CAPTURE --rules FILE` for a short TCP handshake; afterwards no claim of a
    dead run may remain (a test that fails halfway is cleaned up here)."""
    capture, rules = tmp_path / "in.pcap", tmp_path / "rules.v4"
    handshake = [builder.tcp(C, S, 1000, 80, "S", 1), builder.tcp(S, C, 80, 1000, "SA", 9, 2),
                 builder.tcp(C, S, 1000, 80, "A", 2, 10)]
    write_pcap(capture, [(1.0 + i, builder.ethernet(d)) for i, d in enumerate(handshake)])
    rules.write_text(STATEFUL)
    yield [str(capture), "--rules", str(rules)]
    cleanup.remove_leftovers()


@pytest.mark.parametrize("next_run", ["--cleanup", "verify"])
def test_sigkill_leaves_namespaces_that_the_next_run_removes(inputs: list[str],
                                                             next_run: str) -> None:
    held = driver("hold", "verify", *inputs)
    names = wait_until_ready(held)
    assert present(names) == set(names)
    held.kill()
    held.communicate(timeout=30)
    assert present(names) == set(names)  # SIGKILL cannot be held
    [left] = claims_of(names)
    assert (left.owner.pid, left.namespaces) == (held.pid, names)

    done = statewall_run("verify", *(["--cleanup"] if next_run == "--cleanup" else inputs))
    assert done.returncode == 0, done.stderr
    said = (f"removed the namespaces of verify pid {held.pid}, which no longer runs: "
            f"{' '.join(names)}")
    if next_run == "--cleanup":
        assert said in done.stdout.splitlines()
    else:
        assert f"statewall: {said}" in done.stderr.splitlines()
        assert done.stdout == "3/3 packets agree, tables same\n"
    assert present(names) == set() and claims_of(names) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_during_cleanup_waits_until_nothing_is_left(inputs: list[str],
                                                             signum: signal.Signals) -> None:
    run = driver(signum.name, "verify", *inputs)
    out, err = run.communicate(timeout=120)
    names = names_in(err)
    assert run.returncode == 130, err
    assert err.splitlines()[-1] == "statewall: interrupted" and out == ""
    assert present(names) == set() and claims_of(names) == []


def test_a_running_verify_keeps_its_namespaces(inputs: list[str]) -> None:
    running = driver("hold", "verify", *inputs)
    names = wait_until_ready(running)
    try:
        done = statewall_run("verify", "--cleanup")
        assert done.returncode == 0, done.stderr
        assert str(running.pid) not in done.stdout
        assert present(names) == set(names)
        assert [c.owner.pid for c in claims_of(names)] == [running.pid]
    finally:
        out, err = running.communicate("\n", timeout=120)
    assert running.returncode == 0, err
    assert out == "3/3 packets agree, tables same\n"
    assert present(names) == set() and claims_of(names) == []


def test_a_claim_is_only_as_good_as_its_owners_start_time(kernel: None) -> None:
    """A live PID with another start time is a reused PID: its claim is stale.
    A claim from another PID namespace cannot be judged here, even when its PID
    is free in ours, and is kept."""
    me = cleanup.this_process()
    gone = subprocess.Popen(["true"])
    gone.wait()
    owners = {"reused": replace(me, start=me.start - 1), "live": me,
              "elsewhere": replace(me, pid=gone.pid, pidns=me.pidns + 1)}
    made = {case: f"sw-claimtest-{secrets.token_hex(3)}" for case in owners}
    claims = []
    try:
        for case, owner in owners.items():
            netns.run(["ip", "netns", "add", made[case]])
            claims.append(cleanup.claim([made[case]], owner))
        removed = cleanup.remove_leftovers()
        assert [c.namespaces for c in removed if c in claims] == [(made["reused"],)]
        assert present(made.values()) == {made["live"], made["elsewhere"]}
    finally:
        for found in claims:
            cleanup.release(found)
        netns.destroy_topology(netns.Topology(*made.values(), ("", "")))
