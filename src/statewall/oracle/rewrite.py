"""Fit real captures and real rulesets onto the oracle's two-interface router.

The oracle (netns.py) is a router with two interfaces, `swl` (where a
connection's initiator lives) and `swr`, that owns no address. Real rulesets
were written for other machines: they name interfaces such as eth0, protect
a host through INPUT/OUTPUT, and talk about networks the shared captures
never use. The rewrites here bridge that gap. Each one is applied to the
text or bytes before they are handed to `verify`, so the kernel and statewall
always judge identical input.

* `rename_interfaces`: `-i`/`-o` names (eth0 -> swl ...). Names left out of
  the mapping stay as written and simply never match.
* `host_to_router`: a host's filter INPUT chain judges what enters on the
  client side (`swl`), its OUTPUT chain what the protected host sends back
  (entering on `swr`); each keeps its policy as a final rule. The host's
  own address is played by the server behind `swr`, so `-m addrtype
  --dst-type LOCAL` becomes `-d SERVER`.
* `without_tables`: removes whole tables (the shared rulesets' nat tables,
  for captures built to exercise their filter rules on a router that has no
  addresses for MASQUERADE to take).
* `address_map` / `rewrite_capture`: the capture's addresses, in order of
  first appearance (the first datagram's source, then its destination, ...),
  become the given addresses of the same family, one for one; addresses
  beyond the list keep their value. Addresses inside the datagram an ICMP
  error quotes are rewritten too. Checksums are adjusted by difference, so
  a checksum that was wrong stays exactly as wrong (RFC 1624).
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence

from statewall.checksum import internet_checksum
from statewall.oracle.normalise import ICMP, ICMPV6, TCP, UDP, UDPLITE, l4_checksum, parse
from statewall.oracle.verify import Datagram

# (family, address as int) -> new address as int, same family
AddressMap = dict[tuple[int, int], int]

_ICMP_ERRORS = {ICMP: frozenset({3, 4, 5, 11, 12}), ICMPV6: frozenset({1, 2, 3, 4})}
_ICMP_HEADER = 8
_CHECKSUM_AT = {ICMP: 2, TCP: 16, UDP: 6, ICMPV6: 2, UDPLITE: 6}
_ADDRESS_AT = {4: (12, 4), 6: (8, 16)}  # offset of the source address, address length
_INTERFACE_OPTION = re.compile(
    r"(?P<opt>(?<!\S)(?:-i|-o|--in-interface|--out-interface))(?P<neg>\s+!)?\s+(?P<name>[^\s\"]+)")
_QUOTED = re.compile(r"(\"(?:\\.|[^\"\\])*\")")
_LOCAL_DST = re.compile(r"-m addrtype (?P<neg>! )?--dst-type LOCAL(?=\s|$)")
_CHAIN_LINE = re.compile(r"^:(?P<chain>\S+) (?P<policy>\S+)(?P<rest>.*)$")
_POLICY_LINE = re.compile(r"^(?:-P|--policy) (?P<chain>\S+) (?P<policy>\S+)\s*$")
_RULE_LINE = re.compile(r"^(?P<cmd>-A|-I|--append|--insert) (?P<chain>\S+)(?P<rest>.*)$")

HOST_IN, HOST_OUT = "HOST-INPUT", "HOST-OUTPUT"


# --- ruleset text ---------------------------------------------------------------------


def _outside_quotes(line: str, pattern: re.Pattern[str],
                    fn: Callable[[re.Match[str]], str]) -> str:
    """Apply `pattern` -> `fn` to the parts of `line` outside double quotes."""
    parts = _QUOTED.split(line)
    for i in range(0, len(parts), 2):
        parts[i] = pattern.sub(fn, parts[i])
    return "".join(parts)


def rename_interfaces(text: str, mapping: Mapping[str, str]) -> str:
    """Replace the interface names of -i/-o options (quoted strings are left alone)."""
    def swap(m: re.Match[str]) -> str:
        name = mapping.get(m["name"], m["name"])
        return f"{m['opt']}{m['neg'] or ''} {name}"

    return "\n".join(_outside_quotes(line, _INTERFACE_OPTION, swap)
                     for line in text.split("\n"))


def without_tables(text: str, tables: Iterable[str]) -> str:
    """The ruleset without the named tables (`*name` through its COMMIT)."""
    drop = set(tables)
    out: list[str] = []
    skipping = False
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("*"):
            skipping = stripped[1:] in drop
        if not skipping:
            out.append(line)
        elif stripped == "COMMIT":
            skipping = False
    return "\n".join(out)


def host_to_router(text: str, server: str, client_if: str = "swl",
                   server_if: str = "swr") -> str:
    """Turn a host's filter table into the FORWARD rules of a router in front of it.

    INPUT becomes the user chain HOST-INPUT, entered for packets arriving on
    `client_if`, and OUTPUT becomes HOST-OUTPUT, entered for packets arriving
    on `server_if`; each chain's old policy (from its chain line or a `-P`
    line) follows as an explicit rule. The host's FORWARD rules and policy are
    dropped (it forwarded nothing we replay).
    `--dst-type LOCAL` becomes `-d server` where the rule names no other
    destination. Other tables are unchanged.
    """
    out: list[str] = []
    table = ""
    policies = {"INPUT": "ACCEPT", "OUTPUT": "ACCEPT"}
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("*"):
            table = stripped[1:]
        if table != "filter":
            out.append(line)
            continue
        if stripped == "COMMIT":
            out += [f"-A FORWARD -i {client_if} -j {HOST_IN}",
                    f"-A FORWARD -i {client_if} -j {policies['INPUT']}",
                    f"-A FORWARD -i {server_if} -j {HOST_OUT}",
                    f"-A FORWARD -i {server_if} -j {policies['OUTPUT']}"]
            out.append(line)
            continue
        out += _host_line(stripped, server, policies)
    return "\n".join(out)


def _host_line(line: str, server: str, policies: dict[str, str]) -> list[str]:
    chain = _CHAIN_LINE.match(line)
    if chain is not None:
        name = chain["chain"]
        if name in policies:
            policies[name] = chain["policy"]
            user = HOST_IN if name == "INPUT" else HOST_OUT
            return [f":{name} ACCEPT [0:0]", f":{user} - [0:0]"]
        if name == "FORWARD":
            return [":FORWARD ACCEPT [0:0]"]
        return [line]
    policy = _POLICY_LINE.match(line)
    if policy is not None and policy["chain"] in (*policies, "FORWARD"):
        if policy["chain"] in policies:
            policies[policy["chain"]] = policy["policy"]
        return []
    rule = _RULE_LINE.match(line)
    if rule is None:
        return [line]
    name = rule["chain"]
    if name == "FORWARD":
        return []
    if name in policies:
        name = HOST_IN if name == "INPUT" else HOST_OUT
    rest = rule["rest"]
    if not re.search(r"(?<!\S)(-d|--destination|--dst)\s", rest):
        rest = _outside_quotes(rest, _LOCAL_DST,
                               lambda m: f"{'! ' if m['neg'] else ''}-d {server}")
    return [f"{rule['cmd']} {name}{rest}"]


# --- capture bytes --------------------------------------------------------------------


def first_addresses(datagrams: Iterable[bytes]) -> list[tuple[int, int]]:
    """(family, address) in order of first appearance: source before destination."""
    seen: dict[tuple[int, int], None] = {}
    for data in datagrams:
        view = parse(data)
        if view is not None:
            seen.setdefault((view.family, view.src))
            seen.setdefault((view.family, view.dst))
    return list(seen)


def address_map(datagrams: Iterable[bytes], targets: Sequence[str]) -> AddressMap:
    """The k-th address of a family seen in the capture -> the k-th target of that family."""
    wanted: dict[int, list[int]] = {4: [], 6: []}
    for text in targets:
        address = ipaddress.ip_address(text)
        wanted[address.version].append(int(address))
    mapping: AddressMap = {}
    used = {4: 0, 6: 0}
    for family, seen in first_addresses(datagrams):
        if used[family] < len(wanted[family]):
            mapping[(family, seen)] = wanted[family][used[family]]
            used[family] += 1
    return mapping


def rewrite_capture(datagrams: Sequence[Datagram], targets: Sequence[str]) -> list[Datagram]:
    """The datagrams with their addresses moved per `address_map(..., targets)`."""
    mapping = address_map((d.data for d in datagrams), targets)
    return [Datagram(d.number, rewrite_addresses(d.data, mapping)) for d in datagrams]


def rewrite_addresses(data: bytes, mapping: Mapping[tuple[int, int], int]) -> bytes:
    """`data` with mapped source/destination addresses, checksums adjusted by difference."""
    view = parse(data)
    if view is None:
        return data
    buf = bytearray(data)
    end = min(view.end, len(buf))
    if not view.is_fragment or view.frag_offset == 0:
        _rewrite_quoted(buf, view.proto, view.l4_off, end, mapping)
    old_segment = bytes(data[view.l4_off:end])
    _swap_addresses(buf, view.family, mapping)
    if not view.is_fragment or view.frag_offset == 0:
        new = parse(bytes(buf))
        assert new is not None
        _fix_l4(buf, view.family, (view.src, view.dst), (new.src, new.dst), view.proto,
                view.l4_off, end, old_segment)
    if view.family == 4:
        _fix_ip_header(buf, 0, data[: view.l4_off])
    return bytes(buf)


def _swap_addresses(buf: bytearray, family: int, mapping: Mapping[tuple[int, int], int],
                    at: int = 0) -> None:
    offset, size = _ADDRESS_AT[family]
    for start in (at + offset, at + offset + size):
        if start + size <= len(buf):
            old = int.from_bytes(buf[start:start + size], "big")
            new = mapping.get((family, old), old)
            buf[start:start + size] = new.to_bytes(size, "big")


def _rewrite_quoted(buf: bytearray, proto: int, l4_off: int, end: int,
                    mapping: Mapping[tuple[int, int], int]) -> None:
    """Rewrite the datagram an ICMP/ICMPv6 error carries (its header and checksums)."""
    errors = _ICMP_ERRORS.get(proto)
    if errors is None or end - l4_off < _ICMP_HEADER or buf[l4_off] not in errors:
        return
    inner_at = l4_off + _ICMP_HEADER
    inner = parse(bytes(buf[inner_at:end]))
    if inner is None:
        return
    inner_end = min(end, inner_at + inner.end)
    l4_at = inner_at + inner.l4_off
    old_header = bytes(buf[inner_at:l4_at])
    old_segment = bytes(buf[l4_at:inner_end])
    _swap_addresses(buf, inner.family, mapping, inner_at)
    new = parse(bytes(buf[inner_at:end]))
    assert new is not None
    if not inner.is_fragment or inner.frag_offset == 0:
        _fix_l4(buf, inner.family, (inner.src, inner.dst), (new.src, new.dst), inner.proto,
                l4_at, inner_end, old_segment)
    if inner.family == 4:
        _fix_ip_header(buf, inner_at, old_header)


def _fix_l4(buf: bytearray, family: int, old_addrs: tuple[int, int],
            new_addrs: tuple[int, int], proto: int, start: int, end: int,
            old_segment: bytes) -> None:
    if proto not in _CHECKSUM_AT or start + _CHECKSUM_AT[proto] + 2 > end:
        return
    at = start + _CHECKSUM_AT[proto]
    before = l4_checksum(family, *old_addrs, proto, old_segment)
    after = l4_checksum(family, *new_addrs, proto, bytes(buf[start:end]))
    if before is None or after is None:
        return
    current = struct.unpack_from("!H", buf, at)[0]
    value = _shift(current, before, after)
    if proto in (UDP, UDPLITE) and value == 0:
        value = 0xFFFF  # zero means "no checksum" there
    buf[at:at + 2] = struct.pack("!H", value)


def _fix_ip_header(buf: bytearray, at: int, old_header: bytes) -> None:
    size = len(old_header)
    blank_old = bytearray(old_header)
    blank_old[10:12] = b"\0\0"
    blank_new = bytearray(buf[at:at + size])
    blank_new[10:12] = b"\0\0"
    current = struct.unpack_from("!H", buf, at + 10)[0]
    value = _shift(current, internet_checksum(bytes(blank_old)),
                   internet_checksum(bytes(blank_new)))
    buf[at + 10:at + 12] = struct.pack("!H", value)


def _shift(current: int, correct_before: int, correct_after: int) -> int:
    """Move `current` by the change of the correct checksum (one's-complement arithmetic)."""
    total = current + correct_after + (~correct_before & 0xFFFF)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total
