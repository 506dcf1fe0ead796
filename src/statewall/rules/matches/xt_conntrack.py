"""conntrack match (xt_conntrack.c: conntrack_mt, revision 3).

Order matters and is the kernel's: `--ctstate` first; then, for a packet
with no entry (INVALID or UNTRACKED), the match is true exactly when
`--ctstate` was given, whatever the other options say; otherwise every
other option is ANDed, each with its own `!`.
"""

from __future__ import annotations

from collections.abc import Callable

from statewall.conntrack.conn import (
    IPS_ASSURED,
    IPS_CONFIRMED,
    IPS_DST_NAT,
    IPS_EXPECTED,
    IPS_SEEN_REPLY,
    IPS_SRC_NAT,
    Conn,
)
from statewall.rules.addr import parse_address, parse_port_range, parse_protocol
from statewall.rules.context import PacketContext
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec
from statewall.rules.matches._util import parse_flag_list, parse_range
from statewall.rules.matches.xt_state import DNAT, SNAT, STATE_BIT, STATE_NAMES

CTSTATE_NAMES = dict(STATE_NAMES, SNAT=SNAT, DNAT=DNAT)
STATUS_NAMES = {"NONE": 0, "EXPECTED": IPS_EXPECTED, "SEEN_REPLY": IPS_SEEN_REPLY,
                "ASSURED": IPS_ASSURED, "CONFIRMED": IPS_CONFIRMED}

ConnCheck = Callable[[Conn, PacketContext], bool]

_ADDRS: dict[str, Callable[[Conn], int]] = {
    "--ctorigsrc": lambda c: c.orig_src, "--ctorigdst": lambda c: c.orig_dst,
    "--ctreplsrc": lambda c: c.reply_src, "--ctrepldst": lambda c: c.reply_dst,
}
_PORTS: dict[str, Callable[[Conn], int]] = {
    "--ctorigsrcport": lambda c: c.orig_sport, "--ctorigdstport": lambda c: c.orig_dport,
    "--ctreplsrcport": lambda c: c.reply_sport, "--ctrepldstport": lambda c: c.reply_dport,
}


def _ctstate(args: BuildArgs) -> tuple[int, bool] | None:
    option = args.get("--ctstate")
    if option is None:
        return None
    return parse_flag_list(option.values[0], CTSTATE_NAMES, "ctstate"), option.negated


def _addr_check(get: Callable[[Conn], int], addr: int, mask: int, neg: bool) -> ConnCheck:
    return lambda c, x: ((get(c) & mask) == addr) != neg


def _range_check(get: Callable[[Conn], int], low: int, high: int, neg: bool) -> ConnCheck:
    return lambda c, x: (low <= get(c) <= high) != neg


def _proto_check(proto: int, neg: bool) -> ConnCheck:
    return lambda c, x: (c.proto == proto) != neg


def _status_check(mask: int, neg: bool) -> ConnCheck:
    return lambda c, x: bool(c.status & mask) != neg


def _expire_check(low: int, high: int, neg: bool) -> ConnCheck:
    return lambda c, x: (low <= _expires(c, x.now) <= high) != neg


def _conn_checks(args: BuildArgs) -> list[ConnCheck]:
    checks: list[ConnCheck] = []
    for option in args.options:
        neg = option.negated
        value = option.values[0] if option.values else ""
        if option.name in _ADDRS:
            address = parse_address(value, args.family)
            checks.append(_addr_check(_ADDRS[option.name], address.addr, address.mask, neg))
        elif option.name in _PORTS:
            low, high = parse_port_range(value)
            checks.append(_range_check(_PORTS[option.name], low, high, neg))
        elif option.name == "--ctproto":
            checks.append(_proto_check(parse_protocol(value), neg))
        elif option.name == "--ctstatus":
            checks.append(_status_check(parse_flag_list(value, STATUS_NAMES, "ctstatus"), neg))
        elif option.name == "--ctexpire":
            low, high = parse_range(value, 0, 0xFFFFFFFF, "ctexpire range")
            checks.append(_expire_check(low, high, neg))
        elif option.name == "--ctdir":
            checks.append(_direction(value))
    return checks


def _expires(conn: Conn, now: float) -> int:
    """Whole seconds left; an unconfirmed entry shows 0 (spec 4.2, `--ctexpire`)."""
    return conn.remaining(now) if conn.status & IPS_CONFIRMED else 0


def _direction(value: str) -> ConnCheck:
    if value.upper() not in ("ORIGINAL", "REPLY"):
        raise OptionError(f'Bad ctdir value "{value}"')
    want_reply = value.upper() == "REPLY"
    return lambda c, x: (x.ctinfo >= 3) == want_reply


def build_conntrack(args: BuildArgs) -> MatchFn:
    state = _ctstate(args)
    checks = tuple(_conn_checks(args))
    if state is None and not checks:
        raise OptionError("conntrack: at least one option is required")
    mask, negated = state if state is not None else (0, False)
    has_state = state is not None

    def match(ctx: PacketContext) -> bool:
        conn = ctx.conn
        if has_state:
            bits = STATE_BIT[ctx.ctinfo]
            if conn is not None and conn.status & (IPS_SRC_NAT | IPS_DST_NAT):
                bits |= (SNAT if conn.status & IPS_SRC_NAT else 0) | \
                    (DNAT if conn.status & IPS_DST_NAT else 0)
            if bool(bits & mask) == negated:
                return False
        if conn is None:
            return has_state
        return all(check(conn, ctx) for check in checks)

    return match


CONNTRACK = MatchExt(
    "conntrack",
    tuple(OptSpec(n) for n in (
        "--ctstate", "--ctproto", "--ctorigsrc", "--ctorigdst", "--ctreplsrc", "--ctrepldst",
        "--ctorigsrcport", "--ctorigdstport", "--ctreplsrcport", "--ctrepldstport",
        "--ctstatus", "--ctexpire")) + (OptSpec("--ctdir", invert=False),),
    build_conntrack,
)
