"""Small helpers shared by several match modules (lists of names, ranges)."""

from __future__ import annotations

from statewall.rules.errors import OptionError


def parse_flag_list(text: str, names: dict[str, int], what: str) -> int:
    """A comma-separated list of names OR-ed into a bit mask."""
    mask = 0
    for name in text.split(","):
        bit = names.get(name.upper())
        if bit is None:
            raise OptionError(f'Bad {what} "{name}"')
        mask |= bit
    return mask


def parse_range(text: str, low: int, high: int, what: str) -> tuple[int, int]:
    """`N` or `N:M` (each end optional) of plain integers."""
    first, colon, second = text.partition(":")
    try:
        a = int(first) if first else low
        b = (int(second) if second else high) if colon else a
    except ValueError:
        raise OptionError(f'invalid {what} "{text}"') from None
    if not (low <= a <= high and low <= b <= high) or a > b:
        raise OptionError(f'invalid {what} "{text}"')
    return a, b
