"""recent match (xt_recent.c: recent_mt, recent_mt_check, revision 1).

How it works, as in the kernel:
- Tables are shared by name across rules (and families); the first rule
  that names a table fixes its `--mask`. Each entry keeps a ring of hit
  times in jiffies; the ring size is the next power of two of the largest
  `--hitcount` among the rules using the table (32 when none is larger),
  the module parameter ip_pkt_list_tot being 0 by default.
- `--set` adds the address (or a new time stamp) and matches; `--remove`
  deletes it and matches if it was there; `--rcheck`/`--update` match when
  `--hitcount` stamps (at least one when none is given) fall within the last
  `--seconds`; `--update` then records a new stamp, only when it matched.
- `--reap` (with `--seconds`) evicts the least recently used entry of the
  table if its newest stamp is older than the window.
- A full table (ip_list_tot = 100 entries) drops its least recently used
  entry for a new one. `--rttl` also requires the same TTL; a forwarded
  packet's TTL is counted as it was before forwarding (+1).
"""

from __future__ import annotations

from statewall.rules.addr import parse_ip
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec, RecentTable, RuleState, parse_int

MAX_NSTAMPS = 65536  # 6.x kernels (checked live: 348 loads, 70000 is refused)
COMMANDS = ("--set", "--rcheck", "--update", "--remove")


def _stamp_mask(hitcount: int, pkt_count: int) -> int:
    if pkt_count and hitcount < pkt_count:
        size = pkt_count
    elif hitcount:
        size = hitcount
    else:
        return 31
    return (1 << (size - 1).bit_length()) - 1


def _table(state: RuleState, name: str, mask: int, stamp_mask: int) -> None:
    """The first rule naming a table sets its mask; the largest ring size among
    the rules using it wins."""
    table = state.recent.get(name)
    if table is None:
        state.recent[name] = RecentTable(name, mask, stamp_mask)
    elif stamp_mask > table.stamp_mask:
        table.stamp_mask = stamp_mask


def _check_options(args: BuildArgs) -> tuple[str, bool]:
    commands = [o for o in args.options if o.name in COMMANDS]
    if len(commands) != 1:
        raise OptionError("recent: you must specify one of `--set', `--rcheck' "
                          "`--update' or `--remove'")
    command = commands[0]
    modifiers = ("--seconds", "--hitcount", "--reap", "--rttl")
    if command.name in ("--set", "--remove") and any(args.has(m) for m in modifiers):
        raise OptionError(f"recent: {command.name} cannot be combined with "
                          "--seconds, --hitcount, --reap or --rttl")
    if args.has("--reap") and not args.has("--seconds"):
        raise OptionError("recent: --reap requires --seconds")
    if args.has("--rsource") and args.has("--rdest"):
        raise OptionError("recent: --rsource and --rdest are exclusive")
    return command.name, command.negated


def check_recent(args: BuildArgs) -> None:
    _check_options(args)
    name = args.value("--name", "DEFAULT") or "DEFAULT"
    if not name or len(name) > 199:
        raise OptionError(f"recent: bad table name `{name}'")
    parse_int(args.value("--seconds", "0") or "0", 0, 0xFFFFFFFF, "seconds")
    hitcount = parse_int(args.value("--hitcount", "0") or "0", 0, MAX_NSTAMPS - 1, "hitcount")
    bits = 32 if args.family == 4 else 128
    mask_text = args.value("--mask")
    mask = parse_ip(mask_text, args.family) if mask_text else (1 << bits) - 1
    state = args.state
    _table(state, name, mask, _stamp_mask(hitcount, state.recent_pkt_count))


RECENT = MatchExt(
    "recent",
    (OptSpec("--name", invert=False), OptSpec("--set", nargs=0),
     OptSpec("--rcheck", nargs=0), OptSpec("--update", nargs=0),
     OptSpec("--remove", nargs=0), OptSpec("--rsource", nargs=0, invert=False),
     OptSpec("--rdest", nargs=0, invert=False), OptSpec("--mask", invert=False),
     OptSpec("--seconds", invert=False), OptSpec("--reap", nargs=0, invert=False),
     OptSpec("--hitcount", invert=False), OptSpec("--rttl", nargs=0, invert=False)),
    check_recent,
)
