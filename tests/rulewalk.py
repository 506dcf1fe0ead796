"""One table walk in the core's rule engine (statewall._core.RuleEngine), for the rule tests.

A ruleset is parsed, checked (`compile_ruleset`), lowered and loaded into a
`RuleEngine`; `walk` runs one packet through one table at one hook and
returns the walk's `Decision`. `Entry` stands for the conntrack entry the
packet belongs to: the walk reads its tuple, status, mark, expiry, protocol
state, accounting and its master's helper, and a CONNMARK target writes the
entry's mark back. ctinfo values and status bits are the kernel's numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from statewall._core import RuleEngine
from statewall.packet import Packet
from statewall.rules.compile import CompiledRuleset, compile_ruleset
from statewall.rules.ext import RuleState
from statewall.rules.lower import lower
from statewall.rules.parser import parse_ruleset
from statewall.verdict import RuleRef

# enum ip_conntrack_info
CT_ESTABLISHED = 0
CT_RELATED = 1
CT_NEW = 2
CT_ESTABLISHED_REPLY = 3
CT_RELATED_REPLY = 4
CT_INVALID = 5  # no entry
CT_UNTRACKED = 7

# enum ip_conntrack_status
IPS_EXPECTED = 1 << 0
IPS_SEEN_REPLY = 1 << 1
IPS_ASSURED = 1 << 2
IPS_CONFIRMED = 1 << 3
IPS_SRC_NAT = 1 << 4
IPS_DST_NAT = 1 << 5
IPS_DYING = 1 << 9
IPS_FIXED_TIMEOUT = 1 << 10
IPS_HELPER = 1 << 13


class TupleFields:
    """`orig_src` ... `reply_dport` read from the `orig` and `reply` tuples
    (src, dst, sport, dport), as the core's binding reads an entry."""

    if TYPE_CHECKING:  # provided by the class that mixes this in

        @property
        def orig(self) -> tuple[int, int, int, int]: ...

        @property
        def reply(self) -> tuple[int, int, int, int]: ...

    @property
    def orig_src(self) -> int:
        return self.orig[0]

    @property
    def orig_dst(self) -> int:
        return self.orig[1]

    @property
    def orig_sport(self) -> int:
        return self.orig[2]

    @property
    def orig_dport(self) -> int:
        return self.orig[3]

    @property
    def reply_src(self) -> int:
        return self.reply[0]

    @property
    def reply_dst(self) -> int:
        return self.reply[1]

    @property
    def reply_sport(self) -> int:
        return self.reply[2]

    @property
    def reply_dport(self) -> int:
        return self.reply[3]


@dataclass
class Entry(TupleFields):
    """A conntrack entry as the rules see it."""

    family: int
    proto: int
    zone: int
    orig: tuple[int, int, int, int]  # src, dst, sport, dport
    reply: tuple[int, int, int, int]
    created: float = 0.0
    status: int = 0
    expires: float = 0.0
    mark: int = 0
    proto_state: int = 0
    helper: str | None = None
    master: Entry | None = None
    counters: list[int] | None = None  # orig packets, orig bytes, reply packets, reply bytes



@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of walking one table for one packet.

    `rule` is the deciding rule or the built-in chain's policy (number 0).
    Effects are (kind, value) pairs in rule order: ("notrack", True),
    ("helper", "ftp"), ("zone", 1), ("connmark", value), ("nat", text), ...
    """

    verdict: str  # ACCEPT, DROP, REJECT, QUEUE or UNKNOWN
    rule: RuleRef
    reason: str
    mark: int = 0
    reject_with: str | None = None
    queue_num: int = 0
    logs: tuple[str, ...] = ()
    effects: tuple[tuple[str, Any], ...] = ()
    notes: tuple[str, ...] = ()
    trace: tuple[str, ...] = ()
    nf_trace: bool = False  # skb->nf_trace after the walk


def compile_text(text: str, family: int = 4, allow_unknown: bool = False,
                 state: RuleState | None = None, source: str = "t.rules") -> CompiledRuleset:
    return compile_ruleset(parse_ruleset(text, source, family, allow_unknown),
                           state or RuleState(), allow_unknown)


def engine_of(compiled: CompiledRuleset) -> RuleEngine:
    return RuleEngine(lower(compiled).to_json())


@dataclass
class Rules:
    """A checked ruleset and the engine it is loaded into (which keeps the counters and
    the match state: recent lists, limit buckets, ipsets ...)."""

    compiled: CompiledRuleset
    engine: RuleEngine

    @classmethod
    def of(cls, compiled: CompiledRuleset) -> Rules:
        return cls(compiled, engine_of(compiled))


def load(*lines: str, table: str = "filter", family: int = 4, allow_unknown: bool = False,
         state: RuleState | None = None) -> Rules:
    """One table's lines (without the `*table` and COMMIT lines), checked and loaded."""
    text = "\n".join([f"*{table}", *lines, "COMMIT", ""])
    return Rules.of(compile_text(text, family, allow_unknown, state))


def _tupled(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tupled(v) for v in value)
    return value


def walk(engine: RuleEngine, table: str, hook: str, pkt: Packet, ctinfo: int = CT_NEW,
         conn: Entry | None = None, now: float = 0.0, iface_in: str | None = None,
         iface_out: str | None = None, mark: int = 0, trace: bool = False,
         local_out: bool | None = None) -> Decision | None:
    """Walk `table` at `hook`; None when the table has no chain for the hook.
    `local_out`: the machine sent the packet itself (default: at OUTPUT)."""
    out = engine.walk(table, hook, pkt, ctinfo, conn, now, iface_in, iface_out, mark, trace,
                      local_out)
    if out is None:
        return None
    (verdict, (rtable, rchain, number, line), reason, new_mark, reject_with, queue_num, logs,
     effects, notes, trace_lines, nf_trace, connmark) = out
    if connmark is not None and conn is not None:
        conn.mark = connmark[0]
    return Decision(
        verdict, RuleRef(rtable, rchain, number, line), reason, new_mark, reject_with,
        queue_num, tuple(logs), tuple((k, _tupled(json.loads(v))) for k, v in effects),
        tuple(notes), tuple(trace_lines), nf_trace,
    )
