"""comment match (xt_comment.c): always true; the text is kept for printing."""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec


def check_comment(args: BuildArgs) -> None:
    text = args.value("--comment")
    if text is None:
        raise OptionError("comment: --comment is required")
    if len(text.encode()) > 255:
        raise OptionError("comment may not exceed 255 characters")


COMMENT = MatchExt("comment", (OptSpec("--comment", invert=False),), check_comment)
