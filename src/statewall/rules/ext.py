"""How a match or target extension describes itself to the parser and compiler.

Mirrors libxtables' `struct xtables_match` / `xtables_target` (the option
table the parser needs to split a rule line) joined with the kernel's
`struct xt_match` / `xt_target` (checkentry: families, tables, hooks,
required protocol). `build` is the checkentry plus the compiled per-packet
function: it validates every option once, at load time, and returns a
closure that only compares numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from statewall.rules.errors import OptionError
from statewall.rules.model import Option, Rule

if TYPE_CHECKING:
    from statewall.rules.context import PacketContext, RuleState

# A compiled match: does the packet match? (True/False)
MatchFn = Callable[["PacketContext"], bool]
# A compiled target: a verdict code from statewall.rules.context (CONTINUE, ACCEPT, ...).
TargetFn = Callable[["PacketContext"], int]

HOOKS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")


@dataclass(frozen=True, slots=True)
class OptSpec:
    """One command-line option: canonical name, argument count, spellings."""

    name: str
    nargs: int = 1
    aliases: tuple[str, ...] = ()
    invert: bool = True


@dataclass(frozen=True, slots=True)
class BuildArgs:
    """What a builder may look at: the rule's options and where the rule sits."""

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
    build: Callable[[BuildArgs], MatchFn]
    families: tuple[int, ...] = (4, 6)
    hooks: tuple[str, ...] = HOOKS
    tables: tuple[str, ...] | None = None
    proto: int | None = None  # the `-p` this match requires (tcp needs -p tcp)
    # Why statewall cannot evaluate this match (then it is refused unless
    # unknown rules are allowed); None when it is implemented.
    unsupported: str | None = None


@dataclass(frozen=True, slots=True)
class TargetExt:
    name: str
    options: tuple[OptSpec, ...]
    build: Callable[[BuildArgs], TargetFn]
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


def never(ctx: PacketContext) -> bool:
    return False


def always(ctx: PacketContext) -> bool:
    return True
