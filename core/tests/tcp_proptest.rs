//! Random segments on random connections: the TCP tracker never panics,
//! whatever the bytes, the stored state or the knobs.

mod tcp_support;

use _core::config::Sysctls;
use _core::conntrack::conn::{Conn, ProtoData, Tuple};
use _core::conntrack::proto_tcp as tcp;
use _core::conntrack::tcp_window::{TcpData, TcpDirState};
use _core::packet::{Packet, PROTO_TCP};
use proptest::prelude::*;
use tcp_support::*;

fn dir_state() -> impl Strategy<Value = TcpDirState> {
    (any::<[u32; 4]>(), any::<u8>(), any::<u8>()).prop_map(|(n, td_scale, flags)| TcpDirState {
        td_end: n[0],
        td_maxend: n[1],
        td_maxwin: n[2],
        td_maxack: n[3],
        td_scale,
        flags,
    })
}

fn tcp_data() -> impl Strategy<Value = TcpData> {
    (
        [dir_state(), dir_state()],
        any::<[u32; 4]>(),
        any::<u16>(),
        any::<[u8; 4]>(),
    )
        .prop_map(|(seen, n, last_win, b)| TcpData {
            seen,
            last_seq: n[0],
            last_ack: n[1],
            last_end: n[2],
            retrans: n[3] % 8,
            last_win,
            last_dir: b[0] % 3,
            last_index: b[1] % 7,
            last_wscale: b[2],
            last_flags: b[3],
        })
}

fn sysctls() -> impl Strategy<Value = Sysctls> {
    (any::<[bool; 4]>(), 0u64..5).prop_map(|(k, retrans)| Sysctls {
        nf_conntrack_tcp_loose: u64::from(k[0]),
        nf_conntrack_tcp_be_liberal: u64::from(k[1]),
        nf_conntrack_tcp_ignore_invalid_rst: u64::from(k[2]),
        nf_conntrack_checksum: u64::from(k[3]),
        nf_conntrack_tcp_max_retrans: retrans,
        ..Sysctls::default()
    })
}

/// Packet fields as any decoder bug could leave them: offsets anywhere.
#[derive(Clone, Debug)]
struct RawSeg {
    data: Vec<u8>,
    l4_off: usize,
    payload_off: usize,
    flags: u8,
    seq: u32,
    ack: u32,
    window: u16,
}

fn raw_seg() -> impl Strategy<Value = RawSeg> {
    (
        proptest::collection::vec(any::<u8>(), 0..120),
        0usize..140,
        0usize..160,
        any::<u8>(),
        any::<u32>(),
        any::<u32>(),
        any::<u16>(),
    )
        .prop_map(
            |(data, l4_off, payload_off, flags, seq, ack, window)| RawSeg {
                data,
                l4_off,
                payload_off,
                flags,
                seq,
                ack,
                window,
            },
        )
}

impl RawSeg {
    fn packet(&self) -> Packet<'_> {
        let mut pkt = Packet::new(0, 0.0, &self.data, 4);
        pkt.proto = PROTO_TCP;
        pkt.l4_off = self.l4_off;
        pkt.payload_off = self.payload_off;
        pkt.tcp_flags = self.flags;
        pkt.seq = self.seq;
        pkt.ack = self.ack;
        pkt.window = self.window;
        pkt
    }
}

fn conn() -> Conn {
    Conn::new(
        4,
        PROTO_TCP,
        0,
        Tuple::new(1, 2, 3, 4),
        Tuple::new(2, 1, 4, 3),
        0.0,
    )
}

/// A well-formed segment of the flow with arbitrary options and numbers.
fn flow_step() -> impl Strategy<Value = (bool, u8, u32, u32, u16, usize, Vec<u8>, u8)> {
    (
        any::<bool>(),
        any::<u8>(),
        any::<u32>(),
        any::<u32>(),
        any::<u16>(),
        0usize..40,
        proptest::collection::vec(any::<u8>(), 0..40),
        0u8..4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_segments_on_random_connections_never_panic(
        td in tcp_data(),
        state in 0u8..12,
        status in any::<u32>(),
        seg in raw_seg(),
        direction in 0u8..3,
        cfg in sysctls(),
        prerouting in any::<bool>(),
    ) {
        let pkt = seg.packet();
        let _ = tcp::error(&pkt, &cfg, prerouting);
        let mut fresh = conn();
        let _ = tcp::new(&mut fresh, &pkt, &cfg);
        let mut entry = conn();
        entry.proto_state = state;
        entry.status = status;
        entry.expires = 500.0;
        entry.proto_data = ProtoData::Tcp(td);
        let _ = tcp::packet(&mut entry, &pkt, direction, 0, 100.0, &cfg);
        let _ = tcp::state_name(&entry);
        let _ = tcp::can_early_drop(&entry);
        prop_assert!(matches!(entry.proto_data, ProtoData::Tcp(_)));
    }

    #[test]
    fn random_flows_never_panic(
        cfg in sysctls(),
        steps in proptest::collection::vec(flow_step(), 1..24),
    ) {
        let mut flow = Flow::new(cfg);
        for (from_client, flags, seq, ack, window, len, options, wait) in steps {
            let spec = if from_client { orig(flags, seq, ack) } else { reply(flags, seq, ack) };
            let spec = spec.window(window).data(b'q', len).options(&options[..options.len().min(40)]);
            flow.wait([0.0, 1.0, 130.0, 500_000.0][usize::from(wait)]);
            let seen = flow.send(spec);
            prop_assert!(!seen.reason.is_empty());
        }
    }
}
