"""Per-packet results: the frozen values statewall hands to its users.

One `PacketVerdict` per input packet, in input order, carrying everything a
person debugging a firewall asks: what conntrack called the packet, in which
direction, which status bits its connection had, which rule decided, what
happened to the packet, and why.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True, slots=True)
class RuleRef:
    """The rule that decided: table, chain and 1-based rule number (0 = chain policy)."""

    table: str
    chain: str
    number: int

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


def format_address(family: int, address: int) -> str:
    """Dotted quad or compressed IPv6, without ipaddress' object overhead (hot path)."""
    if family == 4:
        return f"{address >> 24}.{(address >> 16) & 255}.{(address >> 8) & 255}.{address & 255}"
    return socket.inet_ntop(socket.AF_INET6, address.to_bytes(16, "big"))


def format_endpoint(family: int, address: int, port: int | None) -> str:
    text = format_address(family, address)
    if port is None:
        return text
    return f"{text}:{port}" if family == 4 else f"[{text}]:{port}"


def tcp_flag_letters(flags: int) -> str:
    return "".join(letter for bit, letter in _FLAG_LETTERS if flags & bit) or "-"


def describe(pkt: Packet) -> str:
    """A one-line tcpdump-like summary: endpoints, protocol and its key fields."""
    if pkt.family == 0:
        return "non-IP frame"
    has_ports = pkt.proto in (PROTO_TCP, PROTO_UDP, PROTO_UDPLITE, PROTO_SCTP) and not (
        pkt.fragment is not None and pkt.fragment.offset > 0
    )
    src = format_endpoint(pkt.family, pkt.src, pkt.sport if has_ports else None)
    dst = format_endpoint(pkt.family, pkt.dst, pkt.dport if has_ports else None)
    name = PROTO_NAMES.get(pkt.proto, f"proto {pkt.proto}")
    detail = ""
    later_fragment = pkt.fragment is not None and pkt.fragment.offset > 0
    if pkt.error is not None and pkt.error.layer in ("link", "ipv4", "ipv6"):
        detail = " (malformed)"
    elif later_fragment:
        detail = ""
    elif pkt.proto == PROTO_TCP:
        detail = f" [{tcp_flag_letters(pkt.tcp_flags)}] seq={pkt.seq} ack={pkt.ack} win={pkt.window}"
        if pkt.payload_len:
            detail += f" len={pkt.payload_len}"
    elif pkt.proto in (PROTO_ICMP, PROTO_ICMPV6):
        detail = f" type={pkt.icmp_type} code={pkt.icmp_code}"
        if pkt.inner is None:
            detail += f" id={pkt.icmp_id}"
    elif has_ports:
        detail = f" len={pkt.payload_len}"
    if pkt.fragment is not None:
        detail += f" frag id={pkt.fragment.ident:#x} off={pkt.fragment.offset}"
        detail += "+" if pkt.fragment.more else ""
    return f"{src} > {dst} {name}{detail}"
