"""The connection table as Linux prints it.

Three printers, each byte-for-byte with its original so users can diff
statewall against a real machine:

* `proc_line`: /proc/net/nf_conntrack (nf_conntrack_standalone.c, ct_seq_show):
  L3 and L4 names padded to 8, IPv6 fully expanded, `zone=0` always, `use=2`
  (the reader's own reference counts).
* `conntrack_line`: `conntrack -L` (libnetfilter_conntrack's default
  printer): no L3 prefix, compressed IPv6, zone only when non-zero,
  `helper=` when attached, `use=1`.
* `event_body`: `conntrack -E`, as `conntrack -L` but without `use=`, with
  `mark=` only when non-zero, the timeout only when the kernel sends one and
  the TCP/SCTP state only when the event reports a state change (ctnetlink
  adds the protocol info to NEW/UPDATE messages only for IPCT_PROTOINFO;
  DESTROY messages always carry it).
"""

from __future__ import annotations

import ipaddress

from statewall.conntrack.conn import IPS_ASSURED, IPS_SEEN_REPLY, Conn
from statewall.conntrack.trackers import tracker_for
from statewall.packet import (
    PROTO_GRE,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_SCTP,
    PROTO_TCP,
    PROTO_UDP,
    PROTO_UDPLITE,
)
from statewall.verdict import format_address as compact_address

PORT_PROTOS = frozenset((PROTO_TCP, PROTO_UDP, PROTO_UDPLITE, PROTO_SCTP))
ICMP_PROTOS = frozenset((PROTO_ICMP, PROTO_ICMPV6))
PROC_L4_NAMES = {
    PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_UDPLITE: "udplite", PROTO_ICMP: "icmp",
    PROTO_ICMPV6: "icmpv6", PROTO_SCTP: "sctp", PROTO_GRE: "gre",
}
# conntrack-tools names protocols itself; it knows DCCP although the kernel
# tracks DCCP generically (and then prints zero ports for it).
USERSPACE_L4_NAMES = {**PROC_L4_NAMES, 33: "dccp"}


def format_address(family: int, address: int, expanded: bool) -> str:
    """The kernel prints IPv6 fully expanded (%pI6); conntrack-tools uses inet_ntop."""
    if family == 6 and expanded:
        return ipaddress.IPv6Address(address).exploded
    return compact_address(family, address)


def format_tuple(conn: Conn, reply: bool, expanded: bool, userspace: bool = False) -> str:
    """`src=… dst=… ` plus the protocol's part, each field followed by a space."""
    if reply:
        src, dst, sport, dport = conn.reply_src, conn.reply_dst, conn.reply_sport, conn.reply_dport
    else:
        src, dst, sport, dport = conn.orig_src, conn.orig_dst, conn.orig_sport, conn.orig_dport
    text = (
        f"src={format_address(conn.family, src, expanded)} "
        f"dst={format_address(conn.family, dst, expanded)} "
    )
    proto = conn.proto
    if proto in PORT_PROTOS:
        text += f"sport={sport} dport={dport} "
    elif proto in ICMP_PROTOS:
        text += f"type={dport >> 8} code={dport & 0xFF} id={sport} "
    elif proto == PROTO_GRE:
        text += f"srckey={sport:#x} dstkey={dport:#x} "
    elif userspace and proto == 33:
        text += "sport=0 dport=0 "
    return text


def _state_part(conn: Conn) -> str:
    name = tracker_for(conn.proto).state_name(conn)
    return f"{name} " if name else ""


def _flow_part(conn: Conn, expanded: bool, userspace: bool) -> str:
    text = format_tuple(conn, False, expanded, userspace)
    if not conn.status & IPS_SEEN_REPLY:
        text += "[UNREPLIED] "
    text += format_tuple(conn, True, expanded, userspace)
    if conn.status & IPS_ASSURED:
        text += "[ASSURED] "
    return text


def proc_line(conn: Conn, now: float) -> str:
    """One line of /proc/net/nf_conntrack."""
    l3 = "ipv4" if conn.family == 4 else "ipv6"
    l3num = 2 if conn.family == 4 else 10
    l4 = PROC_L4_NAMES.get(conn.proto, "unknown")
    state = _state_part(conn)
    if conn.proto == PROTO_GRE:
        state = _gre_timeouts(conn)
    return (
        f"{l3:<8} {l3num} {l4:<8} {conn.proto} {conn.remaining(now)} {state}"
        f"{_flow_part(conn, True, False)}mark={conn.mark} zone={conn.zone} use=2"
    )


def _gre_timeouts(conn: Conn) -> str:
    timeouts = conn.proto_data if isinstance(conn.proto_data, tuple) else (30, 180)
    return f"timeout={timeouts[0]}, stream_timeout={timeouts[1]} "


def _userspace_head(conn: Conn) -> str:
    l4 = USERSPACE_L4_NAMES.get(conn.proto, "unknown")
    return f"{l4:<8} {conn.proto} "


def conntrack_line(conn: Conn, now: float) -> str:
    """One line of `conntrack -L`."""
    text = f"{_userspace_head(conn)}{conn.remaining(now)} {_state_part(conn)}"
    text += f"{_flow_part(conn, False, True)}mark={conn.mark} "
    if conn.zone:
        text += f"zone={conn.zone} "
    if conn.helper:
        text += f"helper={conn.helper} "
    return text + "use=1"


def event_body(conn: Conn, timeout: int | None, protoinfo: bool = True,
               helper: bool = True) -> str:
    """The part of a `conntrack -E` line after the event tag.

    ctnetlink names the helper in NEW and UPDATE messages only (`helper=False`
    for DESTROY).
    """
    text = _userspace_head(conn)
    if timeout is not None:
        text += f"{timeout} "
    if protoinfo:
        text += _state_part(conn)
    text += _flow_part(conn, False, True)
    if conn.mark:
        text += f"mark={conn.mark} "
    if conn.zone:
        text += f"zone={conn.zone} "
    if helper and conn.helper:
        text += f"helper={conn.helper} "
    return text.rstrip(" ")
