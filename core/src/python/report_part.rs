//! The report of a partitioned run (`statewall.dask.report_run`): each
//! partition's tally and log share as plain tuples (`ReplayRun::report_part`,
//! numbered as the run numbers its connections), and on the driver the
//! report made from them (`merged_report`), the same tuples `ReplayRun::report`
//! gives for a single run (output/report_merge.rs says how).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::engine::{Firewall, RuleRef};
use crate::output::record::Totals;
use crate::output::report::{ListedConn, Row, Tally};
use crate::output::report_merge::{log_part, merge, merge_logs, LogPart, RulePart, TallyPart};
use crate::output::report_rows::Placed;
use crate::python::firewall::PyFirewall;
use crate::python::part::{merged_totals, run_number, u32s, TotalsTuple};
use crate::python::report::{as_tuples, report_caps, CapsTuple, ReportTuple};

/// A rule as its family, table and chain indexes, number and line.
type RuleRefTuple = (u8, u16, u16, u32, u32);
/// A rule's share: the rule, its first packet, packets, connections, the first of them.
type RulePartTuple = (RuleRefTuple, u64, u64, usize, Vec<u32>);
/// A placed connection: number, first packet, packets, the rows kept.
type PlacedTuple = (u32, u64, u64, Vec<Row>);

/// `TallyPart`'s fields in order; counts as (key..., count, first met).
type TallyPartTuple = (
    u64,
    Option<(u64, f64)>,
    Vec<(i8, u8, u64, u64)>,
    Vec<RulePartTuple>,
    Vec<(i32, u64, u64)>,
    Vec<(String, u64, u64)>,
    usize,
    Vec<ListedConn>,
    (u64, u64),
    Vec<PlacedTuple>,
    Vec<(i8, i8, u64, u64, Vec<u64>)>,
);

/// `LogPart`'s fields in order, the table's changes as the bytes of f64
/// times (confirmations, then ends) and the records as (number, jsonl line).
type LogPartTuple = (
    Py<PyBytes>,
    Py<PyBytes>,
    Vec<(String, String, u64, u64)>,
    usize,
    usize,
    Vec<(u32, Py<PyBytes>)>,
);

pub type ReportPartTuple = (TallyPartTuple, LogPartTuple);

/// A partition's finished `tally` and its log's share, its connections
/// numbered by `numbers` (the bytes of u32 values: the run's number of the
/// partition's connection n at n - 1).
pub fn report_part(
    fw: &Firewall,
    tally: Tally,
    numbers: &[u8],
    py: Python<'_>,
) -> PyResult<ReportPartTuple> {
    let log = fw.table().history().ok_or_else(|| {
        PyValueError::new_err("a report needs the connection log (build it with conn_log=True)")
    })?;
    let numbers = u32s(numbers)?;
    let number = |n: u32| run_number(&numbers, n);
    let tally = tally.into_part(number);
    let listed: Vec<u32> = tally.listed.iter().map(|c| c.0).collect();
    let log = log_part(fw, log.records(), &listed, number);
    Ok((tally_tuple(tally), log_tuple(log, py)))
}

/// The report of a run whose partitions' `report_part`s are `parts`, as
/// `ReplayRun::report` gives a single run's; `firewall` names the rules,
/// `run_first_ts` is the run's first packet's time.
#[pyfunction]
fn merged_report(
    py: Python<'_>,
    firewall: PyRef<'_, PyFirewall>,
    parts: Vec<ReportPartTuple>,
    caps: CapsTuple,
    run_first_ts: Option<f64>,
) -> PyResult<ReportTuple> {
    let caps = report_caps(caps);
    let (tallies, logs): (Vec<TallyPart>, Vec<LogPart>) = parts
        .into_iter()
        .map(|(tally, log)| (tally_part(tally), log_of(log, py)))
        .unzip();
    let report = merge(tallies, caps);
    let listed: Vec<u32> = report.listed.iter().map(|c| c.0).collect();
    let origin = report.first_ts.or(run_first_ts).unwrap_or(0.0);
    let summary = merge_logs(logs, &listed, origin, caps.table_points);
    Ok(as_tuples(&firewall.fw, report, summary, py))
}

/// The totals as values (`ReplayRun::totals`) of a run whose partitions' totals are `parts`.
#[pyfunction]
fn merged_totals_values(parts: Vec<TotalsTuple>) -> TotalsValues {
    totals_values(&merged_totals(parts))
}

/// (packets, connections seen, packets by ctstate, packets by verdict,
/// INVALID reasons), most common first.
pub(crate) type TotalsValues = (
    u64,
    u64,
    Vec<(&'static str, u64)>,
    Vec<(&'static str, u64)>,
    Vec<(String, u64)>,
);

pub(crate) fn totals_values(t: &Totals) -> TotalsValues {
    (
        t.packets,
        t.connection_count(),
        t.by_state(),
        t.by_verdict(),
        t.invalid_reasons
            .most_common()
            .into_iter()
            .map(|(reason, n)| (reason.to_string(), n))
            .collect(),
    )
}

fn rule_ref((family, table, chain, number, line): RuleRefTuple) -> RuleRef {
    RuleRef {
        family,
        table,
        chain,
        number,
        line,
    }
}

fn tally_tuple(t: TallyPart) -> TallyPartTuple {
    (
        t.packets,
        t.first,
        t.state_verdict
            .into_iter()
            .map(|((ctinfo, verdict), n, first)| (ctinfo, verdict, n, first))
            .collect(),
        t.rules
            .into_iter()
            .map(|r| {
                let rule = (
                    r.rule.family,
                    r.rule.table,
                    r.rule.chain,
                    r.rule.number,
                    r.rule.line,
                );
                (rule, r.first, r.packets, r.conns_total, r.conns)
            })
            .collect(),
        t.drop_rules,
        t.drop_reasons,
        t.conns_seen,
        t.listed,
        t.outside,
        t.placed
            .into_iter()
            .map(|p| (p.conn, p.first, p.packets, p.rows))
            .collect(),
        t.transitions
            .into_iter()
            .map(|((from, to), n, first, frames)| (from, to, n, first, frames))
            .collect(),
    )
}

fn tally_part(t: TallyPartTuple) -> TallyPart {
    TallyPart {
        packets: t.0,
        first: t.1,
        state_verdict: t
            .2
            .into_iter()
            .map(|(ctinfo, verdict, n, first)| ((ctinfo, verdict), n, first))
            .collect(),
        rules: t
            .3
            .into_iter()
            .map(|(rule, first, packets, conns_total, conns)| RulePart {
                rule: rule_ref(rule),
                first,
                packets,
                conns_total,
                conns,
            })
            .collect(),
        drop_rules: t.4,
        drop_reasons: t.5,
        conns_seen: t.6,
        listed: t.7,
        outside: t.8,
        placed: t
            .9
            .into_iter()
            .map(|(conn, first, packets, rows)| Placed::new(conn, first, packets, rows))
            .collect(),
        transitions: t
            .10
            .into_iter()
            .map(|(from, to, n, first, frames)| ((from, to), n, first, frames))
            .collect(),
    }
}

fn f64_bytes(py: Python<'_>, values: impl Iterator<Item = f64>) -> Py<PyBytes> {
    let out: Vec<u8> = values.flat_map(f64::to_ne_bytes).collect();
    PyBytes::new(py, &out).unbind()
}

fn f64s(bytes: &[u8]) -> impl Iterator<Item = f64> + '_ {
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
}

fn log_tuple(log: LogPart, py: Python<'_>) -> LogPartTuple {
    let when = |sign: i64| log.changes.iter().filter(move |c| c.1 == sign).map(|c| c.0);
    (
        f64_bytes(py, when(1)),
        f64_bytes(py, when(-1)),
        log.by_proto_state
            .into_iter()
            .map(|((proto, state), n, first)| (proto, state, n, first))
            .collect(),
        log.confirmed,
        log.related,
        log.records
            .into_iter()
            .map(|(id, line)| (id, PyBytes::new(py, &line).unbind()))
            .collect(),
    )
}

fn log_of(t: LogPartTuple, py: Python<'_>) -> LogPart {
    let starts = f64s(t.0.as_bytes(py)).map(|ts| (ts, 1));
    let ends = f64s(t.1.as_bytes(py)).map(|ts| (ts, -1));
    LogPart {
        changes: starts.chain(ends).collect(),
        by_proto_state: t
            .2
            .into_iter()
            .map(|(proto, state, n, first)| ((proto, state), n, first))
            .collect(),
        confirmed: t.3,
        related: t.4,
        records: t
            .5
            .into_iter()
            .map(|(id, line)| (id, line.as_bytes(py).to_vec()))
            .collect(),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(merged_report, m)?)?;
    m.add_function(wrap_pyfunction!(merged_totals_values, m)?)
}
