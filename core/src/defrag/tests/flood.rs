//! Held memory is bounded by the thresholds, not by packet rate x timeout.

use super::*;
use crate::defrag::{truesize, QUEUE_SIZE_V4, QUEUE_SIZE_V6};

#[test]
fn a_long_fragment_flood_holds_memory_bounded_by_the_thresholds() {
    let (high4, high6) = (64 * 1024, 64 * 1024);
    let cfg = Sysctls {
        ipfrag_high_thresh: high4,
        nf_conntrack_frag6_high_thresh: high6,
        ipfrag_max_dist: 4,
        ..Sysctls::default()
    };
    let mut defrag = Defragmenter::new(&cfg);
    let atomic = echo6(1, 64);
    let part = [7u8; 48];
    // Four minutes of capture at 2,000 fragments a second (four timeouts or
    // more of either family): 480,000 fragments.
    let (seconds, rate) = (240u32, 2000u32);
    let mut max_held = 0;
    let mut completed = 0;
    let mut armed_in_29s = 0;
    let mut peak = [0u64; 2];
    for n in 0..seconds * rate {
        let now = f64::from(n) / f64::from(rate);
        let ident = n.wrapping_mul(2_654_435_761);
        // The first half only makes queues that die at once (completed or
        // killed); the second half adds queues that wait for their timeout and
        // fill the memory up to the thresholds.
        let lasting = n >= seconds * rate / 2;
        let bytes = match n % 5 {
            // Atomic fragments: a queue that completes at once.
            0 => frag6(&atomic, ident, 0, false),
            // First halves that never complete: they wait for their timeout.
            1 if lasting => frag4_with(
                &part,
                ident as u16,
                0,
                true,
                &V4 {
                    src: (0xC633_0000 | (n & 0xFFFF)).to_be_bytes(),
                    ..V4::default()
                },
            ),
            // IPv6 fragments refused after their queue was made (queue kept, empty).
            3 if lasting => frag6(&[0; 1000], ident, 65000, false),
            4 if lasting => frag6(&part, ident % 64, 8 * (n % 7) as u16, true),
            // Restarted again and again through ipfrag_max_dist.
            2 if lasting => frag4(&part, (n / 5 % 16) as u16, 8, true),
            // Overlapping pairs: the second kills the queue the first made.
            1 | 2 => frag4(&part, (n / 5) as u16, if n % 5 == 1 { 0 } else { 8 }, true),
            // Two halves of one datagram.
            _ => frag6(&part, n / 5, if n % 5 == 3 { 0 } else { 48 }, n % 5 == 3),
        };
        let pkt = decode(&bytes, u64::from(n), now);
        if defrag.push(&pkt, now, 0).kind() == "complete" {
            completed += 1;
        }
        assert!(defrag.memory(4) <= high4 + QUEUE_SIZE_V4 + truesize(1500));
        assert!(defrag.memory(6) <= high6 + QUEUE_SIZE_V6 + truesize(1500));
        // Every timer belongs to a live queue, every counter to a live source.
        assert_eq!(defrag.timers.len(), defrag.queues.len());
        assert!(defrag.peers.len() <= defrag.queues.len());
        max_held = max_held.max(defrag.held_bytes());
        peak = [peak[0].max(defrag.memory(4)), peak[1].max(defrag.memory(6))];
        if n == 29 * rate {
            armed_in_29s = defrag.seq;
        }
    }
    assert!(completed > 0);
    // The second half did fill both families up to their thresholds.
    assert!(peak[0] >= high4 && peak[1] >= high6, "{peak:?}");
    // What is held tracks what is charged: fragment bytes are below their
    // truesize, and a queue's share of the tables (entry, timer, counter) is
    // a small multiple of its charge.
    let bound = 4 * (high4 + high6) as usize + 64 * 1024;
    assert!(max_held <= bound, "held {max_held} bytes, bound {bound}");
    eprintln!(
        "flood: held at most {max_held} bytes (bound {bound}), {armed_in_29s} timers armed in 29 s"
    );
    // Under the old design, where a dead queue's timer stayed until its
    // deadline, the timers armed in the first 29 seconds were all still held
    // at that point, at 40 bytes or more each: far above the bound.
    assert!(
        armed_in_29s as usize * 40 > 2 * bound,
        "{armed_in_29s} timers armed"
    );
    defrag.expire(f64::from(seconds) + 61.0);
    assert_eq!(
        (defrag.pending(), defrag.timers.len(), defrag.peers.len()),
        (0, 0, 0)
    );
    assert_eq!((defrag.memory(4), defrag.memory(6)), (0, 0));
}

#[test]
fn completed_and_killed_queues_release_everything_at_once() {
    let mut feed = Feed::new();
    let msg = echo6(3, 32);
    for i in 0..1000 {
        whole(feed.push(&frag6(&msg, i, 0, false)));
        assert_eq!(feed.defrag.pending(), 0);
        assert!(feed.defrag.timers.is_empty());
    }
    let msg = echo4(4, 32);
    for i in 0..1000 {
        feed.push(&frag4(&msg[..16], i, 0, true));
        let res = feed.push(&frag4(&msg[8..24], i, 8, true));
        assert_eq!(res.kind(), "dropped");
    }
    assert_eq!(feed.defrag.pending(), 0);
    assert!(feed.defrag.timers.is_empty() && feed.defrag.peers.is_empty());
    assert_eq!((feed.defrag.memory(4), feed.defrag.memory(6)), (0, 0));
}
