"""connbytes match (xt_connbytes.c): the entry's packet/byte counters.

Counters come from `conn.counters` ([orig packets, orig bytes, reply
packets, reply bytes]); an entry without accounting never matches.
`! --connbytes FROM:TO` matches outside the range.
"""

from __future__ import annotations

from statewall.rules.context import PacketContext
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec

_DIRS = {"original": (0,), "reply": (1,), "both": (0, 1)}


def _amount(counters: list[int], directions: tuple[int, ...], mode: str) -> int:
    packets = sum(counters[2 * d] for d in directions)
    octets = sum(counters[2 * d + 1] for d in directions)
    if mode == "packets":
        return packets
    if mode == "bytes":
        return octets
    return octets // packets if packets else 0


def build_connbytes(args: BuildArgs) -> MatchFn:
    option = args.get("--connbytes")
    direction = _DIRS.get(args.value("--connbytes-dir") or "")
    mode = args.value("--connbytes-mode") or ""
    if option is None or direction is None or mode not in ("packets", "bytes", "avgpkt"):
        raise OptionError("connbytes: --connbytes, --connbytes-dir and --connbytes-mode "
                          "are required")
    low_text, _, high_text = option.values[0].partition(":")
    if not low_text.isdigit() or (high_text and not high_text.isdigit()):
        raise OptionError(f'bad connbytes range "{option.values[0]}"')
    low, high = int(low_text), int(high_text) if high_text else (1 << 64) - 1
    negated = option.negated

    def match(ctx: PacketContext) -> bool:
        conn = ctx.conn
        if conn is None or conn.counters is None:
            return False
        return (low <= _amount(conn.counters, direction, mode) <= high) != negated

    return match


CONNBYTES = MatchExt(
    "connbytes",
    (OptSpec("--connbytes"), OptSpec("--connbytes-dir", invert=False),
     OptSpec("--connbytes-mode", invert=False)),
    build_connbytes,
)
