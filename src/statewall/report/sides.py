"""Two rulesets side by side: what B changes, by rule (statewall.diff's result).

Both machines replay the capture in lockstep (`statewall.diff.diff`); each
change (A's deciding rule -> B's) becomes one entry naming the rule on each
side by its id in that side's rule list, so the page can put the count
beside the rule on both sides.
"""

from __future__ import annotations

from typing import Any

from statewall.api import MachineOptions, build_firewall
from statewall.diff import diff
from statewall.report.model import rule_ids, ruleset_entries
from statewall.verdict import PacketVerdict

EXAMPLES = 5  # packets shown per change


def side_by_side(capture: str, a: MachineOptions, b: MachineOptions, limit: int | None,
                 rules_a: list[dict[str, Any]]) -> dict[str, Any]:
    """The model's `diff`: B's rules with their counters, and the changes."""
    firewall_b = build_firewall(b)
    for _ in firewall_b.replay_file(capture, "summary", limit):
        pass
    entries_b = ruleset_entries(firewall_b)
    firewall_a = build_firewall(a)
    entries_a = ruleset_entries(firewall_a)  # ids only: A's counters are in rules_a
    result = diff(capture, a, b, limit=limit)
    changes = []
    for change, diffs in result.by_change():
        first = diffs[0]
        changes.append({
            "change": change, "packets": len(diffs),
            "connections": len({d.flow for d in diffs}),
            "a": _rule_id(entries_a, first.a), "b": _rule_id(entries_b, first.b),
            "examples": [[d.frame, d.a.summary, _side(d.a), _side(d.b)]
                         for d in diffs[:EXAMPLES]],
        })
    return {
        "rules_b": [{"id": e.id, "family": e.family, "table": e.table, "chain": e.chain,
                     "number": e.number, "text": e.text, "packets": e.packets,
                     "bytes": e.bytes} for e in entries_b],
        "changes": changes, "summary": result.summary_line(),
        "packets": result.packets, "differences": len(result.differences),
        "a_rules": len(rules_a),
    }


def _rule_id(entries: list[Any], verdict: PacketVerdict) -> int:
    if verdict.rule is None:
        return -1
    return rule_ids(entries, [verdict.rule])[0]


def _side(verdict: PacketVerdict) -> str:
    rule = f" by {verdict.rule}" if verdict.rule is not None else ""
    return f"{verdict.ctstate or '-'} {verdict.verdict}{rule}: {verdict.reason}"
