//! The report's data handed to Python (`ReplayRun::report`): the counts
//! and kept packets of `output::report::Tally`, then the connection log's
//! share, as plain tuples (statewall/report/model.py names their parts).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::engine::Firewall;
use crate::output::report::{log_summary, LogSummary, Report, ReportCaps, Row};
use crate::python::firewall::{rule_tuple, RuleTuple};

/// `ReportCaps` as Python passes them, in the order of its fields.
pub type CapsTuple = (usize, usize, usize, usize, usize, usize, usize);

pub fn report_caps(c: CapsTuple) -> ReportCaps {
    ReportCaps {
        connections: c.0,
        rows_per_connection: c.1,
        rows: c.2,
        conns_per_rule: c.3,
        frames_per_transition: c.4,
        reasons: c.5,
        table_points: c.6,
    }
}

/// Packets counted, the first one's time, (ctinfo, verdict, packets), drops
/// by rule number, drops by reason and the drops of the other reasons.
type CountsTuple = (
    u64,
    Option<f64>,
    Vec<(i8, u8, u64)>,
    Vec<(i32, u64)>,
    Vec<(String, u64)>,
    u64,
);

/// Connections seen, those listed (conn, packets, drops), the packets and
/// drops of none, the kept packets by connection, packets kept, connections cut.
type ConnsTuple = (
    usize,
    Vec<(u32, u64, u64)>,
    (u64, u64),
    Vec<(u32, Vec<Row>)>,
    usize,
    usize,
);

/// The table curve, connections by protocol and final state, entries
/// confirmed, RELATED entries, and the listed connections' jsonl records.
type LogTuple = (
    Vec<(f64, u64)>,
    Vec<(String, String, u64)>,
    usize,
    usize,
    Py<PyBytes>,
);

pub type ReportTuple = (
    CountsTuple,
    (Vec<RuleTuple>, Vec<(u64, usize, Vec<u32>)>),
    ConnsTuple,
    Vec<(i8, i8, u64, Vec<u64>)>,
    LogTuple,
);

/// `report` as tuples; the log read with `fw` (built with `conn_log=True`).
/// Times count from the first packet counted, else the run's first packet.
pub fn report_tuple(
    fw: &Firewall,
    report: Report,
    run_first_ts: Option<f64>,
    py: Python<'_>,
) -> PyResult<ReportTuple> {
    let log = fw.table().history().ok_or_else(|| {
        PyValueError::new_err("a report needs the connection log (build it with conn_log=True)")
    })?;
    let origin = report.first_ts.or(run_first_ts).unwrap_or(0.0);
    let listed: Vec<u32> = report.listed.iter().map(|c| c.0).collect();
    let summary = log_summary(fw, log.records(), &listed, origin, report.caps.table_points);
    Ok(as_tuples(fw, report, summary, py))
}

/// `report` and the log's `summary` as tuples; `fw` names the rules.
pub fn as_tuples(
    fw: &Firewall,
    report: Report,
    summary: LogSummary,
    py: Python<'_>,
) -> ReportTuple {
    let counts = (
        report.packets,
        report.first_ts,
        report
            .state_verdict
            .into_iter()
            .map(|((ctinfo, verdict), n)| (ctinfo, verdict, n))
            .collect(),
        report.drop_rules,
        report.drop_reasons,
        report.other_reasons,
    );
    let rules = report.rules.iter().map(|&r| rule_tuple(fw, r)).collect();
    let conns = (
        report.conns_seen,
        report.listed,
        report.outside,
        report.rows,
        report.kept,
        report.long,
    );
    let log = (
        summary.table_curve,
        summary
            .by_proto_state
            .into_iter()
            .map(|((proto, state), n)| (proto, state, n))
            .collect(),
        summary.confirmed,
        summary.related,
        PyBytes::new(py, &summary.records).unbind(),
    );
    (
        counts,
        (rules, report.decided),
        conns,
        report.transitions,
        log,
    )
}
