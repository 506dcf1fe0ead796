"""statewall takes a sysctl value exactly when the live kernel takes it.

For every knob a network namespace may write, each value of a table holding the
boundaries of every range the kernel's handlers enforce (u8 bounds, the jiffies
limit INT_MAX / HZ, int and unsigned long limits, the fragment thresholds bound by
each other) is written to /proc/sys in a fresh namespace, one value at a time
from the defaults, and statewall's decision for `--sysctl NAME=VALUE` must be the
kernel's. nf_conntrack_max, _buckets and _expect_max are read-only in a
namespace and cannot be compared here.

One documented difference: the kernel also stores a negative timeout (and a
negative int), which statewall refuses with a message saying so.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from statewall.config import HZ, SysctlError, Sysctls
from statewall.oracle import netns
from statewall.profiles import effective_values

INT_MAX = 2**31 - 1
VALUES = (-1, 0, 1, 2, 3, 255, 256, INT_MAX // 250, INT_MAX // 250 + 1, INT_MAX // 1000,
          INT_MAX // 1000 + 1, 3145727, 3145728, 4194304, 4194305, INT_MAX, INT_MAX + 1,
          2**64 - 1, 2**64)
READ_ONLY_IN_NAMESPACE = {"nf_conntrack_max", "nf_conntrack_buckets", "nf_conntrack_expect_max"}


def statewall_takes(name: str, value: int) -> str:
    try:
        effective_values(assignments=[f"{name}={value}"])
    except SysctlError as error:
        return "negative" if "does not model" in str(error) else "refused"
    return "taken"


def kernel_takes(namespace: str, path: Path, value: int) -> str:
    with netns.entered(namespace):
        before = path.read_text()
        try:
            path.write_text(f"{value}\n")
        except OSError:
            return "refused"
        path.write_text(before)  # each value is tried from the defaults
    return "taken"


@pytest.fixture
def namespace(kernel: None, made: list[str]) -> Iterator[str]:
    """A namespace with conntrack and IPv6 defragmentation loaded (their keys appear then)."""
    name = netns.new_names("sw-")[0]
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for tool in ("iptables", "ip6tables"):
            netns.run([tool, "-A", "INPUT", "-m", "conntrack", "--ctstate", "NEW"], name)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def test_statewall_takes_the_values_the_kernel_takes(namespace: str) -> None:
    with netns.entered(namespace):
        tick = Path("/proc/sys/net/netfilter/nf_conntrack_udp_timeout")
        assert tick.exists(), "nf_conntrack did not load in the namespace"
    disagreements = []
    for field in Sysctls.names():
        if field in READ_ONLY_IN_NAMESPACE:
            continue
        path = Path("/proc/sys/" + Sysctls.full_name(field).replace(".", "/"))
        for value in VALUES:
            kernel = kernel_takes(namespace, path, value)
            ours = statewall_takes(field, value)
            if ours == "negative" and kernel == "taken" and value < 0:
                continue  # the documented difference
            if ours != kernel:
                disagreements.append(f"{field}={value}: kernel {kernel}, statewall {ours}")
    assert not disagreements, "\n".join(disagreements)


def test_the_kernel_refuses_a_loose_value_of_2(namespace: str) -> None:
    """The case users meet first: `sysctl -w net.netfilter.nf_conntrack_tcp_loose=2`."""
    path = Path("/proc/sys/net/netfilter/nf_conntrack_tcp_loose")
    assert kernel_takes(namespace, path, 2) == statewall_takes("nf_conntrack_tcp_loose", 2) \
        == "refused"


def test_the_kernel_ticks_at_the_rate_statewall_models(namespace: str) -> None:
    """The longest timeout depends on HZ: the kernel takes INT_MAX // HZ seconds, not one more."""
    path = Path("/proc/sys/net/netfilter/nf_conntrack_generic_timeout")
    assert kernel_takes(namespace, path, INT_MAX // HZ) == "taken"
    assert kernel_takes(namespace, path, INT_MAX // HZ + 1) == "refused"
