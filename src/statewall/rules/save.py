"""Printing the model back as iptables-save text (iptables-save.c, print_rule4).

Base options come in iptables-save's order (-s -d -i -o -p -f), then the
matches and the target with their options as loaded. `counters=True` adds
`[packets:bytes]` before each rule, as `iptables-save -c` does.
"""

from __future__ import annotations

from statewall.rules.addr import format_address, protocol_name
from statewall.rules.lexer import quote
from statewall.rules.model import Option, Rule, Ruleset, Table

# Options whose values iptables-save always quotes.
_QUOTED = frozenset({"--comment", "--log-prefix", "--nflog-prefix", "--string"})


def _neg(negated: bool) -> str:
    return "! " if negated else ""


def format_options(options: tuple[Option, ...]) -> list[str]:
    words: list[str] = []
    for option in options:
        words.append(f"{_neg(option.negated)}{option.name}")
        for value in option.values:
            if option.name in _QUOTED:
                escaped = value.replace("\\", "\\\\").replace('"', '\\"')
                words.append(f'"{escaped}"')
            else:
                words.append(quote(value))
    return words


def format_rule(rule: Rule, family: int) -> list[str]:
    """The words after `-A CHAIN`."""
    words: list[str] = []
    if rule.src is not None:
        words.append(f"{_neg(rule.src_neg)}-s {format_address(rule.src, family)}")
    if rule.dst is not None:
        words.append(f"{_neg(rule.dst_neg)}-d {format_address(rule.dst, family)}")
    if rule.iface_in is not None:
        words.append(f"{_neg(rule.iface_in_neg)}-i {quote(rule.iface_in)}")
    if rule.iface_out is not None:
        words.append(f"{_neg(rule.iface_out_neg)}-o {quote(rule.iface_out)}")
    if rule.proto or rule.proto_neg:
        words.append(f"{_neg(rule.proto_neg)}-p {protocol_name(rule.proto)}")
    if rule.fragment is not None:
        words.append(f"{_neg(not rule.fragment)}-f")
    for match in rule.matches:
        words.append(f"-m {match.name}")
        words.extend(format_options(match.options))
    if rule.target is not None:
        words.append(f"{'-g' if rule.target.goto else '-j'} {rule.target.name}")
        words.extend(format_options(rule.target.options))
    return words


def rule_text(chain: str, rule: Rule, family: int) -> str:
    return " ".join(["-A", chain, *format_rule(rule, family)])


def format_table(table: Table, family: int, counters: bool = False) -> list[str]:
    lines = [f"*{table.name}"]
    for chain in table.chains:
        packets, octets = chain.counters
        lines.append(f":{chain.name} {chain.policy or '-'} [{packets}:{octets}]")
    for chain in table.chains:
        for rule in chain.rules:
            text = rule_text(chain.name, rule, family)
            if counters or rule.counters is not None:
                packets, octets = rule.counters or (0, 0)
                text = f"[{packets}:{octets}] {text}"
            lines.append(text)
    lines.append("COMMIT")
    return lines


def format_ruleset(ruleset: Ruleset, counters: bool = False) -> str:
    """The whole ruleset as iptables-save (or ip6tables-save) prints it."""
    lines: list[str] = []
    for table in ruleset.tables:
        lines.extend(format_table(table, ruleset.family, counters))
    return "\n".join(lines) + "\n"
