"""MARK and CONNMARK targets (xt_mark.c: mark_tg; xt_connmark.c: connmark_tg, revision 1).

Every spelling reduces to the kernel's form: new = (old & ~mask) ^ xor
(MARK --set-xmark). CONNMARK --save-mark / --restore-mark copy between the
packet and the entry through --nfmask / --ctmask (--mask sets both).
"""

from __future__ import annotations

from statewall.conntrack.conn import Conn
from statewall.conntrack.events import IPCT_MARK
from statewall.rules.context import CONTINUE, PacketContext
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, OptSpec, TargetExt, TargetFn, parse_int, parse_value_mask

FULL = 0xFFFFFFFF


def xmark(args: BuildArgs) -> tuple[int, int] | None:
    """(mask, xor) of the set/and/or/xor option given, or None when none is."""
    for option in args.options:
        value_text = option.values[0] if option.values else ""
        if option.name == "--set-xmark":
            value, mask = parse_value_mask(value_text, "mark")
            return mask, value
        if option.name == "--set-mark":
            value, mask = parse_value_mask(value_text, "mark")
            return mask | value, value
        if option.name in ("--and-mark", "--or-mark", "--xor-mark"):
            bits = parse_int(value_text, 0, FULL, "mark")
            return {"--and-mark": (~bits & FULL, 0), "--or-mark": (bits, bits),
                    "--xor-mark": (0, bits)}[option.name]
    return None


def build_mark(args: BuildArgs) -> TargetFn:
    change = xmark(args)
    if change is None or len(args.options) != 1:
        raise OptionError("MARK target: exactly one of --set-xmark, --set-mark, --and-mark, "
                          "--or-mark or --xor-mark is required")
    mask, xor = change

    def target(ctx: PacketContext) -> int:
        ctx.mark = (ctx.mark & ~mask & FULL) ^ xor
        return CONTINUE

    return target


def _masks(args: BuildArgs) -> tuple[int, int]:
    both = args.value("--mask")
    nfmask = args.value("--nfmask", both) or str(FULL)
    ctmask = args.value("--ctmask", both) or str(FULL)
    return parse_int(nfmask, 0, FULL, "nfmask"), parse_int(ctmask, 0, FULL, "ctmask")


def _set_conn_mark(conn: Conn, mark: int) -> None:
    """A changed connection mark is an event (IPCT_MARK), as in the kernel's connmark_tg."""
    if conn.mark != mark:
        conn.mark = mark
        conn.events |= IPCT_MARK


def build_connmark(args: BuildArgs) -> TargetFn:
    nfmask, ctmask = _masks(args)
    if args.has("--save-mark") or args.has("--restore-mark"):
        save = args.has("--save-mark")

        def copy(ctx: PacketContext) -> int:
            conn = ctx.conn
            if conn is not None:
                if save:
                    _set_conn_mark(conn, (conn.mark & ~ctmask & FULL) ^ (ctx.mark & nfmask))
                else:
                    ctx.mark = (ctx.mark & ~nfmask & FULL) ^ (conn.mark & ctmask)
                ctx.effect("connmark", conn.mark)
            return CONTINUE

        return copy
    change = xmark(args)
    if change is None:
        raise OptionError("CONNMARK target: no operation specified")
    mask, xor = change

    def set_mark(ctx: PacketContext) -> int:
        conn = ctx.conn
        if conn is not None:
            _set_conn_mark(conn, (conn.mark & ~mask & FULL) ^ xor)
            ctx.effect("connmark", conn.mark)
        return CONTINUE

    return set_mark


_MARK_OPTS = tuple(OptSpec(n, invert=False) for n in (
    "--set-xmark", "--set-mark", "--and-mark", "--or-mark", "--xor-mark"))
MARK_TARGET = TargetExt("MARK", _MARK_OPTS, build_mark)
CONNMARK_TARGET = TargetExt(
    "CONNMARK",
    _MARK_OPTS + (OptSpec("--save-mark", nargs=0, invert=False),
                  OptSpec("--restore-mark", nargs=0, invert=False),
                  OptSpec("--nfmask", invert=False), OptSpec("--ctmask", invert=False),
                  OptSpec("--mask", invert=False)),
    build_connmark,
)
