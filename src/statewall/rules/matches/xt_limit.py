"""limit match (xt_limit.c: limit_mt), a token bucket counted in jiffies.

Kept integer-exact as the kernel: a rate becomes `avg` (XT_LIMIT_SCALE units
per packet), credits are jiffies times CREDITS_PER_JIFFY, the bucket starts
full (`burst` packets) and refills by elapsed jiffies, capped at the burst.
Time comes from the packet (`now`), converted to jiffies at the kernel's HZ.
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec, parse_int

SCALE = 10000
UNITS = (("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400))


def parse_rate(text: str) -> int:
    """`N/unit` (unit any prefix of second/minute/hour/day) as kernel `avg`."""
    count_text, slash, unit = text.partition("/")
    multiplier = 1
    if slash:
        for name, seconds in UNITS:
            if unit and name.startswith(unit.lower()):
                multiplier = seconds
                break
        else:
            raise OptionError(f"bad rate \"{text}\"")
    if not count_text.isdigit() or int(count_text) == 0:
        raise OptionError(f"bad rate \"{text}\"")
    avg = multiplier * SCALE // int(count_text)
    if avg == 0:
        raise OptionError(f"Rate too fast \"{text}\"")
    return avg


def credits_per_jiffy(hz: int) -> int:
    """The largest power of two below 0xFFFFFFFF / (HZ * 86400) (POW2_BELOW32)."""
    most = 0xFFFFFFFF // (hz * 86400)
    return 1 << (most.bit_length() - 1)


def user2credits(user: int, hz: int) -> int:
    cpj = credits_per_jiffy(hz)
    if user > 0xFFFFFFFF // (hz * cpj):
        return (user // SCALE) * hz * cpj
    return (user * hz * cpj) // SCALE


def check_limit(args: BuildArgs) -> None:
    avg = parse_rate(args.value("--limit", "3/hour") or "3/hour")
    burst = parse_int(args.value("--limit-burst", "5") or "5", 1, 10000, "burst")
    hz = args.state.hz
    if user2credits(avg * burst, hz) < user2credits(avg, hz):
        raise OptionError("Overflow, try lower")


LIMIT = MatchExt("limit", (OptSpec("--limit", invert=False),
                           OptSpec("--limit-burst", invert=False)), check_limit)
