"""hashlimit match (xt_hashlimit.c, revision 3; options as libxt_hashlimit parses them).

One token bucket per hash key: the packet's addresses masked to
`--hashlimit-srcmask/--hashlimit-dstmask` and its ports, as many of them as
`--hashlimit-mode` names (no mode: one bucket for all). Buckets live in a
table shared by every rule with the same `--hashlimit-name`; the first rule
creates it and its settings (mode, masks, rate, burst, expiry) are the ones
new buckets get, as htable_find_get / rateinfo_init do.

Packet mode counts in credits: a rate `N/unit` is `avg = 1000000 * unit / N`,
a packet costs `avg * CPJ * HZ / 1000000` credits (CPJ the largest power of
two below 2^64 / (HZ * 86400)), a bucket starts full at `burst` packets and
refills by CPJ per elapsed jiffy. Byte mode (`Nkb/s`) charges
`(len >> 4) + 1` chunks and may refill the bucket `burst` extra times.
`--hashlimit-rate-match` only measures: it matches (below the rate) while the
previous interval's rate was under the limit and this interval's count is
within rate + burst, and never consumes credit.

Buckets idle past `--hashlimit-htable-expire` (default: one rate unit) are
dropped by a garbage collector that runs every `--hashlimit-htable-gcinterval`
ms; statewall runs it on the packet clock from the table's first packet. A
full table (`--hashlimit-htable-max`, by default 8 x 8192 buckets as on a host
with more than 1 GiB of memory) makes the kernel drop the packet.
"""

from __future__ import annotations

from dataclasses import dataclass

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec, parse_int

SCALE = 1000000  # XT_HASHLIMIT_SCALE_v2
BYTE_SHIFT = 4
BYTE_EXPIRE, BYTE_EXPIRE_BURST = 15, 60  # seconds (XT_HASHLIMIT_BYTE_EXPIRE[_BURST])
BURST_MAX = 1 << 48  # XT_HASHLIMIT_BURST_MAX
U32 = 0xFFFFFFFF
MODES = {"srcip": 1, "srcport": 2, "dstip": 4, "dstport": 8}


def pow2_below(value: int) -> int:
    return 1 << (value.bit_length() - 1)


@dataclass(frozen=True, slots=True)
class Config:
    """The part of `struct hashlimit_cfg3` that decides behaviour."""

    mode: int
    avg: int
    burst: int
    srcmask: int
    dstmask: int
    expire_ms: int
    gc_ms: int
    max_entries: int
    invert: bool
    byte_mode: bool
    rate_match: bool
    interval: int


def _units(text: str) -> int | None:
    if not text:
        return None
    for name, seconds in (("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400)):
        if name.startswith(text.lower()):
            return seconds
    return None


def bytes_to_cost(value: int) -> int:
    return U32 // ((value >> BYTE_SHIFT) + 1)


def cost_to_bytes(cost: int) -> int:
    per = U32 // cost if cost else U32
    return (per - 1) << BYTE_SHIFT


def parse_rate(text: str) -> tuple[int, int, bool]:
    """(avg, seconds per unit or byte expiry, byte mode) as parse_bytes/parse_rate give."""
    at = text.find("b/s")
    if at > 0:
        count = _leading_int(text)
        if count:
            factor = {"m": 1 << 20, "k": 1 << 10}.get(text[at - 1], 1)
            cost = bytes_to_cost(count * factor)
            if cost == 0:
                raise OptionError(f'Rate too high "{text}"')
            return cost, BYTE_EXPIRE, True
    count_text, slash, unit = text.partition("/")
    seconds = _units(unit) if slash else 1
    count = _leading_int(count_text)
    if seconds is None or not count:
        raise OptionError(f'Bad value for option "--hashlimit-upto", or out of range: "{text}"')
    avg = SCALE * seconds // count
    if avg == 0:
        raise OptionError(f'Rate too fast "{text}"')
    return avg, seconds, False


def _leading_int(text: str) -> int:
    digits = ""
    for char in text:
        if not char.isdigit():
            break
        digits += char
    return int(digits) if digits else 0


def _burst(text: str) -> int:
    number = _leading_int(text)
    rest = text[len(str(number)):] if number else text
    if not number or rest not in ("", "b", "kb", "mb", "k", "m"):
        raise OptionError(f'bad value for option "--hashlimit-burst", or out of range '
                          f'(1-{BURST_MAX}).')
    if rest == "" and number > BURST_MAX:
        raise OptionError(f'bad value for option "--hashlimit-burst", or out of range '
                          f'(1-{BURST_MAX}).')
    return number * {"k": 1 << 10, "m": 1 << 20}.get(rest[:1], 1)


def _mode(text: str) -> int:
    mode = 0
    for word in text.replace("|", ",").split(","):
        if word not in MODES:
            raise OptionError(f'Bad value for option "--hashlimit-mode": "{text}"')
        mode |= MODES[word]
    return mode


def _config(args: BuildArgs) -> Config:
    upto, above = args.get("--hashlimit-upto") or args.get("--hashlimit"), \
        args.get("--hashlimit-above")
    if upto is None and above is None:
        raise OptionError("You have to specify --hashlimit")
    if upto is not None and above is not None:
        raise OptionError("--hashlimit-upto and --hashlimit-above are mutually exclusive")
    chosen = upto or above
    assert chosen is not None
    invert = chosen.negated if chosen is upto else not chosen.negated
    avg, mult, byte_mode = parse_rate(chosen.values[0])
    bits = 32 if args.family == 4 else 128
    burst = _burst(args.value("--hashlimit-burst", "5") or "5")
    expire_text = args.value("--hashlimit-htable-expire")
    expire = mult * 1000
    if byte_mode:
        burst, expire = _byte_burst(args, avg, burst, expire)
    if expire_text is not None:
        expire = parse_int(expire_text, 0, U32, "--hashlimit-htable-expire")
    rate_match = args.has("--hashlimit-rate-match")
    interval_text = args.value("--hashlimit-rate-interval")
    interval = parse_int(interval_text, 1, U32, "--hashlimit-rate-interval") \
        if interval_text else 0
    if rate_match:
        avg = avg if byte_mode else avg // mult
        interval = interval or (1 if byte_mode else mult)
    size = parse_int(args.value("--hashlimit-htable-size", "8192") or "8192", 0, U32,
                     "--hashlimit-htable-size") or 8192
    max_text = args.value("--hashlimit-htable-max")
    max_entries = parse_int(max_text, 0, U32, "--hashlimit-htable-max") if max_text else 0
    cfg = Config(
        _mode(args.value("--hashlimit-mode", "") or "") if args.has("--hashlimit-mode") else 0,
        avg, burst,
        parse_int(args.value("--hashlimit-srcmask", str(bits)) or "", 0, bits, "srcmask"),
        parse_int(args.value("--hashlimit-dstmask", str(bits)) or "", 0, bits, "dstmask"),
        expire, parse_int(args.value("--hashlimit-htable-gcinterval", "1000") or "", 0, U32,
                          "--hashlimit-htable-gcinterval"),
        max(max_entries, size) if max_entries else 8 * size,
        invert, byte_mode, rate_match, interval)
    _kernel_check(cfg, args.state.hz)
    return cfg


def _byte_burst(args: BuildArgs, avg: int, burst: int, expire: int) -> tuple[int, int]:
    if not args.has("--hashlimit-burst"):
        return 0, expire
    unit = cost_to_bytes(avg)
    if burst < unit:
        raise OptionError(f"burst cannot be smaller than {unit}b")
    return -(-burst // unit), BYTE_EXPIRE_BURST * 1000


def _kernel_check(cfg: Config, hz: int) -> None:
    """hashlimit_mt_check: zero intervals and credit overflow are refused."""
    if cfg.gc_ms == 0 or cfg.expire_ms == 0:
        raise OptionError("--hashlimit-htable-gcinterval and -expire must not be 0 "
                          "(the kernel refuses the rule)")
    if cfg.byte_mode:
        if user2credits_byte(cfg.avg, hz) == 0:
            raise OptionError(f"overflow, rate too high: {cfg.avg}")
    elif cfg.burst == 0 or user2credits(cfg.avg * cfg.burst, hz) < user2credits(cfg.avg, hz):
        raise OptionError(f"overflow, try lower: {cfg.avg}/{cfg.burst}")


def cpj(hz: int) -> int:
    return pow2_below(0xFFFFFFFFFFFFFFFF // (hz * 86400))


def cpj_bytes(hz: int) -> int:
    return pow2_below(U32 // hz)


def user2credits(user: int, hz: int) -> int:
    per = hz * cpj(hz)
    if per <= SCALE:
        return user // (SCALE // per)
    return (user * (per // SCALE)) & 0xFFFFFFFFFFFFFFFF


def user2credits_byte(user: int, hz: int) -> int:
    return ((user * hz * cpj_bytes(hz)) >> 32) & U32


def check_hashlimit(args: BuildArgs) -> None:
    """The rule's settings; the first rule naming a table sets the table's."""
    name = args.value("--hashlimit-name")
    if not name:
        raise OptionError("hashlimit: option \"--hashlimit-name\" must be specified")
    if len(name) > 255:
        raise OptionError("hashlimit: --hashlimit-name is longer than 255 characters")
    args.state.hashlimit.setdefault(name, _config(args))


HASHLIMIT = MatchExt(
    "hashlimit",
    (OptSpec("--hashlimit-upto"), OptSpec("--hashlimit-above"), OptSpec("--hashlimit"))
    + tuple(OptSpec(f"--hashlimit-{n}", invert=False) for n in (
        "burst", "mode", "srcmask", "dstmask", "name", "htable-size", "htable-max",
        "htable-expire", "htable-gcinterval", "rate-interval"))
    + (OptSpec("--hashlimit-rate-match", nargs=0, invert=False),),
    check_hashlimit,
)
