"""The report's data: one replay, aggregated into one compact JSON-ready model.

The packets come from the core in columnar batches (`Firewall.batches`), so
a million packets cost one pass over a few `array.array`s, not a Python
object each. Everything a chart shows is counted up front; what a person
opens on demand (a connection's packets, a rule's connections, a
transition's packets) is kept up to the caps below, and the model says
what was capped so the page can say it too.

Per-packet rows are lists, not objects, to keep the page small:
`[frame, seconds from the first packet, ctdir, verdict, ctinfo, tcp_state,
rule id, reason, summary]`, codes indexing the `names` tables.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from statewall import _core
from statewall.conns import ConnRecord, connection_records
from statewall.engine import CTSTATES, TCP_STATES, VERDICTS, Batch, Firewall
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


DROPS = frozenset(i for i, name in enumerate(VERDICTS) if name in ("DROP", "REJECT"))


@dataclass
class _Tally:
    """What one pass over the batches gathers."""

    caps: Caps
    first_ts: float | None = None
    packets: int = 0
    state_verdict: Counter[tuple[int, int]] = field(default_factory=Counter)
    rule_conn: Counter[tuple[int, int]] = field(default_factory=Counter)
    drop_rules: Counter[int] = field(default_factory=Counter)
    drop_reasons: Counter[str] = field(default_factory=Counter)
    rows: dict[int, list[list[Any]]] = field(default_factory=dict)
    seen: Counter[int] = field(default_factory=Counter)  # packets per connection
    drops: Counter[int] = field(default_factory=Counter)  # drops per connection
    kept: int = 0
    tcp_last: dict[int, int] = field(default_factory=dict)
    transitions: Counter[tuple[int, int]] = field(default_factory=Counter)
    transition_frames: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    refs: list[RuleRef] = field(default_factory=list)

    def add(self, batch: Batch) -> None:
        if self.first_ts is None and len(batch):
            self.first_ts = batch.ts[0]
        origin = self.first_ts or 0.0
        self.refs = batch.rules
        self.packets += len(batch)
        self.state_verdict.update(zip(batch.ctinfo, batch.verdict, strict=True))
        self.rule_conn.update(zip(batch.rule, batch.conn, strict=True))
        self.seen.update(batch.conn)
        caps = self.caps
        rows, seen_before = self.rows, self.tcp_last
        for i, (verdict, conn, proto) in enumerate(zip(batch.verdict, batch.conn, batch.proto,
                                                       strict=True)):
            dropped = verdict in DROPS
            if dropped:
                self.drop_rules[batch.rule[i]] += 1
                self.drop_reasons[batch.reason[i]] += 1
                self.drops[conn] += 1
            if proto == 6 and conn:
                state = batch.tcp_state[i]
                before = seen_before.get(conn, 0)
                if state >= 0 and state != before:
                    key = (before, state)
                    self.transitions[key] += 1
                    frames = self.transition_frames.setdefault(key, [])
                    if len(frames) < caps.frames_per_transition:
                        frames.append(batch.index[i] + 1)
                    seen_before[conn] = state
            kept = rows.get(conn)
            if kept is None:
                if len(rows) >= caps.connections:
                    continue
                kept = rows[conn] = []
            if len(kept) < caps.rows_per_connection and self.kept < caps.rows:
                self.kept += 1
                kept.append([batch.index[i] + 1, round(batch.ts[i] - origin, 6), batch.ctdir[i],
                             verdict, batch.ctinfo[i], batch.tcp_state[i], batch.rule[i],
                             batch.reason[i], batch.summary[i]])


def tally(firewall: Firewall, run: _core.ReplayRun, caps: Caps) -> _Tally:
    """One pass over a "columns" run."""
    out = _Tally(caps)
    for batch in firewall.batches(run):
        out.add(batch)
    return out


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
    """Each deciding rule of a run (`Batch.rules`) as the id of its entry (-1: none found).
    The run names no family: the file line tells IPv4 and IPv6 rules apart."""
    exact = {(e.table, e.chain, e.number, e.line): e.id for e in entries}
    loose: dict[tuple[str, str, int], int] = {}
    for e in entries:
        loose.setdefault((e.table, e.chain, e.number), e.id)
    return [exact.get((r.table, r.chain, r.number, r.line),
                      loose.get((r.table, r.chain, r.number), -1)) for r in refs]


def table_curve(records: Iterable[ConnRecord], origin: float, points: int) -> list[list[float]]:
    """The table's size over time, from each entry's confirmation and end: [seconds, entries],
    the largest size in each of at most `points` steps."""
    changes: list[tuple[float, int]] = []
    for record in records:
        changes.append((record.ts, 1))
        if record.end_ts is not None:
            changes.append((record.end_ts, -1))
    if not changes:
        return []
    changes.sort()
    start, end = changes[0][0], changes[-1][0]
    step = (end - start) / points if end > start else 1.0
    curve: list[list[float]] = []
    size = 0
    for when, change in changes:
        size += change
        slot = start + int((when - start) / step) * step
        if curve and curve[-1][0] == round(slot - origin, 6):
            curve[-1][1] = max(curve[-1][1], size)
        else:
            curve.append([round(slot - origin, 6), size])
    return curve


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


def build_model(firewall: Firewall, run: _core.ReplayRun, *, caps: Caps,
                meta: dict[str, Any]) -> dict[str, Any]:
    """The page's model after replaying `run` ("columns") through `firewall` (which
    needs `conn_log=True`)."""
    got = tally(firewall, run, caps)
    packets, connections, states, verdicts, invalid = run.totals()
    origin = got.first_ts if got.first_ts is not None else (run.first_ts or 0.0)
    entries = ruleset_entries(firewall)
    ids = rule_ids(entries, got.refs)

    def rid(index: int) -> int:
        return ids[index] if index >= 0 else -1

    for rows in got.rows.values():
        for row in rows:
            row[6] = rid(row[6])
    decided: dict[int, list[int]] = {}
    decided_packets: Counter[int] = Counter()
    for (rule, conn), n in sorted(got.rule_conn.items(), key=lambda item: item[0][1]):
        entry = rid(rule)
        if entry < 0:
            continue
        decided_packets[entry] += n
        if conn:
            decided.setdefault(entry, []).append(conn)
    records = connection_records(firewall)
    listed = {r.conn: r for r in records}
    conns: list[dict[str, Any]] = []
    shown = sorted(c for c in got.seen if c)
    for conn in shown[:caps.connections]:
        record = listed.get(conn)
        item = connection_entry(record, origin) if record is not None else _unconfirmed(conn)
        item["shown"] = got.seen[conn]
        item["drops"] = got.drops[conn]
        conns.append(item)
    if got.seen[0]:  # packets that belonged to no connection, listed under one line
        conns.append({**_unconfirmed(0), "end": None, "shown": got.seen[0], "drops": got.drops[0]})
    drop_rules = Counter({rid(r): n for r, n in got.drop_rules.items()})
    stats = firewall.stats()
    capped = _capped(got, caps, shown, decided)
    by_proto_state = Counter((r.proto_name, r.state or "-") for r in records)
    return {
        "meta": {**meta, "packets": packets, "selected": got.packets,
                 "connections_seen": connections, "first_ts": origin, "capped": capped},
        "names": {"verdicts": list(VERDICTS), "ctstates": {str(k): v for k, v in CTSTATES.items()},
                  "tcp": list(TCP_STATES)},
        "states": states, "verdicts": verdicts, "invalid": invalid,
        "state_verdict": [[c, v, n] for (c, v), n in got.state_verdict.most_common()],
        "drop_rules": [[r, n] for r, n in drop_rules.most_common()],
        "drop_reasons": _top(got.drop_reasons, caps.reasons),
        "conns_by_proto_state": [[p, s, n] for (p, s), n in by_proto_state.most_common()],
        "table": {"curve": table_curve(records, origin, caps.table_points),
                  "max": firewall.cfg.nf_conntrack_max, "confirmed": len(records)},
        "expectations": {"created": stats.get("expect_create", 0),
                         "used": stats.get("expect_new", 0),
                         "deleted": stats.get("expect_delete", 0),
                         "related": sum(1 for r in records if r.master is not None)},
        "rules": [_rule_json(e, decided.get(e.id, []), decided_packets[e.id], caps)
                  for e in entries],
        "connections": conns,
        "packets": {str(conn): rows for conn, rows in got.rows.items()},
        "tcp": [[a, b, n, got.transition_frames[(a, b)]]
                for (a, b), n in got.transitions.most_common()],
    }


def _rule_json(entry: RuleEntry, conns: list[int], packets: int, caps: Caps) -> dict[str, Any]:
    return {"id": entry.id, "family": entry.family, "table": entry.table, "chain": entry.chain,
            "number": entry.number, "line": entry.line, "text": entry.text,
            "packets": entry.packets, "bytes": entry.bytes, "decided": packets,
            "conns": conns[:caps.conns_per_rule], "conns_total": len(conns)}


def _unconfirmed(conn: int) -> dict[str, Any]:
    """A connection conntrack never confirmed (its first packet went no further)."""
    return {"conn": conn, "proto": None, "orig": None, "reply": None, "start": None,
            "duration": 0.0, "packets": 0, "bytes": 0, "state": None, "status": [],
            "verdicts": {}, "helper": None, "master": None, "master_helper": None,
            "end": "never confirmed", "history": []}


def _top(counter: Counter[str], n: int) -> list[list[Any]]:
    top: list[list[Any]] = [[text, count] for text, count in counter.most_common(n)]
    rest = sum(counter.values()) - sum(count for _, count in top)
    if rest:
        top.append([None, rest])  # the page names it "other reasons"
    return top


def _capped(got: _Tally, caps: Caps, shown: list[int], decided: dict[int, list[int]]) -> list[str]:
    """What the page holds less of than the replay saw, in words."""
    out = []
    if len(shown) > caps.connections:
        out.append(f"connections: the first {caps.connections} of {len(shown)} are listed")
    long = sum(1 for conn, rows in got.rows.items()
               if len(rows) < got.seen[conn] and len(rows) >= caps.rows_per_connection)
    if long:
        out.append(f"packets: {long} connection(s) show their first "
                   f"{caps.rows_per_connection} packets only")
    if got.kept >= caps.rows:
        out.append(f"packets: {caps.rows} packets are kept in all; later packets of "
                   "listed connections are counted but not shown")
    if any(len(c) > caps.conns_per_rule for c in decided.values()):
        out.append(f"rules: each rule lists at most {caps.conns_per_rule} connections")
    if any(len(f) >= caps.frames_per_transition for f in got.transition_frames.values()):
        out.append(f"TCP transitions: each lists at most {caps.frames_per_transition} packets")
    return out
