"""icmp (ip_tables.c: icmp_match) and icmp6 (ip6_tables.c: icmp6_match).

`--icmp-type` takes a name (case-insensitive, unique prefixes allowed as in
libxtables), `TYPE` or `TYPE/CODE`. A bare type matches every code. IPv4's
type 255 ("any") matches every ICMP packet; ip6tables has no such wildcard.
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec

ANY_CODE = (0, 255)

ICMP_NAMES: dict[str, tuple[int, int, int]] = {
    "any": (255, 0, 255), "echo-reply": (0, 0, 0), "pong": (0, 0, 0),
    "destination-unreachable": (3, 0, 255), "network-unreachable": (3, 0, 0),
    "host-unreachable": (3, 1, 1), "protocol-unreachable": (3, 2, 2),
    "port-unreachable": (3, 3, 3), "fragmentation-needed": (3, 4, 4),
    "source-route-failed": (3, 5, 5), "network-unknown": (3, 6, 6),
    "host-unknown": (3, 7, 7), "network-prohibited": (3, 9, 9),
    "host-prohibited": (3, 10, 10), "tos-network-unreachable": (3, 11, 11),
    "tos-host-unreachable": (3, 12, 12), "communication-prohibited": (3, 13, 13),
    "host-precedence-violation": (3, 14, 14), "precedence-cutoff": (3, 15, 15),
    "source-quench": (4, 0, 255), "redirect": (5, 0, 255), "network-redirect": (5, 0, 0),
    "host-redirect": (5, 1, 1), "tos-network-redirect": (5, 2, 2),
    "tos-host-redirect": (5, 3, 3), "echo-request": (8, 0, 0), "ping": (8, 0, 0),
    "router-advertisement": (9, 0, 255), "router-solicitation": (10, 0, 255),
    "time-exceeded": (11, 0, 255), "ttl-exceeded": (11, 0, 255),
    "ttl-zero-during-transit": (11, 0, 0), "ttl-zero-during-reassembly": (11, 1, 1),
    "parameter-problem": (12, 0, 255), "ip-header-bad": (12, 0, 0),
    "required-option-missing": (12, 1, 1), "timestamp-request": (13, 0, 255),
    "timestamp-reply": (14, 0, 255), "address-mask-request": (17, 0, 255),
    "address-mask-reply": (18, 0, 255),
}

ICMP6_NAMES: dict[str, tuple[int, int, int]] = {
    "destination-unreachable": (1, 0, 255), "no-route": (1, 0, 0),
    "communication-prohibited": (1, 1, 1), "beyond-scope": (1, 2, 2),
    "address-unreachable": (1, 3, 3), "port-unreachable": (1, 4, 4),
    "failed-policy": (1, 5, 5), "reject-route": (1, 6, 6), "packet-too-big": (2, 0, 255),
    "time-exceeded": (3, 0, 255), "ttl-exceeded": (3, 0, 255),
    "ttl-zero-during-transit": (3, 0, 0), "ttl-zero-during-reassembly": (3, 1, 1),
    "parameter-problem": (4, 0, 255), "bad-header": (4, 0, 0),
    "unknown-header-type": (4, 1, 1), "unknown-option": (4, 2, 2),
    "echo-request": (128, 0, 255), "ping": (128, 0, 255), "echo-reply": (129, 0, 255),
    "pong": (129, 0, 255), "mld-listener-query": (130, 0, 255),
    "mld-listener-report": (131, 0, 255), "mld-listener-done": (132, 0, 255),
    "mld2-listener-report": (143, 0, 255), "router-solicitation": (133, 0, 255),
    "router-advertisement": (134, 0, 255), "neighbour-solicitation": (135, 0, 255),
    "neighbor-solicitation": (135, 0, 255), "neighbour-advertisement": (136, 0, 255),
    "neighbor-advertisement": (136, 0, 255), "redirect": (137, 0, 255),
}


def parse_icmp_type(text: str, names: dict[str, tuple[int, int, int]]) -> tuple[int, int, int]:
    """(type, lowest code, highest code) for a name, `TYPE` or `TYPE/CODE`."""
    lowered = text.lower()
    if lowered in names:
        return names[lowered]
    candidates = {v for k, v in names.items() if k.startswith(lowered)}
    if len(candidates) > 1:
        raise OptionError(f'Ambiguous ICMP type `{text}\'')
    if candidates:
        return candidates.pop()
    type_text, slash, code_text = text.partition("/")
    if not type_text.isdigit() or int(type_text) > 255 or \
            (slash and (not code_text.isdigit() or int(code_text) > 255)):
        raise OptionError(f"Invalid ICMP type `{text}'")
    code = int(code_text) if slash else -1
    return int(type_text), (code if slash else 0), (code if slash else 255)


def check_icmp(args: BuildArgs) -> None:
    given = args.get("--icmp-type")
    if given is not None:
        parse_icmp_type(given.values[0], ICMP_NAMES)


def check_icmp6(args: BuildArgs) -> None:
    given = args.get("--icmpv6-type")
    if given is None:
        raise OptionError("icmp6: --icmpv6-type is required")
    parse_icmp_type(given.values[0], ICMP6_NAMES)


ICMP = MatchExt("icmp", (OptSpec("--icmp-type"),), check_icmp, families=(4,), proto=1)
ICMP6 = MatchExt("icmp6", (OptSpec("--icmpv6-type"),), check_icmp6, families=(6,), proto=58)
