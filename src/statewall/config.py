"""Every tunable, named after the sysctl that sets it in Linux, with 6.x defaults.

A user who knows `sysctl -a` knows these names. The configuration is frozen:
a replay runs under one set of values, and a what-if comparison builds a
second object with `Sysctls.with_values`. Values are integers exactly as
`/proc/sys` shows them (seconds for timeouts, booleans as 0/1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from statewall.wording import nearest

NETFILTER_PREFIX = "net.netfilter."
IPV4_PREFIX = "net.ipv4."
IPV4_ALL_PREFIX = "net.ipv4.conf.all."


class SysctlError(ValueError):
    """An unknown sysctl name or a value it cannot take."""


@dataclass(frozen=True, slots=True)
class Sysctls:
    """The per-network-namespace knobs of conntrack and defragmentation.

    Defaults are those read from a fresh namespace of Linux 6.18 (they equal the
    compiled-in tables of nf_conntrack_proto_*.c and nf_conntrack_standalone.c).
    """

    # Timeouts (seconds).
    nf_conntrack_generic_timeout: int = 600
    nf_conntrack_tcp_timeout_syn_sent: int = 120
    nf_conntrack_tcp_timeout_syn_recv: int = 60
    nf_conntrack_tcp_timeout_established: int = 432000
    nf_conntrack_tcp_timeout_fin_wait: int = 120
    nf_conntrack_tcp_timeout_close_wait: int = 60
    nf_conntrack_tcp_timeout_last_ack: int = 30
    nf_conntrack_tcp_timeout_time_wait: int = 120
    nf_conntrack_tcp_timeout_close: int = 10
    nf_conntrack_tcp_timeout_max_retrans: int = 300
    nf_conntrack_tcp_timeout_unacknowledged: int = 300
    nf_conntrack_udp_timeout: int = 30
    nf_conntrack_udp_timeout_stream: int = 120
    nf_conntrack_icmp_timeout: int = 30
    nf_conntrack_icmpv6_timeout: int = 30
    nf_conntrack_gre_timeout: int = 30
    nf_conntrack_gre_timeout_stream: int = 180
    nf_conntrack_sctp_timeout_closed: int = 10
    nf_conntrack_sctp_timeout_cookie_wait: int = 3
    nf_conntrack_sctp_timeout_cookie_echoed: int = 3
    nf_conntrack_sctp_timeout_established: int = 210
    nf_conntrack_sctp_timeout_shutdown_sent: int = 3
    nf_conntrack_sctp_timeout_shutdown_recd: int = 3
    nf_conntrack_sctp_timeout_shutdown_ack_sent: int = 3
    nf_conntrack_sctp_timeout_heartbeat_sent: int = 30
    # TCP behaviour.
    nf_conntrack_tcp_loose: int = 1
    nf_conntrack_tcp_be_liberal: int = 0
    nf_conntrack_tcp_ignore_invalid_rst: int = 0
    nf_conntrack_tcp_max_retrans: int = 3
    # Core.
    nf_conntrack_checksum: int = 1
    nf_conntrack_log_invalid: int = 0
    nf_conntrack_acct: int = 0
    nf_conntrack_timestamp: int = 0
    nf_conntrack_events: int = 2
    nf_conntrack_max: int = 262144
    nf_conntrack_buckets: int = 262144
    nf_conntrack_expect_max: int = 4096
    # IPv6 defragmentation (nf_defrag_ipv6 keeps its own limits).
    nf_conntrack_frag6_timeout: int = 60
    nf_conntrack_frag6_high_thresh: int = 4194304
    nf_conntrack_frag6_low_thresh: int = 3145728
    # IPv4 defragmentation (nf_defrag_ipv4 uses the stack's ip_defrag settings).
    ipfrag_time: int = 30
    ipfrag_high_thresh: int = 4194304
    ipfrag_low_thresh: int = 3145728
    ipfrag_max_dist: int = 64
    # IPv4 receive path (ip_rcv_options): source-routed datagrams are dropped
    # unless `all` allows them (interfaces allow them by default).
    accept_source_route: int = 0

    @staticmethod
    def full_name(field_name: str) -> str:
        """The name as `sysctl -a` prints it."""
        if field_name == "accept_source_route":
            return IPV4_ALL_PREFIX + field_name
        prefix = IPV4_PREFIX if field_name.startswith("ipfrag_") else NETFILTER_PREFIX
        return prefix + field_name

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def items(self) -> list[tuple[str, int]]:
        """(full sysctl name, value) pairs in declaration order."""
        return [(self.full_name(f.name), getattr(self, f.name)) for f in fields(self)]

    def bare_items(self) -> list[tuple[str, int]]:
        """(field name, value) pairs in declaration order, as the core takes them."""
        return [(f.name, getattr(self, f.name)) for f in fields(self)]

    def with_values(self, values: dict[str, Any]) -> Sysctls:
        """A copy with some knobs changed; names may carry their `net.…` prefix."""
        changes: dict[str, int] = {}
        for name, raw in values.items():
            field_name = canonical_name(name)
            changes[field_name] = parse_value(field_name, raw)
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class HelperParams:
    """The helpers' module parameters (/sys/module/nf_conntrack_*/parameters).

    Kernel defaults; unlike sysctls they are global to the machine, which is
    why they are not in `Sysctls`.
    """

    ftp_loose: bool = False
    irc_max_dcc_channels: int = 8
    irc_dcc_timeout: int = 300
    amanda_master_timeout: int = 300


def canonical_name(name: str) -> str:
    """Map `net.netfilter.nf_conntrack_x`, `nf_conntrack_x`, `net/netfilter/...` to a field."""
    bare = name.strip().replace("/", ".")
    for prefix in (NETFILTER_PREFIX, IPV4_ALL_PREFIX, IPV4_PREFIX):
        if bare.startswith(prefix):
            bare = bare[len(prefix):]
            break
    known = Sysctls.names()
    if bare in known:
        return bare
    found = nearest(bare, known, cutoff=0.0)
    hint = f"; did you mean {Sysctls.full_name(found)}?" if found else ""
    raise SysctlError(f"unknown sysctl {name!r}{hint}")


# --- the values the kernel takes ---------------------------------------------------
#
# Writing a value outside these ranges fails with EINVAL in Linux 6.x (the knobs
# a network namespace may write are checked against the live kernel by
# tests/test_sysctl_range_kernel.py). The handlers:
# proc_dou8vec_minmax (a u8 with optional bounds), proc_dointvec_jiffies (seconds
# up to INT_MAX / HZ, kept as jiffies), proc_dointvec[_minmax] (an int) and
# proc_doulongvec_minmax (an unsigned long bounded by the other threshold).
# The kernel also takes negative timeouts and negative proc_dointvec values;
# statewall keeps knobs unsigned and refuses them (README, "The knobs").

HZ = 250  # the tick rate statewall models (CONFIG_HZ of Debian's and Fedora's kernels)
INT_MAX = 2**31 - 1
JIFFIES_MAX = INT_MAX // HZ  # the longest timeout in seconds proc_dointvec_jiffies takes
ULONG_MAX = 2**64 - 1

_U8_BOOL = (0, 1)
_RANGES: dict[str, tuple[int, int]] = {
    "nf_conntrack_tcp_loose": _U8_BOOL,
    "nf_conntrack_tcp_be_liberal": _U8_BOOL,
    "nf_conntrack_tcp_ignore_invalid_rst": _U8_BOOL,
    "nf_conntrack_tcp_max_retrans": (0, 255),
    "nf_conntrack_checksum": _U8_BOOL,
    "nf_conntrack_log_invalid": (0, 255),
    "nf_conntrack_acct": _U8_BOOL,
    "nf_conntrack_timestamp": _U8_BOOL,
    "nf_conntrack_events": (0, 2),
    # Read-only inside a network namespace; from the host, proc_dointvec. A hash
    # table of 0 buckets cannot be resized to.
    "nf_conntrack_max": (0, INT_MAX),
    "nf_conntrack_buckets": (1, INT_MAX),
    "nf_conntrack_expect_max": (0, INT_MAX),
    "nf_conntrack_frag6_high_thresh": (0, ULONG_MAX),
    "nf_conntrack_frag6_low_thresh": (0, ULONG_MAX),
    "ipfrag_high_thresh": (0, ULONG_MAX),
    "ipfrag_low_thresh": (0, ULONG_MAX),
    "ipfrag_max_dist": (0, INT_MAX),
    "accept_source_route": (0, INT_MAX),
}
# proc_dointvec knobs: the kernel stores a negative value too.
_SIGNED_INTS = frozenset({"accept_source_route", "nf_conntrack_max", "nf_conntrack_expect_max"})
# Each threshold is bounded by the other one's value at the time of the write:
# low <= high, so raising both means raising high first.
THRESHOLD_PAIRS: dict[str, tuple[str, bool]] = {
    "ipfrag_high_thresh": ("ipfrag_low_thresh", True),
    "ipfrag_low_thresh": ("ipfrag_high_thresh", False),
    "nf_conntrack_frag6_high_thresh": ("nf_conntrack_frag6_low_thresh", True),
    "nf_conntrack_frag6_low_thresh": ("nf_conntrack_frag6_high_thresh", False),
}


def value_range(field_name: str) -> tuple[int, int]:
    """The values a knob takes; the knobs not listed are the timeouts (in seconds,
    proc_dointvec_jiffies)."""
    return _RANGES.get(field_name, (0, JIFFIES_MAX))


def parse_value(field_name: str, raw: Any) -> int:
    """A knob's value from text, refused where the kernel answers EINVAL."""
    shown = Sysctls.full_name(field_name)
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise SysctlError(f"sysctl {shown}: value {raw!r} is not an integer") from None
    low, high = value_range(field_name)
    signed = field_name not in _RANGES or field_name in _SIGNED_INTS
    if value < 0 and signed:
        raise SysctlError(f"sysctl {shown}={value}: statewall takes {low} to {high} (the "
                          "kernel also takes a negative value, which statewall does not model)")
    if not low <= value <= high:
        accepted = f"at most {high}" if signed else f"{low} to {high}"
        raise SysctlError(f"sysctl {shown}={value}: out of range, the kernel accepts {accepted}")
    return value


def check_threshold(field_name: str, value: int, current: Mapping[str, int]) -> None:
    """The kernel's bound between a fragment memory threshold and its partner, as the
    partner is set now (`current`, else the 6.18 default)."""
    pair = THRESHOLD_PAIRS.get(field_name)
    if pair is None:
        return
    partner, is_high = pair
    other = current.get(partner, getattr(DEFAULTS, partner))
    if (value < other) if is_high else (value > other):
        bound = "at least" if is_high else "at most"
        raise SysctlError(f"sysctl {Sysctls.full_name(field_name)}={value}: out of range, "
                          f"the kernel accepts {bound} {Sysctls.full_name(partner)} ({other})")


def parse_assignment(text: str) -> tuple[str, int]:
    """Parse `NAME=VALUE` as given to `--sysctl`."""
    name, sep, raw = text.partition("=")
    if not sep:
        raise SysctlError(f"--sysctl {text!r}: expected NAME=VALUE")
    field_name = canonical_name(name)
    return field_name, parse_value(field_name, raw)


DEFAULTS = Sysctls()
