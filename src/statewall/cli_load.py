"""`statewall events`, `stats` and `compare`: the table under load and over time.

Thin commands over the library: `Firewall(event_sink=...)` for the
`conntrack -E` stream, `ConntrackTable.stats` for `conntrack -S`, and
`compare.compare` for what-if replays. Option parsing is shared with
`replay` (capture, rules, topology, knobs); errors reach cli.main, which
maps them to exit codes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from typing import Any

from statewall.cli_select import add_events_options, event_text, events_filter, stats_text
from statewall.compare import compare, report_lines
from statewall.config import Sysctls
from statewall.engine import Firewall
from statewall.events import ConntrackEvent
from statewall.packet import Packet
from statewall.profiles import PROFILES, effective_values, parse_memory
from statewall.replay import read_packets

EXIT_OK, EXIT_DIFFER = 0, 1


def add_load_commands(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register events, stats and compare on the CLI's subparsers."""
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

    what_if = sub.add_parser("compare", help="replay under two settings; show what changes")
    add_common(what_if)
    for side in ("a", "b"):
        what_if.add_argument(f"--sysctl-{side}", action="append", default=[],
                             metavar="NAME=VALUE", help=f"a knob for side {side.upper()} only")
        what_if.add_argument(f"--profile-{side}", choices=sorted(PROFILES),
                             help=f"the profile of side {side.upper()} (default --profile)")
    what_if.set_defaults(handler=cmd_compare)


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
    try:
        for _ in firewall.replay_file(args.capture, "summary", args.limit):
            pass
    finally:
        sys.stdout.write(stats_text(firewall, args.format))
        sys.stdout.flush()
    return EXIT_OK


def side_config(args: argparse.Namespace, side: str) -> Sysctls:
    """Profile < files < --sysctl < --sysctl-a/b, per side."""
    memory = parse_memory(args.memory) if args.memory else None
    profile = getattr(args, f"profile_{side}") or args.profile
    assignments = [*args.sysctl, *getattr(args, f"sysctl_{side}")]
    return Sysctls().with_values(effective_values(profile, args.sysctl_file, assignments, memory))


def cmd_compare(args: argparse.Namespace) -> int:
    from statewall.cli import UsageError, firewall_from

    if not (args.sysctl_a or args.sysctl_b or args.profile_a or args.profile_b):
        raise UsageError("compare needs something to differ: --sysctl-a/--sysctl-b "
                         "or --profile-a/--profile-b")
    if args.capture == "-":
        # Each side decodes the capture on its own, so it is read twice.
        raise UsageError("compare reads the capture twice: give a file, not - (standard input)")
    cfg_a, cfg_b = side_config(args, "a"), side_config(args, "b")

    def make(cfg: Sysctls) -> Callable[[Callable[[ConntrackEvent], None]], Firewall]:
        return lambda sink: firewall_from(args, cfg=cfg, event_sink=sink)

    result = compare(_pairs(args.capture, args.limit), make(cfg_a), make(cfg_b))
    for line in report_lines(result):
        sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return EXIT_DIFFER if result.differences else EXIT_OK


def _pairs(path: str, limit: int | None) -> Iterator[tuple[Packet, Packet]]:
    """The capture decoded twice, in lockstep: one copy per side."""
    return zip(read_packets(path, limit), read_packets(path, limit), strict=True)
