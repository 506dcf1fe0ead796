//! Replays the recorded random fragment sequences of data/reference_cases.txt
//! and checks every recorded result, reason text, expired fragments and
//! reassembled bytes included.
//!
//! The file is a list of cases, each a line `case <n> <sysctl>=<value>...`
//! (the defragmenter starts afresh with those settings) followed by:
//! `p <index> <hex datagram> <time> <interface or -> <zone>` pushes a fragment,
//! and the next line `r <outcome> <expired indices or -> <hex datagram or -> <reason>`
//! is its result; `x <time> <expired indices or ->` runs expiry; and
//! `end <pending queues> <IPv4 memory> <IPv6 memory>` checks what is left.

use super::*;

const CASES: &str = include_str!("data/reference_cases.txt");

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn indices(text: &str) -> Vec<u64> {
    if text == "-" {
        return Vec::new();
    }
    text.split(',').map(|n| n.parse().unwrap()).collect()
}

#[test]
fn every_recorded_fragment_gives_the_recorded_result() {
    let mut defrag = Defragmenter::new(&Sysctls::default());
    let mut lines = CASES.lines().enumerate();
    let (mut cases, mut pushes) = (0, 0);
    while let Some((no, line)) = lines.next() {
        let at = no + 1;
        let mut words = line.split(' ');
        match words.next() {
            Some("case") => {
                let mut cfg = Sysctls::default();
                for knob in words.skip(1).filter(|w| !w.is_empty()) {
                    let (name, value) = knob.split_once('=').unwrap();
                    cfg.set(name, value.parse().unwrap()).unwrap();
                }
                defrag = Defragmenter::new(&cfg);
                cases += 1;
            }
            Some("p") => {
                let index: u64 = words.next().unwrap().parse().unwrap();
                let data = unhex(words.next().unwrap());
                let now: f64 = words.next().unwrap().parse().unwrap();
                let iface = words.next().unwrap();
                let zone: u16 = words.next().unwrap().parse().unwrap();
                let mut pkt = decode(&data, index, now);
                pkt.iface_in = (iface != "-").then(|| Arc::from(iface));
                let res = defrag.push(&pkt, now, zone);
                pushes += 1;
                let (_, want) = lines.next().unwrap();
                let mut want = want.splitn(5, ' ');
                assert_eq!(want.next(), Some("r"));
                let (kind, expired, out, reason) = (
                    want.next().unwrap(),
                    want.next().unwrap(),
                    want.next().unwrap(),
                    want.next().unwrap(),
                );
                assert_eq!(res.kind(), kind, "line {at}: {}", res.reason());
                assert_eq!(res.reason(), reason, "line {at}");
                assert_eq!(res.expired, indices(expired), "line {at}");
                if let DefragOutcome::Complete(done) = &res.outcome {
                    assert_eq!(done.datagram, unhex(out), "line {at}");
                    assert_eq!((done.index, done.ts), (index, now), "line {at}");
                }
            }
            Some("x") => {
                let now: f64 = words.next().unwrap().parse().unwrap();
                let gone = indices(words.next().unwrap());
                assert_eq!(defrag.expire(now), gone, "line {at}");
            }
            Some("end") => {
                let want: Vec<u64> = words.map(|n| n.parse().unwrap()).collect();
                let have = [defrag.pending() as u64, defrag.memory(4), defrag.memory(6)];
                assert_eq!(have[..], want[..], "line {at}");
                assert_eq!(defrag.timers.len(), defrag.pending(), "line {at}");
            }
            other => panic!("line {at}: unexpected {other:?}"),
        }
    }
    assert!(
        cases >= 400 && pushes >= 7000,
        "{cases} cases, {pushes} fragments"
    );
}
