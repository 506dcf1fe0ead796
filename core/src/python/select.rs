//! What the binding needs for selection and export: filters compiled from
//! the JSON `statewall.select` writes, and the pcapng file `replay -w`
//! fills.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

use crate::capture::writer::PcapngWriter;
use crate::capture::{strerror, Frame, IfaceInfo};
use crate::output::filter::Filter;

pub(crate) fn compile_filter(json: &str) -> PyResult<Filter> {
    Filter::from_json(json).map_err(PyValueError::new_err)
}

/// Compile a filter only to see that it compiles (a regular expression's
/// error, say), before anything is replayed; raises ValueError.
#[pyfunction]
pub(crate) fn check_filter(json: &str) -> PyResult<()> {
    compile_filter(json).map(|_| ())
}

/// The file selected packets are written to, with its name for messages.
pub(crate) struct Output {
    name: String,
    writer: PcapngWriter<BufWriter<File>>,
}

fn write_error(name: &str, err: &std::io::Error) -> PyErr {
    PyOSError::new_err(format!("{name}: cannot write: {}", strerror(err)))
}

pub(crate) fn open_output(py: Python<'_>, path: &Path) -> PyResult<Output> {
    let name = path.to_string_lossy().into_owned();
    py.detach(|| {
        let file = File::create(path)?;
        PcapngWriter::new(BufWriter::with_capacity(1 << 20, file))
    })
    .map(|writer| Output {
        name: name.clone(),
        writer,
    })
    .map_err(|err| write_error(&name, &err))
}

impl Output {
    pub(crate) fn write(&mut self, frame: &Frame<'_>, iface: &IfaceInfo) -> PyResult<()> {
        self.writer
            .write(frame, iface)
            .map_err(|err| write_error(&self.name, &err))
    }

    /// Flush what is buffered (the file closes when dropped).
    pub(crate) fn finish(self) -> PyResult<()> {
        let name = self.name;
        self.writer
            .finish()
            .map(drop)
            .map_err(|err| write_error(&name, &err))
    }
}
