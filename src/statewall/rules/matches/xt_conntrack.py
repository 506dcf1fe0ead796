"""conntrack match (xt_conntrack.c: conntrack_mt, revision 3).

Order matters and is the kernel's: `--ctstate` first; then, for a packet
with no entry (INVALID or UNTRACKED), the match is true exactly when
`--ctstate` was given, whatever the other options say; otherwise every
other option is ANDed, each with its own `!`.
"""

from __future__ import annotations

from statewall.rules.addr import parse_address, parse_port_range, parse_protocol
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec
from statewall.rules.matches._util import parse_flag_list, parse_range
from statewall.rules.matches.xt_state import DNAT, SNAT, STATE_NAMES

# The entry's status bits --ctstatus names (enum ip_conntrack_status).
IPS_EXPECTED = 1 << 0
IPS_SEEN_REPLY = 1 << 1
IPS_ASSURED = 1 << 2
IPS_CONFIRMED = 1 << 3

CTSTATE_NAMES = dict(STATE_NAMES, SNAT=SNAT, DNAT=DNAT)
STATUS_NAMES = {"NONE": 0, "EXPECTED": IPS_EXPECTED, "SEEN_REPLY": IPS_SEEN_REPLY,
                "ASSURED": IPS_ASSURED, "CONFIRMED": IPS_CONFIRMED}

_ADDRS = ("--ctorigsrc", "--ctorigdst", "--ctreplsrc", "--ctrepldst")
_PORTS = ("--ctorigsrcport", "--ctorigdstport", "--ctreplsrcport", "--ctrepldstport")


def check_conntrack(args: BuildArgs) -> None:
    state = args.get("--ctstate")
    if state is not None:
        parse_flag_list(state.values[0], CTSTATE_NAMES, "ctstate")
    for option in args.options:
        value = option.values[0] if option.values else ""
        if option.name in _ADDRS:
            parse_address(value, args.family)
        elif option.name in _PORTS:
            parse_port_range(value)
        elif option.name == "--ctproto":
            parse_protocol(value)
        elif option.name == "--ctstatus":
            parse_flag_list(value, STATUS_NAMES, "ctstatus")
        elif option.name == "--ctexpire":
            parse_range(value, 0, 0xFFFFFFFF, "ctexpire range")
        elif option.name == "--ctdir" and value.upper() not in ("ORIGINAL", "REPLY"):
            raise OptionError(f'Bad ctdir value "{value}"')
    if not args.options:
        raise OptionError("conntrack: at least one option is required")


CONNTRACK = MatchExt(
    "conntrack",
    tuple(OptSpec(n) for n in (
        "--ctstate", "--ctproto", "--ctorigsrc", "--ctorigdst", "--ctreplsrc", "--ctrepldst",
        "--ctorigsrcport", "--ctorigdstport", "--ctreplsrcport", "--ctrepldstport",
        "--ctstatus", "--ctexpire")) + (OptSpec("--ctdir", invert=False),),
    check_conntrack,
)
