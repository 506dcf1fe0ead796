"""Per-packet results: the frozen values statewall hands to its users.

One `PacketVerdict` per input packet, in input order, carrying everything a
person debugging a firewall asks: what conntrack called the packet, in which
direction, which status bits its connection had, which rule decided, what
happened to the packet, and why. The core fills every field, the one-line
summary included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ACCEPT = "ACCEPT"
DROP = "DROP"
REJECT = "REJECT"
STOLEN = "STOLEN"
QUEUE = "QUEUE"
UNKNOWN = "UNKNOWN"  # a rule statewall cannot evaluate decided (see --allow-unknown)


@dataclass(frozen=True, slots=True)
class RuleRef:
    """Where a rule sits: table, chain and 1-based rule number (0 = the chain's policy),
    and the line of the ruleset file it came from (0 when unknown)."""

    table: str
    chain: str
    number: int
    line: int = 0

    def __str__(self) -> str:
        where = f"rule {self.number}" if self.number else "policy"
        return f"{self.table} {self.chain} {where}"

    def as_json(self) -> dict[str, Any]:
        return {"table": self.table, "chain": self.chain, "number": self.number}


@dataclass(frozen=True, slots=True)
class PacketVerdict:
    """What happened to one captured packet."""

    index: int
    ts: float
    verdict: str
    ctstate: str | None
    ctdir: str | None
    status: tuple[str, ...]
    rule: RuleRef | None
    reason: str
    summary: str
    proto: int = 0
    tcp_state: str | None = None
    conn_id: int | None = None
    notes: tuple[str, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        """The jsonl record (schema documented in the README)."""
        return {
            "index": self.index,
            "ts": self.ts,
            "verdict": self.verdict,
            "ctstate": self.ctstate,
            "ctdir": self.ctdir,
            "status": list(self.status),
            "rule": self.rule.as_json() if self.rule else None,
            "reason": self.reason,
            "summary": self.summary,
            "proto": self.proto,
            "tcp_state": self.tcp_state,
            "conn": self.conn_id,
            "notes": list(self.notes),
        }
