//! One partition of a partitioned run (`statewall.dask`), and the driver's
//! side: indexing the capture, and merging the partitions' output back
//! into one.
//!
//! The driver indexes the capture once (`index_capture`,
//! `crate::partition::index`); a partition's run reads only its own
//! packets, by offset, and sets its clock before each to the clock the
//! index noted there, so that every packet is processed at the time a
//! single run would process it. A capture the index cannot serve (a
//! compressed one) is read whole by every partition instead, which
//! processes only its own packets and lets the others move the clock.
//! Packets keep their index in the capture, so reasons and lines name the
//! same packets as a single run does. What the merge needs is kept on the
//! side: which packet confirmed each of the partition's connections (their
//! numbers are the partition's own; the run's numbers are their rank among
//! all partitions' confirmations), the largest number of entries the
//! partition's table held, and where each packet's output ends.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::PathBuf;

use pyo3::exceptions::{PyBrokenPipeError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::engine::{Firewall, PacketRecord};
use crate::output::conns::{write_record, ConnFormat, TSV_HEADER};
use crate::output::merge;
use crate::output::partial::TotalsPart;
use crate::output::record::Totals;
use crate::packet::Packet;
use crate::partition::index::{index_capture as index_pass, Bounds, IndexError, Outcome};
use crate::partition::source::Indexed;
use crate::partition::wire::PartIndex;
use crate::partition::{partition_of, strays};
use crate::python::capture::to_pyerr;
use crate::python::firewall::PyFirewall;

/// The bookkeeping of one partition's run.
pub(crate) struct Part {
    index: u32,
    parts: u32,
    /// The index of the packet that confirmed each connection, by its number - 1.
    confirms: Vec<u64>,
    /// The most the partition held after any packet: conntrack entries,
    /// expectations, IPv4 and IPv6 fragment memory (bytes). The limits on
    /// these are the machine's, across all partitions (`peaks`).
    peaks: [u64; 4],
    /// (packet index, end offset of its output) pairs, flattened.
    marks: Vec<u64>,
    /// Output bytes handed out before the current chunk.
    emitted: u64,
    /// ICMP errors in fragments whose quoted pair lies in another partition.
    strays: u64,
    /// Reading by an index: the clock after the capture's last packet.
    end_clock: Option<f64>,
}

impl Part {
    pub(crate) fn new(index: u32, parts: u32) -> PyResult<Self> {
        if parts == 0 || index >= parts {
            return Err(PyValueError::new_err(format!(
                "partition {index} of {parts}: expected 0 <= partition < partitions"
            )));
        }
        Ok(Part {
            index,
            parts,
            confirms: Vec::new(),
            peaks: [0; 4],
            marks: Vec::new(),
            emitted: 0,
            strays: 0,
            end_clock: None,
        })
    }

    /// Whether this partition processes `pkt`; the clock sees it either
    /// way. `clock`: the clock at `pkt`, from the index (which lists only
    /// the partition's packets); without an index, every packet comes here.
    pub(crate) fn admits(
        &mut self,
        fw: &mut Firewall,
        pkt: &Packet<'_>,
        clock: Option<f64>,
    ) -> bool {
        match clock {
            Some(clock) => fw.observe_time(clock),
            None => {
                fw.observe_time(pkt.ts);
                if partition_of(pkt, self.parts) != self.index {
                    return false;
                }
            }
        }
        self.strays += u64::from(strays(pkt, self.parts));
        true
    }

    /// Reading by an index: the clock after the capture's last packet.
    pub(crate) fn end_clock(&self) -> Option<f64> {
        self.end_clock
    }

    /// After one of the partition's packets: its confirmations, the table's size.
    pub(crate) fn processed(&mut self, fw: &Firewall, rec: &PacketRecord) {
        let table = fw.table();
        let confirmed = u64::from(table.next_id().saturating_sub(1));
        while (self.confirms.len() as u64) < confirmed {
            self.confirms.push(rec.index);
        }
        let now = [
            table.count() as u64,
            fw.expectations().count() as u64,
            fw.defrag().memory(4),
            fw.defrag().memory(6),
        ];
        for (peak, value) in self.peaks.iter_mut().zip(now) {
            *peak = (*peak).max(value);
        }
    }

    /// The packet at `index` wrote its output up to `len` bytes of the current chunk.
    pub(crate) fn mark(&mut self, index: u64, len: usize) {
        self.marks.push(index);
        self.marks.push(self.emitted + len as u64);
    }

    /// A chunk of `len` bytes was handed out.
    pub(crate) fn emitted(&mut self, len: usize) {
        self.emitted += len as u64;
    }

    /// (confirming packet per connection number, peaks, strays, marks),
    /// arrays as the bytes of u64 values, native order.
    pub(crate) fn results<'py>(&self, py: Python<'py>) -> PartResults<'py> {
        (
            u64_bytes(py, &self.confirms),
            self.peaks,
            self.strays,
            u64_bytes(py, &self.marks),
        )
    }
}

pub(crate) type PartResults<'py> = (Bound<'py, PyBytes>, [u64; 4], u64, Bound<'py, PyBytes>);

fn u64_bytes<'py>(py: Python<'py>, values: &[u64]) -> Bound<'py, PyBytes> {
    let mut out = Vec::with_capacity(values.len() * 8);
    for value in values {
        out.extend_from_slice(&value.to_ne_bytes());
    }
    PyBytes::new(py, &out)
}

fn u64s(bytes: &[u8]) -> PyResult<Vec<u64>> {
    if bytes.len() % 8 != 0 {
        return Err(PyValueError::new_err("expected the bytes of u64 values"));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
        .collect())
}

pub(crate) fn u32s(bytes: &[u8]) -> PyResult<Vec<u32>> {
    if bytes.len() % 4 != 0 {
        return Err(PyValueError::new_err("expected the bytes of u32 values"));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| u32::from_ne_bytes(c.try_into().unwrap_or([0; 4])))
        .collect())
}

/// The run's number of a partition's connection `n` (`numbers[n - 1]`).
pub(crate) fn run_number(numbers: &[u32], n: u32) -> u32 {
    n.checked_sub(1)
        .and_then(|i| numbers.get(i as usize))
        .copied()
        .unwrap_or(n)
}

/// The frames of `part` of the capture `paths` as its index (`source`:
/// bytes, or the path of a file) lists them; `bounds` must be those the
/// index was made with.
pub(crate) fn indexed_frames(
    py: Python<'_>,
    source: &Bound<'_, PyAny>,
    paths: Vec<PathBuf>,
    part: &mut Part,
    bounds: Bounds,
) -> PyResult<Indexed> {
    let index = match source.cast::<PyBytes>() {
        Ok(bytes) => {
            let bytes = bytes.as_bytes().to_vec();
            py.detach(|| PartIndex::from_bytes(bytes))
        }
        Err(_) => {
            let path: PathBuf = source.extract()?;
            py.detach(|| PartIndex::from_file(&path))
        }
    }
    .map_err(|err| match err.kind() {
        io::ErrorKind::InvalidData => PyValueError::new_err(err.to_string()),
        _ => io_error(err),
    })?;
    let trailer = &index.trailer;
    if (trailer.part, trailer.parts) != (part.index, part.parts) {
        return Err(PyValueError::new_err(format!(
            "the index is of partition {} of {}, not {} of {}",
            trailer.part, trailer.parts, part.index, part.parts
        )));
    }
    if trailer.bounds() != bounds {
        return Err(PyValueError::new_err(
            "the index was made with another limit or until than the replay's",
        ));
    }
    part.end_clock = trailer.clock.map(|clock| clock.0);
    Indexed::new(paths, index).map_err(PyValueError::new_err)
}

/// The capture's index, as the driver made it (`index_capture`).
#[pyclass(module = "statewall._core", frozen)]
pub struct CaptureIndex {
    /// Why the capture cannot be indexed (None: it is).
    #[pyo3(get)]
    full_scan: Option<String>,
    /// Packets indexed.
    #[pyo3(get)]
    packets: u64,
    /// Each partition's index, when it was not written to a file.
    shares: Vec<Vec<u8>>,
}

#[pymethods]
impl CaptureIndex {
    /// Partition `part`'s index (when it was made in memory).
    fn part<'py>(&self, py: Python<'py>, part: usize) -> PyResult<Bound<'py, PyBytes>> {
        self.shares
            .get(part)
            .map(|share| PyBytes::new(py, share))
            .ok_or_else(|| PyValueError::new_err(format!("no index of partition {part} here")))
    }
}

/// Index the capture `paths` (several: of one link, merged by timestamp)
/// for `parts` partitions, stopping where a replay with `limit` and `until`
/// stops: each partition's index is written to its file in `files`, or kept
/// in memory (`CaptureIndex.part`). CaptureError when the capture does not
/// open; a capture that cannot be read by offset gives `full_scan`.
#[pyfunction]
#[pyo3(signature = (paths, parts, limit=None, until=None, files=None))]
fn index_capture(
    py: Python<'_>,
    paths: Vec<PathBuf>,
    parts: u32,
    limit: Option<u64>,
    until: Option<f64>,
    files: Option<Vec<PathBuf>>,
) -> PyResult<CaptureIndex> {
    if parts == 0 || paths.is_empty() {
        return Err(PyValueError::new_err(
            "expected a capture and 1 or more partitions",
        ));
    }
    if files.as_ref().is_some_and(|f| f.len() != parts as usize) {
        return Err(PyValueError::new_err(
            "expected one index file per partition",
        ));
    }
    let bounds = Bounds { limit, until };
    let done = py.detach(|| -> Result<(Outcome, Vec<Vec<u8>>), IndexError> {
        match &files {
            Some(files) => {
                let mut sinks = files
                    .iter()
                    .map(|path| Ok(BufWriter::with_capacity(1 << 16, File::create(path)?)))
                    .collect::<io::Result<Vec<_>>>()?;
                Ok((index_pass(&paths, bounds, &mut sinks)?, Vec::new()))
            }
            None => {
                let mut sinks = vec![Vec::new(); parts as usize];
                Ok((index_pass(&paths, bounds, &mut sinks)?, sinks))
            }
        }
    });
    let (outcome, shares) = done.map_err(|err| match err {
        IndexError::Capture(err) => to_pyerr(py, &err),
        IndexError::Write(err) => io_error(err),
    })?;
    Ok(match outcome {
        Outcome::Indexed { packets } => CaptureIndex {
            full_scan: None,
            packets,
            shares,
        },
        Outcome::FullScan(why) => CaptureIndex {
            full_scan: Some(why),
            packets: 0,
            shares: Vec::new(),
        },
    })
}

/// A TotalsPart as Python carries it.
pub(crate) type TotalsTuple = (
    u64,
    u64,
    u64,
    Vec<(usize, u64, u64)>,
    Vec<(usize, u64, u64)>,
    Vec<(String, u64, u64)>,
);

pub(crate) fn totals_tuple(totals: &Totals) -> TotalsTuple {
    let p = totals.part();
    (
        p.packets,
        p.ipv6,
        p.connections,
        p.states,
        p.verdicts,
        p.invalid,
    )
}

/// The totals lines of a run whose partitions' totals are `parts`
/// (`ReplayRun.totals_part`).
#[pyfunction]
fn merged_totals_lines(parts: Vec<TotalsTuple>) -> Vec<String> {
    merged_totals(parts).lines()
}

/// The totals of a run whose partitions' totals are `parts`.
pub(crate) fn merged_totals(parts: Vec<TotalsTuple>) -> Totals {
    let parts: Vec<TotalsPart> = parts
        .into_iter()
        .map(
            |(packets, ipv6, connections, states, verdicts, invalid)| TotalsPart {
                packets,
                ipv6,
                connections,
                states,
                verdicts,
                invalid,
            },
        )
        .collect();
    Totals::merged(&parts)
}

/// Interleave the partitions' outputs by key: each part is (marks, data),
/// marks the bytes of (key, end offset) u64 pairs, keys rising within a
/// part and distinct across parts (packet indexes, connection numbers).
#[pyfunction]
fn merge_keyed<'py>(
    py: Python<'py>,
    parts: Vec<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)>,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut readers = parts
        .iter()
        .map(|(m, d)| Ok((u64s(m.as_bytes())?, d.as_bytes())))
        .collect::<PyResult<Vec<_>>>()?;
    let total: usize = parts.iter().map(|(_, d)| d.as_bytes().len()).sum();
    let merged = py.detach(|| {
        let mut out = Vec::with_capacity(total);
        merge::merge_keyed(&mut readers, &mut out).map(|()| out)
    });
    Ok(PyBytes::new(py, &merged.map_err(io_error)?))
}

/// `merge_keyed` of parts whose data are files, written to standard output
/// (file descriptor 1) as it is merged.
#[pyfunction]
fn merge_keyed_files_to_stdout(py: Python<'_>, parts: Vec<(Vec<u8>, PathBuf)>) -> PyResult<()> {
    let mut readers = Vec::with_capacity(parts.len());
    for (marks, path) in &parts {
        let file = File::open(path).map_err(io_error)?;
        readers.push((u64s(marks)?, BufReader::with_capacity(1 << 20, file)));
    }
    py.detach(|| {
        let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        merge::merge_keyed(&mut readers, &mut out)?;
        out.flush()
    })
    .map_err(|err| match err.kind() {
        std::io::ErrorKind::BrokenPipe => PyBrokenPipeError::new_err(err.to_string()),
        _ => io_error(err),
    })
}

fn io_error(err: std::io::Error) -> PyErr {
    PyOSError::new_err(err.to_string())
}

/// jsonl replay lines (`data`, one line per mark) with their `"conn":N`
/// numbers written as `numbers[N - 1]` (the bytes of u32 values): (the
/// marks moved to match, the lines).
#[pyfunction]
fn renumber_jsonl<'py>(
    py: Python<'py>,
    data: &[u8],
    marks: &[u8],
    numbers: &[u8],
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let numbers = u32s(numbers)?;
    let mut marks = u64s(marks)?;
    let out = py.detach(|| {
        let mut out = Vec::with_capacity(data.len() + data.len() / 16);
        merge::renumber_jsonl(&mut &data[..], &mut out, &mut marks, &numbers).map(|()| out)
    });
    let out = out.map_err(io_error)?;
    Ok((u64_bytes(py, &marks), PyBytes::new(py, &out)))
}

/// `renumber_jsonl` from the file `source` to the file `target`; returns the moved marks.
#[pyfunction]
fn renumber_jsonl_file<'py>(
    py: Python<'py>,
    source: PathBuf,
    target: PathBuf,
    marks: &[u8],
    numbers: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let numbers = u32s(numbers)?;
    let mut marks = u64s(marks)?;
    py.detach(|| {
        let mut data = BufReader::with_capacity(1 << 20, File::open(&source)?);
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&target)?);
        merge::renumber_jsonl(&mut data, &mut out, &mut marks, &numbers)?;
        out.flush()
    })
    .map_err(io_error)?;
    Ok(u64_bytes(py, &marks))
}

/// The connection log in `fmt` ("text", "jsonl", "tsv", without the tsv
/// header) with every connection number `n` written as `numbers[n - 1]`
/// (the bytes of u32 values): (marks, data) for `merge_keyed`, keyed by the
/// new numbers. Text times are seconds since `origin`.
#[pyfunction]
#[pyo3(signature = (firewall, fmt, numbers, origin=0.0, color=false))]
fn conn_log_renumbered<'py>(
    py: Python<'py>,
    firewall: PyRef<'py, PyFirewall>,
    fmt: &str,
    numbers: &[u8],
    origin: f64,
    color: bool,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let format = match ConnFormat::from_name(fmt) {
        Some(ConnFormat::Text { .. }) => ConnFormat::Text { color },
        Some(format) => format,
        None => return Err(PyValueError::new_err(format!("unknown format {fmt:?}"))),
    };
    let numbers = u32s(numbers)?;
    let global = |n: u32| run_number(&numbers, n);
    let fw = &firewall.fw;
    let log = fw.table().history().ok_or_else(|| {
        PyValueError::new_err("this firewall keeps no connection log (build it with conn_log=True)")
    })?;
    let mut out: Vec<u8> = Vec::new();
    let mut marks: Vec<u64> = Vec::new();
    for record in log.records() {
        let mut record = record.clone();
        record.id = global(record.id);
        record.master = record.master.map(|(id, helper)| (global(id), helper));
        write_record(&mut out, fw, &record, format, origin);
        marks.push(u64::from(record.id));
        marks.push(out.len() as u64);
    }
    Ok((u64_bytes(py, &marks), PyBytes::new(py, &out)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("CONNS_TSV_HEADER", TSV_HEADER)?;
    m.add_class::<CaptureIndex>()?;
    m.add_function(wrap_pyfunction!(index_capture, m)?)?;
    m.add_function(wrap_pyfunction!(merged_totals_lines, m)?)?;
    m.add_function(wrap_pyfunction!(merge_keyed, m)?)?;
    m.add_function(wrap_pyfunction!(renumber_jsonl, m)?)?;
    m.add_function(wrap_pyfunction!(renumber_jsonl_file, m)?)?;
    m.add_function(wrap_pyfunction!(merge_keyed_files_to_stdout, m)?)?;
    m.add_function(wrap_pyfunction!(conn_log_renumbered, m)?)
}
