"""addrtype match (xt_addrtype.c, revision 1) over the topology statewall is given.

The kernel asks the routing table (the `local` table) what an address is.
statewall knows the host's own networks (`--local`) and the networks behind
each interface (`--iface`): an address is LOCAL when it is one of the host's
(or loopback), BROADCAST when it is 0.0.0.0, 255.255.255.255 or the
broadcast address of an interface network, MULTICAST in 224/4 or ff00::/8,
else UNICAST. BLACKHOLE, UNREACHABLE, PROHIBIT, THROW, NAT and XRESOLVE
routes do not exist in that model and never match.
"""

from __future__ import annotations

from statewall.rules.ext import BuildArgs, MatchExt, OptSpec
from statewall.rules.matches._util import parse_flag_list

TYPES = {"UNSPEC": 1, "UNICAST": 2, "LOCAL": 4, "BROADCAST": 8, "ANYCAST": 16,
         "MULTICAST": 32, "BLACKHOLE": 64, "UNREACHABLE": 128, "PROHIBIT": 256,
         "THROW": 512, "NAT": 1024, "XRESOLVE": 2048}


def check_addrtype(args: BuildArgs) -> None:
    for name in ("--src-type", "--dst-type"):
        option = args.get(name)
        if option is not None:
            parse_flag_list(option.values[0], TYPES, "address type")


ADDRTYPE = MatchExt(
    "addrtype",
    (OptSpec("--src-type"), OptSpec("--dst-type"),
     OptSpec("--limit-iface-in", nargs=0, invert=False),
     OptSpec("--limit-iface-out", nargs=0, invert=False)),
    check_addrtype,
)
