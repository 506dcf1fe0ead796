"""rpfilter match (ipt_rpfilter.c / ip6t_rpfilter.c): reverse-path check.

The kernel looks the packet's source up in the routing table as if replying
and passes the packet when that route is a unicast route through the
interface the packet came in on (`--loose`: through any interface). The
core evaluates it against statewall's routes, the topology: each
`--iface NAME=CIDR` is a route through NAME (longest prefix wins;
`0.0.0.0/0` or `::/0` is a default route), `--local` addresses are local
routes, which pass only with `--accept-local`. Without any `--iface` the
routes are a default route through every interface, so every source that
is not local passes: the check output says so in a note.
(core/src/rules/matches/rpfilter.rs has the details.)
"""

from __future__ import annotations

from statewall.rules.ext import BuildArgs, MatchExt, OptSpec

NO_ROUTES = ("rpfilter: no --iface routes given, so every address is taken as reachable "
             "through every interface: only local sources can fail the check")


def check_rpfilter(args: BuildArgs) -> None:
    """Every option combination is valid; the table and hook are checked by the compiler."""


def note_rpfilter(args: BuildArgs) -> str | None:
    return None if args.state.iface_nets else NO_ROUTES


RPFILTER = MatchExt(
    "rpfilter",
    tuple(OptSpec(f"--{n}", nargs=0, invert=False)
          for n in ("loose", "validmark", "accept-local", "invert")),
    check_rpfilter,
    hooks=("PREROUTING",),
    tables=("raw", "mangle"),
    note=note_rpfilter,
)
