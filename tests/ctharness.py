"""A simulated machine for the conntrack tests: datagrams in, what the kernel would show out.

`Machine` wraps `statewall.engine.Firewall` (no rules: every table accepts)
and feeds it datagrams at given times. Each `step` returns what one packet
got: its ctstate as the kernel's ctinfo number (the tests compare with
CT_NEW, CT_ESTABLISHED_REPLY ...), the reason, and `conn`, a live view of the
entry it belongs to, read from the table at the machine's clock (so its
status, expiry and protocol state are always the current ones; the same
entry is always the same view object).

A packet from one of the `local` addresses is sent by the machine itself: it
starts at OUTPUT (conntrack in LOCAL_OUT, where checksums are not verified).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rulewalk import (
    CT_ESTABLISHED,
    CT_ESTABLISHED_REPLY,
    CT_INVALID,
    CT_NEW,
    CT_RELATED,
    CT_RELATED_REPLY,
    CT_UNTRACKED,
    IPS_ASSURED,
    IPS_CONFIRMED,
    IPS_DYING,
    IPS_EXPECTED,
    IPS_FIXED_TIMEOUT,
    IPS_HELPER,
    IPS_SEEN_REPLY,
    TupleFields,
)

from statewall.config import HelperParams, Sysctls
from statewall.decode import decode_datagram
from statewall.engine import Connection, Firewall
from statewall.events import ConntrackEvent
from statewall.packet import Packet
from statewall.topology import Topology, parse_networks
from statewall.verdict import PacketVerdict

_CTINFO = {
    ("NEW", "ORIGINAL"): CT_NEW,
    ("ESTABLISHED", "ORIGINAL"): CT_ESTABLISHED,
    ("ESTABLISHED", "REPLY"): CT_ESTABLISHED_REPLY,
    ("RELATED", "ORIGINAL"): CT_RELATED,
    ("RELATED", "REPLY"): CT_RELATED_REPLY,
}


def ctinfo_of(verdict: PacketVerdict) -> int | None:
    """The packet's ctinfo; None when it never reached conntrack."""
    if verdict.ctstate is None:
        return None
    if verdict.ctstate == "INVALID":
        return CT_INVALID
    if verdict.ctstate == "UNTRACKED":
        return CT_UNTRACKED
    return _CTINFO[(verdict.ctstate, verdict.ctdir or "")]


class LiveConn(TupleFields):
    """One entry of a machine's table, as the table holds it now."""

    def __init__(self, machine: Machine, conn_id: int) -> None:
        self.machine = machine
        self.conn_id = conn_id

    def entry(self) -> Connection | None:
        """The entry, or None once it has left the table."""
        for conn in self.machine.firewall.connections(self.machine.now):
            if conn.conn == self.conn_id:
                return conn
        return None

    def _live(self) -> Connection:
        conn = self.entry()
        assert conn is not None, f"entry {self.conn_id} is no longer in the table"
        return conn

    @property
    def gone(self) -> bool:
        return self.entry() is None

    @property
    def status(self) -> int:
        return self._live().status

    @property
    def expires(self) -> float:
        return self._live().expires

    @property
    def state(self) -> str:
        return self._live().state

    @property
    def mark(self) -> int:
        return self._live().mark

    @property
    def zone(self) -> int:
        return self._live().zone

    @property
    def helper(self) -> str | None:
        return self._live().helper

    @property
    def master(self) -> LiveConn | None:
        master = self._live().master
        return None if master is None else self.machine.view(master)

    @property
    def orig(self) -> tuple[int, int, int, int]:
        c = self._live()
        return c.orig_src, c.orig_dst, c.orig_sport, c.orig_dport

    @property
    def reply(self) -> tuple[int, int, int, int]:
        c = self._live()
        return c.reply_src, c.reply_dst, c.reply_sport, c.reply_dport

    def remaining(self, now: float) -> int:
        """Whole seconds left, as /proc and conntrack -L print them (truncated)."""
        left = self.expires - now
        return int(left) if left > 0 else 0

    def __repr__(self) -> str:
        return f"LiveConn({self.conn_id}: {self.entry()})"


@dataclass(frozen=True)
class Step:
    """What one packet got."""

    verdict: PacketVerdict
    ctinfo: int | None
    conn: LiveConn | None

    @property
    def reason(self) -> str:
        return self.verdict.reason

    @property
    def direction(self) -> int:
        """0 for the original direction, 1 for the reply (ctinfo's direction)."""
        return 1 if self.verdict.ctdir == "REPLY" else 0


class Machine:
    """One simulated machine without rules, fed datagrams at given times."""

    def __init__(self, cfg: Sysctls | None = None, local: Iterable[str] = (),
                 auto_helpers: bool = False, helper_params: HelperParams | None = None,
                 events: bool = False, rules: object = None) -> None:
        self.events: list[ConntrackEvent] = []
        self.firewall = Firewall(
            cfg=cfg, rules=rules,  # type: ignore[arg-type]
            topology=Topology(local=parse_networks(local)),
            event_sink=self.events.append if events else None,
            auto_helpers=auto_helpers, helper_params=helper_params)
        self.now = 0.0
        self.index = 0
        self._views: dict[int, LiveConn] = {}

    def view(self, conn_id: int) -> LiveConn:
        if conn_id not in self._views:
            self._views[conn_id] = LiveConn(self, conn_id)
        return self._views[conn_id]

    def step(self, pkt: Packet | bytes, now: float) -> Step:
        """Run one datagram at `now` (no earlier than the previous one)."""
        data = pkt if isinstance(pkt, bytes) else pkt.data
        self.now = max(self.now, now)
        verdict = self.firewall.process(decode_datagram(data, index=self.index, ts=now))
        self.index += 1
        conn = None if verdict.conn is None else self.view(verdict.conn)
        return Step(verdict, ctinfo_of(verdict), conn)

    def advance(self, now: float) -> None:
        """Let time pass: what expired by `now` leaves the table."""
        self.now = max(self.now, now)
        self.firewall.advance(now)

    def proc_lines(self, at: float | None = None) -> list[str]:
        return self.firewall.table_lines(self.now if at is None else at, "proc")

    def expectation_lines(self, at: float | None = None, fmt: str = "proc") -> list[str]:
        return self.firewall.expectation_lines(self.now if at is None else at, fmt)

# The harness, and the kernel's ctinfo and status values the tests compare with.
__all__ = [
    "CT_ESTABLISHED",
    "CT_ESTABLISHED_REPLY",
    "CT_INVALID",
    "CT_NEW",
    "CT_RELATED",
    "CT_RELATED_REPLY",
    "CT_UNTRACKED",
    "IPS_ASSURED",
    "IPS_CONFIRMED",
    "IPS_DYING",
    "IPS_EXPECTED",
    "IPS_FIXED_TIMEOUT",
    "IPS_HELPER",
    "IPS_SEEN_REPLY",
    "LiveConn",
    "Step",
    "ctinfo_of",
    "Machine",
]
