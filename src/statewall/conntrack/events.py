"""Conntrack events as `conntrack -E` reports them (nf_conntrack_ecache.c).

Changes made while one packet is processed are cached as bits on the entry
and delivered as a single message when the packet passes a confirm hook, so
a TCP handshake yields three messages (NEW, then two UPDATEs). Deletions are
reported at once. The message type is DESTROY if the destroy bit is set,
else NEW for a new (or RELATED) entry, else UPDATE.
"""

from __future__ import annotations

from dataclasses import dataclass

from statewall.conntrack.conn import Conn
from statewall.conntrack.display import event_body

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
    cause: str = ""  # for DESTROY: timeout, reset, reopened, early drop

    @classmethod
    def cached(cls, conn: Conn, now: float) -> ConntrackEvent:
        kind = "NEW" if conn.events & (IPCT_NEW | IPCT_RELATED) else "UPDATE"
        return cls(now, kind, conn.conn_id, event_body(conn, conn.remaining(now)))

    @classmethod
    def destroyed(cls, conn: Conn, now: float, cause: str) -> ConntrackEvent:
        remaining = conn.remaining(now)
        return cls(now, "DESTROY", conn.conn_id, event_body(conn, remaining or None), cause)

    def line(self, timestamps: bool = False) -> str:
        text = f"{TAGS[self.kind]} {self.body}"
        if timestamps:
            return f"[{self.ts:.6f}]\t{text}"
        return text
