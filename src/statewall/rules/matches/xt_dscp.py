"""dscp and tos matches (xt_dscp.c: dscp_mt, tos_mt), on the IPv4 TOS / IPv6 traffic class."""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec, parse_int

DSCP_CLASSES = {"CS0": 0, "CS1": 8, "CS2": 16, "CS3": 24, "CS4": 32, "CS5": 40, "CS6": 48,
                "CS7": 56, "BE": 0, "EF": 46, "AF11": 10, "AF12": 12, "AF13": 14,
                "AF21": 18, "AF22": 20, "AF23": 22, "AF31": 26, "AF32": 28, "AF33": 30,
                "AF41": 34, "AF42": 36, "AF43": 38}
TOS_NAMES = {"minimize-delay": 0x10, "maximize-throughput": 0x08,
             "maximize-reliability": 0x04, "minimize-cost": 0x02, "normal-service": 0x00}


def parse_dscp(args: BuildArgs) -> tuple[int, bool]:
    value = args.get("--dscp")
    klass = args.get("--dscp-class")
    if (value is None) == (klass is None):
        raise OptionError("dscp: exactly one of --dscp or --dscp-class is required")
    if value is not None:
        return parse_int(value.values[0], 0, 63, "DSCP value"), value.negated
    assert klass is not None
    code = DSCP_CLASSES.get(klass.values[0].upper())
    if code is None:
        raise OptionError(f"Invalid DSCP class `{klass.values[0]}'")
    return code, klass.negated


def parse_tos(text: str) -> tuple[int, int]:
    """`VALUE[/MASK]` or a symbolic name (which compares the low six bits)."""
    if text.lower() in TOS_NAMES:
        return TOS_NAMES[text.lower()], 0x3F
    value_text, _, mask_text = text.partition("/")
    value = parse_int(value_text, 0, 255, "TOS value")
    return value, parse_int(mask_text, 0, 255, "TOS mask") if mask_text else 0xFF


def check_tos(args: BuildArgs) -> None:
    option = args.get("--tos")
    if option is None:
        raise OptionError("tos: --tos is required")
    parse_tos(option.values[0])


DSCP = MatchExt("dscp", (OptSpec("--dscp"), OptSpec("--dscp-class")), parse_dscp)
TOS = MatchExt("tos", (OptSpec("--tos"),), check_tos)
