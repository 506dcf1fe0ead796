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

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec, parse_int


def check_connlimit(args: BuildArgs) -> None:
    upto, above = args.get("--connlimit-upto"), args.get("--connlimit-above")
    if (upto is None) == (above is None):
        raise OptionError("You must specify exactly one of --connlimit-upto or "
                          "--connlimit-above")
    chosen = upto or above
    assert chosen is not None
    parse_int(chosen.values[0], 0, 0xFFFFFFFF, "connlimit")
    if args.has("--connlimit-saddr") and args.has("--connlimit-daddr"):
        raise OptionError("--connlimit-saddr and --connlimit-daddr are mutually exclusive")
    bits = 32 if args.family == 4 else 128
    parse_int(args.value("--connlimit-mask", str(bits)) or "", 0, bits, "--connlimit-mask")


CONNLIMIT = MatchExt(
    "connlimit",
    (OptSpec("--connlimit-upto"), OptSpec("--connlimit-above"),
     OptSpec("--connlimit-mask", invert=False),
     OptSpec("--connlimit-saddr", nargs=0, invert=False),
     OptSpec("--connlimit-daddr", nargs=0, invert=False)),
    check_connlimit,
)
