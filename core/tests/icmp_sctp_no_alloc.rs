//! The common per-packet paths of the ICMP and SCTP trackers allocate
//! nothing: an echo request/reply (error handler, inversion, new, packet)
//! and an SCTP DATA/SACK exchange on an established association.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use _core::config::Sysctls;
use _core::conntrack::conn::{Conn, Tuple, CT_ESTABLISHED, CT_NEW, ORIGINAL, REPLY};
use _core::conntrack::proto_icmp::{self, IcmpErrorOutcome};
use _core::conntrack::proto_sctp;
use common::*;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(run: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    run();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

fn sctp_packet(src: u128, dst: u128, sport: u16, dport: u16, vtag: u32, chunk: &[u8]) -> Built {
    let mut body = Vec::new();
    body.extend_from_slice(&sport.to_be_bytes());
    body.extend_from_slice(&dport.to_be_bytes());
    body.extend_from_slice(&vtag.to_be_bytes());
    body.extend_from_slice(&[0; 4]);
    body.extend_from_slice(chunk);
    let crc = proto_sctp::crc32c(&body);
    body[8..12].copy_from_slice(&crc.to_le_bytes());
    ip_packet(4, src, dst, 132, &body, 64, sport, dport, 0)
}

// One test only: the counter is global to the binary and tests run in threads.
#[test]
fn common_paths_do_not_allocate() {
    let cfg = Sysctls::default();

    let request = icmp_full(4, CLIENT, SERVER, 8, 0, 77, b"payload!", 64);
    let reply = icmp_full(4, SERVER, CLIENT, 0, 0, 77, b"payload!", 64);
    let request6 = icmp_full(6, CLIENT6, SERVER6, 128, 0, 5, b"payload!", 64);
    let (request, reply, request6) = (request.packet(), reply.packet(), request6.packet());
    let mut table = MiniTable::with(Vec::new());
    let tuple = Tuple::new(CLIENT, SERVER, 77, 8 << 8);
    let mut conn = Conn::new(4, 1, 0, tuple, tuple, 0.0);
    let mut conn6 = Conn::new(
        6,
        58,
        0,
        Tuple::new(CLIENT6, SERVER6, 5, 128 << 8),
        tuple,
        0.0,
    );
    let icmp_allocs = allocations_during(|| {
        for pkt in [&request, &reply, &request6] {
            let outcome = proto_icmp::error_handler(pkt, &cfg, true, 0, &mut table);
            assert!(matches!(outcome, IcmpErrorOutcome::NotAnError));
            assert!(proto_icmp::error(pkt, &cfg, true).is_none());
        }
        assert!(proto_icmp::invert(4, &tuple).is_some());
        assert!(proto_icmp::new(&mut conn, &request, &cfg).is_ok());
        proto_icmp::packet(&mut conn, &request, ORIGINAL, CT_NEW, 1.0, &cfg);
        proto_icmp::packet(&mut conn, &reply, REPLY, CT_ESTABLISHED, 1.0, &cfg);
        assert!(proto_icmp::new(&mut conn6, &request6, &cfg).is_ok());
        proto_icmp::packet(&mut conn6, &request6, ORIGINAL, CT_NEW, 1.0, &cfg);
    });
    assert_eq!(icmp_allocs, 0);

    let untracked = icmp_full(6, LINK_LOCAL6, SERVER6, 135, 0, 0, &[0; 16], 255);
    let untracked = untracked.packet();
    let nd_allocs = allocations_during(|| {
        let outcome = proto_icmp::error_handler(&untracked, &cfg, true, 0, &mut table);
        assert!(matches!(outcome, IcmpErrorOutcome::Untracked(_)));
    });
    assert_eq!(nd_allocs, 0);

    let (tag_a, tag_b) = (0x1111_1111, 0x2222_2222);
    let mut data_chunk = vec![0, 0, 0, 20];
    data_chunk.extend_from_slice(&[0; 16]);
    let mut sack_chunk = vec![3, 0, 0, 16];
    sack_chunk.extend_from_slice(&[0; 12]);
    let data = sctp_packet(CLIENT, SERVER, 5000, 80, tag_b, &data_chunk);
    let sack = sctp_packet(SERVER, CLIENT, 80, 5000, tag_a, &sack_chunk);
    let (data, sack) = (data.packet(), sack.packet());
    let mut assoc = Conn::new(4, 132, 0, tuple, tuple, 0.0);
    assoc.proto_state = proto_sctp::ESTABLISHED;
    assoc.proto_data = _core::conntrack::conn::ProtoData::Sctp(proto_sctp::SctpData {
        vtag: [tag_b, tag_a],
        ..Default::default()
    });
    let sctp_allocs = allocations_during(|| {
        assert!(proto_sctp::error(&data, &cfg, true).is_none());
        assert!(proto_sctp::error(&sack, &cfg, true).is_none());
        let (_, reason) =
            proto_sctp::packet(&mut assoc, &data, ORIGINAL, CT_ESTABLISHED, 1.0, &cfg);
        assert_eq!(reason, "SCTP: ESTABLISHED");
        let (_, reason) = proto_sctp::packet(&mut assoc, &sack, REPLY, CT_ESTABLISHED, 1.0, &cfg);
        assert_eq!(reason, "SCTP: ESTABLISHED");
        assert_eq!(proto_sctp::state_name(&assoc), "ESTABLISHED");
    });
    assert_eq!(sctp_allocs, 0);
}
