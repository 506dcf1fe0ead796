"""state match (xt_state.c: state_mt) and the state bits xt_conntrack shares.

A packet's state bit comes from its ctinfo; a packet with no entry is
INVALID and an untracked one UNTRACKED (conntrack-core spec section 4.1).
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec
from statewall.rules.matches._util import parse_flag_list

INVALID = 1
ESTABLISHED = 2
RELATED = 4
NEW = 8
UNTRACKED = 16
SNAT = 32
DNAT = 64

STATE_NAMES = {"INVALID": INVALID, "ESTABLISHED": ESTABLISHED, "RELATED": RELATED,
               "NEW": NEW, "UNTRACKED": UNTRACKED}


def check_state(args: BuildArgs) -> None:
    option = args.get("--state")
    if option is None:
        raise OptionError("state: --state is required")
    parse_flag_list(option.values[0], STATE_NAMES, "state")


STATE = MatchExt("state", (OptSpec("--state"),), check_state)
