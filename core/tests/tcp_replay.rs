//! The Rust TCP tracker against the Python one, step by step.
//!
//! `data/tcp_replay.txt` holds what the Python tracker (through the `Flow`
//! of tests/test_proto_tcp.py) decided for the kernel-checked scenarios of
//! that file and for a few hundred random segment sequences: ctstate, the
//! entry's state, timeout and ASSURED bit, and the reason. Regenerate it with
//! `data/gen_tcp_replay.py` whenever the Python tracker changes.

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
fn replay_matches_python_decision_for_decision() {
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
