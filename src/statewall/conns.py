"""`statewall conns`: one line per connection, as Zeek's conn.log gives.

The core gathers each connection's record while the capture is replayed
(core/src/conntrack/history.rs: opened when conntrack confirms the entry,
closed when it is destroyed) and writes the lines itself
(core/src/output/conns.rs), so a replay without the log pays nothing.
This module is the command and the library's typed view of the same
records: `connection_records(firewall)` after a replay through
`Firewall(conn_log=True)`.

Which connections are listed: every entry conntrack confirmed, in order of
confirmation, including those that expired, were reset or evicted. Entries
that were never confirmed (their first packet was dropped) are not
connections to conntrack, and are not listed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from statewall.engine import Firewall
from statewall.verdict import RuleRef

EXIT_OK = 0
FORMATS = ("text", "jsonl", "tsv")


@dataclass(frozen=True, slots=True)
class Flow:
    """One direction's tuple as conntrack names its parts (None where the protocol has none)."""

    src: str
    dst: str
    sport: int | None = None
    dport: int | None = None
    type: int | None = None  # ICMP and ICMPv6
    code: int | None = None
    id: int | None = None
    srckey: int | None = None  # GRE
    dstkey: int | None = None


@dataclass(frozen=True, slots=True)
class FirstDrop:
    """The first packet of a connection that was dropped or rejected."""

    index: int  # 0-based position in the capture
    verdict: str
    rule: RuleRef | None  # None: dropped by conntrack, the IP layer or a helper
    reason: str


@dataclass(frozen=True, slots=True)
class ConnRecord:
    """One connection, from its first packet to its end (the jsonl fields of the README)."""

    conn: int  # the `conn` of the per-packet output
    ts: float
    last_ts: float
    duration: float
    family: int
    proto: int
    proto_name: str
    zone: int
    orig: Flow
    reply: Flow
    orig_packets: int
    orig_bytes: int
    reply_packets: int
    reply_bytes: int
    state: str | None  # the last TCP or SCTP state
    history: tuple[str, ...]
    history_truncated: bool
    status: tuple[str, ...]
    verdicts: dict[str, int]
    first_drop: FirstDrop | None
    helper: str | None
    master: int | None
    master_helper: str | None
    end: str | None  # why the entry went (timeout, reset ...); None: still in the table
    end_ts: float | None

    @classmethod
    def from_json(cls, line: str | bytes) -> ConnRecord:
        fields: dict[str, Any] = json.loads(line)
        drop = fields["first_drop"]
        if drop is not None:
            rule = drop["rule"]
            drop = FirstDrop(drop["index"], drop["verdict"],
                             None if rule is None else RuleRef(**rule), drop["reason"])
        fields.update(orig=Flow(**fields["orig"]), reply=Flow(**fields["reply"]),
                      history=tuple(fields["history"]), status=tuple(fields["status"]),
                      first_drop=drop)
        return cls(**fields)


def connection_records(firewall: Firewall) -> list[ConnRecord]:
    """Every connection of the firewall's log so far (it needs `Firewall(conn_log=True)`)."""
    text = b"".join(firewall.conn_log("jsonl"))
    return [ConnRecord.from_json(line) for line in text.splitlines()]


def add_conns_command(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register `conns` on the CLI's subparsers."""
    from statewall.cli import add_color_option
    from statewall.dask.options import add_engine_options

    conns = sub.add_parser("conns", help="one line per connection (as Zeek's conn.log): "
                                         "times, counters, TCP states, verdicts, first drop")
    add_common(conns)
    conns.add_argument("--format", choices=FORMATS, default="text",
                       help="aligned text (default), jsonl, or tsv with a header line")
    add_color_option(conns)
    add_engine_options(conns)
    conns.set_defaults(handler=cmd_conns)


def cmd_conns(args: argparse.Namespace) -> int:
    """The log of what was read, also when the capture breaks off (then exit 3)."""
    from statewall.cli import capture_paths, firewall_from, use_color

    captures = capture_paths(args)
    color = args.format == "text" and use_color(args.color, sys.stdout)
    firewall = firewall_from(args, conn_log=True)
    if args.engine == "dask":
        from statewall.dask.cli import dask_conns

        return dask_conns(args, firewall, color)
    run = firewall.replay_file(captures, "summary", args.limit)
    try:
        for _ in run:
            pass
    finally:
        origin = run.first_ts if run.first_ts is not None else 0.0
        binary = getattr(sys.stdout, "buffer", None)
        sys.stdout.flush()
        for chunk in firewall.conn_log(args.format, origin, color):
            if binary is not None:
                binary.write(chunk)
            else:
                sys.stdout.write(chunk.decode())
        sys.stdout.flush()
        if binary is not None:
            binary.flush()
    return EXIT_OK
