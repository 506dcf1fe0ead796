"""What every helper shares: its verdict value and how an expectation is announced.

A helper's answer is a value with a reason, like every other decision in
statewall. Packets a helper merely looks at get the shared `NOTHING` verdict,
so the per-packet path allocates nothing unless something happened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from statewall.conntrack.conn import CT_ESTABLISHED_REPLY, ORIGINAL, REPLY, Conn
from statewall.conntrack.expect import (
    Expectation,
    ExpectationTable,
    ExpectPolicy,
    endpoint,
    full_mask,
)
from statewall.packet import PROTO_TCP, PROTO_UDP, Packet

PROTO_NAMES = {PROTO_TCP: "TCP", PROTO_UDP: "UDP"}


@dataclass(frozen=True, slots=True)
class HelperVerdict:
    """A helper's verdict on one packet: accept or drop, and why (empty: nothing to say)."""

    accept: bool
    reason: str


NOTHING = HelperVerdict(True, "")

HelperFn = Callable[[Conn, int, Packet, float, ExpectationTable, int], HelperVerdict]


def direction_of(ctinfo: int) -> int:
    """CTINFO2DIR."""
    return REPLY if ctinfo >= CT_ESTABLISHED_REPLY else ORIGINAL


def sender(conn: Conn, direction: int) -> int:
    """The source address of the given direction's tuple (who sent the packet)."""
    return conn.orig_src if direction == ORIGINAL else conn.reply_src


def exact_source(master: Conn, helper: str, proto: int, src: int, dst: int, dport: int,
                 pkt: Packet, description: str) -> Expectation:
    """The usual shape: a known source host from any port to dst:dport."""
    return Expectation(master, helper, proto, src, full_mask(master.family), 0, 0, dst, dport,
                       packet_index=pkt.index, description=description)


def describe(exp: Expectation) -> str:
    """'TCP 10.0.0.2:any → 10.0.0.1:40000' (source parts wildcarded shown as any)."""
    fam = exp.family
    source = endpoint(fam, exp.src, 0).rsplit(":", 1)[0] if exp.src_mask else "any"
    sport = str(exp.sport) if exp.sport_mask else "any"
    return (f"{PROTO_NAMES.get(exp.proto, str(exp.proto))} {source}:{sport} → "
            f"{endpoint(fam, exp.dst, exp.dport)}")


def announce(table: ExpectationTable, exp: Expectation, policy: ExpectPolicy, now: float,
             expect_max: int) -> HelperVerdict:
    """Register `exp`; the helpers here drop the packet when the kernel refuses it."""
    refusal = table.related(exp, policy, now, expect_max)
    if refusal is None:
        return HelperVerdict(True, f"{exp.helper}: {exp.description}, expecting {describe(exp)}")
    return HelperVerdict(False, f"dropped by the {exp.helper} helper: {exp.description} "
                                f"but cannot add the expectation {describe(exp)}: {refusal}")
