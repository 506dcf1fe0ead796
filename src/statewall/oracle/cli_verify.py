"""`statewall verify`: the command around `oracle.verify`, and how its findings print.

Exit codes follow cli.py: 0 everything compared agrees, 1 some packet or
the final table differs, 3 an unreadable capture or a ruleset statewall or
the kernel refuses, 4 the machine cannot run the kernel oracle (not root,
a tool missing; the message says what to install), 130 interrupted (after
the namespaces are removed). `verify --cleanup` only removes the namespaces
of earlier runs that were killed (oracle.cleanup): 0 done, 4 not possible.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from statewall._core import escape_controls
from statewall.api import MachineOptions
from statewall.profiles import add_profile_options, changed_values, values_from_args
from statewall.rules.errors import RulesetError
from statewall.rules.ipset import IpSet, parse_ipset_save
from statewall.topology import Interface, Network, add_topology_options, parse_iface
from statewall.wording import count

if TYPE_CHECKING:  # the oracle loads only when `verify` runs: other commands start faster
    from statewall.oracle.verify import PacketComparison, Skipped, VerifyResult

EXIT_OK, EXIT_DIFFER, EXIT_INPUT, EXIT_ENVIRONMENT = 0, 1, 3, 4
IFNAMSIZ = 16  # linux/if.h: names are at most 15 characters
_RULESET_TOOLS = ("`iptables-restore`", "`ip6tables-restore`", "`nft ")


def add_verify_command(subparsers: Any) -> None:
    """Register `verify` on the CLI's subparsers (the object `add_subparsers` returned)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "verify", help="run a capture through statewall and the live kernel; show disagreements")
    parser.add_argument("capture", nargs="?", help="pcap or pcapng file (gzip accepted)")
    parser.add_argument("--rules", metavar="FILE",
                        help="iptables-save file loaded into both (IPv4); without any "
                             "ruleset every policy is ACCEPT")
    parser.add_argument("--rules6", metavar="FILE", help="ip6tables-save file (IPv6)")
    parser.add_argument("--nft", metavar="FILE",
                        help="nftables ruleset (text or `nft -j` JSON) loaded into both; "
                             "the kernel's with `nft -f`")
    parser.add_argument("--ipset", action="append", default=[], metavar="FILE",
                        help="`ipset save` output holding the sets -m set and -j SET use "
                             "(repeatable); loaded into the kernel's firewall too")
    parser.add_argument("--sysctl", action="append", default=[], metavar="NAME=VALUE",
                        help="set a knob in both, e.g. nf_conntrack_tcp_loose=0 (repeatable)")
    add_profile_options(parser)
    add_topology_options(parser)
    parser.add_argument("--keep-namespaces", action="store_true",
                        help="leave the kernel's network namespaces for inspection")
    parser.add_argument("--format", choices=("text", "jsonl"), default="text")
    parser.add_argument("--limit", type=int, metavar="N", help="compare only the first N packets")
    parser.add_argument("--cleanup", action="store_true",
                        help="only remove the namespaces earlier runs left when they were "
                             "killed (every run does this first)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")

    def handler(args: argparse.Namespace) -> int:
        if not args.cleanup and args.capture is None:
            parser.error("the following arguments are required: capture "
                         "(or --cleanup alone)")
        try:
            args.machine = machine_from(args)
        except ValueError as error:
            parser.error(str(error))
        return cmd_verify(args)

    parser.set_defaults(handler=handler)


@dataclass(frozen=True)
class Machine:
    """The firewall's own addresses and interface routes (--local, --iface)."""

    local: tuple[Network, ...] = ()
    ifaces: tuple[tuple[str, tuple[Network, ...]], ...] = ()
    addresses: tuple[tuple[str, Interface], ...] = ()


def machine_from(args: argparse.Namespace) -> Machine:
    """--local and --iface as `replay` reads them (ValueError: a bad one); the oracle's
    firewall has two interfaces, named as Linux allows."""
    options = MachineOptions(local=tuple(args.local),
                             ifaces=tuple(parse_iface(text) for text in args.iface))
    topology = options.topology()
    for name, _ in topology.interfaces:
        if not 0 < len(name) < IFNAMSIZ or "/" in name or name != name.strip() or \
                any(c.isspace() for c in name):
            raise ValueError(f"--iface {name!r}: not a Linux interface name (1 to "
                             f"{IFNAMSIZ - 1} characters, no '/' or spaces)")
    from statewall.oracle.host import interface_names

    interface_names(topology.interfaces)  # at most two
    return Machine(topology.local, topology.interfaces, topology.addresses)


def _read_text(path: str | None) -> str | None:
    if path is None:
        return None
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def _fail(code: int, message: str) -> int:
    # The message may quote the ruleset or iptables-restore's complaint about it.
    print(f"statewall: {escape_controls(message)}", file=sys.stderr)
    return code


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Let SIGTERM unwind like Ctrl-C, so the kernel's namespaces are removed either way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_prerequisites() -> None:
    """The kernel oracle's tools and privileges (oracle.kernel), or OracleError."""
    from statewall.oracle.kernel import check_prerequisites as check

    check()


def remove_leftovers() -> list[str]:
    """Remove what killed runs left (oracle.cleanup); one line per run cleaned up after."""
    from statewall.oracle.cleanup import remove_leftovers as remove

    return [f"removed the namespaces of verify pid {found.owner.pid}, which no longer runs: "
            f"{' '.join(found.namespaces)}" for found in remove()]


def cmd_cleanup() -> int:
    """`verify --cleanup`: only remove the namespaces killed runs left behind."""
    from statewall.oracle.netns import OracleError

    if os.geteuid() != 0:
        return _fail(EXIT_ENVIRONMENT, "cleaning up needs root (network namespaces)")
    if shutil.which("ip") is None:
        return _fail(EXIT_ENVIRONMENT, "missing ip: apt-get install iproute2")
    try:
        lines = remove_leftovers()
    except OracleError as error:
        return _fail(EXIT_ENVIRONMENT, f"cannot clean up: {error}")
    for line in lines or ["no namespaces left by earlier runs"]:
        print(line)
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from statewall.oracle.netns import OracleError
    from statewall.oracle.verify import (
        load_rule_engine,
        read_capture,
        verify_datagrams,
        wiring_for,
    )

    if args.cleanup:
        return cmd_cleanup()
    from statewall.cli import check_numbers

    check_numbers(args)
    sysctls = changed_values(values_from_args(args))
    rules_v4, rules_v6 = _read_text(args.rules), _read_text(args.rules6)
    nft_text = _read_text(args.nft)
    ipset_texts = [_read_text(path) or "" for path in args.ipset]
    datagrams, skipped = read_capture(args.capture, args.limit)
    machine: Machine = args.machine
    topology = wiring_for([d.data for d in datagrams], machine.local, machine.ifaces, (),
                          None, machine.addresses).topology
    try:
        sets: dict[str, IpSet] = {}
        for path, text in zip(args.ipset, ipset_texts, strict=True):
            sets.update(parse_ipset_save(text, path))  # a later file wins a name
        engine = load_rule_engine(rules_v4, rules_v6, v4_source=args.rules or "<rules>",
                                  v6_source=args.rules6 or "<rules6>", topology=topology,
                                  sets=sets, nft_text=nft_text, nft_source=args.nft or "<nft>")
    except RulesetError as error:
        return _fail(EXIT_INPUT, f"ruleset: {error}")
    try:
        if datagrams:
            check_prerequisites()
            for line in remove_leftovers():
                print(f"statewall: {line}", file=sys.stderr)
        with _terminate_as_interrupt():
            result = verify_datagrams(datagrams, rules_v4, rules_v6, sysctls, skipped=skipped,
                                      keep_namespaces=args.keep_namespaces, rule_engine=engine,
                                      local=machine.local, ifaces=machine.ifaces,
                                      addresses=machine.addresses,
                                      ipsets="".join(ipset_texts) if args.ipset else None,
                                      nft=nft_text)
    except OracleError as error:
        if str(error).startswith(_RULESET_TOOLS):
            return _fail(EXIT_INPUT, f"the kernel refused the ruleset: {error}")
        return _fail(EXIT_ENVIRONMENT, f"cannot run the kernel oracle: {error}")
    write = render_jsonl if args.format == "jsonl" else render_text
    write(result, sys.stdout)
    if result.kept_namespaces:
        print(f"statewall: namespaces kept: {' '.join(result.kept_namespaces)} "
              "(remove with `ip netns del NAME`)", file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_DIFFER


# --- rendering --------------------------------------------------------------------------


def ranges(numbers: Iterable[int]) -> str:
    """1, 2, 3, 7 -> "#1-3, #7"."""
    spans: list[list[int]] = []
    for n in sorted(numbers):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"#{a}" if a == b else f"#{a}-{b}" for a, b in spans)


def group_skipped(skipped: Sequence[Skipped]) -> list[tuple[str, list[int]]]:
    """Skipped packets by reason, in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for item in skipped:
        groups.setdefault(item.reason, []).append(item.number)
    return list(groups.items())


def disagreement_line(p: PacketComparison) -> str:
    line = (f"#{p.number} {p.statewall.summary} | kernel: {p.kernel_answer()} | "
            f"statewall: {p.statewall_answer()} | {p.statewall.reason}")
    return line + (f" | note: {p.note}" if p.note else "")


def text_lines(result: VerifyResult) -> Iterator[str]:
    for p in result.disagreements:
        yield disagreement_line(p)
    for reason, numbers in group_skipped(result.skipped):
        yield f"not compared: {count(len(numbers), 'packet')} ({ranges(numbers)}): {reason}"
    for entry in result.table.only_kernel:
        yield f"table: only in the kernel: {entry}"
    for entry in result.table.only_statewall:
        yield f"table: only in statewall: {entry}"
    from statewall.oracle.verify import expectation_lines

    yield from expectation_lines(result)
    yield result.summary_line()


def render_text(result: VerifyResult, out: TextIO) -> None:
    for line in text_lines(result):
        out.write(line + "\n")
    out.flush()


def json_records(result: VerifyResult) -> Iterator[dict[str, Any]]:
    for p in result.disagreements:
        k, s = p.kernel, p.statewall
        yield {"type": "packet", "packet": p.number, "summary": s.summary,
               "differences": list(p.differences), "note": p.note or None,
               "kernel": {"ctstate": k.ctstate, "ctdir": k.ctdir, "outcome": k.outcome,
                          "routed_to": k.routed_to},
               "statewall": {"ctstate": s.ctstate, "ctdir": s.ctdir, "verdict": s.verdict,
                             "reason": s.reason}}
    for reason, numbers in group_skipped(result.skipped):
        yield {"type": "not_compared", "reason": reason, "count": len(numbers),
               "packets": ranges(numbers)}
    for side, entries in (("kernel", result.table.only_kernel),
                          ("statewall", result.table.only_statewall)):
        for entry in entries:
            yield {"type": "table", "only_in": side, "entry": entry}
    summary: dict[str, Any] = {
        "type": "summary", "agree": result.agreed, "compared": len(result.packets),
        "not_compared": len(result.skipped), "tables": "same" if result.table.same else "differ"}
    if result.expectations_shown():
        summary["expectations"] = "same" if result.expectations_same else "differ"
    yield summary


def render_jsonl(result: VerifyResult, out: TextIO) -> None:
    for record in json_records(result):
        out.write(json.dumps(record, separators=(",", ":")) + "\n")
    out.flush()
