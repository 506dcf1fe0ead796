"""Matches statewall parses and checks but cannot evaluate from a capture.

owner (xt_owner.c) asks which local socket sent the packet: a capture does
not say, so a rule using it is refused at load time unless unknown rules are
allowed, and then a packet reaching it gets an undetermined verdict. Like
the kernel, the match is only accepted where a local socket can exist
(OUTPUT and POSTROUTING).
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec


def _refuse(args: BuildArgs) -> None:
    raise OptionError("not evaluated")


OWNER = MatchExt(
    "owner",
    (OptSpec("--uid-owner"), OptSpec("--gid-owner"), OptSpec("--socket-exists", nargs=0),
     OptSpec("--suppl-groups", nargs=0, invert=False)),
    _refuse,
    hooks=("OUTPUT", "POSTROUTING"),
    unsupported="a capture carries no socket owner (uid/gid of the sending process)",
)
