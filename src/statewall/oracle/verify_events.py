"""statewall's `conntrack -E` stream against the live kernel's, for the same packets.

How this works. As `verify.py` does, the datagrams of a capture are
normalised and injected one by one into a `KernelFirewall`, here with
`conntrack -E -o timestamp` listening from before the first packet, and the
same bytes go through a statewall `Firewall` that records its events. Both
streams are then compared line by line, with three allowances:

* timestamps are ignored (each side prints its own clock);
* a timeout column may differ by one second (both truncate, at instants a
  few microseconds apart);
* DESTROY events of expired entries are left out on both sides: the kernel
  reports them when its garbage collector happens to run, statewall at the
  instant of expiry. Destroys caused by packets (RST, reopen) carry a
  timeout column in the kernel's stream and are compared in order.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from statewall.config import Sysctls
from statewall.conntrack.early_drop import CAUSE_TIMEOUT
from statewall.conntrack.events import ConntrackEvent
from statewall.decode import decode_datagram
from statewall.engine import Firewall
from statewall.netfilter import RuleEngine
from statewall.oracle.kernel import KernelFirewall
from statewall.oracle.normalise import assign_sides, normalise
from statewall.oracle.verify import (
    FIREWALL_IFS,
    Datagram,
    load_rule_engine,
    read_capture,
    side_topology,
)

SLACK = 1  # seconds a timeout column may differ by


@dataclass(frozen=True, slots=True)
class EventsComparison:
    """Both event streams (comparable lines only) and where they part."""

    kernel: tuple[str, ...]
    statewall: tuple[str, ...]
    mismatches: tuple[tuple[int, str | None, str | None], ...] = field(default=())

    @property
    def same(self) -> bool:
        return not self.mismatches

    def summary_line(self) -> str:
        if self.same:
            return f"{len(self.kernel)} events agree"
        return (f"{len(self.mismatches)} of {max(len(self.kernel), len(self.statewall))} "
                "events differ")


def strip_timestamp(line: str) -> str:
    """`[sec.usec]\\t[NEW] ...` -> `[NEW] ...` (lines without the prefix unchanged)."""
    if line.startswith("[") and "\t" in line:
        return line.split("\t", 1)[1]
    return line


def split_event(line: str) -> tuple[str, int | None]:
    """A line as (text without its timeout column, timeout or None)."""
    words = line.split()
    if len(words) > 3 and words[3].isdigit():
        return " ".join(words[:3] + words[4:]), int(words[3])
    return " ".join(words), None


def is_expiry(line: str) -> bool:
    """A kernel DESTROY without a timeout column: the entry expired."""
    text, timeout = split_event(line)
    return text.startswith("[DESTROY]") and timeout is None


def comparable_kernel_lines(lines: Sequence[str]) -> list[str]:
    out = []
    for raw in lines:
        line = strip_timestamp(raw).strip()
        if line and not is_expiry(line):
            out.append(line)
    return out


def comparable_statewall_lines(events: Sequence[ConntrackEvent]) -> list[str]:
    return [event.line() for event in events
            if not event.expectation and event.cause != CAUSE_TIMEOUT]


def compare_event_lines(kernel: Sequence[str], statewall: Sequence[str],
                        slack: int = SLACK) -> EventsComparison:
    """Position by position: same text, timeouts within `slack`."""
    mismatches: list[tuple[int, str | None, str | None]] = []
    for i in range(max(len(kernel), len(statewall))):
        left = kernel[i] if i < len(kernel) else None
        right = statewall[i] if i < len(statewall) else None
        if left is None or right is None or not _agree(left, right, slack):
            mismatches.append((i, left, right))
    return EventsComparison(tuple(kernel), tuple(statewall), tuple(mismatches))


def _agree(left: str, right: str, slack: int) -> bool:
    (text_l, t_l), (text_r, t_r) = split_event(left), split_event(right)
    if text_l != text_r:
        return False
    if t_l is None or t_r is None:
        return t_l is t_r
    return abs(t_l - t_r) <= slack


def verify_events(
    datagrams: Sequence[Datagram],
    rules_v4: str | None,
    rules_v6: str | None = None,
    sysctls: Mapping[str, int] | None = None,
    *,
    rule_engine: RuleEngine | None = None,
) -> EventsComparison:
    """Inject `datagrams` into the kernel (listening to events) and statewall; compare."""
    values = dict(sysctls or {})
    if not datagrams:
        return EventsComparison((), ())
    fixed = normalise([d.data for d in datagrams])
    sides = assign_sides(fixed)
    topology = side_topology(fixed)
    engine = rule_engine or load_rule_engine(rules_v4, rules_v6, topology=topology)
    recorded: list[ConntrackEvent] = []
    firewall = Firewall(cfg=Sysctls().with_values(values), rules=engine, topology=topology,
                        event_sink=recorded.append)
    with KernelFirewall(rules_v4, rules_v6, values, watch_events=True, clock=time.time,
                        firewall_ifs=FIREWALL_IFS) as kernel:
        for item, data, side in zip(datagrams, fixed, sides, strict=True):
            observed = kernel.send(data, side)
            pkt = decode_datagram(data, index=item.number - 1, ts=observed.sent_at)
            pkt.iface_in = FIREWALL_IFS[side]
            firewall.process(pkt)
        kernel_lines = kernel.events()
    return compare_event_lines(comparable_kernel_lines(kernel_lines),
                               comparable_statewall_lines(recorded))


def verify_events_capture(
    path: str | os.PathLike[str],
    rules_v4: str | None,
    rules_v6: str | None = None,
    sysctls: Mapping[str, int] | None = None,
    *,
    limit: int | None = None,
) -> EventsComparison:
    """Events of a capture file, kernel against statewall."""
    datagrams, _skipped = read_capture(path, limit)
    return verify_events(datagrams, rules_v4, rules_v6, sysctls)


__all__ = [
    "EventsComparison", "compare_event_lines", "comparable_kernel_lines",
    "comparable_statewall_lines", "split_event", "strip_timestamp", "verify_events",
    "verify_events_capture",
]
