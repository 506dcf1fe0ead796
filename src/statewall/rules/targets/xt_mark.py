"""MARK and CONNMARK targets (xt_mark.c: mark_tg; xt_connmark.c: connmark_tg, revision 1).

Every spelling reduces to the kernel's form: new = (old & ~mask) ^ xor
(MARK --set-xmark). CONNMARK --save-mark / --restore-mark copy between the
packet and the entry through --nfmask / --ctmask (--mask sets both).
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, OptSpec, TargetExt, parse_int, parse_value_mask

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


def check_mark(args: BuildArgs) -> None:
    if xmark(args) is None or len(args.options) != 1:
        raise OptionError("MARK target: exactly one of --set-xmark, --set-mark, --and-mark, "
                          "--or-mark or --xor-mark is required")


def _masks(args: BuildArgs) -> tuple[int, int]:
    both = args.value("--mask")
    nfmask = args.value("--nfmask", both) or str(FULL)
    ctmask = args.value("--ctmask", both) or str(FULL)
    return parse_int(nfmask, 0, FULL, "nfmask"), parse_int(ctmask, 0, FULL, "ctmask")


def check_connmark(args: BuildArgs) -> None:
    _masks(args)
    if not (args.has("--save-mark") or args.has("--restore-mark")) and xmark(args) is None:
        raise OptionError("CONNMARK target: no operation specified")


_MARK_OPTS = tuple(OptSpec(n, invert=False) for n in (
    "--set-xmark", "--set-mark", "--and-mark", "--or-mark", "--xor-mark"))
MARK_TARGET = TargetExt("MARK", _MARK_OPTS, check_mark)
CONNMARK_TARGET = TargetExt(
    "CONNMARK",
    _MARK_OPTS + (OptSpec("--save-mark", nargs=0, invert=False),
                  OptSpec("--restore-mark", nargs=0, invert=False),
                  OptSpec("--nfmask", invert=False), OptSpec("--ctmask", invert=False),
                  OptSpec("--mask", invert=False)),
    check_connmark,
)
