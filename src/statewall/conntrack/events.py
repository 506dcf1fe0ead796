"""Conntrack events as `conntrack -E` reports them (nf_conntrack_ecache.c).

Changes made while one packet is processed are cached as bits on the entry
and delivered as a single message when the packet passes a confirm hook, so
a TCP handshake yields three messages (NEW, then two UPDATEs). Deletions are
reported at once. The message type is DESTROY if the destroy bit is set,
else NEW for a new (or RELATED) entry, else UPDATE.

Each event is a value formatted when it happened, so a later change to the
entry cannot alter what was reported. Timeout columns follow ctnetlink:
NEW and UPDATE always carry the remaining time; DESTROY only when time was
left (a deletion by a packet or by early drop), never on expiry, and never
the helper's name.
Expectation events (`conntrack -E expect`) share the type, flagged by
`expectation`; they always carry their remaining time, clamped at 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from statewall.conntrack.conn import Conn
from statewall.conntrack.display import event_body
from statewall.conntrack.expect import Expectation, conntrack_expect_line

IPCT_NEW = 1 << 0
IPCT_RELATED = 1 << 1
IPCT_DESTROY = 1 << 2
IPCT_REPLY = 1 << 3
IPCT_ASSURED = 1 << 4
IPCT_PROTOINFO = 1 << 5
IPCT_HELPER = 1 << 6
IPCT_MARK = 1 << 8

TAGS = {"NEW": "    [NEW]", "UPDATE": " [UPDATE]", "DESTROY": "[DESTROY]"}


@dataclass(frozen=True, slots=True)
class ConntrackEvent:
    """One `conntrack -E` message, formatted when it happened."""

    ts: float
    kind: str  # NEW, UPDATE, DESTROY
    conn_id: int
    body: str
    cause: str = ""  # for DESTROY: timeout, reset, reopened, early drop ...
    expectation: bool = False  # an expectation's event (conntrack -E expect)

    @classmethod
    def cached(cls, conn: Conn, now: float) -> ConntrackEvent:
        kind = "NEW" if conn.events & (IPCT_NEW | IPCT_RELATED) else "UPDATE"
        # ctnetlink sends the protocol state only with a PROTOINFO event;
        # a new entry always has one (its state left NONE).
        protoinfo = bool(conn.events & (IPCT_NEW | IPCT_RELATED | IPCT_PROTOINFO))
        return cls(now, kind, conn.conn_id, event_body(conn, conn.remaining(now), protoinfo))

    @classmethod
    def destroyed(cls, conn: Conn, now: float, cause: str) -> ConntrackEvent:
        remaining = conn.remaining(now)
        body = event_body(conn, remaining or None, helper=False)
        return cls(now, "DESTROY", conn.conn_id, body, cause)

    @classmethod
    def of_expectation(cls, kind: str, exp: Expectation, now: float) -> ConntrackEvent:
        """An expectation's [NEW] or [DESTROY], as `conntrack -E expect` prints it."""
        remaining = max(exp.remaining(now), 0)
        body = f"{remaining} {conntrack_expect_line(exp, now).partition(' ')[2]}"
        return cls(now, kind, exp.master.conn_id, body, expectation=True)

    def line(self, timestamps: bool = False) -> str:
        text = f"{TAGS[self.kind]} {self.body}"
        if timestamps:
            return f"[{self.ts:.6f}]\t{text}"
        return text
