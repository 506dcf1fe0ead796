"""connbytes match (xt_connbytes.c): the entry's packet/byte counters.

Counters are the entry's accounting (orig packets, orig bytes, reply
packets, reply bytes); an entry without accounting never matches.
`! --connbytes FROM:TO` matches outside the range.

Loading the match turns accounting on: the kernel's checkentry sets
nf_conntrack_acct=1 in the namespace when it was off, because the match
reads counters that only accounting keeps. statewall does the same
(engine.Firewall) and says so in a note.
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec

_DIRS = ("original", "reply", "both")


def check_connbytes(args: BuildArgs) -> None:
    option = args.get("--connbytes")
    direction = args.value("--connbytes-dir") or ""
    mode = args.value("--connbytes-mode") or ""
    if option is None or direction not in _DIRS or mode not in ("packets", "bytes", "avgpkt"):
        raise OptionError("connbytes: --connbytes, --connbytes-dir and --connbytes-mode "
                          "are required")
    low_text, _, high_text = option.values[0].partition(":")
    if not low_text.isdigit() or (high_text and not high_text.isdigit()):
        raise OptionError(f'bad connbytes range "{option.values[0]}"')


FORCES_ACCT = ("connbytes turns connection accounting on (nf_conntrack_acct=1), as loading "
               "it does in the kernel: the table listings show packets= and bytes=")


def note_connbytes(args: BuildArgs) -> str:
    return FORCES_ACCT


CONNBYTES = MatchExt(
    "connbytes",
    (OptSpec("--connbytes"), OptSpec("--connbytes-dir", invert=False),
     OptSpec("--connbytes-mode", invert=False)),
    check_connbytes,
    note=note_connbytes,
)
