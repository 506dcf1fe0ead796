"""Shared test plumbing: where ../shared is, and when the live kernel can be used.

Tests that read the shared captures and rulesets skip with a reason when
../shared is absent; tests that need the kernel skip when not root or when
network namespaces are unavailable. Under CI (CI=true) neither may skip:
the environment is expected to provide both, so a skip becomes a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"required under CI but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The ../shared folder beside the repository."""
    if not (SHARED / "traces").is_dir():
        _unavailable(f"shared test data not found at {SHARED}")
    return SHARED


def kernel_problem() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    for tool in ("ip", "iptables-restore", "ip6tables-restore", "conntrack", "tcpdump"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install iptables conntrack tcpdump iproute2)"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"network namespaces unavailable: {probe.stderr.strip()}"
    return None


@pytest.fixture(scope="session")
def kernel() -> None:
    """Require the live kernel oracle."""
    problem = kernel_problem()
    if problem is not None:
        _unavailable(problem)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under CI, missing shared data or kernel tools stop the run instead of skipping tests.

    Some tests skip through markers evaluated at collection (shared rulesets,
    tcpdump); checking once here keeps every such skip from hiding under CI.
    """
    if not IN_CI:
        return
    problems = []
    if not (SHARED / "traces").is_dir():
        problems.append(f"shared test data not found at {SHARED}")
    problem = kernel_problem()
    if problem is not None:
        problems.append(problem)
    if problems:
        pytest.exit("required under CI but unavailable: " + "; ".join(problems), returncode=1)


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Names of the namespaces the test creates; afterwards none of them may remain."""
    created: list[str] = []
    from statewall.oracle import netns

    original = netns.new_names

    def recording(prefix: str = "sw-") -> tuple[str, str, str]:
        names = original(prefix)
        created.extend(names)
        return names

    monkeypatch.setattr(netns, "new_names", recording)
    yield created
    assert created, "the test created no namespace"
    left = set(created) & set(netns.list_namespaces())
    assert not left, f"namespaces left behind: {sorted(left)}"


def nat_table(*rules: str) -> str:
    """An iptables-save `*nat` table with its four built-in chains and `rules`."""
    chains = "".join(f":{c} ACCEPT [0:0]\n" for c in ("PREROUTING", "INPUT", "OUTPUT",
                                                       "POSTROUTING"))
    return "*nat\n" + chains + "".join(f"{rule}\n" for rule in rules) + "COMMIT\n"


@pytest.fixture
def netns() -> Iterator[str]:
    """A bare network namespace of the test's own, deleted afterwards."""
    if shutil.which("iptables-restore") is None or shutil.which("ip") is None:
        pytest.skip("iptables-restore / ip not installed")
    name = f"swtest{uuid.uuid4().hex[:8]}"
    if subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode:
        pytest.skip("cannot create a network namespace (needs root)")
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
