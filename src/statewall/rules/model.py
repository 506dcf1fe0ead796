"""The loaded ruleset as plain frozen values (what iptables-save prints).

The model keeps what the kernel keeps: addresses already masked, protocols
as numbers, implicit protocol matches made explicit (`-p tcp --dport 22`
becomes `-p tcp -m tcp --dport 22`, as iptables-save shows it). Match and
target options stay as written strings, in order; they are interpreted by
the compiler. Source line numbers are carried for error messages but are
not part of equality, so parse -> print -> parse compares equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BUILTIN_CHAINS: dict[str, tuple[str, ...]] = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}


@dataclass(frozen=True, slots=True)
class Option:
    """One option of a match or target: `! --dport 22` is ("--dport", True, ("22",))."""

    name: str
    negated: bool
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Match:
    name: str
    options: tuple[Option, ...] = ()


@dataclass(frozen=True, slots=True)
class Target:
    """`-j NAME` (goto=False) or `-g NAME` (goto=True); NAME may be a user chain."""

    name: str
    options: tuple[Option, ...] = ()
    goto: bool = False


@dataclass(frozen=True, slots=True)
class Address:
    """An address with its mask, both as ints; the address is stored masked."""

    addr: int
    mask: int


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule; the base-header fields are those of `struct ipt_ip` / `ip6t_ip6`."""

    src: Address | None = None
    src_neg: bool = False
    dst: Address | None = None
    dst_neg: bool = False
    iface_in: str | None = None
    iface_in_neg: bool = False
    iface_out: str | None = None
    iface_out_neg: bool = False
    proto: int = 0  # 0 = all
    proto_neg: bool = False
    fragment: bool | None = None  # -f True, ! -f False, absent None (IPv4 only)
    matches: tuple[Match, ...] = ()
    target: Target | None = None
    counters: tuple[int, int] | None = None
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Chain:
    """A chain; `policy` is None for user chains, ACCEPT or DROP for built-in ones."""

    name: str
    policy: str | None
    rules: tuple[Rule, ...] = ()
    counters: tuple[int, int] = (0, 0)
    line: int = field(default=0, compare=False)

    @property
    def builtin(self) -> bool:
        return self.policy is not None


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    chains: tuple[Chain, ...]
    line: int = field(default=0, compare=False)

    def chain(self, name: str) -> Chain | None:
        for chain in self.chains:
            if chain.name == name:
                return chain
        return None


@dataclass(frozen=True, slots=True)
class Ruleset:
    """All tables of one family (4: iptables, 6: ip6tables), in file order."""

    family: int
    tables: tuple[Table, ...]
    source: str = field(default="<rules>", compare=False)

    def table(self, name: str) -> Table | None:
        for table in self.tables:
            if table.name == name:
                return table
        return None
