//! Replay a capture through the core alone (no Python): for profiling.
//!
//! Usage: replay CAPTURE [LOWERED_RULESET_JSON] [jsonl|summary] [LOCAL_CIDR...]

use std::io::Write;
use std::time::Instant;

use _core::capture;
use _core::decode::decode_frame;
use _core::engine::{Firewall, FirewallSetup, PacketRecord};
use _core::netfilter::route::Net;
use _core::output::record::{write_jsonl, Totals};
use _core::rules::walker::Engine;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut setup = FirewallSetup::default();
    if let Some(path) = args.get(2) {
        let json = std::fs::read_to_string(path).expect("ruleset");
        setup.rules.v4 = Some(Engine::from_json(&json).expect("ruleset data"));
    }
    let jsonl = args.get(3).is_some_and(|f| f == "jsonl");
    for cidr in args.iter().skip(4) {
        let (addr, prefix) = cidr.split_once('/').expect("CIDR");
        let addr: std::net::Ipv4Addr = addr.parse().expect("address");
        setup.topology.local.push(Net::new(
            4,
            u128::from(u32::from(addr)),
            prefix.parse().expect("prefix"),
        ));
    }
    let mut fw = Firewall::new(setup);
    let mut reader = capture::open(&args[1]).expect("capture");
    let mut rec = PacketRecord::default();
    let mut totals = Totals::default();
    let mut out: Vec<u8> = Vec::with_capacity(1 << 20);
    let stdout = std::io::stdout();
    let mut sink = stdout.lock();
    let start = Instant::now();
    while let Some(frame) = reader.next_frame() {
        let frame = frame.expect("frame");
        let mut pkt = decode_frame(
            frame.index,
            frame.ts,
            frame.data,
            frame.linktype,
            frame.iface.clone(),
        );
        fw.process(&mut pkt, &mut rec);
        totals.add(&rec, &fw);
        if jsonl {
            write_jsonl(&mut out, &fw, &rec, &pkt);
            if out.len() > 1 << 18 {
                sink.write_all(&out).expect("write");
                out.clear();
            }
        }
    }
    sink.write_all(&out).expect("write");
    let took = start.elapsed().as_secs_f64();
    eprintln!(
        "{} packets in {took:.3} s: {:.0} pps",
        totals.packets,
        totals.packets as f64 / took
    );
    for line in totals.lines() {
        eprintln!("{line}");
    }
}
