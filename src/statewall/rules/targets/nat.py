"""nat table targets (xt_nat.c, xt_MASQUERADE.c, xt_REDIRECT.c, xt_NETMAP.c).

Each target is checked at load as iptables and the kernel check it, and
lowered to the range the NAT core binds a connection within (the kernel's
`nf_nat_range2`): flags, an address range, a port range and, for a DNAT
port offset (`:1000-2000/80`), the base port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, OptSpec, TargetExt

_FLAGS = ("--random", "--random-fully", "--persistent")

# NF_NAT_RANGE_* (uapi nf_nat.h).
MAP_IPS = 1
PROTO_SPECIFIED = 2
PROTO_RANDOM = 4
PERSISTENT = 8
PROTO_RANDOM_FULLY = 16
PROTO_OFFSET = 32

_FLAG_BITS = {"--random": PROTO_RANDOM, "--random-fully": PROTO_RANDOM_FULLY,
              "--persistent": PERSISTENT}
# Protocols whose ports NAT can map (iptables: "Need TCP, UDP, SCTP or DCCP").
_PORT_PROTOS = (6, 17, 33, 132, 136)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class NatRange:
    target: str
    flags: int = 0
    min_addr: Address | None = None
    max_addr: Address | None = None
    min_port: int = 0
    max_port: int = 0
    base_port: int = 0


def _address(text: str, family: int, option: str) -> Address:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise OptionError(f"{option}: bad address {text!r}") from None
    if address.version != family:
        raise OptionError(f"{option}: {text} is not an IPv{family} address")
    return address


def _port(text: str, option: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise OptionError(f"{option}: bad port {text!r}")
    return int(text)


def _ports(text: str, option: str, offset: bool) -> tuple[int, int, int, int]:
    """`P`, `P-Q` or (DNAT) `P-Q/BASE`: (flags, min, max, base)."""
    flags = PROTO_SPECIFIED
    base = 0
    if "/" in text:
        if not offset:
            raise OptionError(f"{option}: a port offset (/BASE) is for DNAT only")
        text, _, base_text = text.partition("/")
        base = _port(base_text, option)
        flags |= PROTO_OFFSET
    low_text, dash, high_text = text.partition("-")
    low = _port(low_text, option)
    high = _port(high_text, option) if dash else low
    if high < low:
        raise OptionError(f"{option}: port range {text} is backwards")
    return flags, low, high, base


def _split_ports(text: str, family: int) -> tuple[str, str | None]:
    """The address part and the port part of a --to-source/--to-destination."""
    if family == 6:
        if text.startswith("["):
            address, bracket, rest = text[1:].partition("]")
            if not bracket:
                return text, None
            return address, rest[1:] if rest.startswith(":") else None
        return text, None
    address, colon, ports = text.partition(":")
    return address, ports if colon else None


def parse_range(name: str, args: BuildArgs) -> NatRange:
    """The range a rule's nat target asks for (OptionError when iptables refuses it)."""
    flags = 0
    for flag, bit in _FLAG_BITS.items():
        if args.has(flag):
            flags |= bit
    option = {"SNAT": "--to-source", "DNAT": "--to-destination", "NETMAP": "--to"}.get(
        name, "--to-ports")
    text = args.value(option)
    if name == "NETMAP":
        assert text is not None
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise OptionError(f"--to: bad network {text!r}") from None
        if net.version != args.family:
            raise OptionError(f"--to: {text} is not an IPv{args.family} network")
        return NatRange(name, flags | MAP_IPS, net.network_address, net.broadcast_address)
    if text is None:
        return NatRange(name, flags)
    if name in ("MASQUERADE", "REDIRECT"):
        port_text: str | None = text
        address_text = ""
    else:
        address_text, port_text = _split_ports(text, args.family)
    low = high = None
    if address_text:
        first, dash, last = address_text.partition("-")
        low = _address(first, args.family, option)
        high = _address(last, args.family, option) if dash else low
        if int(high) < int(low):
            raise OptionError(f"{option}: address range {address_text} is backwards")
        flags |= MAP_IPS
    ports = (0, 0, 0, 0)
    if port_text:
        if args.rule.proto not in _PORT_PROTOS or args.rule.proto_neg:
            raise OptionError(f"{name}: need TCP, UDP, SCTP or DCCP with port specification")
        ports = _ports(port_text, option, offset=name == "DNAT")
    elif not address_text:
        raise OptionError(f"{option}: nothing to translate to in {text!r}")
    return NatRange(name, flags | ports[0], low, high, ports[1], ports[2], ports[3])


def _checker(name: str, required: str | None) -> Callable[[BuildArgs], None]:
    def check(args: BuildArgs) -> None:
        if required is not None and not args.has(required):
            raise OptionError(f"{name}: {required} is required")
        parse_range(name, args)

    return check


def _opts(*names: str) -> tuple[OptSpec, ...]:
    return tuple(OptSpec(n, invert=False) for n in names) + tuple(
        OptSpec(f, nargs=0, invert=False) for f in _FLAGS)


_NAT = ("nat",)
SNAT = TargetExt("SNAT", _opts("--to-source"), _checker("SNAT", "--to-source"),
                 tables=_NAT, hooks=("INPUT", "POSTROUTING"), terminal=True)
DNAT = TargetExt("DNAT", _opts("--to-destination"), _checker("DNAT", "--to-destination"),
                 tables=_NAT, hooks=("PREROUTING", "OUTPUT"), terminal=True)
MASQUERADE = TargetExt("MASQUERADE", _opts("--to-ports"), _checker("MASQUERADE", None),
                       tables=_NAT, hooks=("POSTROUTING",), terminal=True)
REDIRECT = TargetExt("REDIRECT", _opts("--to-ports"), _checker("REDIRECT", None),
                     tables=_NAT, hooks=("PREROUTING", "OUTPUT"), terminal=True)
NETMAP = TargetExt("NETMAP", _opts("--to"), _checker("NETMAP", "--to"), tables=_NAT,
                   terminal=True)
