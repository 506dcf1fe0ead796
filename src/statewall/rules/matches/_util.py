"""Small helpers shared by several match modules (header access, lists of names)."""

from __future__ import annotations

from statewall.packet import Packet
from statewall.rules.errors import OptionError


def later_fragment(pkt: Packet) -> bool:
    """A non-first fragment carries no layer-4 header: port matches never match it."""
    frag = pkt.fragment
    return frag is not None and frag.offset > 0


def tcp_option_kinds(pkt: Packet) -> list[tuple[int, bytes]]:
    """(kind, body) of each option in the TCP header, as tcp_find_option walks them."""
    data = pkt.data
    start = pkt.l4_off + 20
    if len(data) < pkt.l4_off + 13:
        return []
    end = min(len(data), pkt.l4_off + (data[pkt.l4_off + 12] >> 4) * 4)
    found: list[tuple[int, bytes]] = []
    i = start
    while i < end:
        kind = data[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= end or data[i + 1] < 2:
            break
        found.append((kind, data[i + 2:i + data[i + 1]]))
        i += data[i + 1]
    return found


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
