//! The TCP tracker replayed segment by segment against recorded reference
//! decisions.
//!
//! `data/tcp_replay.txt` holds, for the scenarios tests/test_proto_tcp.py
//! checks against the live kernel and for a few hundred random segment
//! sequences, the expected outcome of every segment: ctstate, the entry's
//! state, timeout and ASSURED bit, and the reason. A scenario starts with a
//! `# <name>\t<sysctl>=<value>...` line; each segment line gives its
//! direction (o/r), flags, seq, ack, window, payload length, options (hex),
//! the seconds waited before it, then the expected values. A deliberate
//! change to a decision or a reason is made in the file too.

mod tcp_support;

use tcp_support::*;

fn hex(text: &str) -> Vec<u8> {
    if text == "." {
        return Vec::new();
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn replay_matches_the_recorded_decisions() {
    let text = include_str!("data/tcp_replay.txt");
    let mut flow = Flow::default();
    let mut scenario = String::new();
    let (mut steps, mut scenarios) = (0, 0);
    for (number, line) in text.lines().enumerate() {
        if let Some(header) = line.strip_prefix("# ") {
            let (name, knobs) = header.split_once('\t').expect("name and knobs");
            scenario = name.to_string();
            flow = Flow::default();
            for knob in knobs.split_whitespace() {
                let (key, value) = knob.split_once('=').expect("key=value");
                flow.cfg
                    .set(key, value.parse().expect("number"))
                    .expect("known sysctl");
            }
            scenarios += 1;
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 13, "line {}", number + 1);
        let letters = if f[1] == "." { "" } else { f[1] };
        let num = |i: usize| f[i].parse::<u64>().expect("number");
        let spec = if f[0] == "o" {
            orig(flags_of(letters), num(2) as u32, num(3) as u32)
        } else {
            reply(flags_of(letters), num(2) as u32, num(3) as u32)
        };
        let spec = spec
            .window(num(4) as u16)
            .data(b'p', num(5) as usize)
            .options(&hex(f[6]));
        flow.wait(num(7) as f64);
        let seen = flow.send(spec);
        let expected = Seen {
            ctstate: match f[8] {
                "NEW" => "NEW",
                "ESTABLISHED" => "ESTABLISHED",
                "INVALID" => "INVALID",
                other => panic!("ctstate {other}"),
            },
            reason: f[12].to_string(),
            state: (f[9] != "-").then(|| {
                *_core::conntrack::proto_tcp::STATE_NAMES
                    .iter()
                    .find(|&&name| name == f[9])
                    .expect("a state name")
            }),
            timeout: (f[10] != "-").then(|| f[10].parse().expect("float")),
            assured: f[11] == "1",
        };
        assert_eq!(seen, expected, "{scenario}, line {}", number + 1);
        steps += 1;
    }
    assert!(
        scenarios > 200 && steps > 3000,
        "{scenarios} scenarios, {steps} steps"
    );
}
