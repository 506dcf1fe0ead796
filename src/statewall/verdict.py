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
    the line of the ruleset file it came from (0 when unknown), and its family (4 or 6;
    0 when unknown). The family is not compared: a reference written by hand as the
    outputs cite a rule (`RuleRef("filter", "INPUT", 2)`) equals the replay's."""

    table: str
    chain: str
    number: int
    line: int = 0
    family: int = field(default=0, compare=False)

    def __str__(self) -> str:
        """`filter FORWARD #3` or `filter FORWARD policy`, as the text outputs cite it."""
        where = f"#{self.number}" if self.number else "policy"
        return f"{self.table} {self.chain} {where}"

    def as_json(self) -> dict[str, Any]:
        return {"table": self.table, "chain": self.chain, "number": self.number}


JSONL_VERSION = 2  # the `v` of every jsonl record (README: "The jsonl record")


Addressing = tuple[str | None, str | None, int | None, int | None]


def addressing_text(at: Addressing) -> str:
    """`src:sport > dst:dport`, or `src > dst` without ports."""
    src, dst, sport, dport = at
    if sport is None or dport is None:
        return f"{src} > {dst}"
    return f"{src}:{sport} > {dst}:{dport}"


@dataclass(frozen=True, slots=True)
class NatStep:
    """One rewrite of a packet by NAT (jsonl `nat`): the target that set the
    binding up (on a connection's first packet) or the binding a later packet
    follows ("SNAT", "reply of SNAT", ...), the half it changed before and after
    (`addr:port`), and the nat rule on the first packet."""

    target: str
    from_: str  # jsonl "from"
    to: str
    rule: RuleRef | None = None
    random: bool = False  # the port was picked at random (repeatable with --seed)

    def as_json(self) -> dict[str, Any]:
        out = {"target": self.target, "from": self.from_, "to": self.to,
               "rule": self.rule.as_json() if self.rule else None}
        return {**out, "random": True} if self.random else out


@dataclass(frozen=True, slots=True)
class Leaves:
    """A translated packet's addresses and ports as it left (jsonl `leaves`)."""

    src: str | None
    dst: str | None
    sport: int | None = None
    dport: int | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"src": self.src, "dst": self.dst}
        if self.sport is not None:
            out.update(sport=self.sport, dport=self.dport)
        return out


@dataclass(frozen=True, slots=True)
class PacketVerdict:
    """What happened to one captured packet; the fields are the jsonl record's."""

    index: int  # 0-based position in the capture
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
    conn: int | None = None
    notes: tuple[str, ...] = field(default=())
    src: str | None = None  # the packet's own addresses (None: not an IP packet)
    dst: str | None = None
    sport: int | None = None  # None: no ports (ICMP, a later fragment, ...)
    dport: int | None = None
    nat: tuple[NatStep, ...] = ()  # what NAT rewrote, in hook order
    leaves: Leaves | None = None  # the addressing as it left, when NAT changed it

    def leaving(self) -> Addressing:
        """(src, dst, sport, dport) as the packet left: after NAT, or its own."""
        out = self.leaves
        if out is not None:
            return out.src, out.dst, out.sport, out.dport
        return self.src, self.dst, self.sport, self.dport

    @property
    def frame(self) -> int:
        """The 1-based packet number, as Wireshark and tcpdump count."""
        return self.index + 1

    def as_json(self) -> dict[str, Any]:
        """The jsonl record (schema documented in the README)."""
        return {
            "v": JSONL_VERSION,
            "index": self.index,
            "frame": self.frame,
            "ts": self.ts,
            "verdict": self.verdict,
            "ctstate": self.ctstate,
            "ctdir": self.ctdir,
            "status": list(self.status),
            "rule": self.rule.as_json() if self.rule else None,
            "reason": self.reason,
            "summary": self.summary,
            "proto": self.proto,
            "src": self.src,
            "dst": self.dst,
            "sport": self.sport,
            "dport": self.dport,
            "tcp_state": self.tcp_state,
            "conn": self.conn,
            "notes": list(self.notes),
            **({"nat": [step.as_json() for step in self.nat],
                "leaves": self.leaves.as_json() if self.leaves else None} if self.nat else {}),
        }
