//! `statewall._core.conn_log`: the connection log of a `Firewall` built
//! with `conn_log=True`, written by the core in chunks (output/conns.rs).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::output::conns::{write_record, ConnFormat, TSV_HEADER};
use crate::python::firewall::PyFirewall;

/// Bytes per chunk, about: a chunk ends after the line that crosses it.
const CHUNK_BYTES: usize = 1 << 18;

/// The lines of the connection log from record `start` on, in `fmt`
/// ("text", "jsonl" or "tsv"; tsv starts with its header line), as one
/// chunk of bytes and the record the next chunk starts at (None: done).
/// Text times are seconds since `origin`; `color`: text with terminal colours.
#[pyfunction]
#[pyo3(signature = (firewall, fmt, origin=0.0, start=0, color=false))]
fn conn_log<'py>(
    py: Python<'py>,
    firewall: PyRef<'py, PyFirewall>,
    fmt: &str,
    origin: f64,
    start: usize,
    color: bool,
) -> PyResult<(Bound<'py, PyBytes>, Option<usize>)> {
    let format = match ConnFormat::from_name(fmt) {
        Some(ConnFormat::Text { .. }) => ConnFormat::Text { color },
        Some(format) => format,
        None => return Err(PyValueError::new_err(format!("unknown format {fmt:?}"))),
    };
    let fw = &firewall.fw;
    let log = fw.table().history().ok_or_else(|| {
        PyValueError::new_err("this firewall keeps no connection log (build it with conn_log=True)")
    })?;
    let records = log.records();
    let mut out: Vec<u8> = Vec::with_capacity(CHUNK_BYTES + 4096);
    if start == 0 && format == ConnFormat::Tsv {
        out.extend_from_slice(TSV_HEADER.as_bytes());
    }
    let mut at = start;
    while at < records.len() && out.len() < CHUNK_BYTES {
        write_record(&mut out, fw, &records[at], format, origin);
        at += 1;
    }
    let next = (at < records.len()).then_some(at);
    Ok((PyBytes::new(py, &out), next))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(conn_log, m)?)
}
