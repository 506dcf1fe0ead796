//! `statewall._core.CaptureFrames`: the capture reader as a Python iterator
//! of `statewall.capture.source.Frame`.
//!
//! Frames are built with `tuple.__new__(Frame, ...)`, so no Python code
//! runs per frame; errors become the exception classes of
//! `statewall.capture.source` (imported on first use, which also keeps that
//! module free to import this one).

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString, PyTuple, PyType};

use crate::capture::{self, CaptureError, Reader, CHUNK};

const SOURCE: &str = "statewall.capture.source";

static FRAME: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TRUNCATED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TUPLE_NEW: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A capture error as the exception classes of `statewall.capture.source`.
pub(crate) fn to_pyerr(py: Python<'_>, err: &CaptureError) -> PyErr {
    let class = if err.is_truncated() {
        TRUNCATED.import(py, SOURCE, "CaptureTruncated")
    } else {
        ERROR.import(py, SOURCE, "CaptureError")
    };
    match class {
        Ok(class) => PyErr::from_type(class.clone(), err.message().to_string()),
        Err(import_failed) => import_failed,
    }
}

/// An open capture file; iterating yields `Frame`s, then raises the
/// capture's error if it has one.
#[pyclass(module = "statewall._core")]
pub struct CaptureFrames {
    reader: Option<Reader>,
    name: String,
    format: &'static str,
    compressed: bool,
    /// The last interface name handed out, so a run of frames from one
    /// interface shares one Python string.
    iface: Option<(Arc<str>, Py<PyString>)>,
}

#[pymethods]
impl CaptureFrames {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let reader = capture::open(&path).map_err(|err| to_pyerr(py, &err))?;
        Ok(CaptureFrames {
            name: reader.name().to_string(),
            format: reader.format().name(),
            compressed: reader.compressed(),
            reader: Some(reader),
            iface: None,
        })
    }

    /// The file name used in error messages.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// "pcap" or "pcapng".
    #[getter]
    fn format(&self) -> &'static str {
        self.format
    }

    /// Whether the file was gzip-compressed.
    #[getter]
    fn compressed(&self) -> bool {
        self.compressed
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let CaptureFrames {
            reader,
            iface: cache,
            ..
        } = self;
        let Some(reader) = reader.as_mut() else {
            return Err(PyValueError::new_err("I/O operation on a closed capture"));
        };
        let frame = match reader.next_frame() {
            None => return Ok(None),
            Some(Err(err)) => return Err(to_pyerr(py, &err)),
            Some(Ok(frame)) => frame,
        };
        let iface: Py<PyAny> = match &frame.iface {
            None => py.None(),
            Some(name) => match cache {
                Some((last, text)) if Arc::ptr_eq(last, name) => text.clone_ref(py).into_any(),
                _ => {
                    let text = PyString::new(py, name).unbind();
                    *cache = Some((name.clone(), text.clone_ref(py)));
                    text.into_any()
                }
            },
        };
        let fields = (
            frame.index,
            frame.ts,
            PyBytes::new(py, frame.data),
            frame.linktype,
            iface,
            frame.orig_len,
        )
            .into_pyobject(py)?;
        let class = FRAME.import(py, SOURCE, "Frame")?;
        let tuple_new = TUPLE_NEW.get_or_try_init(py, || {
            py.get_type::<PyTuple>()
                .getattr("__new__")
                .map(Bound::unbind)
        })?;
        Ok(Some(tuple_new.call1(py, (class, fields))?))
    }

    /// Close the file; iterating afterwards raises ValueError.
    fn close(&mut self) {
        self.reader = None;
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<CaptureFrames>()?;
    m.add("CAPTURE_CHUNK", CHUNK)?;
    Ok(())
}
