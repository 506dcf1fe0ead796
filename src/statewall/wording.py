"""Small helpers for the words people read: counts with the right plural, and
"did you mean" for a name that is almost one statewall knows."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def noun(n: int, word: str, plural: str | None = None) -> str:
    """`word` as it goes with `n` things: `packet` for 1, `packets` otherwise."""
    return word if n == 1 else (plural or word + "s")


def count(n: int, word: str, plural: str | None = None) -> str:
    """`1 packet`, `0 packets`, `3 entries` (with `plural="entries"`)."""
    return f"{n} {noun(n, word, plural)}"


def nearest(word: str, known: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The known name closest to `word`, if one is close enough (cutoff 0: always one)."""
    found = difflib.get_close_matches(word, list(known), n=1, cutoff=cutoff)
    return found[0] if found else None


def did_you_mean(word: str, known: Iterable[str], cutoff: float = 0.6) -> str:
    """` (did you mean X?)` for the nearest known name, or nothing."""
    found = nearest(word, known, cutoff)
    return f" (did you mean {found}?)" if found is not None else ""
