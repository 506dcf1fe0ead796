"""The CLI's selection and export options: `--filter`, `--conn`, `-w`, the
`conntrack -L` filters of `table`, and `--format json`.

cli.py and cli_load.py call these helpers; each bad value becomes one
`UsageError` line naming the option (exit 2).

The `table` filters follow conntrack-tools 1.4's `conntrack -L` (checked
against the real tool in tests/test_select_kernel.py): every option tests
the original direction only (`-s` is the original source, never the reply's);
`--sport`/`--dport` need `-p` with a protocol that has ports, `--state` needs
`-p tcp` or `-p sctp` and names one state; `--status` takes EXPECTED,
SEEN_REPLY, ASSURED, FIXED_TIMEOUT, OFFLOAD and UNREPLIED (= SEEN_REPLY not
set), comma-separated, all required; `--mark V[/M]` keeps entries whose mark
AND M equals V; `--zone` compares the zone. Options combine with AND.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
from typing import TYPE_CHECKING, Any

from statewall.select import (
    ENTRY_FIELDS,
    EVENT_FIELDS,
    FilterError,
    Node,
    Selection,
    all_of,
    negate,
    parse_filter,
)

if TYPE_CHECKING:
    from statewall.engine import Connection, ExpectedConnection, Firewall
    from statewall.events import ConntrackEvent

# conntrack-tools' --status names: the bit, and whether it must be set.
CONNTRACK_STATUS: dict[str, tuple[int, bool]] = {
    "EXPECTED": (1 << 0, True), "SEEN_REPLY": (1 << 1, True), "ASSURED": (1 << 2, True),
    "FIXED_TIMEOUT": (1 << 10, True), "OFFLOAD": (1 << 14, True),
    "UNREPLIED": (1 << 1, False)}
PORT_PROTOCOLS = {6: "tcp", 17: "udp", 132: "sctp", 136: "udplite", 33: "dccp"}
STATE_PROTOCOLS = {6: "tcp", 132: "sctp"}
# `conntrack --state` takes LISTEN for the TCP state statewall (and /proc) call SYN_SENT2.
STATE_ALIASES = {"LISTEN": "SYN_SENT2"}


def _usage(message: str) -> Exception:
    from statewall.cli import UsageError

    return UsageError(message)


def parse_option_filter(option: str, text: str, fields: frozenset[str]) -> Node:
    try:
        return parse_filter(text, fields)
    except FilterError as error:
        raise _usage(f"{option}: {error}") from None


# -- replay ----------------------------------------------------------------------

def add_replay_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--filter", metavar="EXPR",
                        help="show only the packets EXPR selects, e.g. 'verdict == DROP' "
                             "(fields and syntax: README, \"Choosing packets\"); the totals "
                             "still count every packet")
    parser.add_argument("--conn", metavar="N",
                        help="show only connection N's packets and those of the connections "
                             "it expected (RELATED children, recursively)")
    parser.add_argument("-w", "--write", metavar="FILE",
                        help="also write the shown packets to FILE as pcapng, as they leave "
                             "(translated by NAT; timestamps and interfaces as captured)")


def selection_from(args: argparse.Namespace) -> Selection | None:
    """What `replay` shows, from its options (None: everything)."""
    if args.filter is None and args.conn is None and args.write is None:
        return None
    node = None if args.filter is None else _packet_filter(args.filter)
    conn = None
    if args.conn is not None:
        conn = _number("--conn", args.conn, 1, 0xFFFFFFFF)
    if args.write is not None and args.write in ("", "-"):
        raise _usage(f"-w {args.write!r}: expected a file name (pcapng is not written to "
                     "standard output)")
    return Selection.of(node, conn, args.write)


def _packet_filter(text: str) -> Node:
    from statewall.select import PACKET_FIELDS

    return parse_option_filter("--filter", text, PACKET_FIELDS)


def _number(option: str, text: str, low: int, high: int) -> int:
    """A decimal or 0x-hexadecimal number in [low, high]."""
    try:
        value = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
    except ValueError:
        raise _usage(f"{option} {text}: expected a number") from None
    if not low <= value <= high:
        raise _usage(f"{option} {text}: out of range ({low}-{high})")
    return value


# -- table -----------------------------------------------------------------------

def add_table_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "selecting entries (as `conntrack -L` does; all must hold)")
    group.add_argument("--filter", metavar="EXPR",
                       help="entries EXPR selects (fields: " + ", ".join(sorted(ENTRY_FIELDS)) + ")")
    group.add_argument("-p", "--proto", metavar="PROTO", help="layer-4 protocol, name or number")
    group.add_argument("-s", "--src", "--orig-src", dest="src", metavar="ADDR[/PREFIX]",
                       help="source address of the original direction")
    group.add_argument("-d", "--dst", "--orig-dst", dest="dst", metavar="ADDR[/PREFIX]",
                       help="destination address of the original direction")
    group.add_argument("--sport", "--orig-port-src", dest="sport", metavar="PORT",
                       help="original source port (needs -p)")
    group.add_argument("--dport", "--orig-port-dst", dest="dport", metavar="PORT",
                       help="original destination port (needs -p)")
    group.add_argument("--state", metavar="STATE", help="TCP or SCTP state (needs -p tcp|sctp)")
    group.add_argument("-u", "--status", metavar="STATUS[,STATUS]",
                       help="status bits: EXPECTED, SEEN_REPLY, ASSURED, FIXED_TIMEOUT, OFFLOAD, "
                            "UNREPLIED")
    group.add_argument("-m", "--mark", metavar="VALUE[/MASK]", help="connection mark")
    group.add_argument("--zone", metavar="ZONE", help="conntrack zone")
    group.add_argument("-f", "--family", choices=("ipv4", "ipv6"), help="address family")


def table_filter(args: argparse.Namespace) -> str | None:
    """The entry filter the table options make, as JSON for the core (None: every entry)."""
    parts = _table_parts(args)
    if parts and args.expectations:
        raise _usage("the entry filters (--filter, -p, -s, ...) select connections, "
                     "not expectations: drop --expectations or the filters")
    node = all_of(parts)
    return None if node is None else json.dumps(node)


def table_output(firewall: Firewall, when: float, args: argparse.Namespace,
                 entries: str | None) -> list[str]:
    """The connection (or expectation) table at `when` as `--format` asks,
    only the entries `entries` (table_filter's JSON) selects; newline-ended lines."""
    if args.format != "json":
        if args.expectations:
            return firewall.expectation_lines(when, args.format)
        return firewall.table_lines(when, args.format, filter=entries)
    if args.expectations:
        values = [expectation_json(e) for e in firewall.expectations(when)]
    else:
        values = [entry_json(c, when) for c in firewall.connections(when, entries)]
    return [json.dumps(values, indent=1) + "\n"]


def _table_parts(args: argparse.Namespace) -> list[Node]:
    parts: list[Node] = []
    proto = _table_proto(args.proto)
    if proto is not None:
        parts.append({"op": "num", "field": "proto", "cmp": "==", "value": proto})
    family = args.family
    for option, field, text in (("--src", "src", args.src), ("--dst", "dst", args.dst)):
        if text is None:
            continue
        net = _table_network(option, text)
        net_family = f"ipv{net.version}"
        if family is not None and family != net_family:
            raise _usage(f"{option} {text}: an {net_family} address, but the family is {family}")
        family = net_family
        parts.append({"op": "net_in", "field": field,
                      "nets": [[str(net.network_address), net.prefixlen]]})
    if family is not None and args.src is None and args.dst is None:
        # A /0 network holds every address of its own family and none of the other's.
        parts.append({"op": "net_in", "field": "src",
                      "nets": [["0.0.0.0" if family == "ipv4" else "::", 0]]})
    for option, field in (("--sport", "sport"), ("--dport", "dport")):
        text = getattr(args, field)
        if text is None:
            continue
        if proto not in PORT_PROTOCOLS:
            raise _usage(f"{option}: needs -p with a protocol that has ports "
                         f"({', '.join(PORT_PROTOCOLS.values())})")
        parts.append({"op": "num", "field": field, "cmp": "==",
                      "value": _number(option, text, 0, 65535)})
    if args.state is not None:
        parts.append(_table_state(args.state, proto))
    if args.status is not None:
        parts.extend(_table_status(args.status))
    if args.mark is not None:
        parts.append(_table_mark(args.mark))
    if args.zone is not None:
        parts.append({"op": "num", "field": "zone", "cmp": "==",
                      "value": _number("--zone", args.zone, 0, 65535)})
    if args.filter is not None:
        parts.append(parse_option_filter("--filter", args.filter, ENTRY_FIELDS))
    return parts


def _table_proto(text: str | None) -> int | None:
    if text is None:
        return None
    from statewall.rules.addr import parse_protocol
    from statewall.rules.errors import OptionError

    try:
        return parse_protocol(text)
    except OptionError:
        if text.isdigit():
            raise _usage(f"-p {text}: a protocol number is 0-255") from None
        raise _usage(f"-p {text!r}: unknown protocol (a name such as tcp, or 0-255)") from None


def _table_network(option: str, text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise _usage(f"{option} {text!r}: expected an address or ADDRESS/PREFIX") from None


def _table_state(text: str, proto: int | None) -> Node:
    from statewall.select import NAME_VALUES

    if proto not in STATE_PROTOCOLS:
        raise _usage("--state: needs -p tcp or -p sctp")
    # conntrack-tools compares state names as written: upper case only.
    name = STATE_ALIASES.get(text, text) if proto == 6 else text
    from statewall import _core

    known = tuple(_core.TCP_STATE_NAMES) if proto == 6 else tuple(_core.SCTP_STATE_NAMES)
    if name not in known or name not in NAME_VALUES["state"]:
        raise _usage(f"--state {text!r}: a {STATE_PROTOCOLS[proto].upper()} state is one of "
                     f"{', '.join(known)}")
    return {"op": "name_in", "field": "state", "values": [name]}


def _table_status(text: str) -> list[Node]:
    # As conntrack-tools reads the list: every named bit is tested, a bit
    # named as set (SEEN_REPLY) wins over the same bit named as unset
    # (UNREPLIED) whatever the order.
    must_set = must_clear = 0
    for name in text.split(","):
        entry = CONNTRACK_STATUS.get(name.upper())
        if entry is None:
            raise _usage(f"--status {name!r}: expected one of {', '.join(CONNTRACK_STATUS)}")
        bit, wanted = entry
        if wanted:
            must_set |= bit
        else:
            must_clear |= bit
    must_clear &= ~must_set
    parts: list[Node] = []
    if must_set:
        parts.append({"op": "status", "bits": must_set})
    if must_clear:
        parts.append(negate({"op": "status", "bits": must_clear}))
    return parts


def _table_mark(text: str) -> Node:
    value_text, sep, mask_text = text.partition("/")
    value = _mark_number(text, value_text)
    mask = _mark_number(text, mask_text) if sep else 0xFFFFFFFF
    return {"op": "masked", "field": "mark", "mask": mask, "value": value}


def _mark_number(option_text: str, text: str) -> int:
    """strtoul's base 0, as conntrack-tools reads a mark: 0x hex, 0 octal, else decimal."""
    try:
        if text.lower().startswith("0x"):
            value = int(text[2:], 16)
        elif text.startswith("0") and len(text) > 1:
            value = int(text[1:], 8)
        else:
            value = int(text, 10)
    except ValueError:
        raise _usage(f"--mark {option_text!r}: expected VALUE[/MASK] (numbers)") from None
    if not 0 <= value <= 0xFFFFFFFF:
        raise _usage(f"--mark {option_text!r}: a mark is 32 bits")
    return value


# -- events and stats ------------------------------------------------------------

def add_events_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--filter", metavar="EXPR",
                        help="only the events EXPR selects (fields: "
                             + ", ".join(sorted(EVENT_FIELDS)) + ")")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="`conntrack -E` lines (default) or one JSON object per event")


def events_filter(args: argparse.Namespace) -> str | None:
    if args.filter is None:
        return None
    return json.dumps(parse_option_filter("--filter", args.filter, EVENT_FIELDS))


def event_text(event: ConntrackEvent, args: argparse.Namespace) -> str:
    """One event as `events` prints it: the `conntrack -E` line, or JSON."""
    if args.format != "json":
        return event.line(args.timestamps)
    return json.dumps({"ts": event.ts, "event": event.kind, "conn": event.conn,
                       "expectation": event.expectation, "cause": event.cause or None,
                       "text": event.body})


def stats_text(firewall: Firewall, fmt: str) -> str:
    """`stats` in its `--format`: conntrack -S, /proc/net/stat/nf_conntrack or JSON."""
    if fmt == "json":
        return json.dumps(firewall.stats(), indent=1) + "\n"
    return "\n".join(firewall.stat_lines(fmt)) + "\n"


# -- json ------------------------------------------------------------------------

def entry_json(conn: Connection, at: float) -> dict[str, Any]:
    """One conntrack entry (an engine.Connection) as `table --format json` writes it."""
    from statewall.select import STATUS_BITS

    def tuple_json(src: str, dst: str, sport: int, dport: int) -> dict[str, Any]:
        out: dict[str, Any] = {"src": src, "dst": dst}
        if conn.proto in PORT_PROTOCOLS:
            out |= {"sport": sport, "dport": dport}
        elif conn.proto in (1, 58):  # the tuple holds the echo id and type << 8 | code
            out |= {"type": dport >> 8, "code": dport & 0xFF, "id": sport}
        return out

    left = conn.expires - at
    return {
        "id": conn.conn,
        "family": f"ipv{conn.family}",
        "proto": conn.proto,
        "state": conn.state or None,
        "timeout": int(left) if left > 0 else 0,
        "orig": tuple_json(conn.orig_src, conn.orig_dst, conn.orig_sport, conn.orig_dport),
        "reply": tuple_json(conn.reply_src, conn.reply_dst, conn.reply_sport, conn.reply_dport),
        "status": [name for name, bit in STATUS_BITS.items() if conn.status & bit],
        "mark": conn.mark,
        "zone": conn.zone,
        "helper": conn.helper,
        "master": conn.master,
    }


def expectation_json(exp: ExpectedConnection) -> dict[str, Any]:
    """One expectation as `table --expectations --format json` writes it."""

    return {
        "family": f"ipv{exp.family}",
        "proto": exp.proto,
        "timeout": exp.timeout,
        "src": exp.src,
        "dst": exp.dst,
        "sport": exp.sport or None,
        "dport": exp.dport,
        "helper": exp.helper,
        "master": exp.master,
    }

