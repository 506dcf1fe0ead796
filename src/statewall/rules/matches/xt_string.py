"""string match (xt_string.c): a pattern searched in the datagram, IP header included.

The search window is bytes [--from, --to) of the datagram (skb data starts
at the network header in the IP hooks); the whole pattern must fit in it.
Boyer-Moore and KMP find the same occurrences, so both are one search here.
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec, parse_int


def parse_hex_string(text: str) -> bytes:
    """`abc|41 42|def`: plain text with hex bytes between bars (libxt_string)."""
    out = bytearray()
    parts = text.split("|")
    if len(parts) % 2 == 0:
        raise OptionError("Invalid hex string: unbalanced |")
    for i, part in enumerate(parts):
        if i % 2:
            try:
                out += bytes.fromhex(part)
            except ValueError:
                raise OptionError(f"Invalid hex char in `{part}'") from None
        else:
            out += part.encode()
    return bytes(out)


def check_string(args: BuildArgs) -> None:
    algo = args.value("--algo")
    if algo not in ("bm", "kmp"):
        raise OptionError("string: --algo bm or --algo kmp is required")
    text, hexed = args.get("--string"), args.get("--hex-string")
    if (text is None) == (hexed is None):
        raise OptionError("string: exactly one of --string or --hex-string is required")
    option = text if text is not None else hexed
    assert option is not None
    pattern = option.values[0].encode() if text is not None else parse_hex_string(
        option.values[0])
    if not pattern or len(pattern) > 128:
        raise OptionError("STRING too long or empty")
    start = parse_int(args.value("--from", "0") or "0", 0, 65535, "--from")
    parse_int(args.value("--to", "65535") or "65535", start, 65535, "--to")


STRING = MatchExt(
    "string",
    (OptSpec("--algo", invert=False), OptSpec("--from", invert=False),
     OptSpec("--to", invert=False), OptSpec("--string"), OptSpec("--hex-string"),
     OptSpec("--icase", nargs=0, invert=False)),
    check_string,
)
