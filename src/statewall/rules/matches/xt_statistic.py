"""statistic match (xt_statistic.c): random with the ruleset's seeded generator, or nth.

Random mode compares 31 random bits with round(probability * 2^31), as the
kernel does with get_random_u32(). nth keeps one counter per rule started at
`every - 1 - packet`, so `--packet 0` matches the first packet.
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec, parse_int


def _random(args: BuildArgs) -> None:
    option = args.get("--probability")
    if option is None:
        raise OptionError("statistic: --probability is required in random mode")
    try:
        probability = float(option.values[0])
    except ValueError:
        raise OptionError(f'invalid --probability "{option.values[0]}"') from None
    if not 0.0 <= probability <= 1.0:
        raise OptionError("--probability must be between 0 and 1")


def _nth(args: BuildArgs) -> None:
    option = args.get("--every")
    if option is None:
        raise OptionError("statistic: --every is required in nth mode")
    every = parse_int(option.values[0], 1, 0xFFFFFFFF, "--every") - 1
    parse_int(args.value("--packet", "0") or "0", 0, every, "--packet")


def check_statistic(args: BuildArgs) -> None:
    mode = args.value("--mode")
    if mode == "random":
        _random(args)
    elif mode == "nth":
        _nth(args)
    else:
        raise OptionError(f'Bad mode "{mode}"')


STATISTIC = MatchExt(
    "statistic",
    (OptSpec("--mode", invert=False), OptSpec("--probability"), OptSpec("--every"),
     OptSpec("--packet", invert=False)),
    check_statistic,
)
