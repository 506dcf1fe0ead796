//! `_core.RuleEngine`: a lowered ruleset (statewall.rules.lower) loaded into
//! the core, walked for `statewall.packet.Packet` objects.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use std::collections::HashMap;

use crate::conntrack::conn::{Conn, Tuple, IPS_CONFIRMED, IPS_DYING};
use crate::packet::{DecodeError, FragmentInfo, Layer, Packet, PktType};
use crate::rules::context::RuleCtx;
use crate::rules::matches::connlimit::{ConnAlive, ConnKey};
use crate::rules::model::Hook;
use crate::rules::walker::Engine;

/// The Python objects a packet's borrowed bytes come from, kept alive while it is walked.
struct Held<'py> {
    obj: Bound<'py, PyAny>,
    data: Bound<'py, PyBytes>,
    link_src: Option<Bound<'py, PyBytes>>,
    link_dst: Option<Bound<'py, PyBytes>>,
    inner: Option<Box<Held<'py>>>,
}

fn bytes_of<'py>(value: Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyBytes>>> {
    if value.is_none() {
        return Ok(None);
    }
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(Some(b.clone()));
    }
    let owned: Vec<u8> = value.extract()?;
    Ok(Some(PyBytes::new(value.py(), &owned)))
}

fn hold<'py>(obj: &Bound<'py, PyAny>, depth: u8) -> PyResult<Held<'py>> {
    let inner_obj = obj.getattr("inner")?;
    let inner = if inner_obj.is_none() || depth > 2 {
        None
    } else {
        Some(Box::new(hold(&inner_obj, depth + 1)?))
    };
    Ok(Held {
        obj: obj.clone(),
        data: bytes_of(obj.getattr("data")?)?.unwrap_or_else(|| PyBytes::new(obj.py(), &[])),
        link_src: bytes_of(obj.getattr("link_src")?)?,
        link_dst: bytes_of(obj.getattr("link_dst")?)?,
        inner,
    })
}

fn pkt_type(name: &str) -> PktType {
    match name {
        "host" => PktType::Host,
        "broadcast" => PktType::Broadcast,
        "multicast" => PktType::Multicast,
        "otherhost" => PktType::OtherHost,
        "outgoing" => PktType::Outgoing,
        "loopback" => PktType::Loopback,
        other => PktType::Other(other.trim_start_matches("type").parse().unwrap_or(0)),
    }
}

fn build<'a>(h: &'a Held<'_>) -> PyResult<Packet<'a>> {
    let o = &h.obj;
    let get = |name: &str| o.getattr(name);
    let mut p = Packet::new(
        get("index")?.extract()?,
        get("ts")?.extract()?,
        h.data.as_bytes(),
        get("family")?.extract()?,
    );
    p.src = get("src")?.extract()?;
    p.dst = get("dst")?.extract()?;
    p.proto = get("proto")?.extract()?;
    p.ttl = get("ttl")?.extract()?;
    p.tos = get("tos")?.extract()?;
    p.ip_len = get("ip_len")?.extract()?;
    p.ip_id = get("ip_id")?.extract()?;
    p.l4_off = get("l4_off")?.extract()?;
    p.payload_off = get("payload_off")?.extract()?;
    p.sport = get("sport")?.extract()?;
    p.dport = get("dport")?.extract()?;
    p.tcp_flags = get("tcp_flags")?.extract()?;
    p.seq = get("seq")?.extract()?;
    p.ack = get("ack")?.extract()?;
    p.window = get("window")?.extract()?;
    p.icmp_type = get("icmp_type")?.extract()?;
    p.icmp_code = get("icmp_code")?.extract()?;
    p.icmp_id = get("icmp_id")?.extract()?;
    let frag = get("fragment")?;
    if !frag.is_none() {
        p.fragment = Some(FragmentInfo {
            ident: frag.getattr("ident")?.extract()?,
            offset: frag.getattr("offset")?.extract()?,
            more: frag.getattr("more")?.extract()?,
            next_proto: frag.getattr("next_proto")?.extract()?,
            unfrag_len: frag.getattr("unfrag_len")?.extract()?,
        });
    }
    let error = get("error")?;
    if !error.is_none() {
        let text = error.str()?.to_string();
        p.error = Some(Box::new(DecodeError::new(Layer::Ip, 0, text)));
    }
    p.link_src = h.link_src.as_ref().map(|b| b.as_bytes());
    p.link_dst = h.link_dst.as_ref().map(|b| b.as_bytes());
    p.pkt_type = pkt_type(&get("pkt_type")?.extract::<String>()?);
    if let Some(inner) = &h.inner {
        p.inner = Some(Box::new(build(inner)?));
    }
    Ok(p)
}

/// The entry objects connlimit has counted (see `conn_of`), asked whether they still count.
struct PyConns<'a, 'py> {
    py: Python<'py>,
    seen: &'a HashMap<ConnKey, Py<PyAny>>,
}

impl ConnAlive for PyConns<'_, '_> {
    fn alive(&self, key: &ConnKey, now: f64) -> bool {
        let Some(obj) = self.seen.get(key) else {
            return false;
        };
        let c = obj.bind(self.py);
        let read = || -> PyResult<bool> {
            let status: u32 = c.getattr("status")?.extract()?;
            let expires: f64 = c.getattr("expires")?.extract()?;
            let proto: u8 = c.getattr("proto")?.extract()?;
            let state: u8 = c.getattr("proto_state")?.extract()?;
            let gone = status & IPS_DYING != 0
                || status & IPS_CONFIRMED == 0
                || expires <= now
                || (proto == 6 && matches!(state, 7 | 8));
            Ok(!gone)
        };
        read().unwrap_or(false)
    }
}

fn conn_of(obj: &Bound<'_, PyAny>) -> PyResult<(Conn, Option<String>)> {
    let get = |name: &str| obj.getattr(name);
    let orig = Tuple::new(
        get("orig_src")?.extract()?,
        get("orig_dst")?.extract()?,
        get("orig_sport")?.extract()?,
        get("orig_dport")?.extract()?,
    );
    let reply = Tuple::new(
        get("reply_src")?.extract()?,
        get("reply_dst")?.extract()?,
        get("reply_sport")?.extract()?,
        get("reply_dport")?.extract()?,
    );
    let mut conn = Conn::new(
        get("family")?.extract()?,
        get("proto")?.extract()?,
        get("zone")?.extract()?,
        orig,
        reply,
        get("created")?.extract()?,
    );
    conn.status = get("status")?.extract()?;
    conn.mark = get("mark")?.extract()?;
    conn.expires = get("expires")?.extract()?;
    conn.proto_state = get("proto_state")?.extract()?;
    let master = get("master")?;
    let helper = if master.is_none() {
        None
    } else {
        master.getattr("helper")?.extract::<Option<String>>()?
    };
    Ok((conn, helper))
}

type RuleTuple = (String, String, u32, u32);
type WalkResult = (
    &'static str,
    RuleTuple,
    String,
    u32,
    Option<String>,
    u16,
    Vec<String>,
    Vec<(String, String)>,
    Vec<String>,
    Vec<String>,
    bool,
    Option<(u32, bool)>,
);

/// A lowered ruleset of one family with its counters and match state.
#[pyclass(name = "RuleEngine", module = "statewall._core")]
pub struct PyRuleEngine {
    engine: Engine,
    /// Connections seen by walks, for connlimit (only kept when a rule uses it).
    seen: HashMap<ConnKey, Py<PyAny>>,
}

#[pymethods]
impl PyRuleEngine {
    #[new]
    fn new(json: &str) -> PyResult<Self> {
        Engine::from_json(json)
            .map(|engine| PyRuleEngine {
                engine,
                seen: HashMap::new(),
            })
            .map_err(PyValueError::new_err)
    }

    /// The family the ruleset was written for (4 or 6).
    #[getter]
    fn family(&self) -> u8 {
        self.engine.ruleset.family
    }

    /// Walk `table` at `hook`; None when the table has no chain for the hook.
    /// `local_out`: the machine sent the packet itself (default: when `hook` is OUTPUT).
    #[pyo3(signature = (table, hook, pkt, ctinfo, conn, now, iface_in=None, iface_out=None, mark=0, trace=false, local_out=None))]
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &mut self,
        table: &str,
        hook: &str,
        pkt: &Bound<'_, PyAny>,
        ctinfo: u8,
        conn: Option<&Bound<'_, PyAny>>,
        now: f64,
        iface_in: Option<String>,
        iface_out: Option<String>,
        mark: u32,
        trace: bool,
        local_out: Option<bool>,
    ) -> PyResult<Option<WalkResult>> {
        let hook = Hook::from_name(hook)
            .ok_or_else(|| PyValueError::new_err(format!("unknown hook {hook:?}")))?;
        let held = hold(pkt, 0)?;
        let packet = build(&held)?;
        let conn_obj = conn.filter(|c| !c.is_none());
        let conn = match conn_obj {
            Some(c) => Some(conn_of(c)?),
            None => None,
        };
        let mut conn_counters = None;
        if let Some(c) = conn_obj {
            let counters = c.getattr("counters")?;
            if !counters.is_none() {
                let v: Vec<u64> = counters.extract()?;
                if let [a, b, c, d] = v[..] {
                    conn_counters = Some([a, b, c, d]);
                }
            }
            if let (Some((rc, _)), false) = (&conn, self.engine.state.connlimit.is_empty()) {
                self.seen.insert(ConnKey::of(rc), c.clone().unbind());
            }
        }
        let alive = PyConns {
            py: pkt.py(),
            seen: &self.seen,
        };
        let ctx = RuleCtx {
            pkt: &packet,
            ctinfo,
            conn: conn.as_ref().map(|(c, _)| c),
            master_helper: conn.as_ref().and_then(|(_, h)| h.as_deref()),
            now,
            hook,
            iface_in: iface_in.as_deref(),
            iface_out: iface_out.as_deref(),
            local_out: local_out.unwrap_or(hook == Hook::Output),
            mark,
            nf_trace: trace,
            conn_counters,
            conns: Some(&alive),
        };
        let Some((d, fx)) = self.engine.walk(table, &ctx) else {
            return Ok(None);
        };
        let fx = std::mem::take(fx);
        // A nat target's request shows as the effect ("nat", its target name).
        let nat = fx
            .nat
            .map(|(kind, _)| ("nat".to_owned(), format!("\"{}\"", kind.name())));
        let effects = fx
            .effects
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v.to_string()))
            .chain(nat)
            .collect();
        Ok(Some((
            d.verdict.name(),
            (
                d.rule.table.to_owned(),
                d.rule.chain.to_owned(),
                d.rule.number,
                d.rule.line,
            ),
            d.reason.into_owned(),
            fx.mark,
            fx.reject_with,
            fx.queue_num,
            fx.logs,
            effects,
            fx.notes,
            fx.trace,
            fx.nf_trace,
            fx.connmark.map(|m| (m, fx.connmark_changed)),
        )))
    }

    /// Every counter: (table, chain, rule number or 0 for the policy, packets, bytes).
    fn counters(&self) -> Vec<(String, String, u32, u64, u64)> {
        self.engine.counters()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRuleEngine>()
}
