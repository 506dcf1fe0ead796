"""The firewall: one simulated Linux machine, run by the compiled core.

`Firewall` is the typed Python face of `statewall._core.Firewall`, which
owns every piece of the machine's state (defragmentation queues, the
conntrack and expectation tables, the rules with their counters and match
state) and takes its clock from the packets. Two ways in:

- `process(pkt)` runs one decoded `Packet` and returns its `PacketVerdict`
  (the library and the kernel oracle);
- `replay_file(path, fmt)` streams a whole capture through the core, which
  writes the per-packet text or jsonl itself, chunk by chunk, with the
  interpreter released (the CLI's `replay`).

Events. With an `event_sink`, every `conntrack -E` message (and every
expectation event) reaches the sink as a `ConntrackEvent`, in time order,
once the packet that caused it is done.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from statewall import _core
from statewall.config import HelperParams, Sysctls
from statewall.events import ConntrackEvent
from statewall.packet import Packet
from statewall.topology import Network, Topology
from statewall.verdict import Leaves, NatStep, PacketVerdict, RuleRef

if TYPE_CHECKING:  # the ruleset modules load only when a ruleset is given
    from statewall.rules.hooks import IptablesEngine
    from statewall.select import Selection

EventSink = Callable[[ConntrackEvent], None]


@dataclass(frozen=True, slots=True)
class Connection:
    """One conntrack entry as a listing would show it (addresses as text, as in jsonl)."""

    conn: int
    family: int
    proto: int
    zone: int
    mark: int
    status: int  # IPS_* bits
    state: str  # the protocol's state name (TCP, SCTP), "" for the others
    orig_src: str
    orig_dst: str
    orig_sport: int  # ICMP: type, id as the tuple holds them
    orig_dport: int
    reply_src: str
    reply_dst: str
    reply_sport: int
    reply_dport: int
    expires: float
    helper: str | None
    master: int | None  # the `conn` of the connection that expected this one


# What a batch's codes stand for, from the core's own tables.
VERDICTS: tuple[str, ...] = tuple(_core.VERDICT_NAMES)
CTSTATES: dict[int, str] = dict(_core.CTSTATE_NAMES)
TCP_STATES: tuple[str, ...] = tuple(_core.TCP_STATE_NAMES)
STATUS_BITS: tuple[tuple[str, int], ...] = tuple(_core.STATUS_NAMES)


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive packets' results, column by column.

    Numbers are `array.array`s (the buffer protocol hands them to numpy with
    `numpy.frombuffer` or to Arrow with `pyarrow.py_buffer` without a copy):
    `verdict` indexes `VERDICTS`; `ctinfo` is the kernel's ctinfo (-1: no
    state; `CTSTATES` names it), `ctdir` 0 ORIGINAL, 1 REPLY, -1 none;
    `status` the entry's IPS_* bits; `rule` indexes `rules` (-1: none);
    `conn` 0 for none; `tcp_state` indexes `TCP_STATES` (-1: not TCP).
    """

    index: array[int]
    ts: array[float]
    verdict: array[int]
    ctinfo: array[int]
    ctdir: array[int]
    status: array[int]
    rule: array[int]
    conn: array[int]
    proto: array[int]
    tcp_state: array[int]
    reason: list[str]
    summary: list[str]
    rules: list[RuleRef]  # every deciding rule met so far in the run

    def __len__(self) -> int:
        return len(self.index)

    def row(self, i: int) -> PacketVerdict:
        """Row `i` as the value `Firewall.process` returns (notes excepted: not batched)."""
        ctinfo, ctdir, tcp = self.ctinfo[i], self.ctdir[i], self.tcp_state[i]
        status = tuple(name for name, bit in STATUS_BITS if self.status[i] & bit)
        return PacketVerdict(
            self.index[i], self.ts[i], VERDICTS[self.verdict[i]],
            CTSTATES.get(ctinfo) if ctinfo >= 0 else None,
            ("ORIGINAL", "REPLY")[ctdir] if ctdir >= 0 else None, status,
            self.rules[self.rule[i]] if self.rule[i] >= 0 else None, self.reason[i],
            self.summary[i], self.proto[i], TCP_STATES[tcp] if tcp >= 0 else None,
            self.conn[i] or None)


@dataclass(frozen=True, slots=True)
class ExpectedConnection:
    """One expectation as `conntrack -L expect` shows it."""

    family: int
    proto: int
    src: str  # as text, as in jsonl
    dst: str
    sport: int  # 0 with a wildcard source port
    dport: int
    helper: str
    master: int  # the `conn` of the connection that announced it
    expires: float
    timeout: int  # seconds left at the listing's time, as the listing prints


def _nets(nets: Iterable[Network]) -> list[tuple[int, int, int]]:
    return [(net.version, int(net.network_address), net.prefixlen) for net in nets]


class Firewall:
    """One simulated Linux machine running netfilter."""

    def __init__(self, cfg: Sysctls | None = None, rules: IptablesEngine | None = None,
                 topology: Topology | None = None, event_sink: EventSink | None = None,
                 auto_helpers: bool = False, helper_params: HelperParams | None = None,
                 conn_log: bool = False) -> None:
        self.cfg = cfg or Sysctls()
        if rules is not None and rules.forces_acct and not self.cfg.nf_conntrack_acct:
            # As the kernel's connbytes checkentry does when the ruleset is loaded.
            self.cfg = self.cfg.with_values({"nf_conntrack_acct": 1})
        self.rules = rules
        self.topology = topology or Topology()
        self.event_sink = event_sink
        self.auto_helpers = auto_helpers
        params = helper_params or HelperParams()
        lowered = rules.lowered_json() if rules is not None else (None, None)
        self._core = _core.Firewall(
            rules_v4=lowered[0],
            rules_v6=lowered[1],
            sysctls=self.cfg.bare_items(),
            local=_nets(self.topology.local),
            interfaces=[(name, _nets(nets)) for name, nets in self.topology.interfaces],
            addresses=[(name, (i.version, int(i.ip), i.network.prefixlen))
                       for name, i in self.topology.addresses],
            auto_helpers=auto_helpers,
            helper_params=(params.ftp_loose, params.irc_max_dcc_channels,
                           params.irc_dcc_timeout, params.amanda_master_timeout),
            events=event_sink is not None,
            conn_log=conn_log,
        )

    @property
    def now(self) -> float:
        """The machine's clock: the latest packet time seen."""
        return self._core.now

    def process(self, pkt: Packet) -> PacketVerdict:
        """Run one decoded packet through the machine."""
        verdict = _verdict(self._core.process(pkt))
        if self.event_sink is not None:
            self.deliver_events()
        return verdict

    def leaving(self, data: bytes) -> bytes | None:
        """The bytes the datagram `process` just ran (`data`) left with, when NAT
        rewrote it (checksums as the kernel leaves them); None: it left as it came."""
        return self._core.leaving(data)

    def replay(self, packets: Iterable[Packet]) -> Iterator[PacketVerdict]:
        for pkt in packets:
            yield self.process(pkt)

    def replay_file(self, path: str | list[str], fmt: str, limit: int | None = None,
                    until: float | None = None, select: Selection | None = None,
                    explain: bool = False, color: bool = False,
                    caps: _core.ReportCaps | None = None,
                    partition: tuple[int, int] | None = None,
                    index: bytes | str | None = None) -> _core.ReplayRun:
        """Stream a capture (or several of one link, merged by timestamp)
        through the core: an iterator of output chunks
        (bytes; none for fmt "summary"), then the capture's error if any.
        `until`: stop before the first packet after that time (below 1e9: seconds
        from the first packet). `select` (statewall.select): which packets the
        output shows and the pcapng file they are also written to. For fmt
        "text": `explain` adds each deciding rule's text under the packet's
        line, `color` marks drops and INVALID with terminal colours. For fmt
        "report" (statewall.report.model): `caps`, the detail the run keeps.
        `partition` (index, partitions): only that partition's packets are
        processed (statewall.dask); with that partition's `index`
        (`_core.index_capture`: bytes, or the path of its file) only they are
        read, by offset, else the others are read and only move the clock."""
        paths = [str(p) for p in path] if isinstance(path, list) else str(path)
        if select is None:
            return self._core.replay(paths, fmt, limit, until, explain=explain, color=color,
                                     caps=caps, partition=partition, index=index)
        return self._core.replay(paths, fmt, limit, until, select.filter, select.conn,
                                 select.write, explain=explain, color=color, caps=caps,
                                 partition=partition, index=index)

    def replay_batches(self, path: str, limit: int | None = None) -> Iterator[Batch]:
        """Stream a capture through the core and yield its results as columnar
        batches (up to 65,536 packets each); the capture's error, if any,
        follows the last batch."""
        yield from self.batches(self._core.replay(str(path), "columns", limit))

    def batches(self, run: _core.ReplayRun) -> Iterator[Batch]:
        """The batches of a "columns" run (`replay_file(path, "columns", ...)`, which
        also takes a selection: then only the packets it selects)."""
        rules: list[RuleRef] = []
        while (batch := run.next_batch()) is not None:
            (index, ts, verdict, ctinfo, ctdir, status, rule, conn, proto, tcp), texts = batch
            reason, summary, new_rules = texts
            rules.extend(RuleRef(*r) for r in new_rules)
            yield Batch(_column("Q", index), _column("d", ts), _column("B", verdict),
                        _column("b", ctinfo), _column("b", ctdir), _column("I", status),
                        _column("i", rule), _column("I", conn), _column("B", proto),
                        _column("b", tcp), reason, summary, rules)
            if self.event_sink is not None:
                self.deliver_events()

    def select_events(self, filter: str | None) -> None:
        """From now on hand the sink only the events `filter` (statewall.select's
        JSON, over EVENT_FIELDS) selects; None: every event."""
        self._core.select_events(filter)

    def conn_log(self, fmt: str, origin: float = 0.0, color: bool = False) -> Iterator[bytes]:
        """The connection log (`statewall.conns`; needs `Firewall(conn_log=True)`), one
        line per connection in `fmt` ("text", "jsonl", "tsv"), in chunks of bytes;
        `color`: text with drops in terminal red."""
        start: int | None = 0
        while start is not None:
            chunk, start = _core.conn_log(self._core, fmt, origin, start, color)
            yield chunk

    def deliver_events(self) -> None:
        """Hand the events recorded so far to the sink, in time order."""
        sink = self.event_sink
        assert sink is not None
        for ts, kind, conn, body, cause, expectation in self._core.take_events():
            sink(ConntrackEvent(ts, kind, conn, body, cause, expectation))

    def advance(self, at: float) -> None:
        """Bring the tables to `at`: what expired by then goes (with its events)."""
        self._core.advance_to(at)
        if self.event_sink is not None:
            self.deliver_events()

    def table_lines(self, at: float | None = None, fmt: str = "proc",
                    live_at: float | None = None, filter: str | None = None) -> list[str]:
        """The conntrack table at `at` (default: now) as `/proc/net/nf_conntrack`
        ("proc") or `conntrack -L` ("conntrack") prints it, one newline-ended
        line each; `live_at` (default `at`) decides which entries are still live,
        `filter` (statewall.select's JSON) which are shown."""
        when = self.now if at is None else at
        return self._core.table_lines(when, fmt, when if live_at is None else live_at, filter)

    def expectation_lines(self, at: float | None = None, fmt: str = "proc",
                          live_at: float | None = None) -> list[str]:
        """The expectation table at `at` (default: now), as
        `/proc/net/nf_conntrack_expect` ("proc") or `conntrack -L expect` prints it."""
        when = self.now if at is None else at
        return self._core.expectation_lines(when, fmt, when if live_at is None else live_at)

    def connections(self, at: float | None = None, filter: str | None = None) -> list[Connection]:
        """The entries live at `at` (default: now) that pass `filter`, in table order."""
        out = []
        for head, (state, orig, reply, expires, helper, master) in self._core.connections(
                self.now if at is None else at, filter):
            out.append(Connection(*head, state, *orig, *reply, expires, helper, master))
        return out

    def expectations(self, at: float | None = None) -> list[ExpectedConnection]:
        """The expectations live at `at` (default: now)."""
        return [ExpectedConnection(*fields)
                for fields in self._core.expectations(self.now if at is None else at)]

    def stats(self) -> dict[str, int]:
        """`conntrack -S` counters, the expectation counters and `entries`, by name."""
        return dict(self._core.stats())

    def stat_lines(self, fmt: str = "conntrack") -> list[str]:
        """`conntrack -S` ("conntrack") or `/proc/net/stat/nf_conntrack` ("proc")."""
        return self._core.stat_lines(fmt)

    @property
    def count(self) -> int:
        """Entries in the table (confirmed and not yet reaped)."""
        return self._core.count()

    def unknown_rules(self) -> list[str]:
        """Rules that can leave a packet's fate undetermined, as `IPv4 filter INPUT rule 3
        (line 12)`: those evaluated as unknown (--allow-unknown), and owner rules when the
        machine has addresses of its own (followed by what they cannot decide)."""
        return self._core.unknown_rules()

    def nft_counters(self) -> list[tuple[int, str, str, int, int, str | None, int, int]]:
        """Every nft `counter` statement's count, each with its family (statewall.nft.counters)."""
        return [(family, *count) for family in (4, 6) for count in self._core.nft_counters(family)]

    def sync_counters(self) -> None:
        """Copy the core's per-rule counters into the compiled rulesets (for printing)."""
        from statewall.rules.counters import set_counters

        if self.rules is None:
            return
        for family, compiled in ((4, self.rules.v4), (6, self.rules.v6)):
            if compiled is not None:
                set_counters(compiled, self._core.counters(family))


def _column(code: str, data: bytes) -> array[Any]:
    column: array[Any] = array(code)
    column.frombytes(data)
    return column


def _verdict(record: _core.Record) -> PacketVerdict:
    (index, ts, verdict, ctstate, ctdir, status), rest, addresses, (steps, leaves) = record
    src, dst, sport, dport = addresses
    rule, reason, summary, proto, tcp_state, conn, notes = rest
    ref = RuleRef(*rule) if rule is not None else None
    nat = tuple(NatStep(target, before, after, RuleRef(*by) if by is not None else None, random)
                for target, before, after, by, random in steps)
    return PacketVerdict(index, ts, verdict, ctstate, ctdir, tuple(status), ref, reason,
                         summary, proto, tcp_state, conn, tuple(notes), src, dst, sport, dport,
                         nat, Leaves(*leaves) if leaves is not None else None)

