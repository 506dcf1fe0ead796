//! The common packet path allocates nothing: measured with a counting
//! allocator around each decode.

mod frames;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use _core::decode::{decode_datagram, decode_frame};
use _core::packet::PROTO_TCP;
use frames::*;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations<T>(f: impl FnOnce() -> T) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    let after = ALLOCATIONS.with(Cell::get);
    drop(out);
    after - before
}

#[test]
fn common_frames_decode_without_allocating() {
    let stamp = cat(&[&[1, 1, 8, 10], &7u32.to_be_bytes(), &9u32.to_be_bytes()]);
    let data_segment = tcp_with(Tcp {
        flags: ACK,
        options: stamp,
        data: vec![0x61; 100],
        ..Tcp::default()
    });
    let frames = [
        ether(&ipv4(&tcp(), PROTO_TCP)),
        ether(&ipv4(&data_segment, PROTO_TCP)),
        ether(&ipv4(&udp_with(5353, 53, &[0; 40]), 17)),
        ether_with(&ipv6(&data_segment, 6), 0x86DD, MAC_B, &[0x8100]),
        ether(&ipv4(&[8, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0], 1)),
    ];
    for f in &frames {
        let n = allocations(|| {
            let pkt = decode_frame(0, 0.0, f, 1, None);
            assert!(pkt.error.is_none());
            pkt.sport
        });
        assert_eq!(n, 0, "allocations decoding {f:02x?}");
    }
    let datagram = ipv4(&data_segment, PROTO_TCP);
    assert_eq!(
        allocations(|| decode_datagram(&datagram, 0, 0.0, false).seq),
        0
    );

    // A SYN's options (MSS, window scale, SACK-permitted) are worth one box.
    let syn = tcp_with(Tcp {
        options: vec![2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 0, 0],
        ..Tcp::default()
    });
    let f = ether(&ipv4(&syn, PROTO_TCP));
    let n = allocations(|| decode_frame(0, 0.0, &f, 1, None).tcp_options.is_some());
    assert_eq!(n, 1);
}
