"""state match (xt_state.c: state_mt) and the state bits xt_conntrack shares.

A packet's state bit comes from its ctinfo; a packet with no entry is
INVALID and an untracked one UNTRACKED (conntrack-core spec section 4.1).
"""

from __future__ import annotations

from statewall.conntrack.conn import CT_INVALID, CT_UNTRACKED
from statewall.rules.context import PacketContext
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec
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


def _bit_of(ctinfo: int) -> int:
    if ctinfo == CT_INVALID:
        return INVALID
    if ctinfo == CT_UNTRACKED:
        return UNTRACKED
    return (ESTABLISHED, RELATED, NEW)[ctinfo % 3]


# The state bit of each ctinfo value, indexed by ctinfo (no lookup by name per packet).
STATE_BIT = tuple(_bit_of(i) if i in (0, 1, 2, 3, 4, CT_INVALID, CT_UNTRACKED) else 0
                  for i in range(8))


def build_state(args: BuildArgs) -> MatchFn:
    option = args.get("--state")
    if option is None:
        raise OptionError("state: --state is required")
    mask = parse_flag_list(option.values[0], STATE_NAMES, "state")
    negated = option.negated

    def match(ctx: PacketContext) -> bool:
        return bool(STATE_BIT[ctx.ctinfo] & mask) != negated

    return match


STATE = MatchExt("state", (OptSpec("--state"),), build_state)
