"""Header-rewriting targets of the mangle table: TCPMSS (xt_TCPMSS.c), CHECKSUM
(xt_CHECKSUM.c), DSCP and TOS (xt_DSCP.c), TTL and HL (xt_HL.c), CLASSIFY
(xt_CLASSIFY.c). Options are checked as the kernel's checkentry does; the
rewrite is reported as an effect, since the verdict does not depend on it.
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, OptSpec, TargetExt, TargetFn, parse_int
from statewall.rules.matches.xt_dscp import DSCP_CLASSES, parse_tos
from statewall.rules.targets._effect import effect_target

_MANGLE = ("mangle",)


def build_tcpmss(args: BuildArgs) -> TargetFn:
    if args.has("--set-mss") == args.has("--clamp-mss-to-pmtu"):
        raise OptionError("TCPMSS target: exactly one of --set-mss or --clamp-mss-to-pmtu")
    if args.rule.proto != 6 or args.rule.proto_neg:
        raise OptionError("TCPMSS target: only valid for -p tcp")
    if args.has("--set-mss"):
        mss = parse_int(args.value("--set-mss") or "", 0, 65535, "MSS")
        return effect_target("tcpmss", mss)
    return effect_target("tcpmss", "clamp-to-pmtu")


def build_checksum(args: BuildArgs) -> TargetFn:
    if not args.has("--checksum-fill"):
        raise OptionError("CHECKSUM target: --checksum-fill is required")
    return effect_target("checksum-fill", True)


def build_dscp(args: BuildArgs) -> TargetFn:
    value, klass = args.value("--set-dscp"), args.value("--set-dscp-class")
    if (value is None) == (klass is None):
        raise OptionError("DSCP target: exactly one of --set-dscp or --set-dscp-class")
    if value is not None:
        return effect_target("dscp", parse_int(value, 0, 63, "DSCP"))
    code = DSCP_CLASSES.get((klass or "").upper())
    if code is None:
        raise OptionError(f"Invalid DSCP class `{klass}'")
    return effect_target("dscp", code)


def build_tos(args: BuildArgs) -> TargetFn:
    if len(args.options) != 1:
        raise OptionError("TOS target: exactly one option is required")
    option = args.options[0]
    if option.name == "--set-tos":
        value, mask = parse_tos(option.values[0])
        return effect_target("tos", (value, mask))
    bits = parse_int(option.values[0], 0, 255, "TOS")
    return effect_target("tos", (option.name[2:], bits))


def _hl(args: BuildArgs, prefix: str) -> TargetFn:
    if len(args.options) != 1:
        raise OptionError(f"{prefix.upper()} target: exactly one option is required")
    option = args.options[0]
    low = 1 if option.name.endswith(("-dec", "-inc")) else 0
    value = parse_int(option.values[0], low, 255, prefix.upper())
    return effect_target(prefix, (option.name[len(prefix) + 3:], value))


def build_ttl(args: BuildArgs) -> TargetFn:
    return _hl(args, "ttl")


def build_hl(args: BuildArgs) -> TargetFn:
    return _hl(args, "hl")


def build_classify(args: BuildArgs) -> TargetFn:
    text = args.value("--set-class") or ""
    major, colon, minor = text.partition(":")
    try:
        value = (int(major, 16) << 16 | int(minor, 16)) if colon else -1
    except ValueError:
        value = -1
    if value < 0:
        raise OptionError(f"Bad class value \"{text}\"")
    return effect_target("classify", text)


def _opts(*names: str) -> tuple[OptSpec, ...]:
    return tuple(OptSpec(n, invert=False) for n in names)


TCPMSS = TargetExt("TCPMSS", _opts("--set-mss") + (
    OptSpec("--clamp-mss-to-pmtu", nargs=0, invert=False),), build_tcpmss)
CHECKSUM = TargetExt("CHECKSUM", (OptSpec("--checksum-fill", nargs=0, invert=False),),
                     build_checksum, tables=_MANGLE)
DSCP = TargetExt("DSCP", _opts("--set-dscp", "--set-dscp-class"), build_dscp, tables=_MANGLE)
TOS = TargetExt("TOS", _opts("--set-tos", "--and-tos", "--or-tos", "--xor-tos"), build_tos,
                tables=_MANGLE)
TTL = TargetExt("TTL", _opts("--ttl-set", "--ttl-dec", "--ttl-inc"), build_ttl,
                families=(4,), tables=_MANGLE)
HL = TargetExt("HL", _opts("--hl-set", "--hl-dec", "--hl-inc"), build_hl,
               families=(6,), tables=_MANGLE)
CLASSIFY = TargetExt("CLASSIFY", _opts("--set-class"), build_classify,
                     hooks=("FORWARD", "OUTPUT", "POSTROUTING"))
