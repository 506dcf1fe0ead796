"""How a match or target extension describes itself to the parser and the load-time checks.

Mirrors libxtables' `struct xtables_match` / `xtables_target` (the option
table the parser needs to split a rule line) joined with the kernel's
`struct xt_match` / `xt_target` (checkentry: families, tables, hooks,
required protocol). `check` is the checkentry: it validates every option
once, at load time, raising OptionError (the kernel refuses the rule) or
NotEvaluated (statewall cannot evaluate it), and registers the tables rules
share by name (xt_recent lists, hashlimit tables) in the `RuleState`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from statewall.rules.errors import OptionError
from statewall.rules.model import Option, Rule

# An extension's checkentry; what it returns (the options it parsed, if any) is not used.
Check = Callable[["BuildArgs"], object]
# A remark on how a rule will be evaluated with what statewall was given
# (the routes rpfilter uses, say), or None.
Note = Callable[["BuildArgs"], "str | None"]

HOOKS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")


@dataclass(slots=True)
class RecentTable:
    """An xt_recent list as the rules configure it: the `--mask` of the first rule
    naming it, and the ring size - 1 of each entry's time stamps (nstamps_max_mask)."""

    name: str
    mask: int
    stamp_mask: int


@dataclass(slots=True)
class RuleState:
    """What the rules of one loaded ruleset share: the settings of the kernel
    module parameters, the host's topology, the ipsets and the named tables."""

    seed: int = 0  # of the statistic match's random generator
    recent_size: int = 100  # xt_recent module parameter ip_list_tot
    recent_pkt_count: int = 0  # xt_recent module parameter ip_pkt_list_tot
    hz: int = 250  # the kernel's tick rate: limit and recent count in jiffies
    recent: dict[str, RecentTable] = field(default_factory=dict)
    sets: dict[str, Any] = field(default_factory=dict)
    # Topology for addrtype, rpfilter and the like: (family, address, mask) of
    # the host's own networks (`--local`) and of the networks behind each
    # interface (`--iface NAME=CIDR`).
    local_nets: tuple[tuple[int, int, int], ...] = ()
    iface_nets: dict[str, tuple[tuple[int, int, int], ...]] = field(default_factory=dict)
    # xt_hashlimit settings by --hashlimit-name (the first rule naming a table sets them).
    hashlimit: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OptSpec:
    """One command-line option: canonical name, argument count, spellings."""

    name: str
    nargs: int = 1
    aliases: tuple[str, ...] = ()
    invert: bool = True


@dataclass(frozen=True, slots=True)
class BuildArgs:
    """What a check (and the lowering) may look at: the rule's options and where it sits."""

    options: tuple[Option, ...]
    family: int
    table: str
    rule: Rule
    state: RuleState
    hooks: frozenset[str] = frozenset()  # the hooks from which the rule's chain is reached

    def get(self, name: str) -> Option | None:
        for option in self.options:
            if option.name == name:
                return option
        return None

    def has(self, name: str) -> bool:
        return self.get(name) is not None

    def value(self, name: str, default: str | None = None) -> str | None:
        option = self.get(name)
        return option.values[0] if option is not None and option.values else default

    def negated(self, name: str) -> bool:
        option = self.get(name)
        return option is not None and option.negated


@dataclass(frozen=True, slots=True)
class MatchExt:
    name: str
    options: tuple[OptSpec, ...]
    check: Check
    families: tuple[int, ...] = (4, 6)
    hooks: tuple[str, ...] = HOOKS
    tables: tuple[str, ...] | None = None
    proto: int | None = None  # the `-p` this match requires (tcp needs -p tcp)
    # Why statewall cannot evaluate this match (then it is refused unless
    # unknown rules are allowed); None when it is implemented.
    unsupported: str | None = None
    note: Note | None = None


@dataclass(frozen=True, slots=True)
class TargetExt:
    name: str
    options: tuple[OptSpec, ...]
    check: Check
    families: tuple[int, ...] = (4, 6)
    hooks: tuple[str, ...] = HOOKS
    tables: tuple[str, ...] | None = None
    terminal: bool = False
    unsupported: str | None = None


def find_option(specs: tuple[OptSpec, ...], spelled: str) -> OptSpec | None:
    for spec in specs:
        if spelled == spec.name or spelled in spec.aliases:
            return spec
    return None


def parse_int(text: str, low: int, high: int, what: str) -> int:
    """An integer in C notation (decimal, 0x hex, 0 octal) within [low, high]."""
    try:
        value = int(text, 0) if not text.startswith("0") or text.startswith(("0x", "0X")) \
            else int(text, 8) if len(text) > 1 else 0
    except ValueError:
        raise OptionError(f'invalid {what} "{text}"') from None
    if not low <= value <= high:
        raise OptionError(f'{what} "{text}" out of range {low}-{high}')
    return value


def parse_value_mask(text: str, what: str) -> tuple[int, int]:
    """`VALUE[/MASK]` as mark, connmark and MARK take it (mask defaults to all ones)."""
    value_text, _, mask_text = text.partition("/")
    value = parse_int(value_text, 0, 0xFFFFFFFF, what)
    mask = parse_int(mask_text, 0, 0xFFFFFFFF, what) if mask_text else 0xFFFFFFFF
    return value, mask
