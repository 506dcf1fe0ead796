//! The common path of the TCP tracker allocates nothing: an accepted
//! in-window segment of an established connection gets a borrowed reason.

mod tcp_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use _core::conntrack::conn::{CT_ESTABLISHED, CT_ESTABLISHED_REPLY, ORIGINAL, REPLY};
use _core::conntrack::l4proto::Action;
use _core::conntrack::proto_tcp as tcp;
use _core::packet::{ACK, PSH};
use tcp_support::*;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// Counts the allocations of the thread that asked for counting.
struct Counter;

unsafe impl GlobalAlloc for Counter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counter = Counter;

fn allocations_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    let out = f();
    COUNTING.with(|c| c.set(false));
    (out, ALLOCATIONS.with(Cell::get))
}

#[test]
fn accepted_established_segments_do_not_allocate() {
    let mut flow = Flow::default();
    handshake(&mut flow, b"", b"");
    let cfg = flow.cfg.clone();
    let data = orig(ACK | PSH, ISN_C + 1, ISN_S + 1)
        .data(b'x', 100)
        .build();
    let ack = reply(ACK, ISN_S + 1, ISN_C + 101).build();
    let again = orig(ACK, ISN_C + 101, ISN_S + 1).build();
    let conn = flow.conn.as_mut().expect("an entry");
    let steps = [
        (&data, ORIGINAL, CT_ESTABLISHED),
        (&ack, REPLY, CT_ESTABLISHED_REPLY),
        (&again, ORIGINAL, CT_ESTABLISHED),
    ];
    for (seg, direction, ctinfo) in steps {
        let pkt = seg.packet();
        assert_eq!(tcp::error(&pkt, &cfg, true), None);
        let ((action, reason), count) = allocations_during(|| {
            let error = tcp::error(&pkt, &cfg, true);
            assert!(error.is_none());
            tcp::packet(conn, &pkt, direction, ctinfo, 2000.0, &cfg)
        });
        assert_eq!(action, Action::Accept, "{reason}");
        assert!(matches!(reason, std::borrow::Cow::Borrowed(_)), "{reason}");
        assert_eq!(count, 0, "{reason}");
    }
}
