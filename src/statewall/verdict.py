"""Per-packet results: the frozen values statewall hands to its users.

One `PacketVerdict` per input packet, in input order, carrying everything a
person debugging a firewall asks: what conntrack called the packet, in which
direction, which status bits its connection had, which rule decided, what
happened to the packet, and why.

Formatting the one-line `summary` takes about a tenth of a packet's whole
time through the pipeline, and a benchmark or a summary-only run never
prints it. So a verdict may be built with the `Packet` in place of the
summary text: the text is written on first read, and reads the same as if
it had been written up front (decoded packets are never modified later).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from statewall.packet import (
    ACK,
    CWR,
    ECE,
    FIN,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_SCTP,
    PROTO_TCP,
    PROTO_UDP,
    PROTO_UDPLITE,
    PSH,
    RST,
    SYN,
    URG,
    Packet,
)

ACCEPT = "ACCEPT"
DROP = "DROP"
REJECT = "REJECT"
STOLEN = "STOLEN"
QUEUE = "QUEUE"
UNKNOWN = "UNKNOWN"  # a rule statewall cannot evaluate decided (see --allow-unknown)

PROTO_NAMES = {
    PROTO_TCP: "TCP", PROTO_UDP: "UDP", PROTO_UDPLITE: "UDPLITE", PROTO_ICMP: "ICMP",
    PROTO_ICMPV6: "ICMPv6", PROTO_SCTP: "SCTP", 47: "GRE", 50: "ESP", 51: "AH", 89: "OSPF",
    4: "IPIP", 41: "IPv6", 33: "DCCP", 2: "IGMP", 112: "VRRP",
}
_FLAG_LETTERS = ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"), (ACK, "A"), (URG, "U"),
                 (ECE, "E"), (CWR, "C"))
_PORT_PROTOS: Final = frozenset((PROTO_TCP, PROTO_UDP, PROTO_UDPLITE, PROTO_SCTP))
_STACK_LAYERS: Final = frozenset(("link", "ipv4", "ipv6"))
_OCTETS: Final = tuple(str(octet) for octet in range(256))  # indexing beats formatting an int


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
    """What happened to one captured packet.

    `summary` may be given as the `Packet` itself: it is described on first
    read (see the module's docstring), and the packet is let go then.
    """

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
    _packet: Packet | None = field(default=None, init=False, repr=False, compare=False)

    def __init__(self, index: int, ts: float, verdict: str, ctstate: str | None,
                 ctdir: str | None, status: tuple[str, ...], rule: RuleRef | None, reason: str,
                 summary: str | Packet, proto: int = 0, tcp_state: str | None = None,
                 conn_id: int | None = None, notes: tuple[str, ...] = ()) -> None:
        # Frozen: fields are written past the dataclass' __setattr__, as its own
        # generated __init__ does, but through a local name (measurably cheaper).
        put = object.__setattr__
        put(self, "index", index)
        put(self, "ts", ts)
        put(self, "verdict", verdict)
        put(self, "ctstate", ctstate)
        put(self, "ctdir", ctdir)
        put(self, "status", status)
        put(self, "rule", rule)
        put(self, "reason", reason)
        if isinstance(summary, str):
            put(self, "summary", summary)
            put(self, "_packet", None)
        else:
            put(self, "_packet", summary)  # the summary slot stays empty until read
        put(self, "proto", proto)
        put(self, "tcp_state", tcp_state)
        put(self, "conn_id", conn_id)
        put(self, "notes", notes)

    if not TYPE_CHECKING:  # hidden from type checkers, so a misspelt attribute stays an error

        def __getattr__(self, name: str) -> str:
            """Reached only when a slot is empty: the summary not described yet."""
            packet = self._packet
            if name != "summary" or packet is None:
                raise AttributeError(
                    f"'{type(self).__name__}' object has no attribute '{name}'", name=name, obj=self
                )
            text = describe(packet)
            object.__setattr__(self, "summary", text)
            object.__setattr__(self, "_packet", None)
            return text

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


def format_address(family: int, address: int) -> str:
    """Dotted quad or compressed IPv6, without ipaddress' object overhead (hot path)."""
    if family == 4:
        text = _OCTETS
        return (f"{text[address >> 24]}.{text[(address >> 16) & 255]}."
                f"{text[(address >> 8) & 255]}.{text[address & 255]}")
    return socket.inet_ntop(socket.AF_INET6, address.to_bytes(16, "big"))


def format_endpoint(family: int, address: int, port: int | None) -> str:
    text = format_address(family, address)
    if port is None:
        return text
    return f"{text}:{port}" if family == 4 else f"[{text}]:{port}"


def _flag_letters(flags: int) -> str:
    return "".join(letter for bit, letter in _FLAG_LETTERS if flags & bit) or "-"


_FLAG_TEXT: Final = tuple(_flag_letters(flags) for flags in range(256))


def tcp_flag_letters(flags: int) -> str:
    return _FLAG_TEXT[flags & 0xFF]


def describe(pkt: Packet) -> str:
    """A one-line tcpdump-like summary: endpoints, protocol and its key fields."""
    family = pkt.family
    if family == 0:
        return "non-IP frame"
    proto = pkt.proto
    fragment = pkt.fragment
    later_fragment = fragment is not None and fragment.offset > 0
    if proto in _PORT_PROTOS and not later_fragment:
        src = format_endpoint(family, pkt.src, pkt.sport)
        dst = format_endpoint(family, pkt.dst, pkt.dport)
    else:
        src = format_address(family, pkt.src)
        dst = format_address(family, pkt.dst)
    name = PROTO_NAMES.get(proto) or f"proto {proto}"
    error = pkt.error
    if error is not None and error.layer in _STACK_LAYERS:
        detail = " (malformed)"
    elif later_fragment:
        detail = ""
    elif proto == PROTO_TCP:
        detail = (f" [{_FLAG_TEXT[pkt.tcp_flags & 0xFF]}] seq={pkt.seq} ack={pkt.ack} "
                  f"win={pkt.window}")
        payload_len = len(pkt.data) - pkt.payload_off
        if payload_len:
            detail += f" len={payload_len}"
    elif proto in (PROTO_ICMP, PROTO_ICMPV6):
        detail = f" type={pkt.icmp_type} code={pkt.icmp_code}"
        if pkt.inner is None:
            detail += f" id={pkt.icmp_id}"
    elif proto in _PORT_PROTOS:
        detail = f" len={len(pkt.data) - pkt.payload_off}"
    else:
        detail = ""
    if fragment is not None:
        more = "+" if fragment.more else ""
        detail += f" frag id={fragment.ident:#x} off={fragment.offset}{more}"
    return f"{src} > {dst} {name}{detail}"
