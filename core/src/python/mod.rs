//! The extension module `statewall._core`: the typed surface Python sees.

use pyo3::prelude::*;

use crate::config::Sysctls;

mod capture;
mod decode;
mod firewall;
mod rules;

/// The knobs the core reads, in declaration order (Python checks its own list against it).
#[pyfunction]
fn sysctl_names() -> Vec<&'static str> {
    Sysctls::NAMES.to_vec()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sysctl_names, m)?)?;
    capture::register(m)?;
    decode::register(m)?;
    firewall::register(m)?;
    rules::register(m)?;
    Ok(())
}
