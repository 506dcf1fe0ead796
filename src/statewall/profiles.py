"""Where a replay's knobs come from: a built-in profile, sysctl files, --sysctl.

Precedence, lowest first: the profile (`linux-6` by default), then each
`--sysctl-file` in the order given, then each `--sysctl NAME=VALUE`. With
`--memory`, the table sizes are those the profile's kernel would choose for
that much RAM; an explicit value from a file or `--sysctl` still wins.

Profiles.

* `linux-6`: the Linux 6.18 defaults of `Sysctls` (conntrack-core.md §8.1).
  Table sizes from memory follow nf_conntrack_init_start: buckets =
  RAM / 16 KiB / 8-byte heads, but 262144 above 4 GiB and 65536 above
  1 GiB, at least 1024, rounded up to a multiple of 512; nf_conntrack_max =
  buckets; nf_conntrack_expect_max = max(buckets / 256, 1) * 4.
* `linux-2.4`: the TCP timeouts of the 2.4-era ip_conntrack table (NONE
  30 min, ESTABLISHED 5 days, SYN_SENT 2 min, SYN_RECV 60 s, FIN_WAIT 2 min,
  TIME_WAIT 2 min, CLOSE 10 s, CLOSE_WAIT 60 s, LAST_ACK 30 s, LISTEN 2 min).
  LISTEN became SYN_SENT2 (simultaneous open) in later kernels, which has
  no sysctl and keeps 2 min anyway; NONE has no equivalent (no entry ever
  rests in NONE). The sizing rule is the 2.4 one, 8192 entries per 128 MiB:
  buckets = RAM / 128 KiB (4-byte list heads on the 32-bit machines of the
  time, 16 KiB of RAM per head), max = 8 x buckets. Everything the 2.4
  table did not name keeps its 6.18 value.

Sysctl files are `sysctl -a` output or sysctl.conf(5) text: `name = value`
(or `name=value`), `#`/`;` comments, a leading `-` (ignore failures),
dotted or slashed names. Keys outside netfilter and IP fragmentation are
ignored, as are the netfilter sysctls statewall has no use for (read-only
counters, logging, flowtables, knobs of older kernels); any other
`net.netfilter.` key is an error naming the file and line, so a typo never
goes unnoticed.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

from statewall.config import (
    SysctlError,
    Sysctls,
    canonical_name,
    check_threshold,
    parse_assignment,
    parse_value,
)

DEFAULT_PROFILE = "linux-6"

_LINUX_24_TIMEOUTS: dict[str, int] = {
    "nf_conntrack_tcp_timeout_established": 5 * 24 * 3600,
    "nf_conntrack_tcp_timeout_syn_sent": 120,
    "nf_conntrack_tcp_timeout_syn_recv": 60,
    "nf_conntrack_tcp_timeout_fin_wait": 120,
    "nf_conntrack_tcp_timeout_time_wait": 120,
    "nf_conntrack_tcp_timeout_close": 10,
    "nf_conntrack_tcp_timeout_close_wait": 60,
    "nf_conntrack_tcp_timeout_last_ack": 30,
}

# Real netfilter sysctls (6.18 and older kernels) that do not change a replay.
_NOT_MODELLED_PREFIXES = (
    "nf_conntrack_count", "nf_log", "nf_hooks_lwtunnel", "nf_conntrack_helper",
    "nf_conntrack_dccp_", "nf_conntrack_udplite_", "nf_flowtable_",
    "nf_conntrack_sctp_timeout_heartbeat_acked", "nf_conntrack_tcp_timeout_listen",
)
_ALIASES = {"net.nf_conntrack_max": "nf_conntrack_max"}
_MODELLED_IPV4 = {Sysctls.full_name(f.name) for f in fields(Sysctls)
                  if f.name.startswith("ipfrag_") or f.name == "accept_source_route"}


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str
    values: Mapping[str, int]
    sizing: str  # "linux-6" or "linux-2.4": how table sizes follow memory


PROFILES: dict[str, Profile] = {
    "linux-6": Profile("linux-6", "Linux 6.18 defaults", {}, "linux-6"),
    "linux-2.4": Profile("linux-2.4", "the 2.4-era TCP timeouts and table sizing",
                         _LINUX_24_TIMEOUTS, "linux-2.4"),
}


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise SysctlError(f"unknown profile {name!r} (known: {known})") from None


def table_sizes(sizing: str, memory: int) -> dict[str, int]:
    """nf_conntrack_buckets, _max and _expect_max a kernel picks for `memory` bytes."""
    if memory <= 0:
        raise SysctlError(f"--memory {memory}: expected a positive size")
    if sizing == "linux-2.4":
        buckets = max(memory // (128 * 1024), 1)
        return {"nf_conntrack_buckets": buckets, "nf_conntrack_max": 8 * buckets,
                "nf_conntrack_expect_max": Sysctls().nf_conntrack_expect_max}
    gib = 1 << 30
    buckets = memory // 16384 // 8
    if memory > 4 * gib:
        buckets = 262144
    elif memory > gib:
        buckets = 65536
    buckets = max(buckets, 1024)
    buckets = -(-buckets // 512) * 512
    return {"nf_conntrack_buckets": buckets, "nf_conntrack_max": buckets,
            "nf_conntrack_expect_max": max(buckets // 256, 1) * 4}


def parse_memory(text: str) -> int:
    """`512M`, `4G`, `1.5GiB`, `65536K` or plain bytes -> bytes (binary units)."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = raw[-1:] if raw[-1:] in units and raw[-1:] else ""
    number = raw[:-1] if unit else raw
    try:
        value = float(number) * units[unit]
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise SysctlError(f"--memory {text!r}: expected a size such as 512M or 4G")
    return int(value)


# --- sysctl files -------------------------------------------------------------------


def parse_sysctl_text(text: str, source: str,
                      current: Mapping[str, int] | None = None) -> dict[str, int]:
    """The statewall knobs set by a `sysctl -a` dump or a sysctl.conf, in file order.

    Each value is checked as the kernel checks a write, against the knobs as
    `current` (else the defaults) and the file's earlier lines leave them.
    """
    values: dict[str, int] = {}
    state = dict(current or {})
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        name, sep, value = line.lstrip("-").partition("=")
        if not sep:
            raise SysctlError(f"{source}:{number}: expected NAME = VALUE, got {raw.strip()!r}")
        field_name = _knob(name.strip().replace("/", "."), source, number)
        if field_name is not None:
            try:
                values[field_name] = state[field_name] = assign(field_name, value, state)
            except SysctlError as error:
                raise SysctlError(f"{source}:{number}: {error}") from None
    return values


def assign(field_name: str, raw: object, current: Mapping[str, int]) -> int:
    """A knob's value checked as the kernel checks a write of it after `current`."""
    value = parse_value(field_name, raw)
    check_threshold(field_name, value, current)
    return value


def _knob(name: str, source: str, number: int) -> str | None:
    """The Sysctls field a key sets; None for keys a replay ignores."""
    if name in _ALIASES:
        return _ALIASES[name]
    if name in _MODELLED_IPV4:
        return canonical_name(name)
    if not name.startswith("net.netfilter."):
        return None
    bare = name.removeprefix("net.netfilter.")
    if bare.startswith(_NOT_MODELLED_PREFIXES):
        return None
    try:
        return canonical_name(name)
    except SysctlError as error:
        raise SysctlError(f"{source}:{number}: {error}") from None


def load_sysctl_file(path: str | os.PathLike[str],
                     current: Mapping[str, int] | None = None) -> dict[str, int]:
    # Undecodable bytes become U+FFFD: a binary file fails on its first line, named.
    with open(path, encoding="utf-8", errors="replace") as f:
        return parse_sysctl_text(f.read(), os.fspath(path), current)


# --- putting it together ---------------------------------------------------------------


def effective_values(profile_name: str = DEFAULT_PROFILE, files: Iterable[str] = (),
                     assignments: Iterable[str] = (), memory: int | None = None) -> dict[str, int]:
    """Every knob that differs from nothing-given, lowest precedence first."""
    chosen = profile(profile_name)
    values = dict(chosen.values)
    if memory is not None:
        values.update(table_sizes(chosen.sizing, memory))
    for path in files:
        values.update(load_sysctl_file(path, values))
    for text in assignments:
        name, value = parse_assignment(text)
        check_threshold(name, value, values)
        values[name] = value
    return values


def effective_config(profile_name: str = DEFAULT_PROFILE, files: Iterable[str] = (),
                     assignments: Iterable[str] = (), memory: int | None = None) -> Sysctls:
    return Sysctls().with_values(effective_values(profile_name, files, assignments, memory))


def add_profile_options(parser: argparse.ArgumentParser, *, with_sysctl: bool = False) -> None:
    """--profile, --sysctl-file and --memory (and --sysctl when the parser lacks it)."""
    parser.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES),
                        help="built-in knob values to start from (default linux-6)")
    parser.add_argument("--sysctl-file", action="append", default=[], metavar="FILE",
                        help="`sysctl -a` output or a sysctl.conf, applied after the profile "
                             "(repeatable)")
    parser.add_argument("--memory", metavar="SIZE",
                        help="size the tables as the profile's kernel would for this much RAM "
                             "(e.g. 512M, 4G)")
    if with_sysctl:
        parser.add_argument("--sysctl", action="append", default=[], metavar="NAME=VALUE",
                            help="set a knob last, e.g. nf_conntrack_tcp_loose=0 (repeatable)")


def values_from_args(args: argparse.Namespace) -> dict[str, int]:
    """The knobs the options of `add_profile_options` (plus --sysctl) ask for."""
    memory = parse_memory(args.memory) if getattr(args, "memory", None) else None
    return effective_values(getattr(args, "profile", DEFAULT_PROFILE),
                            getattr(args, "sysctl_file", ()), getattr(args, "sysctl", ()),
                            memory)


def changed_values(values: Mapping[str, int]) -> dict[str, int]:
    """Only the knobs that differ from the 6.18 defaults (what a kernel must be told)."""
    defaults = Sysctls()
    return {name: value for name, value in values.items() if getattr(defaults, name) != value}


__all__ = [
    "DEFAULT_PROFILE", "PROFILES", "Profile", "add_profile_options", "changed_values",
    "effective_config", "effective_values", "load_sysctl_file", "parse_memory",
    "parse_sysctl_text", "profile", "table_sizes", "values_from_args",
]

