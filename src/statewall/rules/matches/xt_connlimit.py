"""connlimit match (xt_connlimit.c over nf_conncount.c).

The kernel does not scan the conntrack table: each rule keeps, per group
(the packet's source or destination address under `--connlimit-mask`), a
list of the connections whose packets it has seen. Evaluating a packet walks
that list, dropping connections that are gone from the table (expired,
removed, or never confirmed because their first packet was dropped) or
closed (TCP TIME_WAIT or CLOSE), adds the packet's own connection if it is
not listed yet, and compares the count with the limit. statewall keeps the
same lists of entries. A packet without an entry counts for itself only.

`--connlimit-upto N` matches while the count is at most N, `--connlimit-above N`
when it exceeds N; `!` swaps them (the kernel's single invert flag).
"""

from __future__ import annotations

from statewall.conntrack.conn import IPS_CONFIRMED, IPS_DYING, Conn
from statewall.rules.context import PacketContext
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec, parse_int

# enum tcp_conntrack: the states nf_conncount treats as already closed.
TCP_TIME_WAIT, TCP_CLOSE = 7, 8


def _gone(conn: Conn, current: Conn | None, now: float) -> bool:
    if conn is current:
        return False
    if conn.status & IPS_DYING or not conn.status & IPS_CONFIRMED or conn.expires <= now:
        return True
    return conn.proto == 6 and conn.proto_state in (TCP_TIME_WAIT, TCP_CLOSE)


def count(groups: dict[int, list[Conn]], key: int, conn: Conn | None, now: float) -> int:
    """The group's live connections, the packet's own included (nf_conncount_count)."""
    listed = groups.get(key)
    if listed is None:
        listed = groups[key] = []
    alive = [c for c in listed if not _gone(c, conn, now)]
    if conn is None:
        groups[key] = alive
        return len(alive) + 1
    if not any(c is conn or c.orig_key == conn.orig_key for c in alive):
        alive.append(conn)
    groups[key] = alive
    return len(alive)


def build_connlimit(args: BuildArgs) -> MatchFn:
    upto, above = args.get("--connlimit-upto"), args.get("--connlimit-above")
    if (upto is None) == (above is None):
        raise OptionError("You must specify exactly one of --connlimit-upto or "
                          "--connlimit-above")
    chosen = upto or above
    assert chosen is not None
    limit = parse_int(chosen.values[0], 0, 0xFFFFFFFF, "connlimit")
    invert = chosen.negated if chosen is above else not chosen.negated
    if args.has("--connlimit-saddr") and args.has("--connlimit-daddr"):
        raise OptionError("--connlimit-saddr and --connlimit-daddr are mutually exclusive")
    by_dst = args.has("--connlimit-daddr")
    bits = 32 if args.family == 4 else 128
    length = parse_int(args.value("--connlimit-mask", str(bits)) or "", 0, bits,
                       "--connlimit-mask")
    mask = ((1 << length) - 1) << (bits - length)
    groups: dict[int, list[Conn]] = {}

    def match(ctx: PacketContext) -> bool:
        pkt = ctx.pkt
        key = (pkt.dst if by_dst else pkt.src) & mask
        return (count(groups, key, ctx.conn, ctx.now) > limit) != invert

    return match


CONNLIMIT = MatchExt(
    "connlimit",
    (OptSpec("--connlimit-upto"), OptSpec("--connlimit-above"),
     OptSpec("--connlimit-mask", invert=False),
     OptSpec("--connlimit-saddr", nargs=0, invert=False),
     OptSpec("--connlimit-daddr", nargs=0, invert=False)),
    build_connlimit,
)
