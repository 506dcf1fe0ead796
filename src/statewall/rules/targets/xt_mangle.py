"""Header-rewriting targets of the mangle table: TCPMSS (xt_TCPMSS.c), CHECKSUM
(xt_CHECKSUM.c), DSCP and TOS (xt_DSCP.c), TTL and HL (xt_HL.c), CLASSIFY
(xt_CLASSIFY.c). Options are checked as the kernel's checkentry does; the
rewrite is reported as an effect, since the verdict does not depend on it.
Each check returns that effect: (kind, value).
"""

from __future__ import annotations

from typing import Any

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, OptSpec, TargetExt, parse_int
from statewall.rules.matches.xt_dscp import DSCP_CLASSES, parse_tos

Effect = tuple[str, Any]

_MANGLE = ("mangle",)


def tcpmss_effect(args: BuildArgs) -> Effect:
    if args.has("--set-mss") == args.has("--clamp-mss-to-pmtu"):
        raise OptionError("TCPMSS target: exactly one of --set-mss or --clamp-mss-to-pmtu")
    if args.rule.proto != 6 or args.rule.proto_neg:
        raise OptionError("TCPMSS target: only valid for -p tcp")
    if args.has("--set-mss"):
        mss = parse_int(args.value("--set-mss") or "", 0, 65535, "MSS")
        return ("tcpmss", mss)
    return ("tcpmss", "clamp-to-pmtu")


def checksum_effect(args: BuildArgs) -> Effect:
    if not args.has("--checksum-fill"):
        raise OptionError("CHECKSUM target: --checksum-fill is required")
    return ("checksum-fill", True)


def dscp_effect(args: BuildArgs) -> Effect:
    value, klass = args.value("--set-dscp"), args.value("--set-dscp-class")
    if (value is None) == (klass is None):
        raise OptionError("DSCP target: exactly one of --set-dscp or --set-dscp-class")
    if value is not None:
        return ("dscp", parse_int(value, 0, 63, "DSCP"))
    code = DSCP_CLASSES.get((klass or "").upper())
    if code is None:
        raise OptionError(f"Invalid DSCP class `{klass}'")
    return ("dscp", code)


def tos_effect(args: BuildArgs) -> Effect:
    if len(args.options) != 1:
        raise OptionError("TOS target: exactly one option is required")
    option = args.options[0]
    if option.name == "--set-tos":
        value, mask = parse_tos(option.values[0])
        return ("tos", (value, mask))
    bits = parse_int(option.values[0], 0, 255, "TOS")
    return ("tos", (option.name[2:], bits))


def _hl(args: BuildArgs, prefix: str) -> Effect:
    if len(args.options) != 1:
        raise OptionError(f"{prefix.upper()} target: exactly one option is required")
    option = args.options[0]
    low = 1 if option.name.endswith(("-dec", "-inc")) else 0
    value = parse_int(option.values[0], low, 255, prefix.upper())
    return (prefix, (option.name[len(prefix) + 3:], value))


def ttl_effect(args: BuildArgs) -> Effect:
    return _hl(args, "ttl")


def hl_effect(args: BuildArgs) -> Effect:
    return _hl(args, "hl")


def classify_effect(args: BuildArgs) -> Effect:
    text = args.value("--set-class") or ""
    major, colon, minor = text.partition(":")
    try:
        value = (int(major, 16) << 16 | int(minor, 16)) if colon else -1
    except ValueError:
        value = -1
    if value < 0:
        raise OptionError(f"Bad class value \"{text}\"")
    return ("classify", text)


def _opts(*names: str) -> tuple[OptSpec, ...]:
    return tuple(OptSpec(n, invert=False) for n in names)


TCPMSS = TargetExt("TCPMSS", _opts("--set-mss") + (
    OptSpec("--clamp-mss-to-pmtu", nargs=0, invert=False),), tcpmss_effect)
CHECKSUM = TargetExt("CHECKSUM", (OptSpec("--checksum-fill", nargs=0, invert=False),),
                     checksum_effect, tables=_MANGLE)
DSCP = TargetExt("DSCP", _opts("--set-dscp", "--set-dscp-class"), dscp_effect, tables=_MANGLE)
TOS = TargetExt("TOS", _opts("--set-tos", "--and-tos", "--or-tos", "--xor-tos"), tos_effect,
                tables=_MANGLE)
TTL = TargetExt("TTL", _opts("--ttl-set", "--ttl-dec", "--ttl-inc"), ttl_effect,
                families=(4,), tables=_MANGLE)
HL = TargetExt("HL", _opts("--hl-set", "--hl-dec", "--hl-inc"), hl_effect,
               families=(6,), tables=_MANGLE)
CLASSIFY = TargetExt("CLASSIFY", _opts("--set-class"), classify_effect,
                     hooks=("FORWARD", "OUTPUT", "POSTROUTING"))
