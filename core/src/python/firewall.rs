//! `statewall._core.Firewall`: the whole packet path behind one Python object.
//!
//! Two ways in. `process` takes one decoded `statewall.packet.Packet` (its
//! captured frame is decoded again in the core, so the core never trusts
//! Python-side fields) and returns the packet's record as a tuple, for the
//! library and the kernel oracle. `replay` streams a capture file through
//! the core and yields the per-packet output in chunks of bytes (or writes
//! them to standard output itself, or hands over columnar batches), with
//! the interpreter released while the core works, so output never falls
//! back to Python per packet.

use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

use pyo3::exceptions::{PyBrokenPipeError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::capture::{Capture, CaptureError, Frame};
use crate::config::{HelperParams, Sysctls};
use crate::conntrack::conn::ConnId;
use crate::conntrack::conn::{ctstate_name, STATUS_NAMES};
use crate::conntrack::display::{conntrack_line_acct, proc_line_acct, state_name};
use crate::conntrack::expect::{conntrack_expect_line, proc_expect_line};
use crate::conntrack::stats::{conntrack_s_line, proc_stat_lines};
use crate::decode::{decode_datagram, decode_frame};
use crate::engine::{Firewall, FirewallSetup, PacketRecord, RuleRef};
use crate::nat::rewrite::leaving_frame;
use crate::netfilter::route::{Held, Net, Topology};
use crate::output::addr::{format_address, push_address};
use crate::output::filter::{EntrySubject, EventSubject, Filter, Follow, Selection};
use crate::output::record::{
    direction_name, tcp_state_name, write_jsonl, write_text, TextOptions, Totals,
};
use crate::output::report::{RuleIndex, Tally};
use crate::output::summary::{packet_ports, summary};
use crate::packet::{IfaceName, Packet};
use crate::partition::index::Bounds;
use crate::partition::source::Frames;
use crate::python::capture::to_pyerr;
use crate::python::part::{indexed_frames, totals_tuple, Part, PartResults, TotalsTuple};
use crate::python::report::{report_caps, report_tuple, CapsTuple, ReportTuple};
use crate::python::report_part::{report_part, totals_values, ReportPartTuple, TotalsValues};
use crate::python::select::{compile_filter, open_output, Output};
use crate::rules::hooks::IptablesEngine;
use crate::rules::walker::Engine;

/// A fault inside the core (a panic, which would be a bug) as one Python
/// error naming the packet; the panic hook installed by the module keeps
/// Rust's own message off the terminal.
fn fault(number: u64, payload: &(dyn std::any::Any + Send)) -> PyErr {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown fault".to_string());
    PyRuntimeError::new_err(format!("core fault at packet #{number}: {what}"))
}

/// (family, address, prefix) as Python hands networks over.
type NetSpec = (u8, u128, u8);

fn nets(specs: Vec<NetSpec>) -> Vec<Net> {
    specs
        .into_iter()
        .map(|(family, address, prefix)| Net::new(family, address, prefix))
        .collect()
}

fn engine(json: Option<&str>) -> PyResult<Option<Engine>> {
    json.map(Engine::from_json)
        .transpose()
        .map_err(PyValueError::new_err)
}

/// The record as the fields of `statewall.verdict.PacketVerdict`: (index, ts, verdict,
/// ctstate, ctdir, status), (rule, reason, summary, proto, tcp_state, conn, notes),
/// (src, dst, sport, dport). Nested (PyO3 converts tuples of up to 12 items).
type RecordTuple = (
    (
        u64,
        f64,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        Vec<&'static str>,
    ),
    RecordRest,
    RecordAddresses,
    RecordNat,
);

type RecordAddresses = (Option<String>, Option<String>, Option<u16>, Option<u16>);

/// NAT's rewrites (target, from, to, rule, port picked at random) and the addressing as the packet
/// left (src, dst, sport, dport); empty and None without NAT.
type RecordNat = (
    Vec<(&'static str, String, String, Option<RuleTuple>, bool)>,
    Option<RecordAddresses>,
);

/// A deciding rule: table, chain, number (0: the chain's policy), file line, family.
pub(crate) type RuleTuple = (String, String, u32, u32, u8);

type RecordRest = (
    Option<RuleTuple>,
    String,
    String,
    u8,
    Option<&'static str>,
    Option<u32>,
    Vec<String>,
);

pub(crate) fn rule_tuple(fw: &Firewall, r: RuleRef) -> RuleTuple {
    let (table, chain) = fw.rules().names(r.family, r.table, r.chain);
    (
        table.to_string(),
        chain.to_string(),
        r.number,
        r.line,
        r.family,
    )
}

fn record_tuple(fw: &Firewall, rec: &PacketRecord, pkt: &Packet<'_>) -> RecordTuple {
    let rule = rec.rule.map(|r| rule_tuple(fw, r));
    let head = (
        rec.index,
        rec.ts,
        rec.verdict.name(),
        rec.ctinfo.map(ctstate_name),
        rec.ctdir.map(direction_name),
        STATUS_NAMES
            .iter()
            .filter(|(bit, _)| rec.status & bit != 0)
            .map(|(_, name)| *name)
            .collect(),
    );
    let rest = (
        rule,
        fw.reason(rec),
        summary(pkt),
        rec.proto,
        rec.tcp_state.map(tcp_state_name),
        rec.conn,
        rec.notes.clone(),
    );
    let address = |addr: u128| {
        (pkt.family != 0).then(|| {
            let mut text = String::new();
            push_address(&mut text, pkt.family, addr);
            text
        })
    };
    let ports = packet_ports(pkt);
    let addresses = (
        address(pkt.src),
        address(pkt.dst),
        ports.map(|p| p.0),
        ports.map(|p| p.1),
    );
    let steps = rec
        .nat
        .iter()
        .map(|step| {
            let (from, to) = crate::output::nat::step_halves(step, rec.proto);
            let rule = step.rule.map(|r| rule_tuple(fw, r));
            (step.label, from, to, rule, step.random)
        })
        .collect();
    let leaves = rec.leaves_as.map(|out| {
        let out_ports = ports.map(|_| (out.sport, out.dport));
        (
            address(out.src),
            address(out.dst),
            out_ports.map(|p| p.0),
            out_ports.map(|p| p.1),
        )
    });
    (head, rest, addresses, (steps, leaves))
}

type ConnTuple = (
    (u32, u8, u8, u16, u32, u32),
    (
        &'static str,
        (String, String, u16, u16),
        (String, String, u16, u16),
        f64,
        Option<&'static str>,
        Option<u32>,
    ),
);

type ExpectTuple = (
    u8,
    u8,
    String,
    String,
    u16,
    u16,
    &'static str,
    u32,
    f64,
    i64,
);

/// One capture file, or several of one link merged by timestamp.
#[derive(FromPyObject)]
pub enum Paths {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

/// One simulated machine: conntrack, expectations, defragmentation, rules.
#[pyclass(module = "statewall._core", name = "Firewall")]
pub struct PyFirewall {
    pub(super) fw: Firewall,
    rec: PacketRecord,
    /// The events `take_events` hands over (`select_events`).
    event_filter: Option<Filter>,
}

#[pymethods]
impl PyFirewall {
    /// `rules_v4`/`rules_v6`: lowered rulesets as JSON (statewall.rules.lower);
    /// `sysctls`: (bare name, value) pairs; `local` and `interfaces`: the
    /// topology as (family, address, prefix) networks; `helper_params`:
    /// (ftp_loose, irc_max_dcc_channels, irc_dcc_timeout, amanda_master_timeout);
    /// `conn_log`: keep the connection log (`statewall._core.conn_log`).
    #[new]
    #[pyo3(signature = (rules_v4=None, rules_v6=None, sysctls=Vec::new(), local=Vec::new(),
                        interfaces=Vec::new(), addresses=Vec::new(), auto_helpers=false,
                        helper_params=(false, 8, 300, 300), events=false, conn_log=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        rules_v4: Option<&str>,
        rules_v6: Option<&str>,
        sysctls: Vec<(String, u64)>,
        local: Vec<NetSpec>,
        interfaces: Vec<(String, Vec<NetSpec>)>,
        addresses: Vec<(String, NetSpec)>,
        auto_helpers: bool,
        helper_params: (bool, u32, u32, u32),
        events: bool,
        conn_log: bool,
    ) -> PyResult<Self> {
        let mut cfg = Sysctls::default();
        for (name, value) in sysctls {
            cfg.set(&name, value)
                .map_err(|err| PyValueError::new_err(err.to_string()))?;
        }
        let topology = Topology {
            local: nets(local),
            interfaces: interfaces
                .into_iter()
                .map(|(name, specs)| (IfaceName::from(name), nets(specs)))
                .collect(),
            addresses: addresses
                .into_iter()
                .map(|(name, (family, address, prefix))| {
                    let net = Net::new(family, address, prefix);
                    (IfaceName::from(name), Held { address, net })
                })
                .collect(),
        };
        let (ftp_loose, irc_max_dcc_channels, irc_dcc_timeout, amanda_master_timeout) =
            helper_params;
        let setup = FirewallSetup {
            cfg,
            topology,
            rules: IptablesEngine {
                v4: engine(rules_v4)?,
                v6: engine(rules_v6)?,
            },
            auto_helpers,
            helper_params: HelperParams {
                ftp_loose,
                irc_max_dcc_channels,
                irc_dcc_timeout,
                amanda_master_timeout,
            },
            events,
            conn_log,
        };
        Ok(PyFirewall {
            fw: Firewall::new(setup),
            rec: PacketRecord::default(),
            event_filter: None,
        })
    }

    /// The clock: the latest packet time seen.
    #[getter]
    fn now(&self) -> f64 {
        self.fw.now()
    }

    /// Run one decoded packet through the machine; returns its record.
    fn process(&mut self, pkt: &Bound<'_, PyAny>) -> PyResult<RecordTuple> {
        let index: u64 = pkt.getattr("index")?.extract()?;
        let ts: f64 = pkt.getattr("ts")?.extract()?;
        let frame = pkt.getattr("frame")?;
        let frame = frame.cast::<PyBytes>().ok();
        let data = pkt.getattr("data")?;
        let data = data.cast::<PyBytes>()?;
        let mut decoded = match frame {
            Some(frame) => {
                let link_type: u32 = pkt.getattr("link_type")?.extract()?;
                let iface_in: Option<String> = pkt.getattr("iface_in")?.extract()?;
                let iface_out: Option<String> = pkt.getattr("iface_out")?.extract()?;
                let iface = iface_in.or(iface_out).map(IfaceName::from);
                decode_frame(index, ts, frame.as_bytes(), link_type, iface)
            }
            None => {
                let mut p = decode_datagram(data.as_bytes(), index, ts, false);
                let iface_in: Option<String> = pkt.getattr("iface_in")?.extract()?;
                p.iface_in = iface_in.map(IfaceName::from);
                p
            }
        };
        self.run(&mut decoded)
    }

    /// The bytes the datagram just processed left with, when NAT rewrote
    /// it (None: it left as it came, or is a fragment); `data` is that datagram.
    fn leaving<'py>(&self, py: Python<'py>, data: &[u8]) -> Option<Bound<'py, PyBytes>> {
        let pkt = decode_datagram(data, self.rec.index, self.rec.ts, false);
        // A fragment is translated only as part of its reassembled datagram.
        if pkt.fragment.is_some() {
            return None;
        }
        let out = crate::nat::mangle::leaving_datagram(&pkt, &self.rec)?;
        Some(PyBytes::new(py, &out))
    }

    /// Decode one captured frame and run it through the machine.
    #[pyo3(signature = (index, ts, frame, linktype, iface=None))]
    fn process_frame(
        &mut self,
        index: u64,
        ts: f64,
        frame: &[u8],
        linktype: u32,
        iface: Option<String>,
    ) -> PyResult<RecordTuple> {
        let mut pkt = decode_frame(index, ts, frame, linktype, iface.map(IfaceName::from));
        self.run(&mut pkt)
    }

    /// Bring the tables to `at` (expired entries and expectations go).
    fn advance_to(&mut self, at: f64) {
        self.fw.advance_to(at);
    }

    /// `/proc/net/nf_conntrack` ("proc") or `conntrack -L` ("conntrack")
    /// lines of the table at `at`, each ending in a newline.
    /// `live_at` decides which entries are listed (default: `at`);
    /// `filter` (JSON from `statewall.select`) which of them are shown.
    #[pyo3(signature = (at, fmt, live_at=None, filter=None))]
    fn table_lines(
        &self,
        at: f64,
        fmt: &str,
        live_at: Option<f64>,
        filter: Option<&str>,
    ) -> PyResult<Vec<String>> {
        let proc = fmt == "proc";
        let filter = filter.map(compile_filter).transpose()?;
        let table = self.fw.table();
        Ok(self
            .entries(live_at.unwrap_or(at), filter.as_ref())
            .map(|(id, conn)| (conn, table.listed_counters(id)))
            .map(|(conn, counters)| {
                let mut line = if proc {
                    proc_line_acct(conn, at, counters.as_ref())
                } else {
                    conntrack_line_acct(conn, at, counters.as_ref())
                };
                line.push('\n');
                line
            })
            .collect())
    }

    /// The expectation table at `at`: `/proc/net/nf_conntrack_expect`
    /// ("proc") or `conntrack -L expect` lines, each ending in a newline.
    #[pyo3(signature = (at, fmt, live_at=None))]
    fn expectation_lines(&self, at: f64, fmt: &str, live_at: Option<f64>) -> Vec<String> {
        let proc = fmt == "proc";
        self.fw
            .expectations()
            .live(live_at.unwrap_or(at))
            .into_iter()
            .map(|exp| {
                if proc {
                    proc_expect_line(exp, at)
                } else {
                    let mut line = conntrack_expect_line(exp, at);
                    line.push('\n');
                    line
                }
            })
            .collect()
    }

    /// The entries live at `at`, in table order: (conn_id, family, proto,
    /// zone, mark, status bits, protocol state name, (orig src, dst, sport,
    /// dport), (reply ...), expires, helper name, master's conn_id), the
    /// addresses as text, as every output prints them;
    /// `filter` as for `table_lines`.
    #[pyo3(signature = (at, filter=None))]
    fn connections(&self, at: f64, filter: Option<&str>) -> PyResult<Vec<ConnTuple>> {
        let filter = filter.map(compile_filter).transpose()?;
        Ok(self
            .entries(at, filter.as_ref())
            .map(|(_, c)| {
                let (o, r) = (c.orig, c.reply);
                let addr = |address| format_address(c.family, address);
                let master = c.master.and_then(|m| self.fw.conn(m)).map(|m| m.id);
                (
                    (c.id, c.family, c.proto, c.zone, c.mark, c.status),
                    (
                        state_name(c),
                        (addr(o.src), addr(o.dst), o.sport, o.dport),
                        (addr(r.src), addr(r.dst), r.sport, r.dport),
                        c.expires,
                        c.helper.map(|h| h.name()),
                        master,
                    ),
                )
            })
            .collect())
    }

    /// The expectations live at `at`: (family, proto, src, dst, sport,
    /// dport, helper, master's conn_id, expires, seconds left at `at`).
    fn expectations(&self, at: f64) -> Vec<ExpectTuple> {
        let fw = &self.fw;
        fw.expectations()
            .live(at)
            .into_iter()
            .map(|e| {
                let master = fw.conn(e.master).map_or(0, |m| m.id);
                (
                    e.family,
                    e.proto,
                    format_address(e.family, e.src),
                    format_address(e.family, e.dst),
                    e.sport,
                    e.dport,
                    e.helper,
                    master,
                    e.expires,
                    e.remaining(at).max(0),
                )
            })
            .collect()
    }

    /// The `conntrack -S` and expectation counters by name, with the entry count.
    fn stats(&self) -> Vec<(&'static str, u64)> {
        let s = &self.fw.table().stats;
        let e = &self.fw.expectations().stats;
        vec![
            ("found", s.found),
            ("invalid", s.invalid),
            ("insert", s.insert),
            ("insert_failed", s.insert_failed),
            ("drop", s.drop),
            ("early_drop", s.early_drop),
            ("error", s.error),
            ("search_restart", s.search_restart),
            ("clash_resolve", s.clash_resolve),
            ("chaintoolong", s.chaintoolong),
            ("expect_new", e.expect_new),
            ("expect_create", e.expect_create),
            ("expect_delete", e.expect_delete),
            ("entries", self.fw.table().count() as u64),
        ]
    }

    /// Number of live entries (confirmed, not yet reaped).
    fn count(&self) -> usize {
        self.fw.table().count()
    }

    /// `conntrack -S` ("conntrack") or `/proc/net/stat/nf_conntrack` ("proc") lines.
    fn stat_lines(&self, fmt: &str) -> Vec<String> {
        let table = self.fw.table();
        if fmt == "proc" {
            proc_stat_lines(
                &table.stats,
                &self.fw.expectations().stats,
                table.count() as u64,
            )
            .to_vec()
        } else {
            vec![conntrack_s_line(&table.stats, 0)]
        }
    }

    /// Keep only the events `filter` (JSON from `statewall.select`)
    /// selects from now on; None: every event.
    #[pyo3(signature = (filter=None))]
    fn select_events(&mut self, filter: Option<&str>) -> PyResult<()> {
        self.event_filter = filter.map(compile_filter).transpose()?;
        Ok(())
    }

    /// The events since the last call, in time order: (ts, kind, conn_id,
    /// body, cause, expectation).
    fn take_events(&mut self) -> Vec<(f64, &'static str, u32, String, &'static str, bool)> {
        let filter = self.event_filter.as_ref();
        self.fw
            .take_events()
            .into_iter()
            .filter(|event| filter.is_none_or(|f| f.matches(&mut EventSubject { event })))
            .map(|e| {
                (
                    e.ts,
                    e.kind.name(),
                    e.conn_id,
                    e.body,
                    e.cause,
                    e.expectation,
                )
            })
            .collect()
    }

    /// Per-rule counters of one family: (table, chain, number (0: policy), packets, bytes).
    fn counters(&self, family: u8) -> Vec<(String, String, u32, u64, u64)> {
        let rules = self.fw.rules();
        let engine = if family == 4 { &rules.v4 } else { &rules.v6 };
        engine.as_ref().map_or_else(Vec::new, Engine::counters)
    }

    /// The nft `counter` statements of one family: (table, chain, rule number,
    /// place among the rule's counters, named object, packets, bytes).
    #[allow(clippy::type_complexity)]
    fn nft_counters(
        &self,
        family: u8,
    ) -> Vec<(String, String, u32, usize, Option<String>, u64, u64)> {
        let rules = self.fw.rules();
        let engine = if family == 4 { &rules.v4 } else { &rules.v6 };
        engine
            .as_ref()
            .map_or_else(Vec::new, Engine::nft_counters)
            .into_iter()
            .map(|c| {
                (
                    c.table, c.chain, c.rule, c.place, c.name, c.packets, c.bytes,
                )
            })
            .collect()
    }

    /// Rules evaluated as unknown, as `IPv4 filter INPUT #3 (line 12)`.
    fn unknown_rules(&self) -> Vec<String> {
        self.fw.rules().unknown_rules()
    }

    /// Stream a capture (`path`: a file, or a list of files of one link,
    /// merged by timestamp) through the machine. `fmt`: "jsonl", "text" or
    /// "summary" (no per-packet output); `limit`: packets to read; `until`:
    /// stop before the first packet later than this time (None: no stop;
    /// below 1e9 it counts from the first packet). `filter` (JSON from
    /// `statewall.select`) and `conn` (a connection followed with its
    /// expected children) choose the packets written out, as lines and to
    /// the pcapng file `write`; the totals count every packet. `explain`
    /// and `color` shape the "text" lines (`TextOptions`). Also "columns"
    /// (`ReplayRun::next_batch`), "records" (`ReplayRun::next_records`) and
    /// "report" (`ReplayRun::report`, which needs `caps`: connections,
    /// rows per connection, rows, connections per rule, frames per TCP
    /// transition, drop reasons, table points).
    /// `partition` (index, partitions): process only the packets of that
    /// partition of a partitioned run (python/part.rs); `index`: that
    /// partition's index (`index_capture`), as bytes or a file, to read only
    /// its packets (else every packet is read, and the others move the clock).
    #[pyo3(signature = (path, fmt, limit=None, until=None, filter=None, conn=None, write=None,
                        explain=false, color=false, caps=None, partition=None, index=None))]
    #[allow(clippy::too_many_arguments)]
    fn replay(
        slf: Bound<'_, Self>,
        path: Paths,
        fmt: &str,
        limit: Option<u64>,
        until: Option<f64>,
        filter: Option<&str>,
        conn: Option<u32>,
        write: Option<PathBuf>,
        explain: bool,
        color: bool,
        caps: Option<CapsTuple>,
        partition: Option<(u32, u32)>,
        index: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<ReplayRun> {
        let py = slf.py();
        let format = match fmt {
            "jsonl" => Format::Jsonl,
            "text" => Format::Text(TextOptions { explain, color }),
            "summary" => Format::Summary,
            "columns" => Format::Columns,
            "records" => Format::Records,
            "report" => Format::Report,
            other => return Err(PyValueError::new_err(format!("unknown format {other:?}"))),
        };
        let tally = match (format, caps) {
            (Format::Report, Some(caps)) if partition.is_some() => {
                Some(Box::new(Tally::for_partition(report_caps(caps))))
            }
            (Format::Report, Some(caps)) => Some(Box::new(Tally::new(report_caps(caps)))),
            (Format::Report, None) => {
                return Err(PyValueError::new_err("a \"report\" run needs caps"))
            }
            _ => None,
        };
        let mut part = partition
            .map(|(index, parts)| Part::new(index, parts))
            .transpose()?;
        let filter = filter.map(compile_filter).transpose()?;
        let select = Selection::new(filter, conn.map(Follow::new));
        let paths = match path {
            Paths::One(path) => vec![path],
            Paths::Many(paths) => paths,
        };
        if paths.is_empty() {
            return Err(PyValueError::new_err("no capture to replay"));
        }
        let bounds = Bounds { limit, until };
        let (reader, first_ts) = match (index, part.as_mut()) {
            (None, _) => {
                let capture = py
                    .detach(|| Capture::open(&paths))
                    .map_err(|err| to_pyerr(py, &err))?;
                (Frames::Scan(capture), None)
            }
            (Some(index), Some(part)) => {
                let indexed = indexed_frames(py, index, paths, part, bounds)?;
                let first_ts = indexed.index().trailer.first_ts.map(|t| t.0);
                (Frames::Indexed(indexed), first_ts)
            }
            (Some(_), None) => return Err(PyValueError::new_err("an index needs partition=")),
        };
        let output = write.map(|path| open_output(py, &path)).transpose()?;
        Ok(ReplayRun {
            select,
            output,
            firewall: slf.unbind(),
            reader: Some(reader),
            format,
            bounds,
            first_ts,
            totals: Totals::default(),
            part,
            columns: Columns::default(),
            records: Vec::new(),
            tally,
            error: None,
        })
    }
}

impl ReplayRun {
    /// A "report" run's tally once the run is finished (its capture's
    /// error, if any, raised); `partition`: the run is one partition's.
    fn finished_tally(&mut self, py: Python<'_>, partition: bool) -> PyResult<Box<Tally>> {
        if self.format != Format::Report {
            return Err(PyValueError::new_err("report needs a \"report\" run"));
        }
        if self.part.is_some() != partition {
            return Err(PyValueError::new_err(if partition {
                "report_part needs a partition's run"
            } else {
                "a partition's run has report_part, not report"
            }));
        }
        while self.next_chunk(py)?.is_some() {}
        self.tally
            .take()
            .ok_or_else(|| PyValueError::new_err("this run's report was taken"))
    }

    /// The next chunk of output (empty for a run without per-packet output
    /// that is not finished yet), None at the end.
    fn next_chunk(&mut self, py: Python<'_>) -> PyResult<Option<Vec<u8>>> {
        if let Some(err) = self.error.take() {
            return Err(to_pyerr(py, &err));
        }
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        let mut fw = self.firewall.borrow_mut(py);
        let mut run = RunState {
            select: &mut self.select,
            output: &mut self.output,
            format: self.format,
            bounds: self.bounds,
            first_ts: &mut self.first_ts,
            totals: &mut self.totals,
            columns: &mut self.columns,
            records: &mut self.records,
            tally: self.tally.as_deref_mut(),
            part: &mut self.part,
        };
        let mut out: Vec<u8> = Vec::with_capacity(CHUNK_BYTES + 4096);
        let fw_ref: &mut PyFirewall = &mut fw;
        let caught = py.detach(|| {
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                fill(fw_ref, reader, &mut run, &mut out)
            }))
        });
        if let Some(part) = self.part.as_mut() {
            part.emitted(out.len());
        }
        let stop = match caught {
            Ok(stop) => stop,
            Err(payload) => {
                // The machine's state cannot be trusted after a fault: the run ends here.
                self.reader = None;
                return Err(fault(self.totals.packets + 1, payload.as_ref()));
            }
        };
        match stop {
            Stop::Full => {}
            Stop::Done => self.reader = None,
            Stop::Failed(err) => {
                self.reader = None;
                self.error = Some(err);
            }
            Stop::WriteFailed(err) => {
                self.reader = None;
                return Err(err);
            }
        }
        if let (None, Some(part)) = (&self.reader, &self.part) {
            // A single run's last packet, another partition's perhaps, reaped
            // what had expired by its time: so does the partition, now.
            let now = part.end_clock().unwrap_or(fw.fw.now());
            fw.fw.advance_to(now);
        }
        if self.reader.is_none() {
            if let Some(output) = self.output.take() {
                py.detach(|| output.finish())?;
            }
        }
        if out.is_empty()
            && self.columns.index.is_empty()
            && self.records.is_empty()
            && self.reader.is_none()
        {
            if let Some(err) = self.error.take() {
                return Err(to_pyerr(py, &err));
            }
            return Ok(None);
        }
        Ok(Some(out))
    }
}

impl PyFirewall {
    /// The entries live at `at` that pass `filter`, in table order.
    fn entries<'a>(
        &'a self,
        at: f64,
        filter: Option<&'a Filter>,
    ) -> impl Iterator<Item = (ConnId, &'a crate::conntrack::conn::Conn)> + 'a {
        let fw = &self.fw;
        fw.connections(at)
            .into_iter()
            .filter_map(|id| Some((id, fw.conn(id)?)))
            .filter(move |(_, conn)| {
                filter.is_none_or(|f| {
                    let master = conn.master.and_then(|m| fw.conn(m)).map(|m| m.id);
                    f.matches(&mut EntrySubject { conn, master })
                })
            })
    }

    fn run(&mut self, pkt: &mut Packet<'_>) -> PyResult<RecordTuple> {
        let number = pkt.index + 1;
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.fw.process(pkt, &mut self.rec);
            record_tuple(&self.fw, &self.rec, pkt)
        }))
        .map_err(|payload| fault(number, payload.as_ref()))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Jsonl,
    Text(TextOptions),
    Summary,
    /// Columnar batches (`ReplayRun::next_batch`).
    Columns,
    /// Per-packet record tuples (`ReplayRun::next_records`), as `process` gives.
    Records,
    /// The report's counts (`ReplayRun::report`).
    Report,
}

/// One batch of records, column by column: numbers in typed vectors (handed
/// to Python as the bytes of `array.array`s), texts as lists. Absent values
/// are -1 (signed columns) or 0 (conn).
#[derive(Default)]
struct Columns {
    index: Vec<u64>,
    ts: Vec<f64>,
    verdict: Vec<u8>,
    ctinfo: Vec<i8>,
    ctdir: Vec<i8>,
    status: Vec<u32>,
    rule: Vec<i32>,
    conn: Vec<u32>,
    proto: Vec<u8>,
    tcp_state: Vec<i8>,
    reason: Vec<String>,
    summary: Vec<String>,
    /// Deciding rules met so far, numbered in order of first appearance.
    rules: RuleIndex,
    /// Rules handed to Python with earlier batches.
    handed: usize,
}

impl Columns {
    fn push(&mut self, fw: &Firewall, rec: &PacketRecord, pkt: &Packet<'_>) {
        let rule = self.rules.id(rec.rule);
        self.index.push(rec.index);
        self.ts.push(rec.ts);
        self.verdict.push(rec.verdict as u8);
        self.ctinfo.push(rec.ctinfo.map_or(-1, |c| c as i8));
        self.ctdir.push(rec.ctdir.map_or(-1, |d| d as i8));
        self.status.push(rec.status);
        self.rule.push(rule);
        self.conn.push(rec.conn.unwrap_or(0));
        self.proto.push(rec.proto);
        self.tcp_state.push(rec.tcp_state.map_or(-1, |s| s as i8));
        self.reason.push(fw.reason(rec));
        self.summary.push(summary(pkt));
    }
}

/// A number a column holds, as its bytes in native order.
trait ColumnValue: Copy {
    fn put(self, out: &mut Vec<u8>);
}

macro_rules! column_value {
    ($($t:ty),*) => {$(
        impl ColumnValue for $t {
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_ne_bytes());
            }
        }
    )*};
}

column_value!(u8, i8, u32, i32, u64, f64);

/// A column's bytes (for `array.array.frombytes`); the column is left empty
/// for the next batch, its buffer kept.
fn take_column<'py, T: ColumnValue>(py: Python<'py>, values: &mut Vec<T>) -> Bound<'py, PyBytes> {
    let mut out = Vec::with_capacity(values.len() * std::mem::size_of::<T>());
    for value in values.drain(..) {
        value.put(&mut out);
    }
    PyBytes::new(py, &out)
}

/// Output bytes per chunk handed to Python.
const CHUNK_BYTES: usize = 1 << 18;
/// Packets per chunk at most, so that a run without per-packet output
/// still returns to Python (events, progress, Ctrl-C) regularly.
const CHUNK_PACKETS: u32 = 1 << 16;

/// Records per chunk of a "records" run: each holds its texts, so fewer.
const CHUNK_RECORDS: usize = 4096;

/// A capture being replayed: iterating yields the output in chunks of
/// bytes, then raises the capture's error if it has one.
#[pyclass(module = "statewall._core")]
pub struct ReplayRun {
    firewall: Py<PyFirewall>,
    select: Selection,
    /// The pcapng file the selected packets go to (`-w`).
    output: Option<Output>,
    reader: Option<Frames>,
    format: Format,
    bounds: Bounds,
    first_ts: Option<f64>,
    totals: Totals,
    columns: Columns,
    records: Vec<RecordTuple>,
    /// What a "report" run counts (taken by `report`).
    tally: Option<Box<Tally>>,
    error: Option<CaptureError>,
    /// One partition of a partitioned run: only its packets are processed.
    part: Option<Part>,
}

/// How one chunk ended.
enum Stop {
    Full,
    Done,
    Failed(CaptureError),
    /// The output file could not be written.
    WriteFailed(PyErr),
}

fn fill(
    fw: &mut PyFirewall,
    reader: &mut Frames,
    run: &mut RunState<'_>,
    out: &mut Vec<u8>,
) -> Stop {
    let mut packets = 0;
    while out.len() < CHUNK_BYTES && packets < CHUNK_PACKETS && run.records.len() < CHUNK_RECORDS {
        packets += 1;
        let (frame, iface_info, clock) = match reader.next_step() {
            None => return Stop::Done,
            Some(Err(err)) => return Stop::Failed(err),
            Some(Ok(step)) => step,
        };
        if run.bounds.past_limit(frame.index) {
            return Stop::Done;
        }
        let iface = frame.iface.clone();
        let mut pkt = decode_frame(frame.index, frame.ts, frame.data, frame.linktype, iface);
        let first = *run.first_ts.get_or_insert(pkt.ts);
        if run.bounds.past_until(first, pkt.ts) {
            return Stop::Done;
        }
        if let Some(part) = run.part.as_mut() {
            if !part.admits(&mut fw.fw, &pkt, clock) {
                continue;
            }
        }
        fw.fw.process(&mut pkt, &mut fw.rec);
        if let Some(part) = run.part.as_mut() {
            part.processed(&fw.fw, &fw.rec);
        }
        run.totals.add(&fw.rec, &fw.fw);
        run.totals.ipv6 += u64::from(pkt.family == 6);
        if !run.select.is_everything() && !run.select.admits(&fw.fw, &fw.rec, &pkt) {
            continue;
        }
        if let (Some(output), Some(info)) = (run.output.as_mut(), iface_info) {
            // Written as it leaves: translated when NAT translated it.
            let written = match leaving_frame(frame.data, &pkt, &fw.rec) {
                Some(data) => output.write(
                    &Frame {
                        data: &data,
                        // A helper's rewrite may resize it: the original
                        // length moves by as much.
                        orig_len: (i64::from(frame.orig_len) + data.len() as i64
                            - frame.data.len() as i64)
                            .max(data.len() as i64) as u32,
                        ..frame.clone()
                    },
                    info,
                ),
                None => output.write(&frame, info),
            };
            if let Err(err) = written {
                return Stop::WriteFailed(err);
            }
        }
        match run.format {
            Format::Jsonl => write_jsonl(out, &fw.fw, &fw.rec, &pkt),
            Format::Text(opts) => write_text(out, &fw.fw, &fw.rec, &pkt, pkt.ts - first, opts),
            Format::Summary => {}
            Format::Report => {
                if let Some(tally) = run.tally.as_deref_mut() {
                    tally.push(&fw.fw, &fw.rec, &pkt);
                }
            }
            Format::Columns => run.columns.push(&fw.fw, &fw.rec, &pkt),
            Format::Records => run.records.push(record_tuple(&fw.fw, &fw.rec, &pkt)),
        }
        if let Some(part) = run.part.as_mut() {
            part.mark(fw.rec.index, out.len());
        }
    }
    Stop::Full
}

struct RunState<'r> {
    select: &'r mut Selection,
    output: &'r mut Option<Output>,
    format: Format,
    bounds: Bounds,
    first_ts: &'r mut Option<f64>,
    totals: &'r mut Totals,
    columns: &'r mut Columns,
    records: &'r mut Vec<RecordTuple>,
    tally: Option<&'r mut Tally>,
    part: &'r mut Option<Part>,
}

#[pymethods]
impl ReplayRun {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyBytes>>> {
        Ok(self
            .next_chunk(py)?
            .map(|out| PyBytes::new(py, &out).unbind()))
    }

    /// Write the whole output to the process's standard output (file
    /// descriptor 1) from the core, sparing a copy of every chunk through
    /// Python; the capture's error, if any, is raised at the end.
    fn write_to_stdout(&mut self, py: Python<'_>) -> PyResult<()> {
        while let Some(out) = self.next_chunk(py)? {
            if out.is_empty() {
                continue;
            }
            py.detach(|| {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(&out).and_then(|()| stdout.flush())
            })
            .map_err(|err| match err.kind() {
                std::io::ErrorKind::BrokenPipe => PyBrokenPipeError::new_err(err.to_string()),
                _ => PyOSError::new_err(err.to_string()),
            })?;
        }
        Ok(())
    }

    /// The next batch of a "columns" run (None at the end): the bytes of
    /// the columns index (u64), ts (f64), verdict (u8), ctinfo (i8), ctdir
    /// (i8), status (u32), rule (i32), conn (u32), proto (u8), tcp_state
    /// (i8), in native byte order; then the reason and summary texts and
    /// the deciding rules first met in this batch.
    fn next_batch(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if self.format != Format::Columns {
            return Err(PyValueError::new_err("next_batch needs a \"columns\" run"));
        }
        loop {
            if self.next_chunk(py)?.is_none() && self.columns.index.is_empty() {
                return Ok(None);
            }
            if !self.columns.index.is_empty() {
                break;
            }
        }
        let c = &mut self.columns;
        let fw = self.firewall.borrow(py);
        let new_rules: Vec<RuleTuple> = c.rules.rules()[c.handed..]
            .iter()
            .map(|&r| rule_tuple(&fw.fw, r))
            .collect();
        c.handed = c.rules.rules().len();
        let numbers = (
            take_column(py, &mut c.index),
            take_column(py, &mut c.ts),
            take_column(py, &mut c.verdict),
            take_column(py, &mut c.ctinfo),
            take_column(py, &mut c.ctdir),
            take_column(py, &mut c.status),
            take_column(py, &mut c.rule),
            take_column(py, &mut c.conn),
            take_column(py, &mut c.proto),
            take_column(py, &mut c.tcp_state),
        );
        let texts = (
            std::mem::take(&mut c.reason),
            std::mem::take(&mut c.summary),
            new_rules,
        );
        Ok(Some(
            (numbers, texts).into_pyobject(py)?.into_any().unbind(),
        ))
    }

    /// The next records of a "records" run (None at the end), as `process` returns them.
    fn next_records(&mut self, py: Python<'_>) -> PyResult<Option<Vec<RecordTuple>>> {
        if self.format != Format::Records {
            return Err(PyValueError::new_err(
                "next_records needs a \"records\" run",
            ));
        }
        while self.records.is_empty() {
            if self.next_chunk(py)?.is_none() {
                return Ok(None);
            }
        }
        Ok(Some(std::mem::take(&mut self.records)))
    }

    /// The report's data (`statewall.report.model`): the run is finished
    /// first (its capture's error, if any, raised); then the counts and
    /// kept packets, and the connection log's share (`python/report.rs`).
    fn report(&mut self, py: Python<'_>) -> PyResult<ReportTuple> {
        let tally = self.finished_tally(py, false)?;
        let fw = self.firewall.borrow(py);
        report_tuple(&fw.fw, tally.finish(), self.first_ts, py)
    }

    /// A partition's share of the report (`partition=`; python/report_part.rs):
    /// the run is finished first, as by `report`; `numbers`, the bytes of
    /// u32 values, are the run's number of the partition's connection n at n - 1.
    fn report_part(&mut self, py: Python<'_>, numbers: &[u8]) -> PyResult<ReportPartTuple> {
        let tally = self.finished_tally(py, true)?;
        let fw = self.firewall.borrow(py);
        report_part(&fw.fw, *tally, numbers, py)
    }

    /// Packets processed so far.
    #[getter]
    fn packets(&self) -> u64 {
        self.totals.packets
    }

    /// The first packet's timestamp (None before any packet).
    #[getter]
    fn first_ts(&self) -> Option<f64> {
        self.first_ts
    }

    /// The totals as values: (packets, connections seen, packets by ctstate,
    /// packets by verdict, INVALID reasons), most common first.
    fn totals(&self) -> TotalsValues {
        totals_values(&self.totals)
    }

    /// IPv6 packets read so far.
    #[getter]
    fn ipv6_packets(&self) -> u64 {
        self.totals.ipv6
    }

    /// The totals lines printed after a replay.
    fn totals_lines(&self) -> Vec<String> {
        self.totals.lines()
    }

    /// The totals as plain values, for `merged_totals_lines`.
    fn totals_part(&self) -> TotalsTuple {
        totals_tuple(&self.totals)
    }

    /// A partition's run (`partition=`): (the bytes of the u64 index of the
    /// packet that confirmed each connection, by number - 1; the most
    /// entries, expectations, IPv4 and IPv6 fragment bytes held at once; ICMP errors in fragments that quote another
    /// partition's pair; the bytes of (packet index, output end) u64 pairs).
    fn part_results<'py>(&self, py: Python<'py>) -> PyResult<PartResults<'py>> {
        self.part
            .as_ref()
            .map(|part| part.results(py))
            .ok_or_else(|| PyValueError::new_err("not a partition's run"))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyFirewall>()?;
    m.add_class::<ReplayRun>()?;
    Ok(())
}
