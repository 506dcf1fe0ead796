"""helper match (xt_helper.c): the helper of the connection's master (RELATED traffic).

`--helper ""` matches any helper; otherwise the helper's name must be a
prefix of the given one, as the kernel compares strlen(helper name) bytes.
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec


def check_helper(args: BuildArgs) -> None:
    if args.get("--helper") is None:
        raise OptionError("helper: --helper is required")


HELPER = MatchExt("helper", (OptSpec("--helper"),), check_helper)
