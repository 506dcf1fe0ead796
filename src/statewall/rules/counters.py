"""Counters after a replay, printed as `iptables-save -c` and `iptables -L -v -n` print them.

The core counts what its walks saw: each rule and each built-in chain's
policy, in packets and bytes (the IP total length, as the kernel adds
skb->len); `set_counters` copies them into the checked ruleset for printing.
The listing follows iptables 1.8.9 (iptables.c print_header, xshared.c
print_rule_details/print_ifaces/print_ipv4_addresses): fixed columns, `-n`
numbers (protocols as numbers too), K/M/G/T abbreviations unless `exact`
(`-x`). Built-in chains come first, then user chains sorted by
name, as libiptc and the nf_tables backend both list them.

Both print the ruleset's own text (comments, LOG prefixes, chain names) for
a terminal: each line's control characters are escaped before the lines are
joined, so a newline in a comment cannot start a line of its own. Ordinary
text prints exactly as iptables does.
"""

from __future__ import annotations

from statewall._core import escape_controls
from statewall.rules.addr import format_ip
from statewall.rules.compile import CompiledChain, CompiledRuleset, CompiledTable
from statewall.rules.listing import TARGET_LABELS, match_text, target_text
from statewall.rules.model import Address, Chain, Rule, Table
from statewall.rules.save import rule_text


def ordered_chains(table: Table) -> list[Chain]:
    """Built-in chains first, then user chains by name, as iptables lists them."""
    builtin = [c for c in table.chains if c.builtin]
    return builtin + sorted((c for c in table.chains if not c.builtin), key=lambda c: c.name)


def _compiled_chain(compiled: CompiledTable, name: str) -> CompiledChain:
    for chain in compiled.chains:
        if chain.name == name:
            return chain
    raise KeyError(name)


def set_counters(compiled: CompiledRuleset,
                 rows: list[tuple[str, str, int, int, int]]) -> None:
    """Store the core's counters: (table, chain, rule number or 0 for the policy,
    packets, bytes), as `RuleEngine.counters()` and `Firewall.counters()` give them."""
    for table, chain, number, packets, octets in rows:
        target = _compiled_chain(compiled.tables[table], chain)
        if number == 0:
            target.packets, target.octets = packets, octets
        else:
            rule = target.rules[number - 1]
            rule.packets, rule.octets = packets, octets


def format_counters_save(compiled: CompiledRuleset) -> str:
    """The ruleset with its counters, as `iptables-save -c` (without the date comments)."""
    family = compiled.source.family
    lines: list[str] = []
    for table in compiled.source.tables:
        loaded = compiled.tables[table.name]
        lines.append(f"*{table.name}")
        chains = ordered_chains(table)
        for chain in chains:
            cc = _compiled_chain(loaded, chain.name)
            packets, octets = (cc.packets, cc.octets) if chain.builtin else (0, 0)
            lines.append(f":{chain.name} {chain.policy or '-'} [{packets}:{octets}]")
        for chain in chains:
            cc = _compiled_chain(loaded, chain.name)
            for rule, crule in zip(chain.rules, cc.rules, strict=True):
                lines.append(f"[{crule.packets}:{crule.octets}] "
                             f"{rule_text(chain.name, rule, family)}")
        lines.append("COMMIT")
    return "".join(escape_controls(line) + "\n" for line in lines)


def number(value: int, exact: bool, table: bool = True) -> str:
    """xtables_print_num: `%5llu ` or `%4lluK ` and so on; `%8llu ` with -x."""
    if exact:
        return f"{value:>8} " if table else f"{value} "
    if value <= 99999:
        return f"{value:>5} " if table else f"{value} "
    for unit in "KMGT":
        value = (value + 500) // 1000
        if value <= 9999 or unit == "T":
            return f"{value:>4}{unit} " if table else f"{value}{unit} "
    raise AssertionError("unreachable")


def host_text(address: Address | None, family: int) -> str:
    """An address as -L -n prints it: no suffix for a host, `/len` or `/mask` otherwise."""
    bits = 32 if family == 4 else 128
    if address is None:
        return "0.0.0.0/0" if family == 4 else "::/0"
    full = (1 << bits) - 1
    text = format_ip(address.addr, family)
    if address.mask == full:
        return text
    inverted = full ^ address.mask
    if inverted & (inverted + 1) == 0:
        return f"{text}/{bits - inverted.bit_length()}"
    return f"{text}/{format_ip(address.mask, family)}"


def _header(exact: bool) -> str:
    counts = f"{'pkts':>8} {'bytes':>10} " if exact else f"{'pkts':>5} {'bytes':>5} "
    return (counts + f"{'target':<9} " + " prot " + "opt" + f" {'in':<6} " + f"{'out':<6} "
            + f" {'source':<19} " + f" {'destination':<19} ")


def _iface(name: str | None, negated: bool) -> str:
    return ("!" if negated else "") + (name if name is not None else "*")


def _rule_line(rule: Rule, packets: int, octets: int, family: int, exact: bool) -> str:
    target = rule.target
    name = TARGET_LABELS.get(target.name, target.name) if target is not None else ""
    text = number(packets, exact) + number(octets, exact) + f"{name:<9} "
    text += ("!" if rule.proto_neg else " ") + f"{rule.proto:<5}"
    if family == 4:
        frag = "--" if rule.fragment is None else ("-f" if rule.fragment else "!f")
        text += frag + " "
    else:
        text += "   "
    text += f" {_iface(rule.iface_in, rule.iface_in_neg):<6} "
    text += f"{_iface(rule.iface_out, rule.iface_out_neg):<6} "
    text += ("!" if rule.src_neg else " ") + f"{host_text(rule.src, family):<19} "
    text += ("!" if rule.dst_neg else " ") + f"{host_text(rule.dst, family):<19} "
    if target is not None and target.goto:
        text += "[goto] "
    for match in rule.matches:
        text += match_text(match.name, match.options, family)
    if target is not None:
        text += target_text(target.name, target.options, family)
    return text


def _references(table: Table, name: str) -> int:
    return sum(1 for chain in table.chains for rule in chain.rules
               if rule.target is not None and rule.target.name == name)


def format_counters_list(compiled: CompiledRuleset, table: str, exact: bool = False) -> str:
    """One table as `iptables -t TABLE -L -v -n` (with `exact`: `-L -v -n -x`) prints it."""
    model = compiled.source.table(table)
    if model is None:
        raise KeyError(f"table {table} is not loaded")
    loaded = compiled.tables[table]
    family = compiled.source.family
    blocks: list[str] = []
    for chain in ordered_chains(model):
        cc = _compiled_chain(loaded, chain.name)
        if chain.builtin:
            head = (f"Chain {chain.name} (policy {chain.policy} "
                    f"{number(cc.packets, exact, False)}packets, "
                    f"{number(cc.octets, exact, False)}bytes)")
        else:
            head = f"Chain {chain.name} ({_references(model, chain.name)} references)"
        lines = [head, _header(exact)]
        lines.extend(_rule_line(rule, crule.packets, crule.octets, family, exact)
                     for rule, crule in zip(chain.rules, cc.rules, strict=True))
        blocks.append("".join(escape_controls(line) + "\n" for line in lines))
    return "\n".join(blocks)
