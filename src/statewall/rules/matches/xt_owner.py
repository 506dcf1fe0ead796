"""owner match (xt_owner.c, libxt_owner.c): the local socket that sent the packet.

Only a packet the machine sends itself can carry a socket, so the kernel
accepts the match only in OUTPUT and POSTROUTING. For a packet no local
socket sent (everything forwarded), the kernel's answer depends on the
options alone: the rule matches exactly when every option it gives is
negated (`--suppl-groups`, which cannot be negated, makes it fail). The
core evaluates that. For the machine's own packets (from a `--local`
address) the capture does not say which socket, if any, sent them: the
match is undetermined there.

The uid and gid values are checked as iptables and the kernel check them:
a number, a range `LOW-HIGH` or `LOW:HIGH` (C notation, below 2^32 - 1,
LOW <= HIGH), or a user or group name, which iptables-restore resolves on
the firewall itself, so statewall accepts any well-formed name.
"""

from __future__ import annotations

import re

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec, parse_int

MAX_ID = 0xFFFFFFFE  # (uid_t)-1 is reserved
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\$?")
_RANGE = re.compile(r"\s*\+?(\w+)(?:[-:]\+?(\w+))?")


def parse_ids(text: str, option: str) -> tuple[int, int] | None:
    """(low, high) of a numeric id or range; None for a name."""
    bad = OptionError(f'Bad value for "{option}" option: "{text}"')
    found = _RANGE.fullmatch(text)
    if found is None or not found.group(1)[0].isdigit():
        if _NAME.fullmatch(text):
            return None
        raise bad
    try:
        low = parse_int(found.group(1), 0, MAX_ID, option)
        high = low if found.group(2) is None else parse_int(found.group(2), 0, MAX_ID, option)
    except OptionError:
        raise bad from None
    if high < low:  # the kernel's owner_check refuses an empty range
        raise OptionError(f"{option} {text}: the range is empty (Invalid argument)")
    return low, high


def check_owner(args: BuildArgs) -> None:
    names = [option.name for option in args.options]
    if not {"--uid-owner", "--gid-owner", "--socket-exists"} & set(names):
        raise OptionError("At least one of --uid-owner, --gid-owner or --socket-exists "
                          "is required")
    if "--suppl-groups" in names and (
            "--gid-owner" not in names or names.index("--gid-owner") > names.index("--suppl-groups")):
        raise OptionError('Bad value for "--suppl-groups" option: '
                          '"you need to use --gid-owner first"')
    for name in ("--uid-owner", "--gid-owner"):
        value = args.value(name)
        if value is not None:
            parse_ids(value, name)


OWNER = MatchExt(
    "owner",
    (OptSpec("--uid-owner"), OptSpec("--gid-owner"), OptSpec("--socket-exists", nargs=0),
     OptSpec("--suppl-groups", nargs=0, invert=False)),
    check_owner,
    hooks=("OUTPUT", "POSTROUTING"),
)
