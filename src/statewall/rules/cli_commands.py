"""The `statewall check` command: load and check rulesets, report every error.

iptables-restore stops at the first error; `check` reports them all, in one
pass: the parser and then the load-time checks read on after an error as if
its line were blank, so one bad rule does not hide the next (a rule that
only fails because an earlier line was dropped may add a follow-on error, as
a compiler's would). A ruleset that loads may come with notes
(`FILE:LINE: note: ...`) on how statewall will evaluate it with what it was
given (`check` takes no routes, so rpfilter rules get one). With `--lint`, a
ruleset that loads is also checked for the mistakes statewall.rules.lint knows.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from statewall._core import escape_controls
from statewall.rules.compile import compile_errors, compile_ruleset
from statewall.rules.ext import RuleState
from statewall.rules.ipset import load_ipset_file
from statewall.rules.lint import lint as run_lint
from statewall.rules.model import Ruleset
from statewall.rules.parser import parse_ruleset_errors


def load_sets(paths: Sequence[str | os.PathLike[str]]) -> dict[str, Any]:
    """The sets of every `--ipset FILE`, for RuleState.sets; a later file wins a name."""
    sets: dict[str, Any] = {}
    for path in paths:
        sets.update(load_ipset_file(path))
    return sets


def check_text(text: str, source: str, family: int, allow_unknown: bool,
               sets: dict[str, Any] | None = None
               ) -> tuple[list[str], Ruleset | None, list[str]]:
    """(every error as `file:line: message`, in line order; the ruleset when it
    loaded cleanly; the notes on how its rules will be evaluated)."""
    ruleset, errors = parse_ruleset_errors(text, source, family, allow_unknown)
    state = RuleState(sets=dict(sets or {}))
    if ruleset is not None:
        errors += compile_errors(ruleset, state, allow_unknown)
    if ruleset is None or errors:
        errors.sort(key=lambda err: err.line)
        return [str(err) for err in errors], None, []
    return [], ruleset, compile_ruleset(ruleset, state, allow_unknown).notes


def check_command(rules_v4: str | None, rules_v6: str | None, lint: bool,
                  allow_unknown: bool, ipsets: Sequence[str] = ()) -> tuple[int, list[str]]:
    """Exit code 0 (loads; notes and lint warnings do not fail) or 1 (errors), and the
    lines to print."""
    sets = load_sets(ipsets)
    out: list[str] = []
    failed = False
    for path, family in ((rules_v4, 4), (rules_v6, 6)):
        if path is None:
            continue
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        errors, ruleset, notes = check_text(text, str(path), family, allow_unknown, sets)
        out.extend(errors)
        out.extend(notes)
        failed = failed or bool(errors)
        if lint and ruleset is not None:
            out.extend(run_lint(ruleset))
    # Lines quote the ruleset's own text: its control characters are shown, not obeyed.
    return (1 if failed else 0), [escape_controls(line) for line in out]


def _handle_check(args: argparse.Namespace) -> int:
    code, lines = check_command(args.rules, args.rules6, args.lint, args.allow_unknown,
                                args.ipset or ())
    for line in lines:
        print(line)
    return code


def add_check_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `statewall check RULES [--rules6 FILE] [--lint] [--allow-unknown] [--ipset FILE]`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "check", help="load and compile iptables-save files; report every error")
    parser.add_argument("rules", metavar="RULES", help="iptables-save file (IPv4)")
    parser.add_argument("--rules6", metavar="FILE", help="ip6tables-save file (IPv6)")
    parser.add_argument("--lint", action="store_true",
                        help="also warn about likely mistakes (stray ACKs, INVALID, helpers, "
                             "shadowed rules, unreachable chains)")
    parser.add_argument("--allow-unknown", action="store_true",
                        help="accept rules statewall cannot evaluate")
    parser.add_argument("--ipset", metavar="FILE", action="append",
                        help="`ipset save` output holding the sets -m set and SET use "
                             "(repeatable)")
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(handler=_handle_check)
    return parser
