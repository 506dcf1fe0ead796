"""`statewall events`, `stats` and `diff`: the table under load and over time, and what-if.

Thin commands over the library: `Firewall(event_sink=...)` for the
`conntrack -E` stream, `ConntrackTable.stats` for `conntrack -S`, and
`statewall.diff.diff` for what-if replays. Option parsing is shared with
`replay` (capture, rules, topology, knobs); errors reach cli.main, which
maps them to exit codes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from statewall.cli_select import add_events_options, event_text, events_filter, stats_text
from statewall.config import parse_assignment
from statewall.events import ConntrackEvent
from statewall.profiles import PROFILES

EXIT_OK, EXIT_DIFFER = 0, 1


def add_load_commands(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register events, stats and diff on the CLI's subparsers."""
    events = sub.add_parser("events", help="the `conntrack -E` stream the capture would produce")
    add_common(events)
    events.add_argument("--expectations", action="store_true",
                        help="also print expectation events (`conntrack -E expect` lines)")
    events.add_argument("--timestamps", action="store_true",
                        help="prefix `[seconds.microseconds]\\t` as `conntrack -E -o timestamp`")
    add_events_options(events)
    events.set_defaults(handler=cmd_events)

    stats = sub.add_parser("stats", help="the `conntrack -S` counters after the capture")
    add_common(stats)
    stats.add_argument("--format", choices=("conntrack", "proc", "json"), default="conntrack",
                       help="`conntrack -S` (default), /proc/net/stat/nf_conntrack or JSON")
    stats.set_defaults(handler=cmd_stats)

    what_if = sub.add_parser(
        "diff", help="what changes with another ruleset or settings: replay under A and B")
    add_common(what_if)
    what_if.add_argument("--rules-b", metavar="FILE",
                         help="side B's iptables-save file (default: --rules)")
    what_if.add_argument("--rules6-b", metavar="FILE",
                         help="side B's ip6tables-save file (default: --rules6)")
    what_if.add_argument("--nft-b", metavar="FILE",
                         help="side B's nftables ruleset (default: --nft)")
    what_if.add_argument("--ipset-b", action="append", default=[], metavar="FILE",
                         help="side B's ipsets instead of --ipset (repeatable)")
    for side in ("a", "b"):
        what_if.add_argument(f"--sysctl-{side}", action="append", default=[],
                             metavar="NAME=VALUE", help=f"a knob for side {side.upper()} only")
        what_if.add_argument(f"--profile-{side}", choices=sorted(PROFILES),
                             help=f"the profile of side {side.upper()} (default --profile)")
    what_if.add_argument("--format", choices=("text", "jsonl"), default="text")
    what_if.set_defaults(handler=cmd_diff)


def cmd_events(args: argparse.Namespace) -> int:
    from statewall.cli import firewall_from

    out = sys.stdout
    selected = events_filter(args)

    def show(event: ConntrackEvent) -> None:
        if args.expectations or not event.expectation:
            out.write(event_text(event, args) + "\n")

    firewall = firewall_from(args, event_sink=show)
    firewall.select_events(selected)
    try:
        for _ in firewall.replay_file(args.capture, "summary", args.limit):
            firewall.deliver_events()
    finally:
        firewall.deliver_events()
        out.flush()
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    """The counters of what was read, also when the capture breaks off (then exit 3)."""
    from statewall.cli import firewall_from

    firewall = firewall_from(args)
    # Opened before the try: a capture that cannot be opened has no counters to show.
    run = firewall.replay_file(args.capture, "summary", args.limit)
    try:
        for _ in run:
            pass
    finally:
        sys.stdout.write(stats_text(firewall, args.format))
        sys.stdout.flush()
    return EXIT_OK


def side_changes(args: argparse.Namespace, side: str) -> dict[str, Any]:
    """What side `side` changes: its profile, its --sysctl-a/b after --sysctl and, for
    B, its rulesets and ipsets."""
    from statewall.cli import options_from

    profile = getattr(args, f"profile_{side}") or args.profile
    extra = tuple(parse_assignment(text) for text in getattr(args, f"sysctl_{side}"))
    changes: dict[str, Any] = {"profile": profile, "sysctls": options_from(args).sysctls + extra}
    if side == "b":
        if args.rules_b:
            changes["rules"] = args.rules_b
        if args.rules6_b:
            changes["rules6"] = args.rules6_b
        if args.nft_b:
            changes["nft"] = args.nft_b
        if args.ipset_b:
            changes["ipsets"] = tuple(args.ipset_b)
    return changes


def cmd_diff(args: argparse.Namespace) -> int:
    import json

    from statewall.cli import InputError, UsageError, check_numbers, options_from
    from statewall.diff import diff, jsonl_records, report_lines
    from statewall.rules.errors import RulesetError

    if args.capture == "-":
        # Each side reads the capture on its own, so it is read twice.
        raise UsageError("diff reads the capture twice: give a file, not - (standard input)")

    if not (args.rules_b or args.rules6_b or args.nft_b or args.ipset_b or args.sysctl_a
            or args.sysctl_b or args.profile_a or args.profile_b):
        raise UsageError("diff needs something to differ: --rules-b, --rules6-b, --nft-b, "
                         "--ipset-b, "
                         "--sysctl-a/--sysctl-b or --profile-a/--profile-b")
    check_numbers(args)
    a = options_from(args, **side_changes(args, "a"))
    b = options_from(args, **side_changes(args, "b"))
    try:
        result = diff(args.capture, a, b, limit=args.limit)
    except RulesetError as error:
        raise InputError(str(error)) from None
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.format == "jsonl":
        for record in jsonl_records(result):
            sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    else:
        for line in report_lines(result):
            sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return EXIT_DIFFER if result.differences else EXIT_OK
