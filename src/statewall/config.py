"""Every tunable, named after the sysctl that sets it in Linux, with 6.x defaults.

A user who knows `sysctl -a` knows these names. The configuration is frozen:
a replay runs under one set of values, and a what-if comparison builds a
second object with `Sysctls.with_values`. Values are integers exactly as
`/proc/sys` shows them (seconds for timeouts, booleans as 0/1).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields, replace
from typing import Any

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
            changes[field_name] = parse_value(name, raw)
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
    nearest = difflib.get_close_matches(bare, known, n=1, cutoff=0.0)
    hint = f"; did you mean {Sysctls.full_name(nearest[0])}?" if nearest else ""
    raise SysctlError(f"unknown sysctl {name!r}{hint}")


def parse_value(name: str, raw: Any) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise SysctlError(f"sysctl {name}: value {raw!r} is not an integer") from None
    if value < 0:
        raise SysctlError(f"sysctl {name}: value {value} is negative")
    return value


def parse_assignment(text: str) -> tuple[str, int]:
    """Parse `NAME=VALUE` as given to `--sysctl`."""
    name, sep, raw = text.partition("=")
    if not sep:
        raise SysctlError(f"--sysctl {text!r}: expected NAME=VALUE")
    return canonical_name(name), parse_value(name, raw)


DEFAULTS = Sysctls()
