//! The decoder and the checksum as Python sees them: `decode_frame` and
//! `decode_datagram` build `statewall.packet.Packet` objects (with their
//! `DecodeError`, `FragmentInfo`, `TcpOptions` and quoted `inner` packet), the
//! packets the Python side (statewall.decode, the kernel oracle, the tests)
//! works with.

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyTuple, PyType};
use pyo3::{intern, IntoPyObjectExt};

use crate::checksum;
use crate::decode::{self, SUPPORTED_LINKTYPES};
use crate::packet::{Packet, PktType, TcpOptions};

static PACKET: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DECODE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static FRAGMENT_INFO: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TCP_OPTIONS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static OBJECT_NEW: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

const PACKET_MODULE: &str = "statewall.packet";

/// The input as a `bytes` object (the packet's `data` slices it, or is it).
fn as_bytes<'py>(data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    match data.cast::<PyBytes>() {
        Ok(bytes) => Ok(bytes.clone()),
        Err(_) => Ok(data
            .py()
            .get_type::<PyBytes>()
            .call1((data,))?
            .cast_into()?),
    }
}

/// One of the input's byte ranges as `bytes`: the input object itself when
/// the range is all of it (no copy).
fn sub_bytes<'py>(
    py: Python<'py>,
    source: &Bound<'py, PyBytes>,
    whole: &[u8],
    part: &[u8],
) -> Bound<'py, PyAny> {
    if part.len() == whole.len() && part.as_ptr() == whole.as_ptr() {
        source.clone().into_any()
    } else {
        PyBytes::new(py, part).into_any()
    }
}

fn pkt_type_name<'py>(py: Python<'py>, kind: PktType) -> Bound<'py, PyAny> {
    match kind {
        PktType::Host => intern!(py, "host").clone().into_any(),
        PktType::Broadcast => intern!(py, "broadcast").clone().into_any(),
        PktType::Multicast => intern!(py, "multicast").clone().into_any(),
        PktType::OtherHost => intern!(py, "otherhost").clone().into_any(),
        PktType::Outgoing => intern!(py, "outgoing").clone().into_any(),
        other => pyo3::types::PyString::new(py, &other.name()).into_any(),
    }
}

fn tcp_options_object<'py>(py: Python<'py>, opts: &TcpOptions) -> PyResult<Bound<'py, PyAny>> {
    let cls = TCP_OPTIONS.import(py, PACKET_MODULE, "TcpOptions")?;
    let sack = PyTuple::new(py, opts.sack_blocks.iter().copied())?;
    cls.call1((opts.mss, opts.wscale, opts.sack_perm, sack, opts.timestamp))
}

/// An address as a Python int (IPv4 ones take the cheap 64-bit route).
fn address<'py>(py: Python<'py>, value: u128) -> PyResult<Bound<'py, PyAny>> {
    match u64::try_from(value) {
        Ok(small) => small.into_bound_py_any(py),
        Err(_) => value.into_bound_py_any(py),
    }
}

/// Build the Python `Packet` for `pkt`, every slot set.
fn to_python<'py>(
    py: Python<'py>,
    pkt: &Packet<'_>,
    source: &Bound<'py, PyBytes>,
    whole: &[u8],
    quoted: bool,
    iface: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let cls = PACKET.import(py, PACKET_MODULE, "Packet")?;
    let object_new = OBJECT_NEW.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py
            .import("builtins")?
            .getattr("object")?
            .getattr("__new__")?
            .unbind())
    })?;
    let obj = object_new.bind(py).call1((cls,))?;
    let none = py.None().into_bound(py);

    obj.setattr(intern!(py, "index"), pkt.index)?;
    obj.setattr(intern!(py, "ts"), pkt.ts)?;
    obj.setattr(intern!(py, "data"), sub_bytes(py, source, whole, pkt.data))?;
    obj.setattr(intern!(py, "family"), pkt.family)?;
    obj.setattr(intern!(py, "src"), address(py, pkt.src)?)?;
    obj.setattr(intern!(py, "dst"), address(py, pkt.dst)?)?;
    obj.setattr(intern!(py, "proto"), pkt.proto)?;
    obj.setattr(intern!(py, "ttl"), pkt.ttl)?;
    obj.setattr(intern!(py, "tos"), pkt.tos)?;
    obj.setattr(intern!(py, "ip_len"), pkt.ip_len)?;
    obj.setattr(intern!(py, "ip_id"), pkt.ip_id)?;
    obj.setattr(intern!(py, "l4_off"), pkt.l4_off)?;
    obj.setattr(intern!(py, "payload_off"), pkt.payload_off)?;
    obj.setattr(intern!(py, "sport"), pkt.sport)?;
    obj.setattr(intern!(py, "dport"), pkt.dport)?;
    obj.setattr(intern!(py, "tcp_flags"), pkt.tcp_flags)?;
    obj.setattr(intern!(py, "seq"), pkt.seq)?;
    obj.setattr(intern!(py, "ack"), pkt.ack)?;
    obj.setattr(intern!(py, "window"), pkt.window)?;

    // Python sees options whenever the header has option bytes (the core
    // boxes only the ones window tracking reads).
    let options = match pkt.tcp_option_bytes() {
        Some(bytes) if !quoted && !bytes.is_empty() => match &pkt.tcp_options {
            Some(parsed) => tcp_options_object(py, parsed)?,
            None => tcp_options_object(py, &decode::parse_tcp_options(bytes))?,
        },
        _ => none.clone(),
    };
    obj.setattr(intern!(py, "tcp_options"), options)?;
    obj.setattr(intern!(py, "icmp_type"), pkt.icmp_type)?;
    obj.setattr(intern!(py, "icmp_code"), pkt.icmp_code)?;
    obj.setattr(intern!(py, "icmp_id"), pkt.icmp_id)?;

    let fragment = match pkt.fragment {
        Some(f) => FRAGMENT_INFO
            .import(py, PACKET_MODULE, "FragmentInfo")?
            .call1((f.ident, f.offset, f.more, f.next_proto, f.unfrag_len))?,
        None => none.clone(),
    };
    obj.setattr(intern!(py, "fragment"), fragment)?;
    let error = match &pkt.error {
        Some(e) => DECODE_ERROR
            .import(py, PACKET_MODULE, "DecodeError")?
            .call1((e.layer.name(), e.offset, &*e.cause))?,
        None => none.clone(),
    };
    obj.setattr(intern!(py, "error"), error)?;

    let (iface_in, iface_out) = match iface {
        Some(name) if pkt.pkt_type == PktType::Outgoing => (none.clone(), name.clone()),
        Some(name) => (name.clone(), none.clone()),
        None => (none.clone(), none.clone()),
    };
    obj.setattr(intern!(py, "iface_in"), iface_in)?;
    obj.setattr(intern!(py, "iface_out"), iface_out)?;
    let link = |addr: Option<&[u8]>| match addr {
        Some(a) => PyBytes::new(py, a).into_any(),
        None => none.clone(),
    };
    obj.setattr(intern!(py, "link_src"), link(pkt.link_src))?;
    obj.setattr(intern!(py, "link_dst"), link(pkt.link_dst))?;
    obj.setattr(intern!(py, "link_type"), pkt.link_type)?;
    obj.setattr(intern!(py, "frame_len"), pkt.frame_len)?;
    obj.setattr(intern!(py, "pkt_type"), pkt_type_name(py, pkt.pkt_type))?;
    let inner = match &pkt.inner {
        Some(inner) => to_python(py, inner, source, whole, true, None)?,
        None => none,
    };
    obj.setattr(intern!(py, "inner"), inner)?;
    obj.setattr(intern!(py, "frame"), py.None())?;
    Ok(obj)
}

/// Decode one captured frame into a `statewall.packet.Packet`; never raises
/// for bad input (it becomes `Packet.error`).
#[pyfunction]
#[pyo3(signature = (index, ts, data, linktype, iface = None))]
fn decode_frame<'py>(
    py: Python<'py>,
    index: u64,
    ts: f64,
    data: &Bound<'py, PyAny>,
    linktype: u32,
    iface: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let source = as_bytes(data)?;
    let whole = source.as_bytes();
    let pkt = decode::decode_frame(index, ts, whole, linktype, None);
    let iface = iface.filter(|name| !name.is_none());
    let obj = to_python(py, &pkt, &source, whole, false, iface)?;
    obj.setattr(intern!(py, "frame"), &source)?;
    Ok(obj)
}

/// Decode a bare IP datagram (version from its first nibble); `quoted`
/// decodes it leniently, as the datagram an ICMP error quotes.
#[pyfunction]
#[pyo3(signature = (data, index = 0, ts = 0.0, quoted = false))]
fn decode_datagram<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    index: u64,
    ts: f64,
    quoted: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let source = as_bytes(data)?;
    let whole = source.as_bytes();
    let pkt = decode::decode_datagram(whole, index, ts, quoted);
    to_python(py, &pkt, &source, whole, quoted, None)
}

/// The TCP options in `data[pos:end]` as a `statewall.packet.TcpOptions`.
#[pyfunction]
fn parse_tcp_options<'py>(
    py: Python<'py>,
    data: &[u8],
    pos: usize,
    end: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let opts = data.get(pos..end.min(data.len())).unwrap_or(&[]);
    tcp_options_object(py, &decode::parse_tcp_options(opts))
}

/// One's-complement sum of 16-bit words, folded and inverted.
#[pyfunction]
#[pyo3(signature = (data, initial = 0))]
fn internet_checksum(data: PyBackedBytes, initial: u64) -> u16 {
    checksum::internet_checksum(&data, initial)
}

/// The unfolded sum of the IPv4 or IPv6 pseudo-header.
#[pyfunction]
fn pseudo_header_sum(family: u8, src: u128, dst: u128, proto: u8, length: u32) -> u64 {
    checksum::pseudo_header_sum(family, src, dst, proto, length)
}

/// True when a TCP/UDP/UDP-Lite/ICMPv6 segment's checksum verifies.
#[pyfunction]
fn l4_checksum_ok(family: u8, src: u128, dst: u128, proto: u8, segment: PyBackedBytes) -> bool {
    checksum::l4_checksum_ok(family, src, dst, proto, &segment)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode_frame, m)?)?;
    m.add_function(wrap_pyfunction!(decode_datagram, m)?)?;
    m.add_function(wrap_pyfunction!(parse_tcp_options, m)?)?;
    m.add_function(wrap_pyfunction!(internet_checksum, m)?)?;
    m.add_function(wrap_pyfunction!(pseudo_header_sum, m)?)?;
    m.add_function(wrap_pyfunction!(l4_checksum_ok, m)?)?;
    m.add(
        "SUPPORTED_LINKTYPES",
        PyTuple::new(m.py(), SUPPORTED_LINKTYPES)?,
    )?;
    Ok(())
}
