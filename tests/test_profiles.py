"""Knob sources: profiles, sysctl files, --memory, precedence, `statewall sysctl`."""

from __future__ import annotations

from pathlib import Path

import pytest

from statewall.cli import main
from statewall.config import SysctlError, Sysctls
from statewall.profiles import (
    effective_config,
    parse_memory,
    parse_sysctl_text,
    table_sizes,
)

# Lines as `sysctl -a` prints them in a fresh 6.18 namespace (abridged).
SYSCTL_A = """\
net.core.somaxconn = 4096
net.ipv4.ip_forward = 1
net.ipv4.ipfrag_time = 30
net.netfilter.nf_conntrack_count = 17
net.netfilter.nf_conntrack_max = 65536
net.netfilter.nf_conntrack_tcp_loose = 0
net.netfilter.nf_hooks_lwtunnel = 0
net.netfilter.nf_log.0 = NONE
net.netfilter.nf_log.2 = nf_log_ipv4
"""


def test_sysctl_a_output_loads_as_is() -> None:
    values = parse_sysctl_text(SYSCTL_A, "dump.txt")
    assert values == {"ipfrag_time": 30, "nf_conntrack_max": 65536, "nf_conntrack_tcp_loose": 0}


def test_sysctl_conf_syntax() -> None:
    text = ("# comment\n; another\n\n-net.netfilter.nf_conntrack_tcp_be_liberal=1\n"
            "net/netfilter/nf_conntrack_udp_timeout = 10\nnet.nf_conntrack_max = 100\n"
            "kernel.panic = 3\n")
    assert parse_sysctl_text(text, "s.conf") == {
        "nf_conntrack_tcp_be_liberal": 1, "nf_conntrack_udp_timeout": 10,
        "nf_conntrack_max": 100}


def test_unknown_netfilter_key_names_file_and_line() -> None:
    text = "net.ipv4.ip_forward = 1\nnet.netfilter.nf_conntrack_tcp_lose = 0\n"
    with pytest.raises(SysctlError, match=r"^s\.conf:2: unknown sysctl .*nf_conntrack_tcp_loose"):
        parse_sysctl_text(text, "s.conf")


def test_bad_value_names_file_and_line() -> None:
    with pytest.raises(SysctlError, match=r"^s\.conf:1: .*not an integer"):
        parse_sysctl_text("net.netfilter.nf_conntrack_max = lots\n", "s.conf")


def test_linux_24_profile_timeouts() -> None:
    cfg = effective_config("linux-2.4")
    assert cfg.nf_conntrack_tcp_timeout_established == 432000
    assert (cfg.nf_conntrack_tcp_timeout_syn_sent, cfg.nf_conntrack_tcp_timeout_syn_recv,
            cfg.nf_conntrack_tcp_timeout_fin_wait, cfg.nf_conntrack_tcp_timeout_time_wait,
            cfg.nf_conntrack_tcp_timeout_close, cfg.nf_conntrack_tcp_timeout_close_wait,
            cfg.nf_conntrack_tcp_timeout_last_ack) == (120, 60, 120, 120, 10, 60, 30)
    assert effective_config("linux-6") == Sysctls()


def test_precedence_profile_then_files_then_assignments(tmp_path: Path) -> None:
    first, second = tmp_path / "a.conf", tmp_path / "b.conf"
    first.write_text("net.netfilter.nf_conntrack_tcp_timeout_close = 20\n"
                     "net.netfilter.nf_conntrack_udp_timeout = 40\n")
    second.write_text("net.netfilter.nf_conntrack_udp_timeout = 50\n")
    cfg = effective_config("linux-2.4", [str(first), str(second)],
                           ["nf_conntrack_udp_timeout=60"])
    assert cfg.nf_conntrack_tcp_timeout_close == 20  # the file beat the profile's 10
    assert cfg.nf_conntrack_udp_timeout == 60


@pytest.mark.parametrize(("memory", "sizes"), [
    (23 << 30, (262144, 262144, 4096)),  # the reference machine (conntrack-core.md §7.1)
    (2 << 30, (65536, 65536, 1024)),
    (512 << 20, (4096, 4096, 64)),
    (64 << 20, (1024, 1024, 16)),
])
def test_linux_6_table_sizes_from_memory(memory: int, sizes: tuple[int, int, int]) -> None:
    got = table_sizes("linux-6", memory)
    assert (got["nf_conntrack_buckets"], got["nf_conntrack_max"],
            got["nf_conntrack_expect_max"]) == sizes


def test_linux_24_rule_of_thumb_8192_per_128_mib() -> None:
    assert table_sizes("linux-2.4", 128 << 20)["nf_conntrack_max"] == 8192
    assert table_sizes("linux-2.4", 512 << 20)["nf_conntrack_max"] == 32768


def test_memory_sizes() -> None:
    assert parse_memory("512M") == 512 << 20
    assert parse_memory("1.5GiB") == 3 << 29
    assert parse_memory("4096") == 4096
    with pytest.raises(SysctlError):
        parse_memory("lots")


def test_sysctl_command_prints_effective_values(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    conf = tmp_path / "s.conf"
    conf.write_text("net.netfilter.nf_conntrack_udp_timeout = 44\n")
    assert main(["sysctl", "--profile", "linux-2.4", "--memory", "128M",
                 "--sysctl-file", str(conf), "--sysctl", "nf_conntrack_icmp_timeout=9"]) == 0
    out = capsys.readouterr().out
    assert "net.netfilter.nf_conntrack_max = 8192\n" in out
    assert "net.netfilter.nf_conntrack_udp_timeout = 44\n" in out
    assert "net.netfilter.nf_conntrack_icmp_timeout = 9\n" in out
    assert "net.netfilter.nf_conntrack_tcp_timeout_close = 10\n" in out


def test_bad_sysctl_file_is_a_usage_error(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    conf = tmp_path / "s.conf"
    conf.write_text("net.netfilter.nf_conntrack_nope = 1\n")
    assert main(["sysctl", "--sysctl-file", str(conf)]) == 2
    assert f"{conf}:1: unknown sysctl" in capsys.readouterr().err
