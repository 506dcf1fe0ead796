"""The report's data: one replay, aggregated into one compact JSON-ready model.

The core counts while it replays (a "report" run, core/src/output/report.rs):
packets by ctstate and verdict, by deciding rule and connection, drops by
rule and reason, TCP state transitions, and the connection log's share
(the table's size over time, connections by protocol and final state).
What a person opens on demand (a connection's packets, a rule's
connections, a transition's packets) is kept up to the caps below, and
the reason and summary texts are written only for the packets kept, so a
million packets cost the replay and little more. The model says what was
capped so the page can say it too.

Per-packet rows are lists, not objects, to keep the page small:
`[frame, seconds from the first packet, ctdir, verdict, ctinfo, tcp_state,
rule id, reason, summary]`, codes indexing the `names` tables.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from statewall import _core
from statewall.conns import ConnRecord
from statewall.engine import CTSTATES, TCP_STATES, VERDICTS, Firewall
from statewall.rules.save import rule_text
from statewall.verdict import RuleRef


@dataclass(frozen=True)
class Caps:
    """How much detail the page holds (the counts are never capped)."""

    connections: int = 5000  # connections listed
    rows_per_connection: int = 300  # packets kept per connection's ladder
    rows: int = 60000  # packets kept in all
    conns_per_rule: int = 500  # connections listed per rule
    frames_per_transition: int = 200  # packets listed per TCP transition
    reasons: int = 25  # drop reasons shown (the rest summed)
    table_points: int = 400  # points of the table-size curve

    def core(self) -> _core.ReportCaps:
        """As a "report" run takes them (the fields in order)."""
        return (self.connections, self.rows_per_connection, self.rows, self.conns_per_rule,
                self.frames_per_transition, self.reasons, self.table_points)


@dataclass(frozen=True)
class RuleEntry:
    id: int
    family: int
    table: str
    chain: str
    number: int  # 0: the chain's policy
    line: int
    text: str
    packets: int
    bytes: int


def ruleset_entries(firewall: Firewall) -> list[RuleEntry]:
    """Every rule and built-in policy of the firewall's rulesets, with its counters."""
    from statewall.rules.counters import ordered_chains

    out: list[RuleEntry] = []
    rules = firewall.rules
    if rules is None:
        return out
    firewall.sync_counters()
    for family, compiled in ((4, rules.v4), (6, rules.v6)):
        if compiled is None:
            continue
        for table in compiled.source.tables:
            loaded = compiled.tables[table.name]
            counted = {chain.name: chain for chain in loaded.chains}
            for chain in ordered_chains(table):
                cc = counted[chain.name]
                if chain.builtin:
                    out.append(RuleEntry(len(out), family, table.name, chain.name, 0, chain.line,
                                         f":{chain.name} {chain.policy or '-'}",
                                         cc.packets, cc.octets))
                for number, (rule, crule) in enumerate(zip(chain.rules, cc.rules, strict=True),
                                                       start=1):
                    out.append(RuleEntry(len(out), family, table.name, chain.name, number,
                                         rule.line, rule_text(chain.name, rule, family),
                                         crule.packets, crule.octets))
    return out


def rule_ids(entries: list[RuleEntry], refs: list[RuleRef]) -> list[int]:
    """Each deciding rule of a run as the id of its entry (-1: none, as for an nft
    ruleset's rules, which have no entries)."""
    ids = {(e.family, e.table, e.chain, e.number, e.line): e.id for e in entries}
    return [ids.get((r.family, r.table, r.chain, r.number, r.line), -1) for r in refs]


def connection_entry(record: ConnRecord, origin: float) -> dict[str, Any]:
    return {
        "conn": record.conn, "proto": record.proto_name, "family": record.family,
        "orig": _flow(record.orig), "reply": _flow(record.reply),
        "start": round(record.ts - origin, 6), "duration": record.duration,
        "packets": record.orig_packets + record.reply_packets,
        "bytes": record.orig_bytes + record.reply_bytes,
        "state": record.state, "status": list(record.status), "verdicts": record.verdicts,
        "helper": record.helper, "master": record.master, "master_helper": record.master_helper,
        "end": record.end, "history": list(record.history),
    }


def _flow(flow: Any) -> dict[str, Any]:
    return {k: v for k, v in (("src", flow.src), ("dst", flow.dst), ("sport", flow.sport),
                              ("dport", flow.dport), ("type", flow.type), ("id", flow.id))
            if v is not None}


@dataclass(frozen=True)
class RunFacts:
    """What the model holds of a finished "report" run besides its report:
    one run's, or a partitioned run's added up (statewall.dask.report_run)."""

    report: _core.Report
    totals: _core.Totals
    first_ts: float | None  # the run's first packet's time
    entries: list[RuleEntry]  # the rules, with their counters
    stats: dict[str, int]  # the expectation counters (Firewall.stats)
    table_max: int  # nf_conntrack_max


def build_model(firewall: Firewall, run: _core.ReplayRun, *, caps: Caps,
                meta: dict[str, Any]) -> dict[str, Any]:
    """The page's model after replaying `run` (a "report" run with `caps.core()`)
    through `firewall` (which needs `conn_log=True`)."""
    report = run.report()
    facts = RunFacts(report, run.totals(), run.first_ts, ruleset_entries(firewall),
                     firewall.stats(), firewall.cfg.nf_conntrack_max)
    return model_of(facts, caps=caps, meta=meta)


def model_of(facts: RunFacts, *, caps: Caps, meta: dict[str, Any]) -> dict[str, Any]:
    """The page's model of a finished run (`build_model`)."""
    counts, (refs, decided), conns, transitions, log = facts.report
    selected, first_ts, state_verdict, drops_by_rule, reasons, other_reasons = counts
    conns_seen, listed, outside, kept_rows, kept, long = conns
    curve, by_proto_state, confirmed, related, records = log
    packets, connections, states, verdicts, invalid = facts.totals
    origin = first_ts if first_ts is not None else (facts.first_ts or 0.0)
    entries = facts.entries
    ids = rule_ids(entries, [RuleRef(*r) for r in refs])

    def rid(index: int) -> int:
        return ids[index] if index >= 0 else -1

    per_rule = {ids[i]: share for i, share in enumerate(decided) if ids[i] >= 0}
    drop_rules: Counter[int] = Counter()
    for rule, n in drops_by_rule:
        drop_rules[rid(rule)] += n
    logged = {r.conn: r for r in map(ConnRecord.from_json, records.splitlines())}
    items: list[dict[str, Any]] = []
    for conn, shown, drops in listed:
        record = logged.get(conn)
        item = connection_entry(record, origin) if record is not None else _unconfirmed(conn)
        items.append({**item, "shown": shown, "drops": drops})
    if outside[0]:  # packets that belonged to no connection, listed under one line
        items.append({**_unconfirmed(0), "end": None, "shown": outside[0], "drops": outside[1]})
    stats = facts.stats
    capped = _capped(caps, conns_seen, long, kept, per_rule.values(), transitions)
    return {
        "meta": {**meta, "packets": packets, "selected": selected,
                 "connections_seen": connections, "first_ts": origin, "capped": capped},
        "names": {"verdicts": list(VERDICTS), "ctstates": {str(k): v for k, v in CTSTATES.items()},
                  "tcp": list(TCP_STATES)},
        "states": states, "verdicts": verdicts, "invalid": invalid,
        "state_verdict": [list(cell) for cell in state_verdict],
        "drop_rules": [[r, n] for r, n in drop_rules.most_common()],
        "drop_reasons": [[text, n] for text, n in reasons]
        + ([[None, other_reasons]] if other_reasons else []),  # the page: "other reasons"
        "conns_by_proto_state": [list(cell) for cell in by_proto_state],
        "table": {"curve": [list(point) for point in curve],
                  "max": facts.table_max, "confirmed": confirmed},
        "expectations": {"created": stats.get("expect_create", 0),
                         "used": stats.get("expect_new", 0),
                         "deleted": stats.get("expect_delete", 0),
                         "related": related},
        "rules": [_rule_json(e, per_rule.get(e.id, (0, 0, []))) for e in entries],
        "connections": items,
        "packets": {str(conn): [[frame, t, ctdir, verdict, ctinfo, tcp, rid(rule), reason,
                                 summary]
                                for frame, t, ctdir, verdict, ctinfo, tcp, rule, reason, summary
                                in rows]
                    for conn, rows in kept_rows},
        "tcp": [list(transition) for transition in transitions],
    }


def _rule_json(entry: RuleEntry, decided: tuple[int, int, list[int]]) -> dict[str, Any]:
    packets, conns_total, conns = decided
    return {"id": entry.id, "family": entry.family, "table": entry.table, "chain": entry.chain,
            "number": entry.number, "line": entry.line, "text": entry.text,
            "packets": entry.packets, "bytes": entry.bytes, "decided": packets,
            "conns": conns, "conns_total": conns_total}


def _unconfirmed(conn: int) -> dict[str, Any]:
    """A connection conntrack never confirmed (its first packet went no further)."""
    return {"conn": conn, "proto": None, "orig": None, "reply": None, "start": None,
            "duration": 0.0, "packets": 0, "bytes": 0, "state": None, "status": [],
            "verdicts": {}, "helper": None, "master": None, "master_helper": None,
            "end": "never confirmed", "history": []}


def _capped(caps: Caps, conns_seen: int, long: int, kept: int,
            decided: Iterable[tuple[int, int, list[int]]],
            transitions: _core.ReportTransitions) -> list[str]:
    """What the page holds less of than the replay saw, in words."""
    out = []
    if conns_seen > caps.connections:
        out.append(f"connections: the first {caps.connections} of {conns_seen} are listed")
    if long:
        out.append(f"packets: {long} connection(s) show their first "
                   f"{caps.rows_per_connection} packets only")
    if kept >= caps.rows:
        out.append(f"packets: {caps.rows} packets are kept in all; later packets of "
                   "listed connections are counted but not shown")
    if any(total > caps.conns_per_rule for _, total, _ in decided):
        out.append(f"rules: each rule lists at most {caps.conns_per_rule} connections")
    if any(n > len(frames) for _, _, n, frames in transitions):
        out.append(f"TCP transitions: each lists at most {caps.frames_per_transition} packets")
    return out
