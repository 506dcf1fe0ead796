"""Addresses, masks, protocols and ports as iptables spells them.

Parsing follows libxtables (`xtables_ipparse_multiple`, `xtables_parse_protocol`,
`xtables_parse_port`): IPv4 accepts short forms (`10/8`, `0/0`), masks are a
prefix length or a full (possibly non-contiguous) mask, names are not resolved
(the core does no I/O: a host name is refused as iptables refuses an unknown
one). Protocol names are the ones iptables knows without /etc/protocols plus
the common entries of that file.
"""

from __future__ import annotations

import ipaddress

from statewall.rules.errors import OptionError
from statewall.rules.model import Address

PROTOCOLS: dict[str, int] = {
    "all": 0, "ip": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "st": 5, "tcp": 6,
    "egp": 8, "igp": 9, "pup": 12, "udp": 17, "hmp": 20, "xns-idp": 22, "rdp": 27,
    "iso-tp4": 29, "dccp": 33, "xtp": 36, "ddp": 37, "idpr-cmtp": 38, "ipv6": 41,
    "ipv6-route": 43, "ipv6-frag": 44, "idrp": 45, "rsvp": 46, "gre": 47, "esp": 50,
    "ah": 51, "skip": 57, "icmpv6": 58, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
    "rspf": 73, "vmtp": 81, "eigrp": 88, "ospf": 89, "ax.25": 93, "ipip": 94, "etherip": 97,
    "encap": 98, "pim": 103, "ipcomp": 108, "vrrp": 112, "l2tp": 115, "isis": 124,
    "sctp": 132, "fc": 133, "mobility-header": 135, "mh": 135, "udplite": 136, "mpls-in-ip": 137,
    "manet": 138, "hip": 139, "shim6": 140, "wesp": 141, "rohc": 142,
}

# The name iptables-save prints for a protocol number.
PROTOCOL_NAMES: dict[int, str] = {}
for _name, _num in PROTOCOLS.items():
    PROTOCOL_NAMES.setdefault(_num, _name)
PROTOCOL_NAMES[58] = "ipv6-icmp"
PROTOCOL_NAMES[135] = "mh"

SERVICES: dict[str, int] = {
    "ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53,
    "bootps": 67, "bootpc": 68, "tftp": 69, "http": 80, "www": 80, "pop3": 110,
    "sunrpc": 111, "auth": 113, "ntp": 123, "netbios-ns": 137, "netbios-dgm": 138,
    "netbios-ssn": 139, "imap": 143, "imap2": 143, "snmp": 161, "snmp-trap": 162,
    "ldap": 389, "https": 443, "microsoft-ds": 445, "isakmp": 500, "syslog": 514,
    "submission": 587, "ldaps": 636, "rsync": 873, "imaps": 993, "pop3s": 995,
    "openvpn": 1194, "ipsec-nat-t": 4500, "mysql": 3306, "postgresql": 5432,
    "sip": 5060, "irc": 194, "ircd": 6667, "x11": 6000, "amanda": 10080,
}


def parse_protocol(text: str) -> int:
    """A protocol name (any case) or number 0-255, as `-p` and `--ctproto` take it."""
    if text.isdigit():
        num = int(text)
        if num > 255:
            raise OptionError(f'unknown protocol "{text}" specified')
        return num
    num_or_none = PROTOCOLS.get(text.lower())
    if num_or_none is None:
        raise OptionError(f'unknown protocol "{text}" specified')
    return num_or_none


def protocol_name(num: int) -> str:
    return PROTOCOL_NAMES.get(num, str(num))


def parse_port(text: str) -> int:
    """A port number or service name; iptables refuses 65536 and unknown names alike."""
    if text.isdigit():
        num = int(text)
        if num <= 65535:
            return num
    elif text in SERVICES:
        return SERVICES[text]
    raise OptionError(f"invalid port/service `{text}' specified")


def parse_port_range(text: str) -> tuple[int, int]:
    """`P`, `P:Q`, `:Q` (from 0) or `P:` (to 65535); a reversed range is swapped."""
    if ":" not in text:
        port = parse_port(text)
        return port, port
    low_text, high_text = text.split(":", 1)
    low = parse_port(low_text) if low_text else 0
    high = parse_port(high_text) if high_text else 65535
    return (low, high) if low <= high else (high, low)


def _parse_v4(text: str) -> int:
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(p.isdigit() and int(p) <= 255 for p in parts):
        raise OptionError(f"host/network `{text}' not found")
    value = 0
    for i in range(4):
        value = value << 8 | (int(parts[i]) if i < len(parts) else 0)
    return value


def _parse_v6(text: str) -> int:
    try:
        return int(ipaddress.IPv6Address(text))
    except ValueError:
        raise OptionError(f"host/network `{text}' not found") from None


def parse_ip(text: str, family: int) -> int:
    return _parse_v4(text) if family == 4 else _parse_v6(text)


def parse_mask(text: str, family: int) -> int:
    bits = 32 if family == 4 else 128
    if text.isdigit():
        length = int(text)
        if length > bits:
            raise OptionError(f"invalid mask `{text}' specified")
        return ((1 << length) - 1) << (bits - length)
    try:
        return parse_ip(text, family)
    except OptionError:
        raise OptionError(f"invalid mask `{text}' specified") from None


def parse_address(text: str, family: int) -> Address:
    """`A`, `A/LEN` or `A/MASK`; the stored address is masked as the kernel stores it."""
    bits = 32 if family == 4 else 128
    addr_text, _, mask_text = text.partition("/")
    mask = parse_mask(mask_text, family) if mask_text else (1 << bits) - 1
    return Address(parse_ip(addr_text, family) & mask, mask)


def format_ip(value: int, family: int) -> str:
    if family == 4:
        return str(ipaddress.IPv4Address(value))
    return str(ipaddress.IPv6Address(value))


def format_address(address: Address, family: int) -> str:
    """As iptables-save prints it: prefix length when contiguous, else the mask."""
    bits = 32 if family == 4 else 128
    full = (1 << bits) - 1
    inverted = full ^ address.mask
    if inverted & (inverted + 1) == 0:
        length = bits - inverted.bit_length()
        return f"{format_ip(address.addr, family)}/{length}"
    return f"{format_ip(address.addr, family)}/{format_ip(address.mask, family)}"
