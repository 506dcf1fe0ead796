"""The knobs: names, defaults and parsing, checked against a fresh kernel namespace."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from statewall.config import SysctlError, Sysctls, canonical_name, parse_assignment


def test_prefixed_and_bare_names_are_the_same_knob() -> None:
    assert canonical_name("net.netfilter.nf_conntrack_tcp_loose") == "nf_conntrack_tcp_loose"
    assert canonical_name("nf_conntrack_tcp_loose") == "nf_conntrack_tcp_loose"
    assert canonical_name("net/netfilter/nf_conntrack_udp_timeout") == "nf_conntrack_udp_timeout"
    assert canonical_name("net.ipv4.ipfrag_time") == "ipfrag_time"


def test_unknown_name_suggests_the_nearest_known_one() -> None:
    with pytest.raises(SysctlError, match="did you mean net.netfilter.nf_conntrack_tcp_loose"):
        canonical_name("nf_conntrack_tcp_lose")


def test_assignment_parsing_rejects_garbage() -> None:
    assert parse_assignment("nf_conntrack_tcp_be_liberal=1") == ("nf_conntrack_tcp_be_liberal", 1)
    with pytest.raises(SysctlError, match="expected NAME=VALUE"):
        parse_assignment("nf_conntrack_tcp_be_liberal")
    with pytest.raises(SysctlError, match="not an integer"):
        parse_assignment("nf_conntrack_udp_timeout=abc")


def test_with_values_returns_a_changed_copy() -> None:
    base = Sysctls()
    changed = base.with_values({"net.netfilter.nf_conntrack_udp_timeout": "3"})
    assert changed.nf_conntrack_udp_timeout == 3
    assert base.nf_conntrack_udp_timeout == 30


@pytest.mark.kernel
def test_defaults_equal_a_fresh_kernel_namespace(kernel: None) -> None:
    """A new netns gets the compiled-in defaults: they must equal ours."""
    name = f"sw-cfg-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        # Conntrack's sysctls appear once the module is used in some namespace.
        subprocess.run(["ip", "netns", "exec", name, "iptables", "-A", "INPUT", "-m",
                        "conntrack", "--ctstate", "INVALID", "-j", "ACCEPT"], check=True)
        seen = {}
        for full, _value in Sysctls().items():
            path = Path("/proc/sys") / full.replace(".", "/")
            result = subprocess.run(["ip", "netns", "exec", name, "cat", str(path)],
                                    capture_output=True, text=True)
            if result.returncode == 0:
                seen[full] = int(result.stdout.split()[0])
        ours = dict(Sysctls().items())
        # Table sizes depend on the machine's memory; the rest are fixed defaults.
        for sized in ("nf_conntrack_max", "nf_conntrack_buckets", "nf_conntrack_expect_max"):
            seen.pop(f"net.netfilter.{sized}", None)
        assert len(seen) >= 40
        assert {k: ours[k] for k in seen} == seen
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_core_reads_the_same_knobs() -> None:
    """One list of knobs: the compiled core knows exactly the names Python accepts."""
    from statewall import _core

    assert _core.sysctl_names() == Sysctls.names()
