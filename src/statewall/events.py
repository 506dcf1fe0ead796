"""Conntrack events as `conntrack -E` reports them (nf_conntrack_ecache.c).

The core records every change to an entry while a packet is processed and
delivers it as one message when the packet passes a confirm hook, so a TCP
handshake yields three messages (NEW, then two UPDATEs); deletions are
reported at once. Each event reaches Python as a `ConntrackEvent`, a value
formatted when it happened. Expectation events (`conntrack -E expect`)
share the type, flagged by `expectation`.
"""

from __future__ import annotations

from dataclasses import dataclass

# Why an entry was destroyed (the DESTROY event's `cause`).
CAUSE_TIMEOUT = "timeout"
CAUSE_EARLY_DROP = "early drop (table full)"
CAUSE_GC_EARLY_DROP = "early drop by the garbage collector (table nearly full)"
CAUSE_RESET = "reset"
CAUSE_REOPENED = "reopened"

TAGS = {"NEW": "    [NEW]", "UPDATE": " [UPDATE]", "DESTROY": "[DESTROY]"}


@dataclass(frozen=True, slots=True)
class ConntrackEvent:
    """One `conntrack -E` message, formatted when it happened."""

    ts: float
    kind: str  # NEW, UPDATE, DESTROY
    conn: int
    body: str
    cause: str = ""  # for DESTROY: timeout, reset, reopened, early drop ...
    expectation: bool = False  # an expectation's event (conntrack -E expect)

    def line(self, timestamps: bool = False) -> str:
        text = f"{TAGS[self.kind]} {self.body}"
        if timestamps:
            return f"[{self.ts:.6f}]\t{text}"
        return text
