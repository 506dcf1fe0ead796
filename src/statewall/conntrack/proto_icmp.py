"""ICMP and ICMPv6: query trackers and error classification
(net/netfilter/nf_conntrack_proto_icmp.c, nf_conntrack_proto_icmpv6.c).

How this works:

* Queries (echo, timestamp, information, address mask; ICMPv6 echo and node
  information) are tracked like a tiny connection. The tuple holds the
  identifier as "source port" and `type << 8 | code` as "destination port";
  inverting maps a request type to its reply type and keeps id and code, so a
  reply with another code is a different tuple. Types without a pair cannot be
  inverted, hence never create an entry (INVALID). A reply type may be looked
  up but may not start an entry. Every accepted packet re-arms 30 s; an entry
  is never ASSURED.
* Errors are classified before any lookup (`icmp_error`, `icmpv6_error`, run
  at step 3 of nf_conntrack_in): the datagram quoted inside the error is
  turned into a tuple, inverted (it travelled the other way) and looked up.
  A match whose destination is the error's destination makes the error
  RELATED to that entry, in the direction the match says; anything else is
  INVALID. Nothing about the entry changes (no refresh, no SEEN_REPLY).
* ICMPv6 neighbour discovery and MLD messages are UNTRACKED outright.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import NamedTuple

from statewall.checksum import internet_checksum, l4_checksum_ok
from statewall.config import Sysctls
from statewall.conntrack.conn import ORIGINAL, Conn
from statewall.conntrack.l4proto import ACCEPT, INVALID, L4Tracker, invert_ports
from statewall.conntrack.proto_gre import gre_keys
from statewall.packet import (
    PROTO_GRE,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_SCTP,
    PROTO_TCP,
    PROTO_UDP,
    PROTO_UDPLITE,
    Packet,
)

# IcmpErrorOutcome.kind; INVALID is l4proto.INVALID, re-exported here.
NOT_AN_ERROR = 0
RELATED = 1
UNTRACKED = 3

ICMP_HEADER_LEN = 8
NR_ICMP_TYPES = 18  # the highest ICMP type the kernel knows
IPV6_NO_NEXT_HEADER = 59

ICMP_ECHOREPLY = 0
ICMP_ECHO = 8
ICMP_PAIRS = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17}
ICMP_REQUESTS = frozenset({8, 13, 15, 17})
ICMP_ERRORS = frozenset({3, 4, 5, 11, 12})

ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129
ICMPV6_REDIRECT = 137
ICMPV6_PAIRS = {128: 129, 129: 128, 139: 140, 140: 139}
ICMPV6_REQUESTS = frozenset({128, 139})
# MLD query/report/done, RS, RA, NS, NA, MLDv2 report, multicast router adv/sol.
ICMPV6_UNTRACKED = frozenset({130, 131, 132, 133, 134, 135, 136, 143, 151, 152})
# A redirect: ICMPv6 header, target and destination addresses (rd_msg), then options.
REDIRECT_MSG_LEN = 40
ND_OPT_REDIRECT_HDR = 4

# Bytes of the quoted layer-4 header needed to build its tuple (nf_ct_get_tuple).
_TUPLE_BYTES = {
    PROTO_TCP: 4, PROTO_UDP: 4, PROTO_UDPLITE: 4, PROTO_SCTP: 4,
    PROTO_ICMP: ICMP_HEADER_LEN, PROTO_ICMPV6: ICMP_HEADER_LEN,
}
_PORT_PROTOS = frozenset({PROTO_TCP, PROTO_UDP, PROTO_UDPLITE, PROTO_SCTP})
_PROTO_NAMES = {
    PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_UDPLITE: "udplite", PROTO_SCTP: "sctp",
    PROTO_ICMP: "icmp", PROTO_ICMPV6: "icmpv6", PROTO_GRE: "gre",
}


class IcmpErrorOutcome(NamedTuple):
    """What the error handler decided before any lookup of the packet's own tuple.

    `conn` and `direction` (ORIGINAL or REPLY: which tuple of `conn` the quoted
    datagram's inverse matched) are meaningful only for RELATED.
    """

    kind: int
    conn: Conn | None
    direction: int
    reason: str


# (family, proto, src, dst, sport, dport, zone) -> (entry, direction matched);
# expired entries are never returned.
Lookup = Callable[[int, int, int, int, int, int, int], "tuple[Conn, int] | None"]
IcmpErrorFn = Callable[[Packet, Sysctls, bool, int, Lookup], IcmpErrorOutcome]

_NOT_AN_ERROR = IcmpErrorOutcome(NOT_AN_ERROR, None, ORIGINAL, "")


def _invalid(reason: str) -> IcmpErrorOutcome:
    return IcmpErrorOutcome(INVALID, None, ORIGINAL, "INVALID: " + reason)


# -- tuple inversion --------------------------------------------------------

def invert_icmp(src: int, dst: int, sport: int, dport: int) -> tuple[int, int, int, int] | None:
    """Reply tuple of an ICMP query; None for types without a reply type."""
    reply = ICMP_PAIRS.get(dport >> 8)
    if reply is None:
        return None
    return dst, src, sport, reply << 8 | (dport & 0xFF)


def invert_icmpv6(src: int, dst: int, sport: int, dport: int) -> tuple[int, int, int, int] | None:
    """Reply tuple of an ICMPv6 query; None for types without a reply type."""
    reply = ICMPV6_PAIRS.get(dport >> 8)
    if reply is None:
        return None
    return dst, src, sport, reply << 8 | (dport & 0xFF)


def _invert_generic(src: int, dst: int, sport: int, dport: int) -> tuple[int, int, int, int]:
    return dst, src, 0, 0


def invert_any(proto: int, src: int, dst: int, sport: int, dport: int
               ) -> tuple[int, int, int, int] | None:
    """nf_ct_invert_tuple for any protocol (used on quoted datagrams)."""
    if proto == PROTO_ICMP:
        return invert_icmp(src, dst, sport, dport)
    if proto == PROTO_ICMPV6:
        return invert_icmpv6(src, dst, sport, dport)
    if proto in _PORT_PROTOS or proto == PROTO_GRE:
        return invert_ports(src, dst, sport, dport)
    return _invert_generic(src, dst, sport, dport)


# -- query trackers -----------------------------------------------------------

def icmp_error_stub(pkt: Packet, cfg: Sysctls, in_prerouting: bool) -> str | None:
    """ICMP validation happens in `icmp_error`; here only the family can be wrong."""
    if pkt.family != 4:
        return "INVALID: ICMP (protocol 1) inside an IPv6 packet is never tracked"
    return None


def icmpv6_error_stub(pkt: Packet, cfg: Sysctls, in_prerouting: bool) -> str | None:
    """ICMPv6 validation happens in `icmpv6_error`; here only the family can be wrong."""
    if pkt.family != 6:
        return "INVALID: ICMPv6 (protocol 58) inside an IPv4 packet is never tracked"
    return None


def icmp_new(conn: Conn, pkt: Packet, cfg: Sysctls) -> str | None:
    """Only a request may create an entry (the kernel's `valid_new`)."""
    icmp_type = conn.orig_dport >> 8
    if icmp_type in ICMP_REQUESTS:
        return None
    return f"INVALID: ICMP {icmp_type_name(4, icmp_type)} without a matching request"


def icmpv6_new(conn: Conn, pkt: Packet, cfg: Sysctls) -> str | None:
    icmp_type = conn.orig_dport >> 8
    if icmp_type in ICMPV6_REQUESTS:
        return None
    return f"INVALID: ICMPv6 {icmp_type_name(6, icmp_type)} without a matching request"


def icmp_packet(
    conn: Conn, pkt: Packet, direction: int, ctinfo: int, now: float, cfg: Sysctls
) -> tuple[int, str]:
    conn.set_timeout(now, cfg.nf_conntrack_icmp_timeout)
    return ACCEPT, "ICMP query or reply (nf_conntrack_icmp_timeout)"


def icmpv6_packet(
    conn: Conn, pkt: Packet, direction: int, ctinfo: int, now: float, cfg: Sysctls
) -> tuple[int, str]:
    conn.set_timeout(now, cfg.nf_conntrack_icmpv6_timeout)
    return ACCEPT, "ICMPv6 query or reply (nf_conntrack_icmpv6_timeout)"


ICMP_TRACKER = L4Tracker(
    name="icmp", proto=PROTO_ICMP, error=icmp_error_stub, new=icmp_new, packet=icmp_packet,
    invert=invert_icmp,
)
ICMPV6_TRACKER = L4Tracker(
    name="icmpv6", proto=PROTO_ICMPV6, error=icmpv6_error_stub, new=icmpv6_new,
    packet=icmpv6_packet, invert=invert_icmpv6,
)


# -- error classification -----------------------------------------------------

def icmp_error(pkt: Packet, cfg: Sysctls, in_prerouting: bool, zone: int,
               lookup: Lookup) -> IcmpErrorOutcome:
    """nf_conntrack_icmpv4_error: validate, and relate errors to the entry they quote."""
    if pkt.family != 4 or pkt.proto != PROTO_ICMP:
        return _NOT_AN_ERROR
    data = pkt.data
    off = pkt.l4_off
    if len(data) - off < ICMP_HEADER_LEN:
        return _invalid("ICMP short packet (header needs 8 bytes)")
    if in_prerouting and cfg.nf_conntrack_checksum and internet_checksum(data[off:]) != 0:
        return _invalid("ICMP checksum bad")
    icmp_type = pkt.icmp_type
    if icmp_type > NR_ICMP_TYPES:
        return _invalid(f"ICMP type {icmp_type} is unknown (above {NR_ICMP_TYPES})")
    if icmp_type not in ICMP_ERRORS:
        return _NOT_AN_ERROR
    return _related(pkt, zone, lookup, "ICMP " + icmp_error_name(4, icmp_type, pkt.icmp_code))


def icmpv6_error(pkt: Packet, cfg: Sysctls, in_prerouting: bool, zone: int,
                 lookup: Lookup) -> IcmpErrorOutcome:
    """nf_conntrack_icmpv6_error: validate, untrack ND/MLD, relate errors and redirects."""
    if pkt.family != 6 or pkt.proto != PROTO_ICMPV6:
        return _NOT_AN_ERROR
    data = pkt.data
    off = pkt.l4_off
    if len(data) - off < ICMP_HEADER_LEN:
        return _invalid("ICMPv6 short packet (header needs 8 bytes)")
    if (
        in_prerouting
        and cfg.nf_conntrack_checksum
        and not l4_checksum_ok(6, pkt.src, pkt.dst, PROTO_ICMPV6, data[off:])
    ):
        return _invalid("ICMPv6 checksum failed")
    icmp_type = pkt.icmp_type
    if icmp_type in ICMPV6_UNTRACKED:
        name = icmp_type_name(6, icmp_type)
        return IcmpErrorOutcome(
            UNTRACKED, None, ORIGINAL,
            f"UNTRACKED: ICMPv6 {name} (neighbour discovery and MLD are never tracked)",
        )
    if icmp_type == ICMPV6_REDIRECT:
        return _redirect(pkt, zone, lookup)
    if icmp_type >= 128:
        return _NOT_AN_ERROR
    return _related(pkt, zone, lookup, "ICMPv6 " + icmp_error_name(6, icmp_type, pkt.icmp_code))


def _redirect(pkt: Packet, zone: int, lookup: Lookup) -> IcmpErrorOutcome:
    """nf_conntrack_icmpv6_redirect: only a well-formed redirect quotes a packet."""
    data = pkt.data
    off = pkt.l4_off
    available = len(data) - off
    if available < REDIRECT_MSG_LEN:
        return _invalid("ICMPv6 short redirect")
    if pkt.icmp_code != 0:
        return _NOT_AN_ERROR
    if pkt.ttl != 255 or not _link_local(pkt.src):
        return _invalid("ICMPv6 redirect with hop limit other than 255 or a non-link-local source")
    if available < REDIRECT_MSG_LEN + 2 or data[off + REDIRECT_MSG_LEN + 1] == 0:
        return _invalid("ICMPv6 redirect without options")
    if data[off + REDIRECT_MSG_LEN] != ND_OPT_REDIRECT_HDR:
        return _NOT_AN_ERROR
    return _related(pkt, zone, lookup, "ICMPv6 redirect")


def _link_local(addr: int) -> bool:
    """What ipv6_addr_type calls link-local: fe80::/10 or link-scope multicast."""
    if addr >> 118 == 0x3FA:
        return True
    return addr >> 120 == 0xFF and (addr >> 112) & 0x0F == 2


def _related(pkt: Packet, zone: int, lookup: Lookup, what: str) -> IcmpErrorOutcome:
    """nf_conntrack_inet_error: find the entry the quoted datagram belongs to."""
    inner = pkt.inner
    if inner is None:
        return _invalid(f"{what} without a quoted IP header")
    if inner.error is not None:
        return _invalid(f"{what} quoting a packet too short to identify ({inner.error})")
    if inner.family != pkt.family:
        return _invalid(f"{what} quoting an IPv{inner.family} header")
    if inner.fragment is not None and inner.fragment.offset != 0:
        return _invalid(f"{what} quoting a non-first fragment")
    proto = inner.proto
    if inner.family == 6 and proto == IPV6_NO_NEXT_HEADER:
        return _invalid(f"{what} quoting an IPv6 packet without a layer-4 header")
    tuple_ports = _quoted_ports(inner)
    if isinstance(tuple_ports, str):
        return _invalid(f"{what} quoting {tuple_ports}")
    reply = invert_any(proto, inner.src, inner.dst, *tuple_ports)
    if reply is None:
        return _invalid(f"{what} quoting an ICMP message that has no reply type (an error?)")
    found = lookup(pkt.family, proto, *reply, zone)
    if found is None:
        return _invalid(f"{what} quoting an unknown connection")
    conn, direction = found
    expected_dst = conn.orig_dst if direction == ORIGINAL else conn.reply_dst
    if pkt.dst != expected_dst:
        return _invalid(
            f"{what} sent to {_addr(pkt.family, pkt.dst)}, not to the quoted packet's source "
            f"{_addr(pkt.family, expected_dst)}"
        )
    side = "original" if direction == ORIGINAL else "reply"
    return IcmpErrorOutcome(
        RELATED, conn, direction, f"RELATED: {what} about {describe_conn(conn)} ({side} direction)"
    )


def _quoted_ports(inner: Packet) -> tuple[int, int] | str:
    """The quoted datagram's 16-bit tuple parts, or why they cannot be read."""
    proto = inner.proto
    available = len(inner.data) - inner.l4_off
    need = _TUPLE_BYTES.get(proto, 0)
    if available < need:
        return f"only {available} bytes of the {_proto_name(proto)} header ({need} needed)"
    if proto == PROTO_GRE:
        keys = gre_keys(inner.data, inner.l4_off)
        return keys if keys is not None else "enhanced GRE that does not carry PPP"
    if need:
        return inner.sport, inner.dport
    return 0, 0


# -- names for reasons --------------------------------------------------------

_ICMP_TYPE_NAMES = {
    0: "echo reply", 3: "destination unreachable", 4: "source quench", 5: "redirect",
    8: "echo request", 9: "router advertisement", 10: "router solicitation",
    11: "time exceeded", 12: "parameter problem", 13: "timestamp request",
    14: "timestamp reply", 15: "information request", 16: "information reply",
    17: "address mask request", 18: "address mask reply",
}
_ICMP_UNREACH_CODES = {
    0: "network unreachable", 1: "host unreachable", 2: "protocol unreachable",
    3: "port unreachable", 4: "fragmentation needed", 5: "source route failed",
    6: "network unknown", 7: "host unknown", 9: "network prohibited", 10: "host prohibited",
    11: "TOS network unreachable", 12: "TOS host unreachable",
    13: "communication prohibited", 14: "host precedence violation", 15: "precedence cutoff",
}
_ICMPV6_TYPE_NAMES = {
    1: "destination unreachable", 2: "packet too big", 3: "time exceeded",
    4: "parameter problem", 128: "echo request", 129: "echo reply", 130: "MLD query",
    131: "MLD report", 132: "MLD done", 133: "router solicitation",
    134: "router advertisement", 135: "neighbour solicitation",
    136: "neighbour advertisement", 137: "redirect", 139: "node information query",
    140: "node information reply", 143: "MLDv2 report",
    151: "multicast router advertisement", 152: "multicast router solicitation",
}
_ICMPV6_UNREACH_CODES = {
    0: "no route", 1: "administratively prohibited", 2: "beyond scope of source address",
    3: "address unreachable", 4: "port unreachable", 5: "source address failed policy",
    6: "reject route",
}


def icmp_type_name(family: int, icmp_type: int) -> str:
    names = _ICMP_TYPE_NAMES if family == 4 else _ICMPV6_TYPE_NAMES
    return names.get(icmp_type, f"type {icmp_type}")


def icmp_error_name(family: int, icmp_type: int, code: int) -> str:
    """'port unreachable', 'time exceeded', ...: the most specific name of an error."""
    if family == 4 and icmp_type == 3:
        return _ICMP_UNREACH_CODES.get(code, f"destination unreachable (code {code})")
    if family == 6 and icmp_type == 1:
        return _ICMPV6_UNREACH_CODES.get(code, f"destination unreachable (code {code})")
    return icmp_type_name(family, icmp_type)


def _proto_name(proto: int) -> str:
    return _PROTO_NAMES.get(proto, f"protocol {proto}")


def _addr(family: int, addr: int) -> str:
    if family == 4:
        return str(ipaddress.IPv4Address(addr))
    return str(ipaddress.IPv6Address(addr))


def _endpoint(family: int, addr: int, port: int) -> str:
    text = _addr(family, addr)
    return f"{text}:{port}" if family == 4 else f"[{text}]:{port}"


def describe_conn(conn: Conn) -> str:
    """The entry's original tuple in words: 'udp 192.0.2.1:5353 → 198.51.100.7:53'."""
    fam, proto = conn.family, conn.proto
    if proto in _PORT_PROTOS:
        return (
            f"{_proto_name(proto)} {_endpoint(fam, conn.orig_src, conn.orig_sport)} → "
            f"{_endpoint(fam, conn.orig_dst, conn.orig_dport)}"
        )
    flow = f"{_proto_name(proto)} {_addr(fam, conn.orig_src)} → {_addr(fam, conn.orig_dst)}"
    if proto in (PROTO_ICMP, PROTO_ICMPV6):
        kind = icmp_type_name(4 if proto == PROTO_ICMP else 6, conn.orig_dport >> 8)
        return f"{flow} {kind} id {conn.orig_sport}"
    return flow
