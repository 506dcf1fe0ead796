"""Load-time checks (ip_tables.c: translate_table, mark_source_chains,
check_entry_size_and_hooks, find_check_match / check_target).

Every jump and goto is resolved to a chain index, loops are found by
walking from each built-in chain, each user chain learns which hooks reach
it, and every match and target is checked against its options, its
family, its table and those hooks. Each rule becomes a `CompiledRule`
saying what happens on a match and which of its matches are evaluated; the
ruleset keeps the counters the replay copies back from the core for
printing. Errors are RulesetError with the rule's file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from statewall.rules.errors import NotEvaluated, OptionError, RulesetError
from statewall.rules.ext import HOOKS, BuildArgs, RuleState
from statewall.rules.matches import MATCHES
from statewall.rules.model import Chain, Match, Rule, Ruleset, Table
from statewall.rules.save import rule_text
from statewall.rules.targets import TARGETS
from statewall.verdict import RuleRef
from statewall.wording import did_you_mean

# What a matching rule does.
K_NONE = 0  # no target: count and continue
K_VERDICT = 1  # ACCEPT / DROP / QUEUE / RETURN
K_JUMP = 2
K_GOTO = 3
K_TARGET = 4  # an extension target
K_UNKNOWN = 5  # something statewall cannot evaluate (allowed with allow_unknown)

_VERDICTS = ("ACCEPT", "DROP", "QUEUE", "RETURN")


@dataclass(slots=True)
class CompiledRule:
    kind: int
    verdict: str | None  # K_VERDICT: ACCEPT, DROP, QUEUE or RETURN
    jump: int  # K_JUMP, K_GOTO: the index of the chain in its table
    ref: RuleRef
    text: str
    unknown: str | None = None
    # The matches statewall evaluates, in rule order (an unknown one is left out
    # and makes the rule unknown).
    matches: tuple[Match, ...] = ()
    packets: int = 0
    octets: int = 0


@dataclass(slots=True)
class CompiledChain:
    name: str
    rules: list[CompiledRule]
    ref: RuleRef
    packets: int = 0  # a built-in chain's policy
    octets: int = 0


@dataclass(slots=True)
class CompiledTable:
    name: str
    chains: list[CompiledChain]


@dataclass(slots=True)
class CompiledRuleset:
    """A checked ruleset with its shared state and its counters."""

    source: Ruleset
    tables: dict[str, CompiledTable]
    state: RuleState
    unknown_rules: list[RuleRef] = field(default_factory=list)
    # Remarks on how rules will be evaluated, `FILE:LINE: note: ...`, each once.
    notes: list[str] = field(default_factory=list)


class _Compiler:
    def __init__(self, ruleset: Ruleset, state: RuleState, allow_unknown: bool,
                 errors: list[RulesetError] | None = None) -> None:
        self.ruleset = ruleset
        self.state = state
        self.allow_unknown = allow_unknown
        self.unknown: list[RuleRef] = []
        # None: raise at the first error. A list: collect every error and
        # leave out the rules of each bad line, as if the line were blank.
        self.errors = errors
        self.dropped: set[int] = set()
        self.notes: dict[str, str] = {}  # by remark: the first rule's line with it

    def error(self, rule_line: int, message: str) -> RulesetError:
        return RulesetError(self.ruleset.source, rule_line, message)

    def fail(self, error: RulesetError) -> None:
        """Raise `error`, or record it and drop the rules of its line."""
        if self.errors is None:
            raise error
        self.errors.append(error)
        self.dropped.add(error.line)

    def table(self, table: Table) -> CompiledTable:
        index = {chain.name: i for i, chain in enumerate(table.chains)}
        hooks = self.reach(table, index)
        chains = []
        for i, chain in enumerate(table.chains):
            compiled, jump_dropped = self.chain(table, chain, index, hooks[i])
            chains.append(compiled)
            if jump_dropped:
                # Without that jump a chain may be reached from fewer hooks.
                # A rule that passed with more hooks passes with fewer, so the
                # chains already done stand; the rest are checked as reached now.
                hooks = self.reach(table, index)
        return CompiledTable(table.name, chains)

    def reach(self, table: Table, index: dict[str, int]) -> list[set[str]]:
        """Hooks reaching each chain; a jump cycle is an error (mark_source_chains)."""
        hooks: list[set[str]] = [set() for _ in table.chains]
        for i, chain in enumerate(table.chains):
            if chain.builtin:
                self.visit(table, index, i, chain.name, hooks, [])
        return hooks

    def visit(self, table: Table, index: dict[str, int], i: int, hook: str,
              hooks: list[set[str]], path: list[int]) -> None:
        if hook in hooks[i]:
            return
        hooks[i].add(hook)
        for rule in table.chains[i].rules:
            j = _jump(rule, index)
            if j is None or rule.line in self.dropped:
                continue
            if j < 0:
                if not self.allow_unknown:
                    self.fail(self.error(rule.line, _no_chain(_target_name(rule), index)))
                continue
            if table.chains[j].builtin:
                self.fail(self.error(rule.line,
                                     f"cannot jump to built-in chain {_target_name(rule)}"))
                continue
            if j in path or j == i:
                cycle = [*path[path.index(j):], i, j] if j in path else [i, j]
                names = " -> ".join(table.chains[k].name for k in cycle)
                self.fail(self.error(rule.line, f"loop detected in chains: {names}"))
                continue
            self.visit(table, index, j, hook, hooks, [*path, i])

    def chain(self, table: Table, chain: Chain, index: dict[str, int],
              hooks: set[str]) -> tuple[CompiledChain, bool]:
        """The compiled chain, and whether a jump to a user chain was dropped."""
        rules: list[CompiledRule] = []
        jump_dropped = False
        for rule in chain.rules:
            if rule.line in self.dropped:
                continue
            try:
                rules.append(self.rule(table, chain, len(rules) + 1, rule, index, hooks))
            except RulesetError as err:
                self.fail(err)
                target = _jump(rule, index)
                jump_dropped = jump_dropped or (target is not None and target >= 0)
        ref = RuleRef(table.name, chain.name, 0, chain.line)
        return CompiledChain(chain.name, rules, ref), jump_dropped

    def rule(self, table: Table, chain: Chain, number: int, rule: Rule,
             index: dict[str, int], hooks: set[str]) -> CompiledRule:
        ref = RuleRef(table.name, chain.name, number, rule.line)
        text = rule_text(chain.name, rule, self.ruleset.family)
        try:
            matches, unknown = self.matches(table, rule, hooks)
            kind, verdict, jump, why = self.target(table, rule, index, hooks)
        except OptionError as err:
            raise self.error(rule.line, err.message) from None
        unknown = unknown or why
        if unknown is not None:
            if not self.allow_unknown:
                raise self.error(rule.line, unknown)
            self.unknown.append(ref)
            kind = K_UNKNOWN
        return CompiledRule(kind, verdict, jump, ref, text, unknown, matches)

    def matches(self, table: Table, rule: Rule,
                hooks: set[str]) -> tuple[tuple[Match, ...], str | None]:
        evaluated: list[Match] = []
        unknown: str | None = None
        for match in rule.matches:
            ext = MATCHES.get(match.name)
            if ext is None:
                unknown = unknown or f"match {match.name} is not supported: unknown match"
                continue
            prefix = f"{match.name} match: "
            if ext.proto is not None and (rule.proto != ext.proto or rule.proto_neg):
                raise OptionError(f"{prefix}only valid for protocol {ext.proto}")
            _check_place(prefix, ext.tables, ext.hooks, table.name, hooks)
            if ext.unsupported is not None:
                unknown = unknown or f"match {match.name} is not supported: {ext.unsupported}"
                continue
            args = BuildArgs(match.options, self.ruleset.family, table.name, rule, self.state,
                             frozenset(hooks))
            try:
                ext.check(args)
            except NotEvaluated as err:
                unknown = unknown or f"match {match.name} is not evaluated: {err.message}"
                continue
            except OptionError as err:
                raise OptionError(prefix + err.message) from None
            remark = ext.note(args) if ext.note is not None else None
            if remark is not None and remark not in self.notes:
                self.notes[remark] = f"{self.ruleset.source}:{rule.line}: note: {remark}"
            evaluated.append(match)
        return tuple(evaluated), unknown

    def target(self, table: Table, rule: Rule, index: dict[str, int],
               hooks: set[str]) -> tuple[int, str | None, int, str | None]:
        target = rule.target
        if target is None:
            return K_NONE, None, -1, None
        if target.name in _VERDICTS and not target.goto:
            return K_VERDICT, target.name, -1, None
        ext = None if target.goto else TARGETS.get(target.name)
        if ext is None:
            j = index.get(target.name, -1)
            if j < 0:
                return K_UNKNOWN, None, -1, _no_chain(target.name, index)
            return (K_GOTO if target.goto else K_JUMP), None, j, None
        if ext.unsupported is not None:
            return K_UNKNOWN, None, -1, f"target {ext.name}: {ext.unsupported}"
        prefix = f"{ext.name} target: "
        if ext.tables is not None and table.name not in ext.tables:
            raise OptionError(f"{prefix}only valid in the {'/'.join(ext.tables)} table, "
                              f"not in {table.name}")
        _check_place(prefix, None, ext.hooks, table.name, hooks)
        args = BuildArgs(target.options, self.ruleset.family, table.name, rule, self.state,
                         frozenset(hooks))
        try:
            ext.check(args)
        except NotEvaluated as err:
            return K_UNKNOWN, None, -1, f"target {ext.name} is not evaluated: {err.message}"
        except OptionError as err:
            raise OptionError(prefix + err.message) from None
        return K_TARGET, None, -1, None


def _no_chain(name: str, index: dict[str, int]) -> str:
    """iptables' refusal of a jump to nowhere, with the chain or target it was likely
    meant to be."""
    known = [*index, *_VERDICTS, *TARGETS]
    return f"Chain '{name}' does not exist{did_you_mean(name, known)}"


def _target_name(rule: Rule) -> str:
    return rule.target.name if rule.target is not None else ""


def _jump(rule: Rule, index: dict[str, int]) -> int | None:
    """The chain a rule jumps or goes to (-1: a chain that does not exist), None
    when its target is a verdict, an extension or absent."""
    target = rule.target
    if target is None or target.name in _VERDICTS or \
            (target.name in TARGETS and not target.goto):
        return None
    return index.get(target.name, -1)


def _check_place(prefix: str, tables: tuple[str, ...] | None, allowed: tuple[str, ...],
                 table: str, hooks: set[str]) -> None:
    if tables is not None and table not in tables:
        raise OptionError(f"{prefix}only valid in the {'/'.join(tables)} table")
    bad = sorted(hooks - set(allowed), key=HOOKS.index)
    if bad:
        raise OptionError(f"{prefix}used from hooks {', '.join(bad)}, but only usable "
                          f"from {'/'.join(allowed)}")


def compile_ruleset(ruleset: Ruleset, state: RuleState | None = None,
                    allow_unknown: bool = False) -> CompiledRuleset:
    """Check every table; raises RulesetError at the first problem.

    With `allow_unknown`, rules using something statewall cannot evaluate are
    kept and listed in `unknown_rules`; a packet reaching one gets UNKNOWN.
    """
    compiler = _Compiler(ruleset, state or RuleState(), allow_unknown)
    tables = {t.name: compiler.table(t) for t in ruleset.tables}
    return CompiledRuleset(ruleset, tables, compiler.state, compiler.unknown,
                           list(compiler.notes.values()))


def compile_errors(ruleset: Ruleset, state: RuleState | None = None,
                   allow_unknown: bool = False) -> list[RulesetError]:
    """Every error of the checks, in one pass.

    The rules of a bad line are left out, as if the line were blank, and the
    checks go on; hence an error that only came from that line (a chain
    reached through a bad jump) is not reported.
    """
    errors: list[RulesetError] = []
    compiler = _Compiler(ruleset, state or RuleState(), allow_unknown, errors)
    for table in ruleset.tables:
        compiler.table(table)
    return errors
