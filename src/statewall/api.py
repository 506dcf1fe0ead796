"""The library's front door: `load_firewall` and `replay`.

One machine is described once — its rulesets, ipsets, own addresses,
interfaces and sysctls — and everything that depends on that description
(the rules' addrtype and rpfilter tests, the core's routing between INPUT,
FORWARD and OUTPUT) is built from the same values, so no part can be given
a different topology from another. The CLI builds its firewalls here too.

    import statewall
    run = statewall.replay("capture.pcap", rules="rules.v4", local=["192.0.2.1"])
    for packet in run:                      # PacketVerdict, fields as in jsonl
        if packet.verdict == "DROP":
            print(packet.frame, packet.rule, packet.reason)
    print(run.summary.verdicts, run.table())
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from statewall.config import Sysctls
from statewall.engine import Connection, EventSink, ExpectedConnection, Firewall, _verdict
from statewall.events import ConntrackEvent
from statewall.profiles import DEFAULT_PROFILE, effective_values, parse_memory
from statewall.topology import Interface, Network, Topology
from statewall.verdict import PacketVerdict

if TYPE_CHECKING:
    from statewall import _core

PathLike = str | os.PathLike[str]
Address = str | Network | Interface | ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class MachineOptions:
    """Everything that describes one simulated machine (the arguments of
    `load_firewall`), as one value: the CLI and `diff` build theirs from it."""

    rules: PathLike | None = None
    rules6: PathLike | None = None
    nft: PathLike | None = None
    ipsets: tuple[PathLike, ...] = ()
    local: tuple[Address, ...] = ()
    ifaces: tuple[tuple[str, tuple[Address, ...]], ...] = ()
    sysctls: tuple[tuple[str, int | str], ...] = ()
    sysctl_files: tuple[PathLike, ...] = ()
    profile: str = DEFAULT_PROFILE
    memory: str | int | None = None
    auto_helpers: bool = False
    allow_unknown: bool = False
    seed: int = 0

    def topology(self) -> Topology:
        """The machine's own networks and interfaces (ValueError on a bad address)."""
        return Topology.build(_texts(self.local),
                              ((name, _texts(nets)) for name, nets in self.ifaces))

    def config(self) -> Sysctls:
        """Profile < memory < sysctl files in order < sysctls (SysctlError on a bad one)."""
        memory = parse_memory(self.memory) if isinstance(self.memory, str) else self.memory
        values = effective_values(self.profile, [os.fspath(f) for f in self.sysctl_files],
                                  [f"{name}={value}" for name, value in self.sysctls], memory)
        return Sysctls().with_values(values)


def build_firewall(options: MachineOptions, event_sink: EventSink | None = None, *,
                   conn_log: bool = False) -> Firewall:
    """The machine `options` describe (`conn_log`: keep the per-connection log that
    `statewall.conns` reads). Errors: RulesetError (file:line), SysctlError,
    ValueError (an address), OSError (a file that cannot be read)."""
    topology = options.topology()
    config = options.config()
    rules = None
    from statewall.rules.ipset import load_ipset_file

    # Read even without a ruleset to use them: a file given is a file checked.
    sets: dict[str, Any] = {}
    for path in options.ipsets:
        sets.update(load_ipset_file(path))  # a later file wins a name
    if options.rules is not None or options.rules6 is not None or options.nft is not None:
        from statewall.rules.hooks import load_engine

        rules = load_engine(options.rules, options.rules6, topology=topology,
                            allow_unknown=options.allow_unknown, seed=options.seed, sets=sets,
                            nft=options.nft)
    return Firewall(cfg=config, rules=rules, topology=topology,
                    auto_helpers=options.auto_helpers, event_sink=event_sink,
                    conn_log=conn_log)


def load_firewall(
    rules: PathLike | None = None,
    rules6: PathLike | None = None,
    *,
    nft: PathLike | None = None,
    ipsets: Iterable[PathLike] = (),
    local: Iterable[Address] | Address = (),
    ifaces: Mapping[str, Iterable[Address] | Address] | None = None,
    sysctls: Mapping[str, int | str] | None = None,
    sysctl_files: Iterable[PathLike] = (),
    profile: str = DEFAULT_PROFILE,
    memory: str | int | None = None,
    auto_helpers: bool = False,
    allow_unknown: bool = False,
    seed: int = 0,
    event_sink: EventSink | None = None,
) -> Firewall:
    """One simulated Linux machine.

    `rules`/`rules6`: iptables-save and ip6tables-save files; `nft`: an nftables
    ruleset (`nft list ruleset` text, an nftables.conf or `nft -j list ruleset`
    JSON), alone or beside them; `ipsets`: `ipset save`
    files for `-m set`; `local`: the machine's own addresses or networks (without
    any it is a router: every packet is forwarded); `ifaces`: interface name to the
    networks it leads to; `sysctls`: knobs by name (`nf_conntrack_tcp_loose` or
    `net.netfilter.nf_conntrack_tcp_loose`), applied after `profile` (`linux-6`,
    `linux-2.4`), `memory` (`"512M"` or bytes) and `sysctl_files`; `auto_helpers`:
    the pre-4.7 automatic helper assignment; `allow_unknown`: evaluate rules
    statewall cannot model as unknown instead of refusing the ruleset; `seed`: for
    `-m statistic --mode random`; `event_sink`: receives every conntrack event.
    Addresses are strings or `ipaddress` objects.
    """
    options = machine_options(
        rules=rules, rules6=rules6, nft=nft, ipsets=ipsets, local=local, ifaces=ifaces,
        sysctls=sysctls, sysctl_files=sysctl_files, profile=profile, memory=memory,
        auto_helpers=auto_helpers, allow_unknown=allow_unknown, seed=seed)
    return build_firewall(options, event_sink)


def machine_options(
    rules: PathLike | None = None,
    rules6: PathLike | None = None,
    *,
    nft: PathLike | None = None,
    ipsets: Iterable[PathLike] = (),
    local: Iterable[Address] | Address = (),
    ifaces: Mapping[str, Iterable[Address] | Address] | None = None,
    sysctls: Mapping[str, int | str] | None = None,
    sysctl_files: Iterable[PathLike] = (),
    profile: str = DEFAULT_PROFILE,
    memory: str | int | None = None,
    auto_helpers: bool = False,
    allow_unknown: bool = False,
    seed: int = 0,
) -> MachineOptions:
    """The arguments of `load_firewall` (without the event sink) as one value."""
    return MachineOptions(
        rules=rules, rules6=rules6, nft=nft, ipsets=tuple(ipsets), local=_addresses(local),
        ifaces=tuple((name, _addresses(nets)) for name, nets in (ifaces or {}).items()),
        sysctls=tuple((sysctls or {}).items()), sysctl_files=tuple(sysctl_files),
        profile=profile, memory=memory, auto_helpers=auto_helpers,
        allow_unknown=allow_unknown, seed=seed)


@dataclass(frozen=True)
class Summary:
    """The totals of a replay, as `statewall replay` prints them after the packets."""

    packets: int
    connections: int  # distinct connections the packets belonged to
    states: dict[str, int]  # packets by ctstate ("-": no state), most common first
    verdicts: dict[str, int]  # packets by verdict, most common first
    invalid_reasons: dict[str, int] = field(default_factory=dict)
    lines: tuple[str, ...] = ()  # the printed form


class Replay:
    """A capture replayed through one firewall.

    Iterating yields one `PacketVerdict` per packet, in capture order, once. The
    results after the capture (`summary`, `table()`, `connections()`, ...) finish
    the replay first if it is not finished: without iterating, the packets are
    run without building a value for each. A capture that breaks off raises its
    `CaptureError` after the last packet read; the results then describe the
    packets that were read.
    """

    def __init__(self, capture: PathLike, firewall: Firewall, *, limit: int | None = None,
                 until: float | None = None,
                 recorded_events: list[ConntrackEvent] | None = None) -> None:
        self.capture = os.fspath(capture)
        self.firewall = firewall
        self.limit = limit
        self.until = until
        self._events = recorded_events  # filled by the firewall's event sink
        self._run: _core.ReplayRun | None = None
        self._finished = False

    def __iter__(self) -> Iterator[PacketVerdict]:
        if self._run is not None:
            raise RuntimeError("a Replay is iterated once; call statewall.replay() again")
        self._run = self.firewall.replay_file(self.capture, "records", self.limit, self.until)
        try:
            while (records := self._run.next_records()) is not None:
                self._collect_events()
                for record in records:
                    yield _verdict(record)
        finally:
            self._collect_events()
        self._finished = True

    def finish(self) -> Replay:
        """Run the rest of the capture (all of it, if iteration never began)."""
        if self._finished:
            return self
        try:
            if self._run is None:
                self._run = self.firewall.replay_file(self.capture, "summary", self.limit,
                                                      self.until)
                for _ in self._run:
                    self._collect_events()
            else:
                while self._run.next_records() is not None:
                    self._collect_events()
        finally:
            self._finished = True
            self._collect_events()
        return self

    def _collect_events(self) -> None:
        if self.firewall.event_sink is not None:
            self.firewall.deliver_events()

    @property
    def summary(self) -> Summary:
        self.finish()
        assert self._run is not None
        packets, connections, states, verdicts, invalid = self._run.totals()
        return Summary(packets, connections, dict(states), dict(verdicts), dict(invalid),
                       tuple(self._run.totals_lines()))

    @property
    def first_ts(self) -> float | None:
        """The first packet's timestamp (None for an empty capture)."""
        self.finish()
        assert self._run is not None
        return self._run.first_ts

    def table(self, fmt: str = "proc", at: float | None = None) -> list[str]:
        """The conntrack table after the replay (or at `at`), one newline-ended line per
        entry, as /proc/net/nf_conntrack ("proc") or `conntrack -L` ("conntrack")."""
        self.finish()
        return self.firewall.table_lines(at, fmt)

    def expectation_lines(self, fmt: str = "proc", at: float | None = None) -> list[str]:
        """The expectation table as /proc/net/nf_conntrack_expect or `conntrack -L expect`."""
        self.finish()
        return self.firewall.expectation_lines(at, fmt)

    def connections(self, at: float | None = None) -> list[Connection]:
        self.finish()
        return self.firewall.connections(at)

    def expectations(self, at: float | None = None) -> list[ExpectedConnection]:
        self.finish()
        return self.firewall.expectations(at)

    def events(self) -> list[ConntrackEvent]:
        """Every conntrack and expectation event, in order (`replay(..., events=True)`)."""
        if self._events is None:
            raise ValueError("events were not recorded: call statewall.replay(..., events=True)")
        self.finish()
        return list(self._events)

    def stats(self) -> dict[str, int]:
        """`conntrack -S` counters after the replay, by name."""
        self.finish()
        return self.firewall.stats()


def replay(capture: PathLike, firewall: Firewall | None = None, *, limit: int | None = None,
           until: float | None = None, events: bool = False, **options: Any) -> Replay:
    """Replay `capture` (pcap, pcapng, gzip) through `firewall`, or through a new one
    built from `options` (the arguments of `load_firewall`). `limit`: the first N
    packets only; `until`: stop before the first packet later than this time
    (below 1e9: seconds after the first packet); `events`: keep the conntrack
    events for `Replay.events()`."""
    if firewall is not None and options:
        raise TypeError(f"replay() takes a firewall or its options, not both: {sorted(options)}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit {limit}: expected a number of packets (0 or more)")
    if firewall is not None:
        if events:
            raise ValueError("events=True records the events of a firewall replay() builds; "
                             "your own firewall hands them to its event_sink")
        return Replay(capture, firewall, limit=limit, until=until)
    recorded: list[ConntrackEvent] | None = [] if events else None
    machine = load_firewall(**options,
                            event_sink=recorded.append if recorded is not None else None)
    return Replay(capture, machine, limit=limit, until=until, recorded_events=recorded)


def _addresses(value: Iterable[Address] | Address) -> tuple[Address, ...]:
    if isinstance(value, (str, ipaddress.IPv4Network, ipaddress.IPv6Network,
                          ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return (value,)
    return tuple(value)


def _texts(values: Sequence[Address]) -> list[str]:
    texts = []
    for value in values:
        texts.extend(value.split(",") if isinstance(value, str) else [str(value)])
    return texts
