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

from dataclasses import dataclass, field

from statewall.rules.context import PacketContext, RuleState
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec, parse_int

SCALE = 1000000  # XT_HASHLIMIT_SCALE_v2
BYTE_SHIFT = 4
BYTE_EXPIRE, BYTE_EXPIRE_BURST = 15, 60  # seconds (XT_HASHLIMIT_BYTE_EXPIRE[_BURST])
BURST_MAX = 1 << 48  # XT_HASHLIMIT_BURST_MAX
U32 = 0xFFFFFFFF
MODES = {"srcip": 1, "srcport": 2, "dstip": 4, "dstport": 8}
SIP, SPT, DIP, DPT = 1, 2, 4, 8
_PORT_OFFSET = {6: 0, 17: 0, 33: 0, 50: 0, 132: 0, 136: 0, 51: 4}  # proto_ports_offset


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


@dataclass(slots=True)
class Bucket:
    credit: int = 0
    credit_cap: int = 0
    cost: int = 0
    prev: int = 0
    expires: int = 0
    rate: int = 0
    burst: int = 0
    current_rate: int = 0
    prev_window: bool = False


@dataclass(slots=True)
class HashTable:
    """One `/proc/net/ipt_hashlimit/NAME` table."""

    name: str
    cfg: Config
    buckets: dict[tuple[int, int, int, int], Bucket] = field(default_factory=dict)
    gc_next: int = -1


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


def _table(state: RuleState, name: str, cfg: Config) -> HashTable:
    table = state.hashlimit.get(name)
    if not isinstance(table, HashTable):
        table = HashTable(name, cfg)
        state.hashlimit[name] = table
    return table


def _key(cfg: Config, ctx: PacketContext) -> tuple[int, int, int, int]:
    """hashlimit_init_dst: the masked addresses and ports the mode asks for."""
    pkt = ctx.pkt
    bits = 32 if pkt.family == 4 else 128
    src = pkt.src & (((1 << cfg.srcmask) - 1) << (bits - cfg.srcmask)) if cfg.mode & SIP else 0
    dst = pkt.dst & (((1 << cfg.dstmask) - 1) << (bits - cfg.dstmask)) if cfg.mode & DIP else 0
    sport = dport = 0
    if cfg.mode & (SPT | DPT):
        offset = _PORT_OFFSET.get(pkt.proto)
        if offset == 0:
            sport, dport = _raw_ports(pkt.data, pkt.l4_off)
        elif offset == 4:
            sport, dport = _raw_ports(pkt.data, pkt.l4_off + 4)
    return src, dst, sport if cfg.mode & SPT else 0, dport if cfg.mode & DPT else 0


def _raw_ports(data: bytes, at: int) -> tuple[int, int]:
    if len(data) < at + 4:
        return 0, 0
    return int.from_bytes(data[at:at + 2], "big"), int.from_bytes(data[at + 2:at + 4], "big")


def _init(bucket: Bucket, cfg: Config, hz: int) -> None:
    """rateinfo_init with the table's settings."""
    if cfg.rate_match:
        if cfg.byte_mode:
            bucket.rate = ((U32 // cfg.avg if cfg.avg else U32) - 1) << BYTE_SHIFT
            bucket.burst = cfg.burst * bucket.rate if cfg.burst else bucket.rate
        else:
            bucket.rate = SCALE // cfg.avg if cfg.avg else 0
            bucket.burst = cfg.burst + bucket.rate
    elif cfg.byte_mode:
        bucket.credit = cpj_bytes(hz) * hz
        bucket.cost = user2credits_byte(cfg.avg, hz)
        bucket.credit_cap = cfg.burst
    else:
        bucket.credit = user2credits(cfg.avg * cfg.burst, hz)
        bucket.cost = user2credits(cfg.avg, hz)
        bucket.credit_cap = bucket.credit


def _recalc(bucket: Bucket, now: int, cfg: Config, hz: int) -> None:
    """rateinfo_recalc: refill by the jiffies since the bucket's last packet."""
    delta = now - bucket.prev
    if delta <= 0:
        return
    if cfg.rate_match:
        interval = cfg.interval * hz
        if delta < interval:
            return
        bucket.prev = now
        bucket.prev_window = bucket.current_rate * interval > delta * bucket.rate
        bucket.current_rate = 0
        return
    bucket.prev = now
    if cfg.byte_mode:
        cap = cpj_bytes(hz) * hz
        bucket.credit = min(cap, bucket.credit + cpj_bytes(hz) * delta)
    else:
        bucket.credit = min(bucket.credit_cap, bucket.credit + delta * cpj(hz))


def _collect(table: HashTable, now: int, hz: int) -> None:
    """The periodic garbage collector (htable_gc): drop buckets whose time is up."""
    step = max(1, table.cfg.gc_ms * hz // 1000)
    if table.gc_next < 0:
        table.gc_next = now + step
    while now >= table.gc_next:
        tick = table.gc_next
        for key in [k for k, b in table.buckets.items() if tick >= b.expires]:
            del table.buckets[key]
        table.gc_next += step


def _below_limit(bucket: Bucket, rule: Config, size: int, hz: int) -> bool:
    if rule.rate_match:
        bucket.current_rate += size if rule.byte_mode else 1
        return not bucket.prev_window and bucket.current_rate <= bucket.burst
    if rule.byte_mode:
        cost = min(((size >> BYTE_SHIFT) + 1) * bucket.cost, cpj_bytes(hz) * hz)
        if bucket.credit < cost and bucket.credit_cap:
            bucket.credit_cap -= 1
            bucket.credit = cpj_bytes(hz) * hz
    else:
        cost = bucket.cost
    if bucket.credit >= cost:
        bucket.credit -= cost
        return True
    return False


def build_hashlimit(args: BuildArgs) -> MatchFn:
    name = args.value("--hashlimit-name")
    if not name:
        raise OptionError("hashlimit: option \"--hashlimit-name\" must be specified")
    if len(name) > 255:
        raise OptionError("hashlimit: --hashlimit-name is longer than 255 characters")
    rule = _config(args)
    hz = args.state.hz
    table = _table(args.state, name, rule)
    cfg = table.cfg
    expire = max(1, cfg.expire_ms * hz // 1000)

    def match(ctx: PacketContext) -> bool:
        now = int(ctx.now * hz)
        _collect(table, now, hz)
        key = _key(cfg, ctx)
        bucket = table.buckets.get(key)
        if bucket is None:
            if len(table.buckets) >= cfg.max_entries:
                ctx.hotdrop = f"hashlimit table {name} is full ({cfg.max_entries} entries)"
                return False
            bucket = Bucket(prev=now)
            _init(bucket, cfg, hz)
            table.buckets[key] = bucket
        else:
            _recalc(bucket, now, cfg, hz)
        bucket.expires = now + expire
        return _below_limit(bucket, rule, ctx.pkt.ip_len, hz) != rule.invert

    return match


HASHLIMIT = MatchExt(
    "hashlimit",
    (OptSpec("--hashlimit-upto"), OptSpec("--hashlimit-above"), OptSpec("--hashlimit"))
    + tuple(OptSpec(f"--hashlimit-{n}", invert=False) for n in (
        "burst", "mode", "srcmask", "dstmask", "name", "htable-size", "htable-max",
        "htable-expire", "htable-gcinterval", "rate-interval"))
    + (OptSpec("--hashlimit-rate-match", nargs=0, invert=False),),
    build_hashlimit,
)
