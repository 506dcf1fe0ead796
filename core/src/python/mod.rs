//! The extension module `statewall._core`: the typed surface Python sees.

use pyo3::prelude::*;

use crate::config::Sysctls;

mod capture;
mod conns;
mod decode;
mod firewall;
mod part;
mod report;
mod report_part;
mod rules;
mod select;

/// The knobs the core reads, in declaration order (Python checks its own list against it).
#[pyfunction]
fn sysctl_names() -> Vec<&'static str> {
    Sysctls::NAMES.to_vec()
}

/// An address as summaries and tables print it: a dotted quad, or IPv6 as
/// inet_ntop writes it.
#[pyfunction]
fn format_address(family: u8, address: u128) -> String {
    crate::output::addr::format_address(family, address)
}

/// `text` with its control characters escaped, as every text output shows
/// them (`\t`, `\n`, `\r`, otherwise `\xHH`); one rule for the core and Python.
#[pyfunction]
fn escape_controls(text: &str) -> String {
    crate::output::escape::escape(text).into_owned()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // A fault in the core reaches Python as one error naming the packet
    // (python/firewall.rs); Rust's own panic report stays off the terminal.
    std::panic::set_hook(Box::new(|_| {}));
    m.add_function(wrap_pyfunction!(sysctl_names, m)?)?;
    m.add_function(wrap_pyfunction!(format_address, m)?)?;
    m.add_function(wrap_pyfunction!(escape_controls, m)?)?;
    m.add_function(wrap_pyfunction!(select::check_filter, m)?)?;
    // The names a columnar batch's codes stand for, from the core's own tables.
    let verdicts: Vec<&str> = crate::verdict::Verdict::ALL
        .iter()
        .map(|v| v.name())
        .collect();
    m.add("VERDICT_NAMES", verdicts)?;
    let ctstates: Vec<(u8, &str)> = [0u8, 1, 2, 3, 4, 5, 7]
        .into_iter()
        .map(|ctinfo| (ctinfo, crate::conntrack::conn::ctstate_name(ctinfo)))
        .collect();
    m.add("CTSTATE_NAMES", ctstates)?;
    m.add(
        "TCP_STATE_NAMES",
        crate::conntrack::proto_tcp::STATE_NAMES.to_vec(),
    )?;
    m.add(
        "SCTP_STATE_NAMES",
        crate::conntrack::proto_sctp::STATE_NAMES.to_vec(),
    )?;
    let status: Vec<(&str, u32)> = crate::conntrack::conn::STATUS_NAMES
        .iter()
        .map(|&(bit, name)| (name, bit))
        .collect();
    m.add("STATUS_NAMES", status)?;
    capture::register(m)?;
    conns::register(m)?;
    decode::register(m)?;
    firewall::register(m)?;
    part::register(m)?;
    report_part::register(m)?;
    rules::register(m)?;
    Ok(())
}
