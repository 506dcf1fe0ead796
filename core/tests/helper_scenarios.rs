//! Random helper traffic, replayed: the expectation table and helpers must
//! give the recorded reference results of data/helper_scenarios.txt for the
//! same datagrams: the same state, verdict and reason per packet, the same
//! RELATED reasons, the same expectation events and the same /proc listing
//! after every packet.

mod helpers_kit;

use helpers_kit::*;

const SCENARIOS: &str = include_str!("data/helper_scenarios.txt");

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

#[test]
fn replayed_traffic_gives_the_recorded_results() {
    replay(false);
}

/// The same through the `ExpectHooks` path, where the table judges masters
/// itself (and keeps no RELATED reasons: it is not told the child's id).
#[test]
fn replayed_traffic_through_the_hooks_gives_the_recorded_results() {
    replay(true);
}

fn fresh(use_hooks: bool) -> Machine {
    let mut b = Machine::default();
    b.use_hooks = use_hooks;
    b
}

fn replay(use_hooks: bool) {
    let mut b = fresh(use_hooks);
    let mut listing = String::new();
    let mut packets = 0;
    let lines = SCENARIOS.lines().enumerate();
    let mut seen: Option<Seen> = None;
    let mut before = 0;
    let mut last_now = 0.0;
    for (n, line) in lines {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields[0] {
            "reset" => {
                b = fresh(use_hooks);
                listing.clear();
            }
            "pkt" => {
                let now: f64 = fields[1].parse().unwrap();
                let proto: u8 = fields[2].parse().unwrap();
                let (src, dst) = (fields[3], fields[4]);
                let sport: u16 = fields[5].parse().unwrap();
                let dport: u16 = fields[6].parse().unwrap();
                let payload = unhex(fields[10]);
                let raw = if proto == 6 {
                    let (seq, ack) = (fields[8].parse().unwrap(), fields[9].parse().unwrap());
                    tcp(src, dst, sport, dport, fields[7], seq, ack, &payload)
                } else {
                    udp(src, dst, sport, dport, &payload)
                };
                b.expire(now);
                last_now = now;
                before = b.events.len();
                seen = Some(b.send(&raw, now));
                packets += 1;
            }
            "out" => {
                let s = seen.as_ref().unwrap();
                let related = match (s.state, s.id) {
                    ("RELATED", Some(id)) => b.exp.related_reason(id).unwrap_or_default(),
                    _ => String::new(),
                };
                let got = format!(
                    "out\t{}\t{}\t{}\t{}",
                    s.state,
                    u8::from(s.accepted),
                    s.reason,
                    related
                );
                if use_hooks {
                    let want = &line[..line.rfind('\t').unwrap()];
                    assert_eq!(&got[..got.rfind('\t').unwrap()], want, "line {}", n + 1);
                } else {
                    assert_eq!(got, line, "line {}", n + 1);
                }
            }
            "ev" => {
                let mut events: Vec<String> = b.events[before..]
                    .iter()
                    .map(|(k, p)| format!("{k}:{p}"))
                    .collect();
                events.sort();
                assert_eq!(
                    events.join(" "),
                    fields.get(1).copied().unwrap_or(""),
                    "line {}",
                    n + 1
                );
            }
            "same" | "list" => {
                let got: Vec<String> = b
                    .listing(last_now)
                    .into_iter()
                    .map(|l| l.trim_end_matches('\n').to_string())
                    .collect();
                let got = got.join("|");
                if fields[0] == "list" {
                    listing = fields.get(1).copied().unwrap_or("").to_string();
                }
                assert_eq!(got, listing, "line {}", n + 1);
            }
            other => panic!("unknown line {other}"),
        }
    }
    assert!(packets > 1000, "{packets}");
}
