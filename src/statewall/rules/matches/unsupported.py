"""Matches statewall parses and prints but cannot evaluate from a capture.

Each names what is missing. They load (so a ruleset round-trips) and are
refused by the compiler unless unknown rules are allowed, in which case a
packet reaching them gets an undetermined verdict.
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec


def _refuse(args: BuildArgs) -> MatchFn:
    raise OptionError("not evaluated")


def _ext(name: str, why: str, options: tuple[OptSpec, ...],
         families: tuple[int, ...] = (4, 6)) -> MatchExt:
    return MatchExt(name, options, _refuse, families=families, unsupported=why)


def _opts(*names: str, flags: tuple[str, ...] = ()) -> tuple[OptSpec, ...]:
    return tuple(OptSpec(n) for n in names) + tuple(OptSpec(n, nargs=0) for n in flags)


HASHLIMIT = _ext("hashlimit", "per-flow rate buckets are not implemented", _opts(
    "--hashlimit", "--hashlimit-upto", "--hashlimit-above", "--hashlimit-burst",
    "--hashlimit-mode", "--hashlimit-srcmask", "--hashlimit-dstmask", "--hashlimit-name",
    "--hashlimit-htable-size", "--hashlimit-htable-max", "--hashlimit-htable-expire",
    "--hashlimit-htable-gcinterval", "--hashlimit-rate-interval",
    flags=("--hashlimit-rate-match",)))
CONNLIMIT = _ext("connlimit", "needs a count of the conntrack table's entries per address",
                 _opts("--connlimit-upto", "--connlimit-above", "--connlimit-mask",
                       flags=("--connlimit-saddr", "--connlimit-daddr")))
OWNER = _ext("owner", "a capture carries no socket owner", _opts(
    "--uid-owner", "--gid-owner", flags=("--socket-exists", "--suppl-groups")))
SET = _ext("set", "ipset contents are not loaded", (
    OptSpec("--match-set", nargs=2), OptSpec("--return-nomatch", nargs=0),
    OptSpec("--update-counters", nargs=0), OptSpec("--update-subcounters", nargs=0),
    OptSpec("--packets-eq"), OptSpec("--packets-lt"), OptSpec("--packets-gt"),
    OptSpec("--bytes-eq"), OptSpec("--bytes-lt"), OptSpec("--bytes-gt")))
RPFILTER = _ext("rpfilter", "needs the routing table", _opts(
    flags=("--loose", "--validmark", "--accept-local", "--invert")))
PHYSDEV = _ext("physdev", "needs bridge port topology", _opts(
    "--physdev-in", "--physdev-out",
    flags=("--physdev-is-in", "--physdev-is-out", "--physdev-is-bridged")))
RT = _ext("rt", "IPv6 routing headers are not decoded", _opts(
    "--rt-type", "--rt-segsleft", "--rt-len", "--rt-0-addrs",
    flags=("--rt-0-res", "--rt-0-not-strict")), families=(6,))
