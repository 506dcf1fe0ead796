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

Expectation events (`conntrack -E expect`, listening beside the first) are
a second stream, compared the same way on their own: the two listeners
read separate netlink groups, so their relative order is not observable.
Their timeout column is the second word, and it is always present (the
kernel clamps it at 0). Timer-driven expectation destroys are left out as
connection expiries are: an expectation's own expiry (the kernel reports 0
seconds left) and the removal of the expectations of a master that
expired (the kernel reports them beside the master's expiry DESTROY; in
statewall they carry the instant of expiry, before the packet that reaped
them).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from statewall.config import Sysctls
from statewall.decode import decode_datagram
from statewall.engine import Firewall
from statewall.events import CAUSE_TIMEOUT, ConntrackEvent
from statewall.oracle.host import NOT_SENT, SENT, Wiring
from statewall.oracle.kernel import KernelFirewall
from statewall.oracle.normalise import normalise
from statewall.oracle.verify import (
    Datagram,
    load_rule_engine,
    read_capture,
    wiring_for,
)
from statewall.rules.hooks import IptablesEngine
from statewall.topology import Interface, Network

SLACK = 1  # seconds a timeout column may differ by


@dataclass(frozen=True, slots=True)
class EventsComparison:
    """Both event streams (comparable lines only) and where they part."""

    kernel: tuple[str, ...]
    statewall: tuple[str, ...]
    mismatches: tuple[tuple[int, str | None, str | None], ...] = field(default=())
    # The `conntrack -E expect` streams, when they were compared.
    expectations: EventsComparison | None = None

    @property
    def same(self) -> bool:
        return not self.mismatches and (self.expectations is None or self.expectations.same)

    def summary_line(self) -> str:
        text = self._summary("events")
        if self.expectations is not None:
            text += ", " + self.expectations._summary("expectation events")
        return text

    def _summary(self, what: str) -> str:
        if not self.mismatches:
            return f"{len(self.kernel)} {what} agree"
        return (f"{len(self.mismatches)} of {max(len(self.kernel), len(self.statewall))} "
                f"{what} differ")


def strip_timestamp(line: str) -> str:
    """`[sec.usec]\\t[NEW] ...` -> `[NEW] ...` (lines without the prefix unchanged)."""
    if line.startswith("[") and "\t" in line:
        return line.split("\t", 1)[1]
    return line


def split_event(line: str) -> tuple[str, int | None]:
    """A line as (text without its timeout column, timeout or None).

    Connection lines put it fourth (`[NEW] tcp 6 120 ...`), expectation
    lines second (`[NEW] 300 proto=6 ...`); a connection line's second word
    is a protocol name, never a number.
    """
    words = line.split()
    for column in (1, 3):
        if len(words) > column and words[column].isdigit():
            return " ".join(words[:column] + words[column + 1:]), int(words[column])
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


def comparable_kernel_expect_lines(lines: Sequence[str], conn_lines: Sequence[str],
                                   window: float = 1.0) -> list[str]:
    """Expectation event lines, minus the destroys a timer caused.

    `conn_lines` is the connection stream of the same run, timestamps kept:
    an expectation DESTROY within `window` seconds of its master's expiry
    DESTROY went with the master.
    """
    expired = [_expiry(line) for line in conn_lines]
    masters = [pair for pair in expired if pair is not None]
    out = []
    for raw in lines:
        line = strip_timestamp(raw).strip()
        if not line:
            continue
        text, timeout = split_event(line)
        if text.startswith("[DESTROY]") and (
                timeout == 0 or _master_expired(raw, text, masters, window)):
            continue
        out.append(line)
    return out


def comparable_statewall_expect_lines(events: Sequence[ConntrackEvent]) -> list[str]:
    """The expectation events among `events` (the caller keeps only `packet_driven` ones)."""
    return [event.line() for event in events if event.expectation]


def packet_driven(event: ConntrackEvent, packet_ts: float) -> bool:
    """Did the packet at `packet_ts` cause `event` (rather than a timer before it)?"""
    return event.ts >= packet_ts


def _timestamp(raw: str) -> float | None:
    """`[sec.usec]` as conntrack-tools prints it: usec is not zero-padded (`[5.9047  ]`)."""
    head, tab, _ = raw.partition("\t")
    sec, dot, usec = head.strip("[] ").partition(".")
    if not tab or not dot or not sec.isdigit() or not usec.isdigit():
        return None
    return int(sec) + int(usec) / 1e6


def _expiry(raw: str) -> tuple[float, str] | None:
    """(time, first tuple) of a connection expiry DESTROY, timestamp required."""
    when = _timestamp(raw)
    line = strip_timestamp(raw)
    if when is None or not is_expiry(line):
        return None
    words = line.split()
    first = next((i for i, w in enumerate(words) if w.startswith("src=")), len(words))
    return when, " ".join(words[first:first + 4])


def _master_expired(raw: str, text: str, masters: Sequence[tuple[float, str]],
                    window: float) -> bool:
    when = _timestamp(raw)
    if when is None or " master-src=" not in text:
        return False
    words = text.split(" master-src=", 1)[1].split()
    master = " ".join(["src=" + words[0], "dst=" + words[1].removeprefix("master-dst="),
                       *words[2:4]])
    return any(abs(when - t) <= window and tuple_ == master for t, tuple_ in masters)


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
    rule_engine: IptablesEngine | None = None,
    expectations: bool = True,
    auto_helpers: bool = False,
    waits: Mapping[int, float] | None = None,
    local: Sequence[Network] = (),
    ifaces: Sequence[tuple[str, Sequence[Network]]] = (),
    addresses: Sequence[tuple[str, Interface]] = (),
) -> EventsComparison:
    """Inject `datagrams` into the kernel (listening to events) and statewall; compare.

    With `expectations`, the `conntrack -E expect` streams are compared too
    (`EventsComparison.expectations`). `auto_helpers` gives statewall the
    legacy by-port helper assignment (the kernel's rules must then attach
    the helpers themselves); `waits` maps a datagram's number to seconds to
    pause before injecting it. `local`, `ifaces` and `addresses` make the
    firewall the host or router `verify_datagrams` builds from them (NAT's
    MASQUERADE and REDIRECT need the interfaces' addresses).
    """
    values = dict(sysctls or {})
    if not datagrams:
        return EventsComparison((), (), expectations=EventsComparison((), ())
                                if expectations else None)
    fixed = normalise([d.data for d in datagrams])
    wiring = wiring_for(fixed, local, ifaces, (), None, addresses)
    engine = rule_engine or load_rule_engine(rules_v4, rules_v6, topology=wiring.topology)
    recorded: list[ConntrackEvent] = []
    firewall = Firewall(cfg=Sysctls().with_values(values), rules=engine,
                        topology=wiring.topology, event_sink=recorded.append,
                        auto_helpers=auto_helpers)
    with KernelFirewall(rules_v4, rules_v6, values, watch_events=True,
                        watch_expect_events=expectations, clock=time.time,
                        firewall_ifs=wiring.firewall_ifs, routes=wiring.routes,
                        host=bool(local)) as kernel:
        expect_events = _replay(kernel, firewall, recorded, datagrams, fixed, waits or {},
                                wiring)
        kernel_lines = kernel.events()
        kernel_expect = kernel.expect_events() if expectations else None
    result = compare_event_lines(comparable_kernel_lines(kernel_lines),
                                 comparable_statewall_lines(recorded))
    if kernel_expect is None:
        return result
    expect_result = compare_event_lines(
        comparable_kernel_expect_lines(kernel_expect, kernel_lines),
        comparable_statewall_expect_lines(expect_events))
    return replace(result, expectations=expect_result)


def _replay(kernel: KernelFirewall, firewall: Firewall, recorded: list[ConntrackEvent],
            datagrams: Sequence[Datagram], fixed: Sequence[bytes],
            pauses: Mapping[int, float], wiring: Wiring) -> list[ConntrackEvent]:
    """Send each datagram to both; return statewall's packet-driven expectation events."""
    expect_events: list[ConntrackEvent] = []
    for item, data, place in zip(datagrams, fixed, wiring.places, strict=True):
        if place == NOT_SENT:
            continue
        if item.number in pauses:
            time.sleep(pauses[item.number])
        observed = kernel.send_local(data) if place == SENT else kernel.send(data, place)
        pkt = decode_datagram(data, index=item.number - 1, ts=observed.sent_at)
        if place != SENT:
            pkt.iface_in = wiring.firewall_ifs[place]
        before = len(recorded)
        firewall.process(pkt)
        expect_events += [event for event in recorded[before:]
                          if event.expectation and packet_driven(event, pkt.ts)]
    return expect_events


def verify_events_capture(
    path: str | os.PathLike[str],
    rules_v4: str | None,
    rules_v6: str | None = None,
    sysctls: Mapping[str, int] | None = None,
    *,
    limit: int | None = None,
    expectations: bool = True,
) -> EventsComparison:
    """Events of a capture file, kernel against statewall."""
    datagrams, _skipped = read_capture(path, limit)
    return verify_events(datagrams, rules_v4, rules_v6, sysctls, expectations=expectations)


__all__ = [
    "EventsComparison", "compare_event_lines", "comparable_kernel_expect_lines",
    "comparable_kernel_lines", "comparable_statewall_expect_lines",
    "comparable_statewall_lines", "packet_driven", "split_event", "strip_timestamp",
    "verify_events", "verify_events_capture",
]
