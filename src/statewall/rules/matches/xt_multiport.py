"""multiport match (xt_multiport.c: multiport_mt, revision 1).

Up to 15 ports, a range counting as two; `!` inverts the whole list.
`--ports` matches when either the source or the destination port is listed.
"""

from __future__ import annotations

from statewall.rules.addr import parse_port_range
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec

PROTOS = (6, 17, 33, 132, 136)


def check_multiport(args: BuildArgs) -> None:
    if len(args.options) != 1:
        raise OptionError("multiport: exactly one of --sports, --dports or --ports is required")
    option = args.options[0]
    ranges = tuple(parse_port_range(part) for part in option.values[0].split(","))
    if sum(1 if lo == hi else 2 for lo, hi in ranges) > 15:
        raise OptionError("too many ports specified")
    if args.rule.proto not in PROTOS or args.rule.proto_neg:
        raise OptionError("multiport needs `-p tcp', `-p udp', `-p udplite', "
                          "`-p sctp' or `-p dccp'")


MULTIPORT = MatchExt(
    "multiport",
    (OptSpec("--sports", aliases=("--source-ports",)),
     OptSpec("--dports", aliases=("--destination-ports",)),
     OptSpec("--ports")),
    check_multiport,
)
