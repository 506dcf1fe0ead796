"""set match (xt_set.c, revision 4: set_match_v4) against sets loaded with `--ipset`.

`--match-set NAME src,dst,...` builds an element from the packet, one flag
per dimension; fewer flags than the set type has dimensions never match
(ip_set_test's dimension check), nor does a set of the other family. An
element found updates its counters first (unless `! --update-counters`) and
then the counter conditions (`--packets-gt` ...) are tested, as
ip_set_match_extensions does. `--return-nomatch` swaps the answers of net
types: a `nomatch` element then matches and a plain one does not.
"""

from __future__ import annotations

from statewall.rules.errors import NotEvaluated, OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec, parse_int
from statewall.rules.ipset import IpSet

_OPS = ("eq", "lt", "gt")


def parse_flags(text: str) -> tuple[bool, ...]:
    """`src,dst,...` as (True for src, ...); at most six dimensions (IPSET_DIM_MAX)."""
    words = text.split(",")
    if len(words) > 6 or any(w not in ("src", "dst") for w in words):
        raise OptionError(f"You must specify (the comma separated list of) 'src' or 'dst', "
                          f"not `{text}'")
    return tuple(w == "src" for w in words)


def find_set(args: BuildArgs, name: str) -> IpSet:
    if len(name) > 31:
        raise OptionError(f"setname `{name}' too long, max 31 characters")
    ipset = args.state.sets.get(name)
    if not isinstance(ipset, IpSet):
        raise NotEvaluated(f"set {name} is not loaded (give its `ipset save` with --ipset)")
    return ipset


def _counter_test(args: BuildArgs, what: str) -> tuple[str, int, bool] | None:
    for op in _OPS:
        option = args.get(f"--{what}-{op}")
        if option is not None:
            value = parse_int(option.values[0], 0, (1 << 64) - 1, f"--{what}-{op}")
            return op, value, option.negated
    return None


def check_set(args: BuildArgs) -> None:
    option = args.get("--match-set")
    if option is None:
        raise OptionError("You must specify --match-set with set name and flags")
    find_set(args, option.values[0])
    parse_flags(option.values[1])
    _counter_test(args, "packets")
    _counter_test(args, "bytes")
    if (args.negated("--packets-lt") or args.negated("--packets-gt")
            or args.negated("--bytes-lt") or args.negated("--bytes-gt")):
        raise OptionError("only --packets-eq and --bytes-eq can be negated")


SET = MatchExt(
    "set",
    (OptSpec("--match-set", nargs=2), OptSpec("--return-nomatch", nargs=0, invert=False),
     OptSpec("--update-counters", nargs=0), OptSpec("--update-subcounters", nargs=0))
    + tuple(OptSpec(f"--{what}-{op}", invert=op == "eq")
            for what in ("packets", "bytes") for op in _OPS),
    check_set,
)
