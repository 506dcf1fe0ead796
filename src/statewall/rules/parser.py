"""Reading iptables-save / iptables-restore text into the model.

Follows iptables-restore (iptables-restore.c, xshared.c `do_parse`): a file
is a sequence of `*table` blocks ending in COMMIT; inside, `:CHAIN POLICY
[packets:bytes]` lines declare chains and the other lines are iptables
command lines (-A, -I, -N, -P, -F, -X) whose options are split as getopt
would: base options first, then the options of the most recently loaded
match that knows them, then the target's. An option no loaded match knows
loads the implicit match of `-p` (tcp, udp, icmp ...). Unlike the real
tool, lines may end in CRLF.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from statewall.rules import addr
from statewall.rules.errors import OptionError, RulesetError
from statewall.rules.ext import OptSpec, find_option
from statewall.rules.lexer import split_words
from statewall.rules.matches import MATCHES
from statewall.rules.model import (
    BUILTIN_CHAINS,
    Address,
    Chain,
    Match,
    Option,
    Rule,
    Ruleset,
    Table,
    Target,
)
from statewall.rules.targets import STANDARD_VERDICTS, TARGETS
from statewall.wording import did_you_mean

# Implicit match loaded by `-p NAME` (libxtables load_proto).
IMPLICIT = {6: "tcp", 17: "udp", 136: "udplite", 1: "icmp", 58: "icmp6", 132: "sctp"}

_BASE = {
    "-p": "-p", "--protocol": "-p", "-s": "-s", "--source": "-s", "--src": "-s",
    "-d": "-d", "--destination": "-d", "--dst": "-d", "-i": "-i", "--in-interface": "-i",
    "-o": "-o", "--out-interface": "-o", "-f": "-f", "--fragment": "-f",
}
_COMMANDS = {
    "-A": "-A", "--append": "-A", "-I": "-I", "--insert": "-I", "-N": "-N",
    "--new-chain": "-N", "-P": "-P", "--policy": "-P", "-F": "-F", "--flush": "-F",
    "-X": "-X", "--delete-chain": "-X",
}


@dataclass
class _ChainBuilder:
    name: str
    policy: str | None
    counters: tuple[int, int] = (0, 0)
    rules: list[Rule] = field(default_factory=list)
    line: int = 0


@dataclass
class _ExtBuilder:
    name: str
    specs: tuple[OptSpec, ...]
    options: list[Option] = field(default_factory=list)
    unknown: bool = False


@dataclass
class _Command:
    verb: str = ""
    chain: str = ""
    index: int | None = None
    policy: str = ""


class _LineParser:
    """Parses one command line; errors are OptionError, placed by the caller."""

    def __init__(self, words: list[str], family: int, allow_unknown: bool) -> None:
        self.words = words
        self.pos = 0
        self.family = family
        self.allow_unknown = allow_unknown
        self.cmd = _Command()
        self.base: dict[str, tuple[bool, str | None]] = {}
        self.matches: list[_ExtBuilder] = []
        self.target: _ExtBuilder | None = None
        self.goto = False
        self.counters: tuple[int, int] | None = None

    def take(self, option: str) -> str:
        if self.pos >= len(self.words):
            raise OptionError(f'option "{option}" requires an argument')
        word = self.words[self.pos]
        self.pos += 1
        return word

    def parse(self) -> None:
        negate = False
        while self.pos < len(self.words):
            word = self.words[self.pos]
            self.pos += 1
            if word == "!":
                if negate:
                    raise OptionError("multiple consecutive ! not allowed")
                negate = True
                continue
            self.word(word, negate)
            negate = False
        if negate:
            raise OptionError("dangling ! at the end of the rule")

    def word(self, word: str, negate: bool) -> None:
        spelled, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        if eq:
            self.words.insert(self.pos, inline)
        if spelled in _COMMANDS:
            self.no_negate(negate, spelled)
            self.command(_COMMANDS[spelled])
        elif spelled in _BASE:
            self.base_option(_BASE[spelled], negate)
        elif spelled in ("-m", "--match"):
            if negate:
                raise OptionError("unexpected ! flag before --match")
            self.load_match(self.take(spelled))
        elif spelled in ("-j", "--jump", "-g", "--goto"):
            self.no_negate(negate, spelled)
            self.load_target(self.take(spelled), spelled in ("-g", "--goto"))
        elif spelled in ("-c", "--set-counters"):
            self.counters = (self.number(self.take(spelled)), self.number(self.take(spelled)))
        elif spelled.startswith("-") and spelled != "-":
            self.ext_option(spelled, negate)
        else:
            raise OptionError(f"Bad argument `{word}'")

    @staticmethod
    def no_negate(negate: bool, option: str) -> None:
        if negate:
            raise OptionError(f"cannot have ! before {option}")

    @staticmethod
    def number(text: str) -> int:
        if not text.isdigit():
            raise OptionError(f"invalid counter value `{text}'")
        return int(text)

    def command(self, verb: str) -> None:
        if self.cmd.verb:
            raise OptionError("cannot use more than one command")
        self.cmd.verb = verb
        at_end = self.pos >= len(self.words) or self.words[self.pos].startswith("-")
        if verb in ("-F", "-X") and at_end:
            return  # the whole table
        self.cmd.chain = self.take(verb)
        if verb == "-P":
            self.cmd.policy = self.take(verb)
        elif verb == "-I" and self.pos < len(self.words) and self.words[self.pos].isdigit():
            self.cmd.index = int(self.take(verb))
            if self.cmd.index < 1:
                raise OptionError("Invalid rule number `0'")

    def base_option(self, name: str, negate: bool) -> None:
        if name in self.base:
            raise OptionError(f"multiple {name} flags not allowed")
        if name == "-f":
            if self.family == 6:
                raise OptionError("-f is IPv4 only (use -m frag in ip6tables)")
            self.base[name] = (negate, None)
            return
        self.base[name] = (negate, self.take(name))

    def load_match(self, name: str) -> None:
        ext = MATCHES.get(name)
        if ext is None:
            if not self.allow_unknown:
                known = [n for n, e in MATCHES.items() if self.family in e.families]
                raise OptionError(f"Couldn't load match `{name}'{did_you_mean(name, known)}")
            self.matches.append(_ExtBuilder(name, (), unknown=True))
            return
        if self.family not in ext.families:
            raise OptionError(f"match `{name}' is not available for IPv{self.family}")
        self.matches.append(_ExtBuilder(ext.name, ext.options))

    def load_target(self, name: str, goto: bool) -> None:
        if self.target is not None:
            raise OptionError("multiple -j flags not allowed")
        ext = None if goto else TARGETS.get(name)
        if ext is None:
            self.target = _ExtBuilder(name, ())
        else:
            if self.family not in ext.families:
                raise OptionError(f"target `{name}' is not available for IPv{self.family}")
            self.target = _ExtBuilder(ext.name, ext.options)
        self.goto = goto

    def ext_option(self, spelled: str, negate: bool) -> None:
        owners = ([self.target] if self.target else []) + self.matches[::-1]
        for owner in owners:
            spec = find_option(owner.specs, spelled)
            if spec is not None:
                self.add_option(owner, spec, negate)
                return
        implicit = self.implicit_match()
        if implicit is not None:
            spec = find_option(implicit.specs, spelled)
            if spec is not None:
                self.matches.append(implicit)
                self.add_option(implicit, spec, negate)
                return
        if self.abbreviated(owners, implicit, spelled, negate):
            return
        for owner in owners:
            if owner.unknown:
                self.add_unknown_option(owner, spelled, negate)
                return
        last = self.matches[-1] if self.matches else implicit
        where = f" for match {last.name}" if last is not None else ""
        if self.target is not None and self.target.specs:
            where = f" for target {self.target.name}"
        spellings = [word for owner in owners + ([implicit] if implicit else [])
                     for spec in owner.specs for word in (spec.name, *spec.aliases)]
        raise OptionError(f"unknown option {spelled}{where}{did_you_mean(spelled, spellings)}")

    def abbreviated(self, owners: list[_ExtBuilder], implicit: _ExtBuilder | None,
                    spelled: str, negate: bool) -> bool:
        """getopt_long accepts a unique prefix of a long option (`--to` for --to-destination)."""
        if not spelled.startswith("--"):
            return False
        found: list[tuple[_ExtBuilder, OptSpec]] = []
        for owner in owners + ([implicit] if implicit is not None else []):
            found.extend((owner, spec) for spec in owner.specs
                         if any(n.startswith(spelled) for n in (spec.name, *spec.aliases)))
        if len({id(spec) for _, spec in found}) > 1:
            meanings = ", ".join(dict.fromkeys(spec.name for _, spec in found))
            raise OptionError(f"option \"{spelled}\" is ambiguous ({meanings})")
        if not found:
            return False
        owner, spec = found[0]
        if owner is implicit:
            self.matches.append(owner)
        self.add_option(owner, spec, negate)
        return True

    def implicit_match(self) -> _ExtBuilder | None:
        negate, proto_text = self.base.get("-p", (True, None))
        if negate or proto_text is None:
            return None
        name = IMPLICIT.get(addr.parse_protocol(proto_text))
        if name is None or any(m.name == name for m in self.matches):
            return None
        ext = MATCHES.get(name)
        if ext is None or self.family not in ext.families:
            return None
        return _ExtBuilder(ext.name, ext.options)

    def add_option(self, owner: _ExtBuilder, spec: OptSpec, negate: bool) -> None:
        if negate and not spec.invert:
            raise OptionError(f"unexpected ! flag before {spec.name}")
        if any(o.name == spec.name for o in owner.options):
            raise OptionError(f"Only one `{spec.name}' allowed for {owner.name}")
        values = tuple(self.take(spec.name) for _ in range(spec.nargs))
        owner.options.append(Option(spec.name, negate, values))

    def add_unknown_option(self, owner: _ExtBuilder, spelled: str, negate: bool) -> None:
        values: list[str] = []
        while self.pos < len(self.words) and not self.words[self.pos].startswith("-") \
                and self.words[self.pos] != "!":
            values.append(self.take(spelled))
        owner.options.append(Option(spelled, negate, tuple(values)))

    def rules(self) -> list[Rule]:
        """The rule(s) of this line: `-s a,b` makes one rule per address, as iptables does."""
        fields: dict[str, object] = {}
        neg, proto = self.base.get("-p", (False, None))
        if proto is not None:
            fields["proto"] = addr.parse_protocol(proto)
            fields["proto_neg"] = neg
        for opt, key in (("-i", "iface_in"), ("-o", "iface_out")):
            neg, name = self.base.get(opt, (False, None))
            if name is not None:
                if len(name) > 15:
                    raise OptionError(f"interface name `{name}' must be shorter than 16 chars")
                fields[key] = name
                fields[key + "_neg"] = neg
        if "-f" in self.base:
            fields["fragment"] = not self.base["-f"][0]
        matches = tuple(Match(m.name, tuple(m.options)) for m in self.matches)
        target = None
        if self.target is not None:
            target = Target(self.target.name, tuple(self.target.options), self.goto)
        base = Rule(matches=matches, target=target, counters=self.counters,
                    **fields)  # type: ignore[arg-type]
        return [replace(base, src=s, dst=d, src_neg=sn, dst_neg=dn)
                for s, sn in self.addresses("-s") for d, dn in self.addresses("-d")]

    def addresses(self, opt: str) -> list[tuple[Address | None, bool]]:
        neg, text = self.base.get(opt, (False, None))
        if text is None:
            return [(None, False)]
        result: list[tuple[Address | None, bool]] = []
        parts = text.split(",")
        if neg and len(parts) > 1:
            raise OptionError("! not allowed with multiple source or destination IP addresses")
        for part in parts:
            address = addr.parse_address(part, self.family)
            result.append((None, False) if address.mask == 0 and not neg else (address, neg))
        return result


class _Stop(Exception):
    """An error after which no later line can be read sensibly."""


class _FileParser:
    def __init__(self, source: str, family: int, allow_unknown: bool,
                 errors: list[RulesetError] | None = None) -> None:
        self.source = source
        self.family = family
        self.allow_unknown = allow_unknown
        # None: raise at the first error. A list: collect every error, each
        # bad line read as if it were blank.
        self.errors = errors
        self.tables: dict[str, Table] = {}
        self.table: str | None = None
        self.table_line = 0
        self.chains: dict[str, _ChainBuilder] = {}
        self.lineno = 0

    def error(self, message: str) -> RulesetError:
        return RulesetError(self.source, self.lineno, message)

    def run(self, text: str) -> Ruleset:
        for self.lineno, raw in enumerate(text.split("\n"), start=1):
            line = raw.rstrip("\r").strip()
            if not line or line.startswith("#"):
                continue
            try:
                self.line(line)
            except OptionError as err:
                self.fail(self.error(err.message), line)
        if self.table is not None:
            self.fail(RulesetError(self.source, self.lineno, "COMMIT expected at end of file"))
        return Ruleset(self.family, tuple(self.tables.values()), self.source)

    def fail(self, error: RulesetError, line: str | None = None) -> None:
        """Raise `error`, or record it and go on with the next line.

        A line fails before it changes anything, so going on reads the file
        as if the line were blank. A bad table header or COMMIT line (or a
        missing final COMMIT) leaves the lines that follow without their
        table: reading stops there.
        """
        if self.errors is None:
            raise error
        self.errors.append(error)
        if line is None or line == "COMMIT" or line.startswith("*"):
            raise _Stop

    def line(self, line: str) -> None:
        if line.startswith("*"):
            self.open_table(line[1:].strip())
        elif self.table is None:
            raise OptionError("rule or chain line outside a *table block")
        elif line == "COMMIT":
            self.commit()
        elif line.startswith(":"):
            self.declare(line[1:].split())
        else:
            self.command(line)

    def open_table(self, name: str) -> None:
        if self.table is not None:
            raise OptionError(f"table '{name}' opened before COMMIT of '{self.table}'")
        if name not in BUILTIN_CHAINS:
            raise OptionError(f"table name '{name}' invalid")
        self.table, self.table_line = name, self.lineno
        self.chains = {c: _ChainBuilder(c, "ACCEPT", line=self.lineno)
                       for c in BUILTIN_CHAINS[name]}

    def commit(self) -> None:
        assert self.table is not None
        chains = tuple(Chain(c.name, c.policy, tuple(c.rules), c.counters, c.line)
                       for c in self.chains.values())
        self.tables.pop(self.table, None)
        self.tables[self.table] = Table(self.table, chains, self.table_line)
        self.table = None

    def declare(self, parts: list[str]) -> None:
        if not parts:
            raise OptionError("chain line without a chain name")
        name, policy = parts[0], parts[1] if len(parts) > 1 else "-"
        counters = (0, 0)
        if len(parts) > 2:
            counters = _bracket_counters(parts[2])
        builtin = name in BUILTIN_CHAINS[self.table or "filter"]
        if builtin:
            chain = self.chains[name]
            if policy != "-":
                chain.policy = _policy(policy)
            chain.counters, chain.line = counters, self.lineno
            return
        if policy != "-":
            raise OptionError(f"Can't set policy `{policy}' on `{name}': Bad built-in chain name")
        self.new_chain(name)
        self.chains[name].counters = counters

    def new_chain(self, name: str) -> None:
        if name in self.chains:
            raise OptionError(f"chain `{name}' already exists")
        if len(name) > 28 or name.startswith("-") or name in STANDARD_VERDICTS \
                or name in TARGETS:
            raise OptionError(f"invalid chain name `{name}'")
        self.chains[name] = _ChainBuilder(name, None, line=self.lineno)

    def command(self, line: str) -> None:
        words = split_words(line)
        counters = None
        if words and words[0].startswith("[") and words[0].endswith("]"):
            counters = _bracket_counters(words.pop(0))
        if words and words[0] in ("-4", "-6") and int(words.pop(0)[1]) != self.family:
            return
        parser = _LineParser(words, self.family, self.allow_unknown)
        parser.parse()
        if counters is not None and parser.counters is None:
            parser.counters = counters
        self.apply(parser)

    def apply(self, parser: _LineParser) -> None:
        cmd = parser.cmd
        if not cmd.verb:
            raise OptionError("no command specified")
        if cmd.verb == "-N":
            self.new_chain(cmd.chain)
            return
        if cmd.verb in ("-F", "-X") and not cmd.chain:
            for each in list(self.chains.values()):
                if cmd.verb == "-F":
                    each.rules.clear()
                elif each.policy is None:
                    del self.chains[each.name]
            return
        chain = self.chains.get(cmd.chain)
        if chain is None:
            raise OptionError(f"chain `{cmd.chain}' does not exist")
        if cmd.verb == "-P":
            if chain.policy is None:
                raise OptionError(f"Can't set policy on user chain `{cmd.chain}'")
            chain.policy = _policy(cmd.policy)
        elif cmd.verb == "-F":
            chain.rules.clear()
        elif cmd.verb == "-X":
            self.delete_chain(chain)
        else:
            self.add_rules(chain, cmd, parser)

    def delete_chain(self, chain: _ChainBuilder) -> None:
        if chain.policy is not None:
            raise OptionError(f"Can't delete built-in chain `{chain.name}'")
        del self.chains[chain.name]

    def add_rules(self, chain: _ChainBuilder, cmd: _Command, parser: _LineParser) -> None:
        if chain.policy is not None:
            for flag, hooks in (("-o", ("PREROUTING", "INPUT")), ("-i", ("OUTPUT", "POSTROUTING"))):
                if chain.name in hooks and flag in parser.base:
                    raise OptionError(f"Can't use {flag} with {chain.name}")
        rules = [replace(r, line=self.lineno) for r in parser.rules()]
        if cmd.verb == "-A":
            chain.rules.extend(rules)
            return
        index = (cmd.index or 1) - 1
        if index > len(chain.rules):
            raise OptionError("Index of insertion too big")
        chain.rules[index:index] = rules


def _policy(text: str) -> str:
    if text not in ("ACCEPT", "DROP"):
        raise OptionError(f"Bad policy name `{text}'")
    return text


def _bracket_counters(text: str) -> tuple[int, int]:
    inner = text[1:-1] if text.startswith("[") and text.endswith("]") else ""
    packets, _, octets = inner.partition(":")
    if not packets.isdigit() or not octets.isdigit():
        raise OptionError(f"invalid counters `{text}'")
    return int(packets), int(octets)


def parse_ruleset(
    text: str, source: str = "<rules>", family: int = 4, allow_unknown: bool = False
) -> Ruleset:
    """Parse iptables-save text (`family` 4) or ip6tables-save text (`family` 6).

    Raises RulesetError naming the source, line and option at the first error.
    With `allow_unknown`, unknown match modules are kept (their options split
    heuristically) so the compiler can evaluate them as undetermined.
    """
    return _FileParser(source, family, allow_unknown).run(text)


def parse_ruleset_errors(
    text: str, source: str = "<rules>", family: int = 4, allow_unknown: bool = False
) -> tuple[Ruleset | None, list[RulesetError]]:
    """Parse in one pass, reading on after each error as if its line were blank.

    Returns the ruleset without the bad lines (None when an error left the
    rest of the file unreadable: a bad `*table` or COMMIT line, a missing
    final COMMIT) and every error in line order.
    """
    errors: list[RulesetError] = []
    try:
        ruleset: Ruleset | None = _FileParser(source, family, allow_unknown, errors).run(text)
    except _Stop:
        ruleset = None
    return ruleset, errors
