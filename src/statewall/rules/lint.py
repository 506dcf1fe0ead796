"""Warnings about rulesets that load but probably do not do what their author meant.

Each check reads the model only and names the rule's line:

- TCP NEW accepted without --syn: with nf_conntrack_tcp_loose=1 (the
  default) a stray ACK or FIN is NEW and creates an entry, so a rule
  accepting NEW TCP should ask for SYN, or an earlier
  `-p tcp ! --syn -m state --state NEW -j DROP` should guard it.
- ESTABLISHED accepted with no INVALID drop before it: INVALID packets (no
  entry, or outside the TCP window) then fall through to the rules below.
- RELATED accepted while nothing attaches a helper: since Linux 4.7 helpers
  are attached only by `-t raw -j CT --helper` (nf_conntrack_helper=0), so
  apart from ICMP errors nothing is ever RELATED.
- A rule shadowed by an earlier rule of the same chain that decides every
  packet it could match (only proved cases: equal or wider header fields,
  the earlier rule's matches a subset of this one's, none of them stateful).
- A user chain no built-in chain reaches.
"""

from __future__ import annotations

from statewall.rules.model import Address, Chain, Match, Rule, Ruleset, Table

TERMINAL = frozenset({"ACCEPT", "DROP", "REJECT", "RETURN", "QUEUE", "NFQUEUE"})
# Matches whose answer for a packet depends on earlier packets or on chance.
STATEFUL = frozenset({"limit", "hashlimit", "recent", "statistic", "connlimit", "quota",
                      "set", "connbytes", "nfacct"})
SYN, ACK_FIN_RST = 0x02, 0x15
_FLAGS = {"FIN": 1, "SYN": 2, "RST": 4, "PSH": 8, "ACK": 16, "URG": 32, "ECE": 64,
          "CWR": 128, "ALL": 255, "NONE": 0}


def _states(rule: Rule) -> tuple[set[str], bool] | None:
    """The ctstate names a rule tests, and whether the test is negated."""
    for match in rule.matches:
        for option in match.options:
            if option.name in ("--state", "--ctstate"):
                return {s.upper() for s in option.values[0].split(",")}, option.negated
    return None


def _accepts(rule: Rule, state: str) -> bool:
    found = _states(rule)
    if found is None or rule.target is None or rule.target.name != "ACCEPT":
        return False
    names, negated = found
    return (state in names) != negated


def _drops(rule: Rule, state: str) -> bool:
    found = _states(rule)
    if found is None or rule.target is None or rule.target.name not in ("DROP", "REJECT"):
        return False
    names, negated = found
    return (state in names) != negated


def _flags(text: str) -> int:
    return sum(_FLAGS.get(n.upper(), 0) for n in text.split(","))


def _syn_test(rule: Rule) -> bool | None:
    """True for `--syn`-like tests, False for `! --syn`-like, None without any."""
    for match in rule.matches:
        for option in match.options:
            if option.name == "--syn":
                return not option.negated
            if option.name == "--tcp-flags":
                mask, cmp = _flags(option.values[0]), _flags(option.values[1])
                if mask & SYN and cmp & SYN:
                    return not option.negated
    return None


def _tcp(rule: Rule) -> bool:
    return rule.proto == 6 and not rule.proto_neg


def _warn(source: str, line: int, text: str) -> str:
    return f"{source}:{line}: warning: {text}"


def _chain_checks(source: str, chain: Chain, helpers: bool) -> list[str]:
    out: list[str] = []
    guarded = invalid_dropped = False
    for number, rule in enumerate(chain.rules, start=1):
        syn = _syn_test(rule)
        if _tcp(rule) and syn is False and _drops(rule, "NEW"):
            guarded = True
        if _drops(rule, "INVALID"):
            invalid_dropped = True
        if _tcp(rule) and _accepts(rule, "NEW") and syn is not True and not guarded:
            out.append(_warn(source, rule.line, f"{chain.name} #{number} accepts TCP NEW "
                             "without --syn: a stray ACK or FIN is NEW too "
                             "(nf_conntrack_tcp_loose=1) and creates an entry"))
        if _accepts(rule, "ESTABLISHED") and not invalid_dropped:
            out.append(_warn(source, rule.line, f"{chain.name} #{number} accepts "
                             "ESTABLISHED but no earlier rule drops INVALID: INVALID packets "
                             "fall through to the rules below"))
            invalid_dropped = True  # once per chain
        if _accepts(rule, "RELATED") and not helpers and rule.proto not in (1, 58):
            out.append(_warn(source, rule.line, f"{chain.name} #{number} accepts "
                             "RELATED but no `-t raw -j CT --helper` attaches a helper (not "
                             "automatic since Linux 4.7): only ICMP errors will be RELATED"))
    return out


def _covers(wide: Address | None, wide_neg: bool, narrow: Address | None,
            narrow_neg: bool) -> bool:
    if wide is None:
        return True
    if narrow is None:
        return False
    if wide_neg or narrow_neg:
        return wide_neg == narrow_neg and wide == narrow
    return wide.mask & narrow.mask == wide.mask and narrow.addr & wide.mask == wide.addr


def _iface_covers(wide: str | None, wide_neg: bool, narrow: str | None,
                  narrow_neg: bool) -> bool:
    if wide is None:
        return True
    if narrow is None or wide_neg != narrow_neg:
        return False
    if wide_neg:
        return wide == narrow
    return narrow == wide or (wide.endswith("+") and narrow.startswith(wide[:-1]))


def shadows(early: Rule, late: Rule) -> bool:
    """Does `early` decide every packet `late` could match? (Only provable cases.)"""
    target = early.target
    if target is None or target.goto or target.name not in TERMINAL:
        return False
    if any(m.name in STATEFUL for m in early.matches):
        return False
    if early.proto and (early.proto, early.proto_neg) != (late.proto, late.proto_neg):
        return False
    if early.fragment is not None and early.fragment != late.fragment:
        return False
    if not (_covers(early.src, early.src_neg, late.src, late.src_neg)
            and _covers(early.dst, early.dst_neg, late.dst, late.dst_neg)
            and _iface_covers(early.iface_in, early.iface_in_neg, late.iface_in,
                              late.iface_in_neg)
            and _iface_covers(early.iface_out, early.iface_out_neg, late.iface_out,
                              late.iface_out_neg)):
        return False
    return all(_match_in(m, late.matches) for m in early.matches if m.name != "comment")


def _match_in(match: Match, others: tuple[Match, ...]) -> bool:
    return any(m == match for m in others)


def _shadowed(source: str, chain: Chain) -> list[str]:
    out: list[str] = []
    for j, late in enumerate(chain.rules):
        for i in range(j):
            early = chain.rules[i]
            if shadows(early, late):
                out.append(_warn(source, late.line, f"{chain.name} #{j + 1} is "
                                 f"shadowed by {chain.name} #{i + 1} (line {early.line}), which "
                                 "already decides every packet it could match"))
                break
    return out


def _unreachable(source: str, table: Table) -> list[str]:
    names = {c.name: c for c in table.chains}
    seen: set[str] = set()
    todo = [c.name for c in table.chains if c.builtin]
    while todo:
        name = todo.pop()
        if name in seen or name not in names:
            continue
        seen.add(name)
        todo.extend(r.target.name for r in names[name].rules if r.target is not None)
    return [_warn(source, c.line, f"chain {c.name} of table {table.name} is never reached "
                  "(no jump or goto from a built-in chain leads to it)")
            for c in table.chains if not c.builtin and c.name not in seen]


def _helpers(ruleset: Ruleset) -> bool:
    raw = ruleset.table("raw")
    return raw is not None and any(
        r.target is not None and r.target.name == "CT"
        and any(o.name == "--helper" for o in r.target.options)
        for c in raw.chains for r in c.rules)


def lint(ruleset: Ruleset) -> list[str]:
    """Every warning for one family's ruleset, in table and chain order."""
    out: list[str] = []
    helpers = _helpers(ruleset)
    for table in ruleset.tables:
        for chain in table.chains:
            if table.name == "filter":
                out.extend(_chain_checks(ruleset.source, chain, helpers))
            out.extend(_shadowed(ruleset.source, chain))
        out.extend(_unreachable(ruleset.source, table))
    return sorted(out, key=_line_of)


def _line_of(text: str) -> int:
    parts = text.split(":")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
