//! What NAT did to a packet, in the reason and in jsonl: each rewrite as
//! `MASQUERADE 192.168.1.10:40000 → 203.0.113.1:40000 by nat POSTROUTING #1`.

use crate::engine::{Addressing, Firewall, NatStep, PacketRecord};
use crate::nat::manip::has_ports;
use crate::nat::Manip;
use crate::output::addr::{push_address, push_endpoint, push_u64};
use crate::output::escape::push_escaped;
use crate::output::json::push_str_body;
use crate::output::record::push_rule_json;
use crate::output::Sink;

/// The half of the addressing a step changed, as `addr:port` (or `addr`
/// for protocols without ports; an ICMP query's id when NAT changed it).
fn push_half<S: Sink + ?Sized>(out: &mut S, step: &NatStep, at: &Addressing, proto: u8) {
    let (address, port) = match step.manip {
        Manip::Src => (at.src, at.sport),
        Manip::Dst => (at.dst, at.dport),
    };
    if has_ports(proto) {
        push_endpoint(out, step.family, address, port);
        return;
    }
    push_address(out, step.family, address);
    if step.from.sport != step.to.sport {
        out.text(" id ");
        push_u64(out, u64::from(at.sport));
    }
}

/// A step's changed half before and after, as text.
pub fn step_halves(step: &NatStep, proto: u8) -> (String, String) {
    let (mut from, mut to) = (String::new(), String::new());
    push_half(&mut from, step, &step.from, proto);
    push_half(&mut to, step, &step.to, proto);
    (from, to)
}

/// `; LABEL FROM → TO [by RULE]` for each step (text or JSON string body:
/// nothing here needs escaping but the rule's names, which `rule` writes).
pub fn write_steps<S: Sink + ?Sized>(
    out: &mut S,
    rec: &PacketRecord,
    json: bool,
    rule: &dyn Fn(&mut S, &NatStep),
) {
    for step in &rec.nat {
        out.text("; ");
        out.text(step.label);
        out.ch(' ');
        push_half(out, step, &step.from, rec.proto);
        out.text(if json { " \\u2192 " } else { " → " });
        push_half(out, step, &step.to, rec.proto);
        if step.rule.is_some() {
            out.text(" by ");
            rule(out, step);
        }
        if step.random {
            out.text(" (port picked at random, repeatable with --seed)");
        }
    }
    if let Some(text) = &rec.rewrite {
        out.text("; ");
        if json {
            push_str_body(out, text);
        } else {
            push_escaped(out, text);
        }
    }
    if let Some(shift) = rec.seq_adjust {
        let arrow = if json { " \\u2192 " } else { " → " };
        out.text("; sequence adjusted after a NAT helper's rewrite: seq ");
        push_u64(out, u64::from(shift.seq.0));
        out.text(arrow);
        push_u64(out, u64::from(shift.seq.1));
        out.text(", ack ");
        push_u64(out, u64::from(shift.ack.0));
        out.text(arrow);
        push_u64(out, u64::from(shift.ack.1));
    }
    if !rec.sack_adjust.is_empty() {
        out.text(if rec.seq_adjust.is_some() { ", " } else { "; " });
        out.text("SACK edges moved back: ");
        push_u64(out, rec.sack_adjust.len() as u64);
    }
}

/// `,"nat":[...],"leaves":{...}` after a translated packet's other fields.
pub fn write_json<S: Sink + ?Sized>(out: &mut S, fw: &Firewall, rec: &PacketRecord) {
    if rec.nat.is_empty() {
        return;
    }
    out.text(",\"nat\":[");
    for (i, step) in rec.nat.iter().enumerate() {
        if i > 0 {
            out.ch(',');
        }
        out.text("{\"target\":\"");
        out.text(step.label);
        out.text("\",\"from\":\"");
        push_half(out, step, &step.from, rec.proto);
        out.text("\",\"to\":\"");
        push_half(out, step, &step.to, rec.proto);
        out.text("\",\"rule\":");
        push_rule_json(out, fw, step.rule);
        if step.random {
            out.text(",\"random\":true");
        }
        out.ch('}');
    }
    out.ch(']');
    if let (Some(leaves), Some(step)) = (rec.leaves_as, rec.nat.first()) {
        out.text(",\"leaves\":{\"src\":\"");
        push_address(out, step.family, leaves.src);
        out.text("\",\"dst\":\"");
        push_address(out, step.family, leaves.dst);
        out.ch('"');
        if has_ports(rec.proto) {
            out.text(",\"sport\":");
            push_u64(out, u64::from(leaves.sport));
            out.text(",\"dport\":");
            push_u64(out, u64::from(leaves.dport));
        }
        out.ch('}');
    }
}
