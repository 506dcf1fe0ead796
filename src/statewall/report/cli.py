"""The `report` command, and `demo --report`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from typing import Any

EXIT_OK = 0


def add_report_command(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register `report` on the CLI's subparsers: every option of `replay` that
    shapes the replay, the selection options, the output file and side B."""
    from statewall.cli_select import add_replay_options
    from statewall.dask.options import add_engine_options

    report = sub.add_parser("report", help="one self-contained HTML page: overview, the ruleset "
                                           "with counters, ladder diagrams, TCP states")
    add_common(report)
    add_replay_options(report)
    report.add_argument("-o", "--output", metavar="FILE", required=True,
                        help="the HTML file to write")
    report.add_argument("--title", help="the page's title (default: the capture's name)")
    report.add_argument("--rules-b", metavar="FILE",
                        help="a second iptables-save file, shown side by side with what it changes")
    report.add_argument("--rules6-b", metavar="FILE", help="side B's ip6tables-save file")
    report.add_argument("--nft-b", metavar="FILE", help="side B's nftables ruleset")
    add_engine_options(report)
    report.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from statewall.cli import InputError, UsageError, check_numbers, options_from
    from statewall.cli_select import selection_from
    from statewall.report import _chosen, build_report
    from statewall.rules.errors import RulesetError

    select = selection_from(args)
    check_numbers(args)
    machine = options_from(args)
    try:
        machine.topology()  # a bad address is a usage error, found before any file is read
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.engine == "dask":
        from statewall.dask.cli import dask_report

        return dask_report(args, machine, select)
    changes: dict[str, Any] = {k: v for k, v in (("rules", args.rules_b), ("rules6", args.rules6_b),
                                 ("nft", args.nft_b)) if v is not None}
    machine_b = replace(machine, **changes) if changes else None
    try:
        page = build_report(args.capture, machine, machine_b=machine_b, select=select,
                            limit=args.limit, title=args.title,
                            chosen=_chosen(args.filter, _conn(args.conn)))
    except RulesetError as error:
        raise InputError(str(error)) from None
    write_page(args.output, page)
    return EXIT_OK


def _conn(text: str | None) -> int | None:
    return None if text is None else int(text, 0)


def write_page(path: str, page: str) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write(page)


def demo_report(path: str, router: bool) -> int:
    """`statewall demo --report FILE`: the demo's capture and ruleset, as a report."""
    import tempfile

    from statewall.api import MachineOptions
    from statewall.capture import LINKTYPE_RAW
    from statewall.capture.writer import write_pcap
    from statewall.demo import DEMO_RULES, ROUTER_IFACES, ROUTER_RULES, demo_frames, router_frames
    from statewall.report import build_report

    with tempfile.TemporaryDirectory(prefix="statewall-demo-") as folder:
        capture, rules = f"{folder}/demo.pcap", f"{folder}/demo.rules"
        write_pcap(capture, router_frames() if router else demo_frames(), linktype=LINKTYPE_RAW)
        with open(rules, "w", encoding="utf-8") as out:
            out.write(ROUTER_RULES if router else DEMO_RULES)
        machine = MachineOptions(rules=rules, ifaces=ROUTER_IFACES if router else ())
        title = "statewall demo" + (" --router" if router else "")
        page = build_report(capture, machine, title=title)
    page = page.replace(folder + "/", "")  # the page names the demo's files, not where they were
    write_page(path, page)
    return EXIT_OK
