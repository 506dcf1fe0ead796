"""The firewall: decoded packets in, one `PacketVerdict` per packet out.

`Firewall` owns all state of one simulated machine (defragmentation queues,
the conntrack table, the rule engine's own state) and no clock: each packet's
timestamp is the time. Captures sometimes step backwards (merged or
reordered files); the kernel's clock never does, so time is held at the
latest value seen.

Events. With an `event_sink`, every `conntrack -E` message (and every
expectation event) reaches the sink as a `ConntrackEvent` value. Before each
packet the garbage collector reaps what expired since the last one, at
its expiry time; the events of one packet are handed over together, in
time order, once the packet is done.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from statewall.config import Sysctls
from statewall.conntrack.conn import Conn
from statewall.conntrack.core import ConntrackTable, CtResult, EventSink
from statewall.conntrack.events import ConntrackEvent
from statewall.conntrack.expect import Expectation, ExpectationTable, HelperParams
from statewall.conntrack.proto_tcp import STATE_NAMES as TCP_STATE_NAMES
from statewall.decode import STACK_DROP_LAYERS
from statewall.defrag import Defragmenter
from statewall.netfilter import (
    Netns,
    PacketContext,
    RuleEngine,
    Topology,
    choose_path,
    ct_labels,
    run_hooks,
    stack_drop,
)
from statewall.packet import PROTO_TCP, Packet
from statewall.verdict import ACCEPT, DROP, STOLEN, PacketVerdict, RuleRef


@dataclass
class Firewall:
    """One simulated Linux machine running netfilter."""

    cfg: Sysctls = field(default_factory=Sysctls)
    rules: RuleEngine | None = None
    topology: Topology = field(default_factory=Topology)
    event_sink: EventSink | None = None
    auto_helpers: bool = False
    helper_params: HelperParams = field(default_factory=HelperParams)
    table: ConntrackTable = field(init=False)
    expectations: ExpectationTable = field(init=False)
    netns: Netns = field(init=False)
    defrag: Defragmenter = field(init=False)
    now: float = field(init=False, default=0.0)
    _batch: list[ConntrackEvent] = field(init=False, default_factory=list, repr=False)

    def __post_init__(self) -> None:
        recording = self.event_sink is not None
        self.table = ConntrackTable(self.cfg, self._batch.append if recording else None)
        self.expectations = ExpectationTable(self.helper_params)
        if recording:
            self.expectations.event_sink = self._expectation_event
        self.table.expect_match = self.expectations.match_new
        self.table.on_destroy = self.expectations.master_destroyed
        self.netns = Netns(self.table, self.expectations, self.auto_helpers)
        self.defrag = Defragmenter(self.cfg)

    def advance(self, ts: float) -> float:
        """Move the clock to `ts` unless that would turn it back."""
        if ts > self.now:
            self.now = ts
        return self.now

    def _expectation_event(self, kind: str, exp: Expectation, now: float) -> None:
        self._batch.append(ConntrackEvent.of_expectation(kind, exp, now))

    def _deliver(self) -> None:
        batch = self._batch
        batch.sort(key=_event_time)
        sink = self.event_sink
        assert sink is not None
        for event in batch:
            sink(event)
        batch.clear()

    def process(self, pkt: Packet) -> PacketVerdict:
        """Run one captured packet through the machine."""
        now = self.advance(pkt.ts)
        table = self.table
        if table.timers and table.timers[0][0] <= now or table.gc_early_drop_at is not None:
            table.gc(now)
        if self.expectations.count:
            self.expectations.expire(now)
        verdict = self._process(pkt, now)
        if self._batch:
            self._deliver()
        return verdict

    def _process(self, pkt: Packet, now: float) -> PacketVerdict:
        # The verdict describes the packet only if someone reads its summary.
        summary = pkt
        error = pkt.error
        if pkt.family == 0:
            reason = f"not an IP packet, never seen by netfilter's IP hooks ({error})"
            return _plain(pkt, summary, ACCEPT, reason)
        if error is not None and error.layer in STACK_DROP_LAYERS:
            return _plain(pkt, summary, DROP, f"dropped by the IP layer before netfilter: {error}")
        datagram = pkt
        if pkt.fragment is not None or self.defrag.pending:
            result = self.defrag.push(pkt, now)
            if result.kind == "queued":
                return _plain(pkt, summary, STOLEN, result.reason)
            if result.kind == "dropped" or result.packet is None:
                return _plain(pkt, summary, DROP, result.reason)
            datagram = result.packet
        dropped = stack_drop(datagram.family, datagram.src, datagram.dst)
        if dropped:
            return _plain(pkt, summary, DROP, dropped)
        return self._track_and_filter(pkt, datagram, summary, now)

    def _track_and_filter(self, pkt: Packet, datagram: Packet, summary: str | Packet,
                          now: float) -> PacketVerdict:
        iface_in = pkt.iface_in or self.topology.interface_for(datagram.family, datagram.src)
        iface_out = self.topology.interface_for(datagram.family, datagram.dst)
        ctx = PacketContext(datagram, now, iface_in, iface_out)
        path, routing_drop = choose_path(self.topology, datagram.family, datagram.src, datagram.dst)
        outcome = run_hooks(self.netns, self.rules, ctx, path, routing_drop)
        ctstate, ctdir, status = ct_labels(ctx.ct)
        reason = _explain(ctx.ct, outcome.verdict, outcome.rule, outcome.reason)
        if datagram is not pkt:
            reason += f" (datagram reassembled from fragments, completed by packet #{pkt.index + 1})"
        conn = ctx.conn
        # Positional: keyword calls build a dict per packet (index, ts, verdict,
        # ctstate, ctdir, status, rule, reason, summary, proto, tcp_state, conn, notes).
        return PacketVerdict(
            pkt.index, pkt.ts, outcome.verdict, ctstate, ctdir, status, outcome.rule, reason,
            summary, datagram.proto, _tcp_state(conn),
            conn.conn_id if conn is not None and conn.conn_id else None, tuple(ctx.notes),
        )

    def replay(self, packets: Iterable[Packet]) -> Iterator[PacketVerdict]:
        for pkt in packets:
            yield self.process(pkt)

    def connections(self, at: float | None = None) -> list[Conn]:
        """The table as a listing at `at` (default: now) would show it."""
        when = self.now if at is None else at
        return self.table.live(when)


def _event_time(event: ConntrackEvent) -> float:
    return event.ts


def _plain(pkt: Packet, summary: str | Packet, verdict: str, reason: str) -> PacketVerdict:
    return PacketVerdict(pkt.index, pkt.ts, verdict, None, None, (), None, reason, summary,
                         pkt.proto)


def _tcp_state(conn: Conn | None) -> str | None:
    if conn is None or conn.proto != PROTO_TCP:
        return None
    return TCP_STATE_NAMES[conn.proto_state]


def _explain(ct: CtResult | None, verdict: str, rule: RuleRef | None, rule_reason: str) -> str:
    """The conntrack reason, then what the rules made of the packet."""
    text = ct.reason if ct is not None else "not tracked"
    if rule is not None:
        decided = rule_reason or f"{verdict} by {rule}"
        return f"{text}; {decided}"
    if rule_reason:
        return f"{text}; {rule_reason}"
    return text
