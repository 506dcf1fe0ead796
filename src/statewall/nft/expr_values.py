"""nft datatypes: a JSON value (number, symbol, address, name) as the
big-endian bytes of its key's width, the form the core compares.

Symbol tables are nft's own names (`nft describe TYPE`); bit types (ct
state, ct status, tcp flags) take a list or `|` of names as their OR.
"""

from __future__ import annotations

import calendar
import ipaddress
import time
from typing import Any

from statewall.rules.matches.xt_dscp import DSCP_CLASSES


class BadValue(Exception):
    """A value the datatype cannot hold (the message names both)."""


CT_STATE = {"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64}
CT_STATUS = {"expected": 1, "seen-reply": 2, "assured": 4, "confirmed": 8, "snat": 16,
             "dnat": 32, "dying": 512}
CT_DIR = {"original": 0, "reply": 1}
TCP_FLAG = {"fin": 1, "syn": 2, "rst": 4, "psh": 8, "ack": 16, "urg": 32, "ecn": 64,
            "cwr": 128}
INET_PROTO = {"hopopt": 0, "icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "egp": 8, "udp": 17,
              "ipv6": 41, "ipv6-route": 43, "ipv6-frag": 44, "gre": 47, "esp": 50, "ah": 51,
              "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "comp": 108,
              "dccp": 33, "sctp": 132, "udplite": 136, "mh": 135, "eigrp": 88, "ospf": 89,
              "pim": 103, "vrrp": 112, "l2tp": 115, "ipcomp": 108, "encap": 98, "rsvp": 46}
NFPROTO = {"ipv4": 2, "ipv6": 10}
ETHER_TYPE = {"ip": 0x0800, "arp": 0x0806, "ip6": 0x86DD, "8021q": 0x8100, "vlan": 0x8100,
              "8021ad": 0x88A8}
PKT_TYPE = {"host": 0, "unicast": 0, "broadcast": 1, "multicast": 2, "other": 3}
IFACE_TYPE = {"ether": 1, "ppp": 512, "ipip": 768, "ipip6": 769, "loopback": 772, "sit": 776,
              "ipgre": 778}
FIB_ADDRTYPE = {"unspec": 0, "unicast": 1, "local": 2, "broadcast": 3, "anycast": 4,
                "multicast": 5, "blackhole": 6, "unreachable": 7, "prohibit": 8}
ICMP_TYPE = {"echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5,
             "echo-request": 8, "router-advertisement": 9, "router-solicitation": 10,
             "time-exceeded": 11, "parameter-problem": 12, "timestamp-request": 13,
             "timestamp-reply": 14, "info-request": 15, "info-reply": 16,
             "address-mask-request": 17, "address-mask-reply": 18}
ICMPV6_TYPE = {"destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3,
               "parameter-problem": 4, "echo-request": 128, "echo-reply": 129,
               "mld-listener-query": 130, "mld-listener-report": 131,
               "mld-listener-done": 132, "mld-listener-reduction": 132,
               "nd-router-solicit": 133, "nd-router-advert": 134, "nd-neighbor-solicit": 135,
               "nd-neighbor-advert": 136, "nd-redirect": 137, "router-renumbering": 138,
               "ind-neighbor-solicit": 141, "ind-neighbor-advert": 142,
               "mld2-listener-report": 143}
ICMP_CODE = {"net-unreachable": 0, "host-unreachable": 1, "prot-unreachable": 2,
             "port-unreachable": 3, "frag-needed": 4, "net-prohibited": 9,
             "host-prohibited": 10, "admin-prohibited": 13}
ICMPV6_CODE = {"no-route": 0, "admin-prohibited": 1, "addr-unreachable": 3,
               "port-unreachable": 4, "policy-fail": 5, "reject-route": 6}
DSCP = {k.lower(): v for k, v in DSCP_CLASSES.items()} | {"lephb": 1, "va": 44}
DAY = {d: i for i, d in enumerate(("sunday", "monday", "tuesday", "wednesday", "thursday",
                                   "friday", "saturday"))}
SERVICES = {"ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53,
            "bootps": 67, "bootpc": 68, "tftp": 69, "http": 80, "ntp": 123, "https": 443,
            "snmp": 161, "imap": 143, "pop3": 110, "microsoft-ds": 445, "sip": 5060}

SYMBOLS: dict[str, dict[str, int]] = {
    "ct_state": CT_STATE, "ct_status": CT_STATUS, "ct_dir": CT_DIR, "tcp_flag": TCP_FLAG,
    "inet_proto": INET_PROTO, "nf_proto": NFPROTO, "ether_type": ETHER_TYPE,
    "pkt_type": PKT_TYPE, "iface_type": IFACE_TYPE, "fib_addrtype": FIB_ADDRTYPE,
    "icmp_type": ICMP_TYPE, "icmpv6_type": ICMPV6_TYPE, "icmp_code": ICMP_CODE,
    "icmpv6_code": ICMPV6_CODE, "dscp": DSCP, "day": DAY, "inet_service": SERVICES,
}

# Bit types: a list or `|` of names is their OR.
BIT_TYPES = {"ct_state", "ct_status", "tcp_flag"}

IFNAMSIZ = 16
# Widths of the named set types (concatenation parts are padded to 4 by the caller).
TYPE_WIDTH = {"ipv4_addr": 4, "ipv6_addr": 16, "inet_service": 2, "inet_proto": 1,
              "ifname": IFNAMSIZ, "iface_index": IFNAMSIZ, "mark": 4, "ct_state": 4,
              "ct_status": 4, "ct_dir": 1, "nf_proto": 1, "ether_type": 2, "pkt_type": 1,
              "tcp_flag": 1, "icmp_type": 1, "icmpv6_type": 1, "icmp_code": 1,
              "icmpv6_code": 1, "dscp": 1, "fib_addrtype": 4, "iface_type": 2,
              "day": 1, "hour": 4, "time": 8, "uid": 4, "gid": 4,
              # typeof sets list as these: the widths of the usual keys behind them.
              "integer": 4, "string": IFNAMSIZ}


def _int_of(value: Any, dtype: str) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        table = SYMBOLS.get(dtype, {})
        if value.lower() in table:
            return table[value.lower()]
        try:
            return int(value, 0)
        except ValueError:
            pass
    if isinstance(value, list) and dtype in BIT_TYPES:
        out = 0
        for v in value:
            out |= _int_of(v, dtype)
        return out
    if isinstance(value, dict) and "|" in value and dtype in BIT_TYPES:
        out = 0
        for v in value["|"]:
            out |= _int_of(v, dtype)
        return out
    raise BadValue(f"{value!r} is not a {dtype} value")


def _clock(text: str, dtype: str) -> int:
    """hour: seconds since midnight; time: nanoseconds since the epoch (UTC)."""
    try:
        if dtype == "hour":
            parts = [int(p) for p in text.split(":")]
            parts += [0] * (3 - len(parts))
            return parts[0] * 3600 + parts[1] * 60 + parts[2]
        fmt = "%Y-%m-%d %H:%M:%S" if text.count(":") == 2 else "%Y-%m-%d %H:%M"
        return calendar.timegm(time.strptime(text, fmt)) * 1_000_000_000
    except (ValueError, IndexError):
        raise BadValue(f"{text!r} is not a {dtype} value") from None


def encode(value: Any, dtype: str, width: int, shift: int = 0) -> bytes:
    """`value` of `dtype` as `width` big-endian bytes, moved left by `shift` bits."""
    if dtype in ("ifname", "iface_index", "string"):
        if not isinstance(value, str):
            raise BadValue(f"{value!r} is not an interface name")
        raw = value.encode()[:width - 1]
        return raw + bytes(width - len(raw))
    if dtype in ("ipv4_addr", "ipv6_addr") or (dtype == "addr" and isinstance(value, str)):
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            raise BadValue(f"{value!r} is not an address") from None
        packed = addr.packed
        if len(packed) != width:
            raise BadValue(f"{value} is not an address of this family")
        return packed
    if dtype in ("hour", "time") and isinstance(value, str):
        number = _clock(value, dtype)
    elif dtype == "ms":
        # ct expiration: seconds in the ruleset, milliseconds in the key.
        number = _int_of(value, "integer") * 1000
    else:
        number = _int_of(value, dtype)
    number <<= shift
    if number < 0 or number >= 1 << (8 * width):
        raise BadValue(f"{value!r} does not fit the {width}-byte {dtype} key")
    return number.to_bytes(width, "big")


def is_wildcard(value: Any, dtype: str) -> bool:
    """An interface name ending in `*` (a prefix)."""
    return dtype in ("ifname", "iface_index") and isinstance(value, str) and value.endswith("*")


def wildcard_range(value: str, width: int) -> tuple[bytes, bytes]:
    """The interval of names a `prefix*` covers."""
    raw = value[:-1].encode()
    return raw + bytes(width - len(raw)), raw + b"\xff" * (width - len(raw))
