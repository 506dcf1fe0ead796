"""IP sets as `ipset save` writes them (net/netfilter/ipset: ip_set_hash_*.c,
ip_set_bitmap_port.c, ip_set_list_set.c), read into the elements the core
looks packets up in.

A set maps elements to a small record (counters, expiry, nomatch). Element
keys are what ip_set_get_ip_port and the hash types store: an address
(masked for `netmask`), a net as (address, prefix length), a port as
(protocol, port) with ICMP/ICMPv6's "port" being `type << 8 | code`.
Elements read from a file keep no timeout (their remaining time refers to
the moment of the save, not to the capture).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from statewall.rules.addr import PROTOCOLS, SERVICES
from statewall.rules.errors import OptionError, RulesetError
from statewall.rules.lexer import split_words

_PORT_PROTOS = (6, 17, 132, 136)
_ICMP_PROTOS = (1, 58)


@dataclass(slots=True)
class Element:
    """An element's extensions: counters, absolute expiry (None: never), nomatch."""

    packets: int = 0
    octets: int = 0
    expires: float | None = None
    nomatch: bool = False


@dataclass
class IpSet:
    """One set; subclasses know how to build element keys from text."""

    name: str
    type_name: str
    family: int  # 4, 6, or 0 for family-free types (bitmap:port, list:set)
    dimension: int
    counters: bool = False
    timeout: int | None = None  # the set's default timeout (create ... timeout N)
    nomatch_type: bool = False  # the type supports the nomatch flag
    elements: dict[object, Element] = field(default_factory=dict)

    def key_of_text(self, text: str) -> list[object]:
        raise OptionError(f"set type {self.type_name} cannot parse elements")


def _bits(family: int) -> int:
    return 32 if family == 4 else 128


def _ip(text: str, family: int) -> int:
    try:
        value = ipaddress.ip_address(text)
    except ValueError:
        raise OptionError(f"invalid address `{text}'") from None
    if value.version != family:
        raise OptionError(f"address `{text}' is not IPv{family}")
    return int(value)


def _net(text: str, family: int) -> tuple[int, int]:
    """(network, prefix length); a bare address is a host."""
    addr_text, slash, len_text = text.partition("/")
    bits = _bits(family)
    length = int(len_text) if slash and len_text.isdigit() else bits
    if slash and (not len_text.isdigit() or length > bits):
        raise OptionError(f"invalid prefix `{text}'")
    mask = ((1 << length) - 1) << (bits - length)
    return _ip(addr_text, family) & mask, length


def _host_range(text: str, family: int) -> list[int]:
    """An address, `A-B` range or CIDR (hash:ip adds each address of it)."""
    if "-" in text:
        low_text, _, high_text = text.partition("-")
        low, high = _ip(low_text, family), _ip(high_text, family)
    elif "/" in text:
        net, length = _net(text, family)
        low, high = net, net | ((1 << (_bits(family) - length)) - 1)
    else:
        low = high = _ip(text, family)
    if high < low or high - low > 65535:
        raise OptionError(f"range `{text}' is empty or too large")
    return list(range(low, high + 1))


def _proto_port(text: str, family: int) -> list[tuple[int, int]]:
    """`[proto:]port[-port]` as ipset reads it: tcp by default, ICMP by name or type/code."""
    proto_text, colon, port_text = text.rpartition(":") if ":" in text else ("tcp", ":", text)
    proto = PROTOCOLS.get(proto_text.lower(), -1) if not proto_text.isdigit() else int(proto_text)
    if proto_text.lower() in ("icmpv6", "ipv6-icmp"):
        proto = 58
    if proto < 0 or not colon:
        raise OptionError(f"invalid protocol in `{text}'")
    if proto in _ICMP_PROTOS:
        return [(proto, _icmp_port(port_text, proto))]
    if proto not in _PORT_PROTOS:
        if port_text != "0":
            raise OptionError(f"protocol {proto_text} has no ports: `{text}'")
        return [(proto, 0)]
    low_text, _, high_text = port_text.partition("-")
    low, high = _port(low_text), _port(high_text or low_text)
    return [(proto, p) for p in range(low, high + 1)]


def _port(text: str) -> int:
    if text.isdigit() and int(text) <= 65535:
        return int(text)
    if text in SERVICES:
        return SERVICES[text]
    raise OptionError(f"invalid port `{text}'")


def _icmp_port(text: str, proto: int) -> int:
    # Imported here: the matches package imports this module (xt_set), so a
    # module-level import would make `import statewall.rules.ipset` circular.
    from statewall.rules.matches.icmp import ICMP6_NAMES, ICMP_NAMES

    names = ICMP_NAMES if proto == 1 else ICMP6_NAMES
    if text.lower() in names:
        kind, code, _ = names[text.lower()]
        return kind << 8 | code
    kind_text, _, code_text = text.partition("/")
    if not kind_text.isdigit() or not (code_text or "0").isdigit():
        raise OptionError(f"invalid ICMP type `{text}'")
    return int(kind_text) << 8 | int(code_text or "0")


class HashIp(IpSet):
    """hash:ip; `netmask N` stores and looks up addresses masked to N bits."""

    netmask: int = 0

    def _mask(self) -> int:
        bits = _bits(self.family)
        length = self.netmask or bits
        return ((1 << length) - 1) << (bits - length)

    def key_of_text(self, text: str) -> list[object]:
        mask = self._mask()
        return list(dict.fromkeys(a & mask for a in _host_range(text, self.family)))


class HashNet(IpSet):
    """hash:net and hash:net,port: elements remember their prefix length."""

    def key_of_text(self, text: str) -> list[object]:
        net_text, comma, rest = text.partition(",")
        net, length = _net(net_text, self.family)
        if self.dimension == 1:
            return [(net, length)]
        return [(net, length, proto, port) for proto, port in _proto_port(rest, self.family)]


class HashIpPort(IpSet):
    """hash:ip,port and hash:ip,port,ip."""

    def key_of_text(self, text: str) -> list[object]:
        parts = text.split(",")
        if len(parts) != self.dimension:
            raise OptionError(f"element `{text}' does not fit {self.type_name}")
        hosts = _host_range(parts[0], self.family)
        ports = _proto_port(parts[1], self.family)
        last = (_ip(parts[2], self.family),) if self.dimension == 3 else ()
        return [(h, proto, port, *last) for h in hosts for proto, port in ports]


class BitmapPort(IpSet):
    """bitmap:port over `range LOW-HIGH`; the protocol is not stored."""

    low: int = 0
    high: int = 65535

    def key_of_text(self, text: str) -> list[object]:
        low_text, _, high_text = text.partition("-")
        low, high = _port(low_text), _port(high_text or low_text)
        if low < self.low or high > self.high:
            raise OptionError(f"port `{text}' outside the set's range {self.low}-{self.high}")
        return list(range(low, high + 1))


class ListSet(IpSet):
    """list:set: the members are tested in order; the first that matches decides."""

    members: list[IpSet]


_TYPES: dict[str, tuple[type[IpSet], int, bool]] = {
    "hash:ip": (HashIp, 1, False),
    "hash:net": (HashNet, 1, True),
    "hash:ip,port": (HashIpPort, 2, False),
    "hash:net,port": (HashNet, 2, True),
    "hash:ip,port,ip": (HashIpPort, 3, False),
    "bitmap:port": (BitmapPort, 1, False),
    "list:set": (ListSet, 1, False),
}


class _Loader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.sets: dict[str, IpSet] = {}

    def run(self, text: str) -> dict[str, IpSet]:
        # An empty file holds no set, and `ipset restore` takes it so.
        for number, raw in enumerate(text.split("\n"), start=1):
            line = raw.rstrip("\r").strip()
            if not line or line.startswith("#") or line == "COMMIT":
                continue  # `ipset restore` also takes the COMMIT of `ipset save -o save`
            try:
                _not_binary(line)
                self.line(split_words(line))
            except OptionError as err:
                raise RulesetError(self.source, number, err.message) from None
        return self.sets

    def line(self, words: list[str]) -> None:
        command = words[0]
        if command in _OTHER_COMMANDS:
            raise OptionError(f"`{command}' is an `ipset restore' command that `ipset save' "
                              f"never writes: {_EXPECTED}")
        if command not in ("create", "add", "-N", "-A"):
            hint = " (an iptables-save file: give it with --rules)" \
                if command.startswith(("*", ":")) else ""
            raise OptionError(f"{_EXPECTED}, got `{' '.join(words)}'{hint}")
        if len(words) < 3:
            what = "NAME TYPE" if command in ("create", "-N") else "NAME ELEMENT"
            raise OptionError(f"`{' '.join(words)}' is short: expected `{command} {what} ...'")
        if command in ("create", "-N"):
            self.create(words[1], words[2], words[3:])
        else:
            self.add(words[1], words[2], words[3:])

    def create(self, name: str, type_name: str, options: list[str]) -> None:
        if name in self.sets:
            raise OptionError(f"set `{name}' already exists")
        if type_name not in _TYPES:
            raise OptionError(f"set type {type_name} is not supported "
                              f"(supported: {', '.join(_TYPES)})")
        cls, dimension, nomatch = _TYPES[type_name]
        opts = _pairs(options)
        family = 0 if cls in (BitmapPort, ListSet) else \
            (6 if opts.get("family") == "inet6" else 4)
        ipset = cls(name, type_name, family, dimension, counters="counters" in opts,
                    nomatch_type=nomatch)
        timeout = opts.get("timeout")
        ipset.timeout = int(timeout) if timeout and timeout.isdigit() and timeout != "0" else None
        if isinstance(ipset, HashIp) and "netmask" in opts:
            ipset.netmask = int(opts["netmask"] or "0")
        if isinstance(ipset, BitmapPort):
            low, _, high = (opts.get("range") or "").partition("-")
            if not (low.isdigit() and high.isdigit()):
                raise OptionError("bitmap:port needs `range LOW-HIGH'")
            ipset.low, ipset.high = int(low), int(high)
        if isinstance(ipset, ListSet):
            ipset.members = []
        self.sets[name] = ipset

    def add(self, name: str, text: str, options: list[str]) -> None:
        ipset = self.sets.get(name)
        if ipset is None:
            raise OptionError(f"set `{name}' does not exist")
        opts = _pairs(options)
        if isinstance(ipset, ListSet):
            member = self.sets.get(text)
            if member is None or isinstance(member, ListSet):
                raise OptionError(f"`{text}' is not a set that can be a member of {name}")
            ipset.members.append(member)
            return
        for key in ipset.key_of_text(text):
            ipset.elements[key] = Element(
                int(opts.get("packets") or 0), int(opts.get("bytes") or 0), None,
                "nomatch" in opts and ipset.nomatch_type)


_EXPECTED = "expected `ipset save' output: `create NAME TYPE ...' and `add NAME ELEMENT ...' lines"
# Commands `ipset restore` runs that a saved file never holds.
_OTHER_COMMANDS = ("del", "-D", "destroy", "-X", "flush", "-F", "rename", "-E", "swap", "-W",
                   "test", "-T", "list", "-L", "save", "-S")


def _not_binary(line: str) -> None:
    """A NUL or an undecodable byte (read as U+FFFD): not text at all."""
    if "\x00" in line or "\ufffd" in line:
        raise OptionError(f"binary data, not text: {_EXPECTED}")


_FLAGS = ("counters", "comment", "skbinfo", "forceadd", "nomatch")


def _pairs(words: list[str]) -> dict[str, str | None]:
    """`key value` options, with the value-less flags ipset prints."""
    out: dict[str, str | None] = {}
    i = 0
    while i < len(words):
        if words[i] in _FLAGS or i + 1 >= len(words):
            out[words[i]] = None
            i += 1
        else:
            out[words[i]] = words[i + 1]
            i += 2
    return out


def parse_ipset_save(text: str, source: str = "<ipset>") -> dict[str, IpSet]:
    """Sets from `ipset save` text; errors are RulesetError naming file and line."""
    return _Loader(source).run(text)


def load_ipset_file(path: str | os.PathLike[str]) -> dict[str, IpSet]:
    """Read an `ipset save` file, for RuleState.sets (the CLI's `--ipset FILE`)."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return parse_ipset_save(text, str(path))
