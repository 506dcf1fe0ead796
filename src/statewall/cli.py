"""The `statewall` command: parse options, call the library, render values.

Exit codes (also in the README):
  0  success
  1  the answer is "no": verify found disagreements, check found errors,
     diff found differences
  2  bad usage (unknown option or command, bad option value, a sysctl name,
     value or range error, in --sysctl or a --sysctl-file)
  3  bad input: a capture, ruleset, ipset or sysctl file that is missing or
     unreadable, a truncated capture, a ruleset or ipset error (all packets
     that could be read were still processed and reported)
  4  the environment lacks something (verify: not root, tool missing;
     --engine dask: dask not installed, no scheduler at the address)
  5  --engine dask refused: what partitioning cannot keep exact is in play
     (listed; --inexact runs it anyway, marked)
  130 interrupted
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, NoReturn, TextIO

from statewall import __version__
from statewall._core import ReplayRun, escape_controls
from statewall.api import MachineOptions, build_firewall
from statewall.capture import LINKTYPE_RAW, CaptureError
from statewall.cli_select import (
    add_replay_options,
    add_table_options,
    selection_from,
    table_filter,
    table_output,
)
from statewall.config import SysctlError, Sysctls, parse_assignment
from statewall.dask.options import add_engine_options
from statewall.engine import EventSink, Firewall
from statewall.profiles import add_profile_options, values_from_args
from statewall.topology import Topology, add_topology_options, parse_iface
from statewall.wording import count

EXIT_OK = 0
EXIT_NO = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_ENVIRONMENT = 4
EXIT_INEXACT = 5
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Options that make no sense together or cannot be parsed."""


class InputError(Exception):
    """A file the user gave cannot be used (capture, ruleset)."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `statewall replay: error: ...` and exit 2,
    without the usage block (`--help` still prints it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {escape_controls(message)}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # Name the command whose options these are not, as its own parser would.
        commands: dict[str, argparse.ArgumentParser] = parser.commands  # type: ignore[attr-defined]
        commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("statewall: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as error:  # the single place errors become messages and exit codes
        if args.debug:
            raise
        code, message = classify_error(error)
        # Messages quote file names and ruleset text: control characters in
        # them are shown, never obeyed, and the message stays one line.
        print(f"statewall: {escape_controls(message)}", file=sys.stderr)
        return code


def classify_error(error: Exception) -> tuple[int, str]:
    from statewall.dask.options import classify_dask_error

    dask_error = classify_dask_error(error)
    if dask_error is not None:
        return dask_error
    if isinstance(error, (SysctlError, UsageError)):
        return EXIT_USAGE, str(error)
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return EXIT_INPUT, f"{error.filename}: {error.strerror}"  # as `cat` says it
    if isinstance(error, (CaptureError, InputError, OSError)):
        return EXIT_INPUT, str(error)
    return EXIT_INPUT, f"internal error: {type(error).__name__}: {error} (run with --debug)"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="statewall",
        description="What a stateful Linux firewall does to a capture, packet by packet, and why.",
    )
    parser.add_argument("--version", action="version", version=f"statewall {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    replay = sub.add_parser("replay", help="one line per packet: ctstate, verdict, reason")
    _add_common(replay, several=True)
    replay.add_argument("--format", choices=("text", "jsonl"), default="text")
    replay.add_argument("--explain", action="store_true",
                        help="text: print the deciding rule's text under each packet's line")
    add_color_option(replay)
    replay.add_argument("--no-summary", action="store_true", help="omit the totals at the end")
    replay.add_argument("--summary-only", action="store_true",
                        help="no line per packet: only the totals (and --counters)")
    replay.add_argument("--counters", nargs="?", const="save", choices=("save", "list", "exact"),
                        help="after the replay, print the ruleset with per-rule counters: as "
                             "`iptables-save -c` (save, the default), `iptables -L -v -n` (list) "
                             "or with -x (exact)")
    add_replay_options(replay)
    add_engine_options(replay)
    replay.set_defaults(handler=cmd_replay)

    table = sub.add_parser("table", help="the conntrack table after the capture (or at --at)")
    _add_common(table, several=True)
    table.add_argument("--at", metavar="TIME",
                       help="seconds since the first packet (e.g. 12.5) or an absolute epoch time")
    table.add_argument("--format", choices=("proc", "conntrack", "json"), default="proc",
                       help="/proc/net/nf_conntrack (default), `conntrack -L` lines or JSON")
    table.add_argument("--expectations", action="store_true",
                       help="the expectation table instead (/proc/net/nf_conntrack_expect or "
                            "`conntrack -L expect`)")
    add_table_options(table)
    add_engine_options(table)
    table.set_defaults(handler=cmd_table)

    demo = sub.add_parser("demo", help="replay a built-in capture that shows every state")
    demo.add_argument("--format", choices=("text", "jsonl"), default="text")
    demo.add_argument("--router", action="store_true",
                      help="a home router instead: masquerading and a port forward (NAT)")
    demo.add_argument("--explain", action="store_true",
                      help="print the deciding rule's text under each packet's line")
    add_color_option(demo)
    demo.add_argument("--report", metavar="FILE",
                      help="write the demo's HTML report (as `statewall report`) to FILE instead")
    demo.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    demo.set_defaults(handler=cmd_demo)

    sysctl = sub.add_parser("sysctl", help="print the effective conntrack and defrag knobs")
    add_profile_options(sysctl, with_sysctl=True)
    sysctl.add_argument("--debug", action="store_true", help="show tracebacks")
    sysctl.set_defaults(handler=cmd_sysctl)

    from statewall.cli_load import add_load_commands
    from statewall.oracle.cli_verify import add_verify_command

    add_verify_command(sub)
    add_load_commands(sub, _add_common)

    from statewall.conns import add_conns_command

    add_conns_command(sub, lambda parser: _add_common(parser, several=True))

    from statewall.report.cli import add_report_command

    add_report_command(sub, _add_common)

    from statewall.rules.cli_commands import add_check_parser

    add_check_parser(sub)
    parser.commands = sub.choices  # type: ignore[attr-defined]
    return parser


def _add_common(parser: argparse.ArgumentParser, several: bool = False) -> None:
    """The options every replaying command takes; `several`: more than one
    capture may be given (`capture_paths`)."""
    if several:
        parser.add_argument("capture", nargs="+",
                            help="pcap or pcapng file (gzip accepted); - reads standard input; "
                                 "several files, folders or quoted glob patterns: captures of "
                                 "one link, merged by timestamp")
    else:
        parser.add_argument("capture",
                            help="pcap or pcapng file (gzip accepted); - reads standard input")
    parser.add_argument("--rules", metavar="FILE", help="iptables-save file (IPv4)")
    parser.add_argument("--rules6", metavar="FILE", help="ip6tables-save file (IPv6)")
    add_nft_option(parser)
    parser.add_argument("--ipset", action="append", default=[], metavar="FILE",
                        help="`ipset save` output with the sets that -m set and SET use (repeatable)")
    parser.add_argument(
        "--allow-unknown", action="store_true",
        help="evaluate rules statewall cannot model as 'unknown' instead of refusing")
    parser.add_argument("--auto-helpers", action="store_true",
                        help="LEGACY (kernels before 4.7): attach FTP/IRC/TFTP/Amanda helpers by port")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for -m statistic --mode random (default 0)")
    parser.add_argument("--sysctl", action="append", default=[], metavar="NAME=VALUE",
                        help="set a knob, e.g. nf_conntrack_tcp_loose=0 (repeatable)")
    add_profile_options(parser)
    add_topology_options(parser)
    parser.add_argument("--limit", type=int, metavar="N", help="process only the first N packets")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


def add_nft_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nft", metavar="FILE",
                        help="nftables ruleset: `nft list ruleset` text, an nftables.conf or "
                             "`nft -j list ruleset` JSON (alone or with --rules/--rules6)")


def add_color_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                        help="colour DROP, REJECT, UNKNOWN and INVALID in the text lines: auto "
                             "(the default) only on a terminal and without NO_COLOR set")


def use_color(choice: str, out: TextIO) -> bool:
    """Whether text lines written to `out` get colours (`--color`); auto: only a
    terminal, and only while NO_COLOR (any non-empty value, no-color.org) is unset."""
    if choice != "auto":
        return choice == "always"
    return not os.environ.get("NO_COLOR") and out.isatty()


def options_from(args: argparse.Namespace, **changes: Any) -> MachineOptions:
    """The machine the common options describe (`changes` override fields, as
    `diff` does per side)."""
    try:
        ifaces = [parse_iface(text) for text in args.iface]
    except ValueError as error:
        raise UsageError(str(error)) from None
    options = MachineOptions(
        rules=args.rules, rules6=args.rules6, nft=args.nft, ipsets=tuple(args.ipset),
        local=tuple(args.local),
        ifaces=tuple(ifaces), sysctls=tuple(parse_assignment(a) for a in args.sysctl),
        sysctl_files=tuple(args.sysctl_file), profile=args.profile, memory=args.memory,
        auto_helpers=args.auto_helpers, allow_unknown=args.allow_unknown, seed=args.seed)
    return replace(options, **changes)


def config_from(args: argparse.Namespace) -> Sysctls:
    """Profile < --memory < --sysctl-file < --sysctl (profiles.py)."""
    return Sysctls().with_values(values_from_args(args))


SEED_MAX = 2**64 - 1  # the statistic match's generator is seeded with a u64


def check_numbers(args: argparse.Namespace) -> None:
    """The numeric options every command shares, checked before any file is read."""
    limit = getattr(args, "limit", None)
    if limit is not None and limit < 1:
        # --limit 0 would read nothing: surely a slip, not a request for an empty run.
        raise UsageError(f"--limit {limit}: expected a number of packets (1 or more)")
    seed = getattr(args, "seed", 0)
    if not 0 <= seed <= SEED_MAX:
        raise UsageError(f"--seed {seed}: expected a number from 0 to {SEED_MAX}")


CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz", ".cap.gz")


def capture_paths(args: argparse.Namespace) -> str | list[str]:
    """The captures the arguments name, in place of them in `args.capture`: a
    file as given; a folder: its files named *.pcap, *.pcapng, *.cap (gzip:
    with .gz), by name; a pattern with *, ? or [ (quoted, or the shell would
    expand it): the files it matches, by name. One capture is a path,
    several a list (merged by timestamp)."""
    import glob

    given: list[str] = args.capture if isinstance(args.capture, list) else [args.capture]
    if "-" in given and len(given) > 1:
        raise UsageError("- (standard input) is one capture: it cannot be merged with others")
    paths: list[str] = []
    for arg in given:
        if os.path.isdir(arg):
            found = sorted(os.path.join(arg, name) for name in os.listdir(arg)
                           if name.endswith(CAPTURE_SUFFIXES)
                           and os.path.isfile(os.path.join(arg, name)))
            if not found:
                raise InputError(f"{arg}: a folder without captures (*.pcap, *.pcapng, *.cap, "
                                 "gzip-compressed or not)")
            paths += found
        elif glob.has_magic(arg) and not os.path.exists(arg):
            found = sorted(glob.glob(arg))
            if not found:
                raise InputError(f"{arg}: no file matches this pattern")
            paths += found
        else:
            paths.append(arg)
    resolved: str | list[str] = paths[0] if len(paths) == 1 else paths
    args.capture = resolved
    return resolved


def firewall_from(args: argparse.Namespace, event_sink: EventSink | None = None,
                  conn_log: bool = False, **changes: Any) -> Firewall:
    check_numbers(args)
    options = options_from(args, **changes)
    try:
        options.topology()  # a bad address is a usage error, found before any file is read
    except ValueError as error:
        raise UsageError(str(error)) from None
    from statewall.rules.errors import RulesetError

    try:
        return build_firewall(options, event_sink, conn_log=conn_log)
    except RulesetError as error:
        raise InputError(str(error)) from None


def cmd_replay(args: argparse.Namespace) -> int:
    captures = capture_paths(args)
    select = selection_from(args)
    if isinstance(captures, list) and select is not None and select.write is not None:
        raise UsageError("-w writes one capture's packets: give one capture")
    firewall = firewall_from(args)
    if args.summary_only and args.no_summary:
        raise UsageError("--summary-only and --no-summary leave nothing to print")
    if args.explain and args.format == "jsonl":
        raise UsageError("--explain shapes the text lines; jsonl's reason holds the rule's "
                         "text already")
    fmt = "summary" if args.summary_only else args.format
    if args.engine == "dask":
        from statewall.dask.cli import dask_replay

        return dask_replay(args, firewall, select, fmt)
    run: ReplayRun | None = None
    try:
        run = firewall.replay_file(captures, fmt, args.limit, select=select,
                                   explain=args.explain, color=use_color(args.color, sys.stdout))
        return render_run(run, fmt, sys.stdout, summary=not args.no_summary)
    finally:
        replay_trailer(args, firewall, fmt, run.ipv6_packets if run is not None else None)


def replay_trailer(args: argparse.Namespace, firewall: Firewall, fmt: str,
                   ipv6_packets: int | None) -> None:
    """What `replay` prints after the totals: hints (when the replay ran,
    `ipv6_packets` not None), rules left unknown, ruleset notes, counters."""
    unknown = firewall.unknown_rules()
    if fmt != "jsonl" and not args.no_summary:
        if ipv6_packets is not None:
            sys.stdout.writelines(f"hint: {hint}\n" for hint in hints(firewall, ipv6_packets))
        if unknown:
            sys.stdout.write("rules that can leave a packet's fate undetermined (UNKNOWN):\n")
            sys.stdout.writelines(f"  {line}\n" for line in unknown)
        if firewall.rules is not None:
            sys.stdout.writelines(f"{note}\n" for note in firewall.rules.notes)
    if args.counters:
        sys.stdout.write(counters_text(firewall, args.counters))
    sys.stdout.flush()


def hints(firewall: Firewall, ipv6_packets: int) -> list[str]:
    """Likely mistakes in how the machine was described, seen after a replay."""
    out = []
    rules = firewall.rules
    if rules is not None and not rules.covers(6) and ipv6_packets:
        out.append(f"{count(ipv6_packets, 'IPv6 packet')} met no IPv6 ruleset and passed "
                   "unfiltered: give the ip6tables-save file with --rules6")
    if rules is not None and rules.v4 is not None and not firewall.topology.local:
        table = rules.v4.source.table("filter")
        inbound = table.chain("INPUT") if table else None
        forward = table.chain("FORWARD") if table else None
        if inbound is not None and inbound.rules and (forward is None or not forward.rules):
            out.append("every packet went through FORWARD (no --local address), but the "
                       "ruleset's filtering is in INPUT: is this a host? use --local ADDR")
    if rules is not None and not firewall.topology.addresses:
        for family, compiled in ((4, rules.v4), (6, rules.v6)):
            nat = compiled.source.table("nat") if compiled is not None else None
            used = {rule.target.name for chain in (nat.chains if nat else ())
                    for rule in chain.rules if rule.target is not None}
            for target in sorted(used & {"MASQUERADE", "REDIRECT"}):
                out.append(f"the IPv{family} nat table uses {target}, which takes an "
                           "interface's address, and no interface has one: give it with "
                           "--iface NAME=ADDRESS/PREFIX (packets it matched were dropped)")
    return out


def counters_text(firewall: Firewall, style: str) -> str:
    """The ruleset with the replay's counters, as iptables and `nft list ruleset` print them."""
    from statewall.rules.counters import format_counters_list, format_counters_save

    rules = firewall.rules
    if rules is None:
        return "(no ruleset: no counters)\n"
    firewall.sync_counters()
    out = []
    for label, compiled in (("iptables", rules.v4), ("ip6tables", rules.v6)):
        if compiled is None:
            continue
        if style == "save":
            out.append(f"# {label}-save -c\n" + format_counters_save(compiled))
            continue
        for table in compiled.tables:
            out.append(f"# {label} -t {table} -L -v -n{' -x' if style == 'exact' else ''}\n"
                       + format_counters_list(compiled, table, exact=style == "exact"))
    if rules.nft is not None:
        from statewall.nft.counters import counters_text as nft_text

        out.append("# nft list ruleset\n" + nft_text(rules.nft, firewall.nft_counters()))
    return "\n".join(out)


def render_run(run: ReplayRun, fmt: str, out: TextIO, summary: bool = True) -> int:
    """Print the core's output as it comes; a capture error is reported after the packets.

    `fmt` is "text", "jsonl" or "summary" (no line per packet, the totals only).
    The totals follow whatever was printed, even when the capture breaks off;
    a capture that yields nothing before failing gets no totals, only its error.
    """
    progress = Progress(enabled=fmt != "jsonl" and out.isatty() and sys.stderr.isatty())
    binary = getattr(out, "buffer", None)
    out.flush()
    finished = False
    try:
        if not progress.enabled and _is_stdout(out):
            run.write_to_stdout()  # the core writes to file descriptor 1 itself
        for chunk in run:
            progress.clear()
            if binary is not None:
                binary.write(chunk)
            else:
                out.write(chunk.decode())
            progress.tick(run.packets)
        finished = True
    finally:
        progress.clear()
        if binary is not None:
            binary.flush()
        if fmt != "jsonl" and summary and (finished or run.packets):
            out.write("\n".join(run.totals_lines()) + "\n")
        out.flush()
    return EXIT_OK


def _is_stdout(out: TextIO) -> bool:
    """Whether `out` is the process's own standard output (file descriptor 1)."""
    try:
        return out is sys.stdout and out.fileno() == 1
    except (AttributeError, OSError, ValueError):
        return False


class Progress:
    """A one-line progress counter on stderr, only when a person is watching."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.shown = False
        self.last = 0.0

    def tick(self, packets: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last >= 0.25:
            self.last = now
            sys.stderr.write(f"\r{count(packets, 'packet')}…")
            sys.stderr.flush()
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            self.shown = False


def cmd_table(args: argparse.Namespace) -> int:
    """The table as a listing at `--at` (or after the last packet) would show it.

    A capture that breaks off still gets the table of what was read, then
    its error (exit 3), as `replay` does with its packets.
    """
    captures = capture_paths(args)
    entries = table_filter(args)
    firewall = firewall_from(args)
    at_value = parse_at(args.at)
    if args.engine == "dask":
        from statewall.dask.cli import dask_table

        return dask_table(args, firewall, entries, at_value)
    run = firewall.replay_file(captures, "summary", args.limit, until=at_value)
    try:
        for _ in run:
            pass
    finally:
        when = firewall.now
        if at_value is not None and run.first_ts is not None:
            when = at_time(args.at, at_value, run.first_ts)
        sys.stdout.writelines(table_output(firewall, when, args, entries))
        sys.stdout.flush()
    return EXIT_OK


def at_time(text: str, value: float, first_ts: float) -> float:
    """`--at` as an absolute time, refused before the capture's first packet: the
    table then was not made by this capture."""
    when = resolve_time(value, first_ts)
    if when < first_ts:
        raise UsageError(f"--at {text}: before the capture's first packet, at {first_ts:.6f} "
                         f"({format_utc(first_ts)}); give seconds from it (0 or more) or a "
                         "later epoch time")
    return when


def format_utc(ts: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def parse_at(text: str | None) -> float | None:
    """`--at` checked before any packet is read, so a typo costs no replay."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--at {text!r}: expected seconds (e.g. 12.5 or 1700000000.25)") from None
    if not math.isfinite(value):
        raise UsageError(f"--at {text!r}: expected a finite number of seconds")
    return value


def resolve_time(value: float, first_ts: float) -> float:
    """`--at` as an absolute time: small numbers are offsets from the first packet."""
    return value if value >= 1e9 else first_ts + value


def cmd_demo(args: argparse.Namespace) -> int:
    import tempfile

    from statewall.capture.writer import write_pcap
    from statewall.demo import (
        DEMO_RULES,
        ROUTER_IFACES,
        ROUTER_RULES,
        demo_frames,
        router_frames,
    )
    from statewall.rules.hooks import IptablesEngine, compile_text

    router = args.router
    rules = ROUTER_RULES if router else DEMO_RULES
    if args.report is not None:
        from statewall.report.cli import demo_report

        return demo_report(args.report, router)
    topology = Topology.build((), ROUTER_IFACES if router else ())
    firewall = Firewall(rules=IptablesEngine(compile_text(rules, "demo.rules", 4, topology),
                                             None), topology=topology)
    if args.format == "text":
        sys.stdout.write("ruleset (iptables-save):\n" + rules + "\n")
        if router:
            sys.stdout.write("interfaces: " + ", ".join(
                f"{name} {' '.join(nets)}" for name, nets in ROUTER_IFACES) + "\n\n")
    with tempfile.TemporaryDirectory(prefix="statewall-demo-") as folder:
        capture = f"{folder}/demo.pcap"
        write_pcap(capture, router_frames() if router else demo_frames(),
                   linktype=LINKTYPE_RAW)
        run = firewall.replay_file(capture, args.format, explain=args.explain,
                                   color=use_color(args.color, sys.stdout))
        code = render_run(run, args.format, sys.stdout)
    if args.format == "text":
        if router:
            sys.stdout.write("\nconntrack -L at the end:\n")
            sys.stdout.writelines(firewall.table_lines(fmt="conntrack"))
        else:
            sys.stdout.write("\nconntrack table at the end (/proc/net/nf_conntrack):\n")
            sys.stdout.writelines(firewall.table_lines())
    return code


def cmd_sysctl(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    for name, value in cfg.items():
        sys.stdout.write(f"{name} = {value}\n")
    return EXIT_OK


if __name__ == "__main__":
    # `python -m statewall.cli`: run the imported module's main, so that the
    # errors other modules raise are this module's own classes (under
    # `__main__` they would be a second copy's, and go unrecognised).
    from statewall.cli import main as imported_main

    raise SystemExit(imported_main())
