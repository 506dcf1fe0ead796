"""Sysctl values outside what the kernel takes are refused in one line saying the
accepted range, from --sysctl (exit 2) and from a --sysctl-file (FILE:LINE, exit 2).
The ranges themselves are compared with the live kernel in
test_sysctl_range_kernel.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from statewall.cli import EXIT_OK, EXIT_USAGE, main
from statewall.config import JIFFIES_MAX, SysctlError
from statewall.profiles import effective_values


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("assignment", "message"), [
    ("nf_conntrack_tcp_loose=2", "sysctl net.netfilter.nf_conntrack_tcp_loose=2: out of range, "
                                 "the kernel accepts 0 to 1"),
    ("nf_conntrack_events=3", "sysctl net.netfilter.nf_conntrack_events=3: out of range, "
                              "the kernel accepts 0 to 2"),
    ("nf_conntrack_tcp_max_retrans=256", "sysctl net.netfilter.nf_conntrack_tcp_max_retrans=256: "
                                         "out of range, the kernel accepts 0 to 255"),
    (f"nf_conntrack_udp_timeout={JIFFIES_MAX + 1}",
     f"sysctl net.netfilter.nf_conntrack_udp_timeout={JIFFIES_MAX + 1}: out of range, "
     f"the kernel accepts at most {JIFFIES_MAX}"),
    ("nf_conntrack_udp_timeout=-1",
     f"sysctl net.netfilter.nf_conntrack_udp_timeout=-1: statewall takes 0 to {JIFFIES_MAX} "
     "(the kernel also takes a negative value, which statewall does not model)"),
    ("net.ipv4.ipfrag_low_thresh=4194305",
     "sysctl net.ipv4.ipfrag_low_thresh=4194305: out of range, the kernel accepts at most "
     "net.ipv4.ipfrag_high_thresh (4194304)"),
    ("nf_conntrack_frag6_high_thresh=3145727",
     "sysctl net.netfilter.nf_conntrack_frag6_high_thresh=3145727: out of range, the kernel "
     "accepts at least net.netfilter.nf_conntrack_frag6_low_thresh (3145728)"),
])
def test_sysctl_out_of_range(assignment: str, message: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "sysctl", "--sysctl", assignment) == (EXIT_USAGE, "",
                                                             f"statewall: {message}\n")


@pytest.mark.parametrize("assignment", [
    "nf_conntrack_tcp_loose=0", "nf_conntrack_tcp_loose=1", "nf_conntrack_events=2",
    "nf_conntrack_log_invalid=255", f"nf_conntrack_tcp_timeout_established={JIFFIES_MAX}",
    "nf_conntrack_udp_timeout=0", "net.ipv4.ipfrag_low_thresh=4194304",
    "net.ipv4.ipfrag_high_thresh=3145728",
])
def test_sysctl_values_the_kernel_takes(assignment: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sysctl", "--sysctl", assignment)
    name, _, value = assignment.partition("=")
    assert code == EXIT_OK
    assert any(line.endswith(f"{name.removeprefix('net.ipv4.')} = {value}")
               for line in out.splitlines())


def test_thresholds_are_checked_in_the_order_written() -> None:
    """As with `sysctl -w`: raising both means raising the high threshold first."""
    raised = effective_values(assignments=["ipfrag_high_thresh=9000000",
                                           "ipfrag_low_thresh=8000000"])
    assert raised == {"ipfrag_high_thresh": 9000000, "ipfrag_low_thresh": 8000000}
    with pytest.raises(SysctlError, match="at most net.ipv4.ipfrag_high_thresh"):
        effective_values(assignments=["ipfrag_low_thresh=8000000", "ipfrag_high_thresh=9000000"])


def test_sysctl_file_out_of_range_names_file_and_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "99-fw.conf"
    conf.write_text("# firewall\nnet.netfilter.nf_conntrack_tcp_be_liberal = 1\n"
                    "net.netfilter.nf_conntrack_tcp_loose = 2\n")
    assert run(capsys, "sysctl", "--sysctl-file", conf) == (
        EXIT_USAGE, "", f"statewall: {conf}:3: sysctl net.netfilter.nf_conntrack_tcp_loose=2: "
                        "out of range, the kernel accepts 0 to 1\n")


def test_sysctl_file_thresholds_follow_earlier_files_and_lines(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "a.conf", tmp_path / "b.conf"
    first.write_text("net.ipv4.ipfrag_high_thresh = 9000000\n")
    second.write_text("net.ipv4.ipfrag_low_thresh = 8000000\n")
    code, out, _ = run(capsys, "sysctl", "--sysctl-file", first, "--sysctl-file", second)
    assert code == EXIT_OK and "net.ipv4.ipfrag_low_thresh = 8000000" in out.splitlines()
    code, _, err = run(capsys, "sysctl", "--sysctl-file", second)
    assert code == EXIT_USAGE and err.startswith(f"statewall: {second}:1: ")


def test_sysctl_file_sets_accept_source_route(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`sysctl -a` prints it with its full name; it is a knob statewall uses."""
    conf = tmp_path / "dump.txt"
    conf.write_text("net.ipv4.conf.all.accept_source_route = 1\n")
    code, out, _ = run(capsys, "sysctl", "--sysctl-file", conf)
    assert code == EXIT_OK and "net.ipv4.conf.all.accept_source_route = 1" in out.splitlines()


def test_binary_sysctl_file_is_one_line(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "blob"
    conf.write_bytes(b"\x7fELF\x02\x01\xff\xfe\n")
    code, out, err = run(capsys, "sysctl", "--sysctl-file", conf)
    assert (code, out) == (EXIT_USAGE, "")
    assert err.startswith(f"statewall: {conf}:1: expected NAME = VALUE, got ")
    assert len(err.splitlines()) == 1
