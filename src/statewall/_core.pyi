"""Type stubs of the compiled core (core/src/python/)."""

from collections.abc import Iterator
from typing import Any

from statewall.capture.source import Frame
from statewall.packet import Packet, TcpOptions

def sysctl_names() -> list[str]: ...
VERDICT_NAMES: list[str]  # by the code a batch's verdict column holds
CTSTATE_NAMES: list[tuple[int, str]]  # (ctinfo, ctstate name)
TCP_STATE_NAMES: list[str]  # by TCP conntrack state number
SCTP_STATE_NAMES: list[str]  # by SCTP conntrack state number
STATUS_NAMES: list[tuple[str, int]]  # (name, IPS_* bit), in the order results list them

def format_address(family: int, address: int) -> str:
    """A dotted quad, or IPv6 as inet_ntop writes it."""

def conn_log(firewall: Firewall, fmt: str, origin: float = 0.0,
             start: int = 0, color: bool = False) -> tuple[bytes, int | None]:
    """The connection log from record `start` on, as one chunk in `fmt` (text, jsonl,
    tsv) and where the next chunk starts (None: done); the firewall needs conn_log=True.
    `color`: text with DROP and REJECT in terminal red."""

# --- partitioned runs (core/src/python/part.rs) ---

# (packets, ipv6 packets, connections, by ctstate key, by verdict code, INVALID
# reasons): (key, count, first packet index) each.
TotalsPart = tuple[int, int, int, list[tuple[int, int, int]], list[tuple[int, int, int]],
                   list[tuple[str, int, int]]]

def merged_totals_lines(parts: list[TotalsPart]) -> list[str]:
    """The totals lines of a run whose partitions' totals are `parts`."""

CONNS_TSV_HEADER: str  # the first line of `conns --format tsv`, newline included

class CaptureIndex:
    """A capture indexed for a partitioned run (`index_capture`)."""

    full_scan: str | None  # why the capture cannot be indexed (None: it is)
    packets: int  # packets indexed
    def part(self, part: int) -> bytes:
        """Partition `part`'s index, when it was made in memory."""

def index_capture(paths: list[str], parts: int, limit: int | None = None,
                  until: float | None = None, files: list[str] | None = None) -> CaptureIndex:
    """Index a capture (several files: merged by timestamp) for `parts`
    partitions, stopping where a replay with `limit` and `until` stops; each
    partition's index goes to its file in `files`, or stays in memory."""

def merge_keyed(parts: list[tuple[bytes, bytes]]) -> bytes:
    """Interleave (marks, data) parts by key; marks: u64 (key, end offset) pairs."""

def renumber_jsonl(data: bytes, marks: bytes, numbers: bytes) -> tuple[bytes, bytes]:
    """jsonl replay lines with `"conn":N` written as the u32 `numbers[N - 1]`:
    (their marks moved to match, the lines)."""

def renumber_jsonl_file(source: str, target: str, marks: bytes, numbers: bytes) -> bytes:
    """`renumber_jsonl` from file to file; returns the moved marks."""

def merge_keyed_files_to_stdout(parts: list[tuple[bytes, str]]) -> None:
    """`merge_keyed` of (marks, file) parts, written to file descriptor 1 as merged."""

def conn_log_renumbered(firewall: Firewall, fmt: str, numbers: bytes, origin: float = 0.0,
                        color: bool = False) -> tuple[bytes, bytes]:
    """The connection log without tsv header, connection numbers mapped through
    the u32 `numbers`: (u64 (number, end offset) marks, data)."""

def escape_controls(text: str) -> str:
    """`text` with control characters (C0, DEL, C1) shown as `\\t`, `\\n`, `\\r` or `\\xHH`."""

def check_filter(json: str) -> None:
    """Compile a display filter (statewall.select's JSON); ValueError if it cannot be."""

# --- capture (core/src/python/capture.rs) ---

CAPTURE_CHUNK: int

class CaptureFrames(Iterator[Frame]):
    """An open capture file: yields `Frame`s, then raises its CaptureError, if any."""

    def __init__(self, path: str) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def format(self) -> str: ...
    @property
    def compressed(self) -> bool: ...
    def __iter__(self) -> CaptureFrames: ...
    def __next__(self) -> Frame: ...
    def close(self) -> None: ...

# -- decoding (core/src/python/decode.rs) ---------------------------------------

SUPPORTED_LINKTYPES: tuple[int, ...]

def decode_frame(
    index: int, ts: float, data: bytes, linktype: int, iface: str | None = None
) -> Packet: ...
def decode_datagram(
    data: bytes, index: int = 0, ts: float = 0.0, quoted: bool = False
) -> Packet: ...
def parse_tcp_options(data: bytes, pos: int, end: int) -> TcpOptions: ...

# -- checksums ------------------------------------------------------------------

def internet_checksum(data: bytes | bytearray, initial: int = 0) -> int: ...
def pseudo_header_sum(family: int, src: int, dst: int, proto: int, length: int) -> int: ...
def l4_checksum_ok(family: int, src: int, dst: int, proto: int, segment: bytes | bytearray) -> bool: ...

# --- rules (core/src/python/rules.rs) ---

WalkResult = tuple[
    str,  # verdict: ACCEPT, DROP, REJECT, QUEUE or UNKNOWN
    tuple[str, str, int, int],  # table, chain, rule number (0: policy), line
    str,  # reason
    int,  # mark on exit
    str | None,  # reject_with
    int,  # queue_num
    list[str],  # LOG lines
    list[tuple[str, str]],  # effects: (kind, value as JSON text)
    list[str],  # notes
    list[str],  # TRACE lines
    bool,  # nf_trace on exit
    tuple[int, bool] | None,  # CONNMARK: (new entry mark, changed on the way) or None
]

class RuleEngine:
    """A ruleset lowered by statewall.rules.lower, loaded into the core (core/src/python/rules.rs).

    Raises ValueError for bad data; the message names the ruleset file and line.
    """

    def __init__(self, json: str) -> None: ...
    @property
    def family(self) -> int: ...
    def walk(
        self,
        table: str,
        hook: str,
        pkt: Any,
        ctinfo: int,
        conn: Any | None,
        now: float,
        iface_in: str | None = None,
        iface_out: str | None = None,
        mark: int = 0,
        trace: bool = False,
        local_out: bool | None = None,
    ) -> WalkResult | None:
        """Walk `table` at `hook` for a decoded statewall.packet.Packet; None when the
        table has no chain for the hook. `local_out`: the machine sent the packet
        itself (default: when `hook` is OUTPUT).

        `conn` is the conntrack entry the packet belongs to (None: no entry), any
        object with the attributes `family`, `proto`, `zone`, `orig_src`, `orig_dst`,
        `orig_sport`, `orig_dport`, `reply_src`, `reply_dst`, `reply_sport`,
        `reply_dport`, `created`, `status`, `mark`, `expires`, `proto_state`,
        `counters` (None, or [orig packets, orig bytes, reply packets, reply bytes])
        and `master` (None, or the master entry, whose `helper` is read). A ruleset
        with connlimit keeps the objects it has counted and reads their `status`,
        `expires`, `proto` and `proto_state` again on later walks."""
    def counters(self) -> list[tuple[str, str, int, int, int]]:
        """(table, chain, rule number or 0 for a built-in chain's policy, packets, bytes)."""

# A deciding rule: table, chain, number (0: the chain's policy), file line, family (4, 6).
RuleTuple = tuple[str, str, int, int, int]

# (index, ts, verdict, ctstate, ctdir, status), then
# (rule or None, reason, summary, proto, tcp_state, conn, notes),
# then (src, dst, sport, dport), then NAT's rewrites (target, from, to, rule) and the
# addressing as the packet left (None without NAT); `random`: the port was picked at random.
RecordHead = tuple[int, float, str, str | None, str | None, list[str]]
RecordRest = tuple[RuleTuple | None, str, str, int, str | None, int | None,
                   list[str]]
RecordAddresses = tuple[str | None, str | None, int | None, int | None]
RecordNat = tuple[list[tuple[str, str, str, RuleTuple | None, bool]],
                  RecordAddresses | None]
Record = tuple[RecordHead, RecordRest, RecordAddresses, RecordNat]

# A "report" run (core/src/output/report.rs, python/report.rs). Caps: connections, rows
# per connection, rows, connections per rule, frames per TCP transition, drop reasons,
# table points.
ReportCaps = tuple[int, int, int, int, int, int, int]
# A kept packet: frame, seconds from the first, ctdir, verdict, ctinfo, tcp_state, rule
# number in the run (-1: none), reason, summary.
ReportRow = tuple[int, float, int, int, int, int, int, str, str]
# Packets, first ts, (ctinfo, verdict, n), drops by rule number, drops by reason (the most
# common), drops of the other reasons.
ReportCounts = tuple[int, float | None, list[tuple[int, int, int]], list[tuple[int, int]],
                     list[tuple[str, int]], int]
# The run's deciding rules, and per rule: packets decided, connections decided, the
# lowest-numbered of those (capped).
ReportRules = tuple[list[RuleTuple], list[tuple[int, int, list[int]]]]
# Connections seen, those listed (conn, packets, drops), (packets, drops) of none, kept
# packets by connection, packets kept, connections cut at their cap.
ReportConns = tuple[int, list[tuple[int, int, int]], tuple[int, int],
                    list[tuple[int, list[ReportRow]]], int, int]
# TCP transitions: (from, to, packets, first frames), most common first.
ReportTransitions = list[tuple[int, int, int, list[int]]]
# Table curve, connections by (protocol, final state), confirmed, RELATED, the listed
# connections' jsonl records.
ReportLog = tuple[list[tuple[float, int]], list[tuple[str, str, int]], int, int, bytes]
Report = tuple[ReportCounts, ReportRules, ReportConns, ReportTransitions, ReportLog]
# (packets, connections seen, by ctstate, by verdict, INVALID reasons), most common first.
Totals = tuple[int, int, list[tuple[str, int]], list[tuple[str, int]], list[tuple[str, int]]]

# One partition's share of a report (python/report_part.rs), numbered as the run
# numbers its connections; counts as (key..., count, where first met). The tally:
# packets, first (index, ts), (ctinfo, verdict, ...), rules ((family, table, chain,
# number, line), first, packets, connections, the first of them), drops by the
# partition's rule number, drops by reason, connections seen, listed, outside,
# placed (conn, first, packets, rows with their times), transitions (from, to, ...,
# first frames). The log: confirmation and end times (f64 bytes), (protocol, state,
# ...), confirmed, RELATED, the listed connections' (number, jsonl record).
ReportTallyPart = tuple[
    int, tuple[int, float] | None, list[tuple[int, int, int, int]],
    list[tuple[tuple[int, int, int, int, int], int, int, int, list[int]]],
    list[tuple[int, int, int]], list[tuple[str, int, int]], int, list[tuple[int, int, int]],
    tuple[int, int], list[tuple[int, int, int, list[ReportRow]]],
    list[tuple[int, int, int, int, list[int]]]]
ReportLogPart = tuple[bytes, bytes, list[tuple[str, str, int, int]], int, int,
                      list[tuple[int, bytes]]]
ReportPart = tuple[ReportTallyPart, ReportLogPart]

def merged_report(firewall: Firewall, parts: list[ReportPart], caps: ReportCaps,
                  run_first_ts: float | None) -> Report:
    """The report of a run whose partitions' `report_part`s are `parts`, as one run's."""

def merged_totals_values(parts: list[TotalsPart]) -> Totals:
    """`ReplayRun.totals` of a run whose partitions' totals are `parts`."""

class Firewall:
    """One simulated machine: defragmentation, conntrack, expectations, helpers and
    the rules, walked as the kernel's hook list (core/src/python/firewall.rs)."""

    def __init__(
        self,
        rules_v4: str | None = None,
        rules_v6: str | None = None,
        sysctls: list[tuple[str, int]] = ...,
        local: list[tuple[int, int, int]] = ...,
        interfaces: list[tuple[str, list[tuple[int, int, int]]]] = ...,
        addresses: list[tuple[str, tuple[int, int, int]]] = ...,
        auto_helpers: bool = False,
        helper_params: tuple[bool, int, int, int] = ...,
        events: bool = False,
        conn_log: bool = False,
    ) -> None: ...
    @property
    def now(self) -> float: ...
    def leaving(self, data: bytes) -> bytes | None:
        """The bytes the datagram just processed left with, when NAT rewrote it."""
    def process(self, pkt: Any) -> Record:
        """Run a decoded statewall.packet.Packet (its frame is decoded again in the core)."""
    def process_frame(self, index: int, ts: float, frame: bytes, linktype: int,
                      iface: str | None = None) -> Record: ...
    def advance_to(self, at: float) -> None: ...
    def table_lines(self, at: float, fmt: str, live_at: float | None = None,
                    filter: str | None = None) -> list[str]: ...
    def expectation_lines(self, at: float, fmt: str,
                          live_at: float | None = None) -> list[str]: ...
    def count(self) -> int: ...
    def connections(self, at: float, filter: str | None = None) -> list[tuple[
        tuple[int, int, int, int, int, int],
        tuple[str, tuple[str, str, int, int], tuple[str, str, int, int], float, str | None,
              int | None]]]: ...
    def expectations(self, at: float) -> list[
        tuple[int, int, str, str, int, int, str, int, float, int]]: ...
    def stats(self) -> list[tuple[str, int]]: ...
    def stat_lines(self, fmt: str) -> list[str]: ...
    def select_events(self, filter: str | None = None) -> None: ...
    def take_events(self) -> list[tuple[float, str, int, str, str, bool]]: ...
    def counters(self, family: int) -> list[tuple[str, str, int, int, int]]: ...
    def nft_counters(self, family: int
                     ) -> list[tuple[str, str, int, int, str | None, int, int]]: ...
    def unknown_rules(self) -> list[str]: ...
    def replay(self, path: str | list[str], fmt: str, limit: int | None = None,
               until: float | None = None, filter: str | None = None, conn: int | None = None,
               write: str | None = None, explain: bool = False,
               color: bool = False, caps: ReportCaps | None = None,
               partition: tuple[int, int] | None = None,
               index: bytes | str | None = None) -> ReplayRun: ...

class ReplayRun:
    """A capture streaming through a Firewall: yields output chunks, then raises
    the capture's error (statewall.capture.source.CaptureError) if it has one."""

    def __iter__(self) -> ReplayRun: ...
    def __next__(self) -> bytes: ...
    @property
    def packets(self) -> int: ...
    @property
    def first_ts(self) -> float | None: ...
    def next_batch(self) -> tuple[
        tuple[bytes, bytes, bytes, bytes, bytes, bytes, bytes, bytes, bytes, bytes],
        tuple[list[str], list[str], list[RuleTuple]]] | None:
        """The next batch of a "columns" run (see python/firewall.rs), None at the end."""
    def totals(self) -> Totals:
        """(packets, connections seen, by ctstate, by verdict, INVALID reasons)."""
    @property
    def ipv6_packets(self) -> int: ...
    def next_records(self) -> list[Record] | None:
        """The next records of a "records" run, None at the end."""
    def totals_lines(self) -> list[str]: ...
    def report(self) -> Report:
        """A "report" run's data, once the run is finished (see python/report.rs)."""
    def report_part(self, numbers: bytes) -> ReportPart:
        """A partition's "report" run's share, numbered by the u32 `numbers` (the run's
        number of the partition's connection n at n - 1), once the run is finished."""
    def totals_part(self) -> TotalsPart:
        """The totals as plain values, for `merged_totals_lines`."""
    def part_results(self) -> tuple[bytes, tuple[int, int, int, int], int, bytes]:
        """A partition's run: (u64 confirming packet index per connection number - 1,
        peak (entries, expectations, IPv4, IPv6 fragment bytes), fragmented ICMP
        errors quoting another partition's pair, u64 (packet index, output end) pairs)."""
    def write_to_stdout(self) -> None:
        """Write the rest of the output to file descriptor 1 from the core."""
