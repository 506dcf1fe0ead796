"""helper match (xt_helper.c): the helper of the connection's master (RELATED traffic).

`--helper ""` matches any helper; otherwise the helper's name must be a
prefix of the given one, as the kernel compares strlen(helper name) bytes.
"""

from __future__ import annotations

from statewall.rules.context import PacketContext
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec


def build_helper(args: BuildArgs) -> MatchFn:
    option = args.get("--helper")
    if option is None:
        raise OptionError("helper: --helper is required")
    wanted = option.values[0]
    negated = option.negated

    def match(ctx: PacketContext) -> bool:
        conn = ctx.conn
        master = conn.master if conn is not None else None
        helper = master.helper if master is not None else None
        if helper is None:
            return negated
        return (not wanted or wanted.startswith(helper)) != negated

    return match


HELPER = MatchExt("helper", (OptSpec("--helper"),), build_helper)
