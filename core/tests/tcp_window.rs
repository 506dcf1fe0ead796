//! tcp_in_window and its helpers, checked against the kernel's rules
//! (spec/tcp.md §7).
//!
//! Each test sets up the per-direction window data by hand, feeds one
//! segment and checks the outcome and the data the kernel would have updated.

use _core::conntrack::tcp_window::{
    self as w, after, before, tcp_in_window, TcpData, TcpDirState, WinAction, ACK_SET, ESTABLISHED,
    RST_SET, SYNACK_SET, SYN_SENT, SYN_SET,
};
use _core::packet::{Packet, ACK, FIN, PSH, RST, SYN};

const ORIG: u8 = 0;
const REPLY: u8 = 1;

fn ts_only() -> Vec<u8> {
    let mut out = b"\x01\x01\x08\x0a".to_vec();
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&2u32.to_be_bytes());
    out
}

/// A TCP segment in a minimal IPv4 datagram (checksums are not looked at here).
struct Seg {
    data: Vec<u8>,
    header_len: usize,
    flags: u8,
    seq: u32,
    ack: u32,
    window: u16,
}

impl Seg {
    fn new(seq: u32, ack: u32) -> Self {
        Seg {
            data: Vec::new(),
            header_len: 0,
            flags: ACK,
            seq,
            ack,
            window: 1000,
        }
        .with(&[], b"")
    }

    fn flags(mut self, flags: u8) -> Self {
        self.flags = flags;
        self.rebuild()
    }

    fn window(mut self, window: u16) -> Self {
        self.window = window;
        self.rebuild()
    }

    fn payload(self, payload: &[u8]) -> Self {
        let options = self.options();
        self.with(&options, payload)
    }

    fn options(&self) -> Vec<u8> {
        self.data[40..20 + self.header_len].to_vec()
    }

    fn opts(self, options: &[u8]) -> Self {
        let payload = self.data[20 + self.header_len..].to_vec();
        self.with(options, &payload)
    }

    fn rebuild(self) -> Self {
        let options = self.options();
        let payload = self.data[20 + self.header_len..].to_vec();
        self.with(&options, &payload)
    }

    fn with(mut self, options: &[u8], payload: &[u8]) -> Self {
        let mut options = options.to_vec();
        while options.len() % 4 != 0 {
            options.push(0);
        }
        let header_len = 20 + options.len();
        let mut data = vec![0x45];
        data.extend_from_slice(&[0; 19]);
        data.extend_from_slice(&1u16.to_be_bytes());
        data.extend_from_slice(&2u16.to_be_bytes());
        data.extend_from_slice(&self.seq.to_be_bytes());
        data.extend_from_slice(&self.ack.to_be_bytes());
        data.push(((header_len / 4) as u8) << 4);
        data.push(self.flags);
        data.extend_from_slice(&self.window.to_be_bytes());
        data.extend_from_slice(&[0; 4]);
        data.extend_from_slice(&options);
        data.extend_from_slice(payload);
        self.data = data;
        self.header_len = header_len;
        self
    }

    fn packet(&self) -> Packet<'_> {
        let mut pkt = Packet::new(0, 0.0, &self.data, 4);
        pkt.l4_off = 20;
        pkt.payload_off = 20 + self.header_len;
        pkt.tcp_flags = self.flags;
        pkt.seq = self.seq;
        pkt.ack = self.ack;
        pkt.window = self.window;
        pkt
    }
}

fn seg(seq: u32, ack: u32) -> Seg {
    Seg::new(seq, ack)
}

fn side(end: u32, maxend: u32, maxwin: u32, flags: u8, scale: u8) -> TcpDirState {
    TcpDirState {
        td_end: end,
        td_maxend: maxend,
        td_maxwin: maxwin,
        td_maxack: 0,
        td_scale: scale,
        flags,
    }
}

/// Both sides sent SYNs with windows of `win`, each has acked everything of the other.
fn established_with(orig_end: u32, reply_end: u32, win: u32) -> TcpData {
    TcpData {
        seen: [
            side(orig_end, orig_end.wrapping_add(win), win, 0, 0),
            side(reply_end, reply_end.wrapping_add(win), win, 0, 0),
        ],
        ..TcpData::default()
    }
}

fn established() -> TcpData {
    established_with(1101, 5001, 1000)
}

fn check(td: &mut TcpData, seg: &Seg) -> (WinAction, String) {
    check_as(td, seg, ORIG, ACK_SET, ESTABLISHED, false)
}

fn check_as(
    td: &mut TcpData,
    seg: &Seg,
    direction: u8,
    index: u8,
    state: u8,
    liberal: bool,
) -> (WinAction, String) {
    let (action, note) = tcp_in_window(td, state, direction, index, &seg.packet(), liberal, &|_| 0);
    (action, note.into_owned())
}

fn check_reply(td: &mut TcpData, seg: &Seg) -> (WinAction, String) {
    check_as(td, seg, REPLY, ACK_SET, ESTABLISHED, false)
}

// -- serial arithmetic and segment length ---------------------------------------

#[test]
fn serial_comparisons_wrap() {
    assert!(before(1, 2) && after(2, 1) && !before(2, 2) && !after(2, 2));
    assert!(before(0xFFFF_FFF0, 5) && after(5, 0xFFFF_FFF0));
}

#[test]
fn segment_end_counts_syn_fin_and_payload_and_wraps() {
    assert_eq!(w::segment_end(&seg(100, 0).flags(SYN).packet()), 101);
    assert_eq!(
        w::segment_end(&seg(100, 0).flags(FIN | ACK).payload(b"abc").packet()),
        104
    );
    assert_eq!(
        w::segment_end(&seg(0xFFFF_FFFF, 0).payload(b"ab").packet()),
        1
    );
}

// -- options ----------------------------------------------------------------------

#[test]
fn parse_options_window_scale_and_sack_permitted() {
    let mut state = TcpDirState::default();
    let s = seg(1, 0)
        .flags(SYN)
        .opts(b"\x02\x04\x05\xb4\x04\x02\x01\x03\x03\x07");
    w::parse_options(&s.packet(), &mut state);
    assert_eq!(
        (state.td_scale, state.flags),
        (7, w::WINDOW_SCALE | w::SACK_PERM)
    );
}

#[test]
fn parse_options_clamps_scale_to_14() {
    let mut state = TcpDirState::default();
    w::parse_options(
        &seg(1, 0).flags(SYN).opts(b"\x01\x03\x03\x0f").packet(),
        &mut state,
    );
    assert_eq!(state.td_scale, 14);
}

#[test]
fn parse_options_resets_all_but_liberal_and_needs_options_to_reset() {
    let mut state = side(0, 0, 0, w::BE_LIBERAL | w::WINDOW_SCALE | w::CLOSE_INIT, 5);
    w::parse_options(&seg(1, 0).flags(SYN).packet(), &mut state); // no options: untouched
    assert_eq!(
        (state.td_scale, state.flags),
        (5, w::BE_LIBERAL | w::WINDOW_SCALE | w::CLOSE_INIT)
    );
    w::parse_options(
        &seg(1, 0).flags(SYN).opts(b"\x01\x01\x01\x01").packet(),
        &mut state,
    );
    assert_eq!((state.td_scale, state.flags), (0, w::BE_LIBERAL));
}

#[test]
fn parse_options_stops_where_the_kernel_stops() {
    for options in [
        &b"\x00\x01\x03\x03\x07"[..],     // EOL ends the list
        &b"\x08\x01\x01\x03\x03\x07"[..], // length below 2: "silly option", stop
        &b"\x08\x30\x01\x03\x03\x07"[..], // length beyond the header: stop
    ] {
        let mut state = TcpDirState::default();
        w::parse_options(&seg(1, 0).flags(SYN).opts(options).packet(), &mut state);
        assert_eq!(state.flags & w::WINDOW_SCALE, 0, "{options:?}");
    }
}

#[test]
fn window_scale_option_with_wrong_length_is_skipped() {
    let mut state = TcpDirState::default();
    let s = seg(1, 0).flags(SYN).opts(b"\x03\x04\x07\x00\x04\x02");
    w::parse_options(&s.packet(), &mut state);
    assert!(state.flags == w::SACK_PERM && state.td_scale == 0);
}

fn sack_option(blocks: &[(u32, u32)]) -> Vec<u8> {
    let mut out = vec![1, 1, 5, (2 + 8 * blocks.len()) as u8];
    for (left, right) in blocks {
        out.extend_from_slice(&left.to_be_bytes());
        out.extend_from_slice(&right.to_be_bytes());
    }
    out
}

#[test]
fn sack_edge_takes_highest_right_edge_of_first_sack_option() {
    let mut opts = sack_option(&[(10, 300), (400, 900), (50, 200)]);
    opts.extend(sack_option(&[(1, 5000)]));
    assert_eq!(w::sack_edge(&seg(1, 100).opts(&opts).packet(), 100), 900);
}

#[test]
fn sack_edge_keeps_ack_when_blocks_are_older() {
    let s = seg(1, 1000).opts(&sack_option(&[(10, 300)]));
    assert_eq!(w::sack_edge(&s.packet(), 1000), 1000);
}

#[test]
fn sack_edge_wraps() {
    let s = seg(1, 0xFFFF_FF00).opts(&sack_option(&[(0xFFFF_FFF0, 20)]));
    assert_eq!(w::sack_edge(&s.packet(), 0xFFFF_FF00), 20);
}

#[test]
fn sack_edge_timestamp_only_and_malformed() {
    assert_eq!(w::sack_edge(&seg(1, 7).opts(&ts_only()).packet(), 7), 7);
    // 5 bytes: not a block list.
    let mut bad = b"\x01\x01\x05\x07\x00\x00\x00\x00\x00".to_vec();
    bad.extend(sack_option(&[(1, 500)]));
    assert_eq!(w::sack_edge(&seg(1, 7).opts(&bad).packet(), 7), 500);
}

// -- initialisation -----------------------------------------------------------------

#[test]
fn init_sender_on_synack_drops_scaling_unless_both_offered() {
    let mut orig = side(101, 101, 1000, w::WINDOW_SCALE, 7);
    let mut reply = TcpDirState::default();
    let s = seg(500, 101).flags(SYN | ACK).window(0);
    w::init_sender(&mut reply, &mut orig, &s.packet(), 501, REPLY);
    assert_eq!(
        (reply.td_end, reply.td_maxend, reply.td_maxwin),
        (501, 501, 1)
    );
    assert_eq!((orig.td_scale, reply.td_scale), (0, 0));
}

#[test]
fn init_sender_for_a_new_originator_syn_keeps_its_scale() {
    let mut orig = side(101, 101, 1000, 0, 0);
    let mut reply = TcpDirState::default();
    let s = seg(900, 0).flags(SYN).opts(b"\x01\x03\x03\x07");
    w::init_sender(&mut orig, &mut reply, &s.packet(), 901, ORIG);
    assert_eq!(orig.td_scale, 7);
}

#[test]
fn syn_with_later_isn_in_syn_sent_reinitialises_sender() {
    let mut td = TcpData {
        seen: [side(101, 101, 1000, 0, 0), TcpDirState::default()],
        ..TcpData::default()
    };
    let s = seg(5000, 0).flags(SYN).window(3000);
    let (verdict, _) = check_as(&mut td, &s, ORIG, SYN_SET, SYN_SENT, false);
    assert_eq!(verdict, WinAction::Accept);
    assert_eq!((td.seen[0].td_end, td.seen[0].td_maxwin), (5001, 3000));
}

#[test]
fn responder_syn_is_accepted_at_once() {
    let mut td = TcpData {
        seen: [side(101, 101, 1000, 0, 0), TcpDirState::default()],
        ..TcpData::default()
    };
    let s = seg(500, 0).flags(SYN);
    assert_eq!(
        check_as(&mut td, &s, REPLY, SYN_SET, SYN_SENT, false),
        (WinAction::Accept, String::new())
    );
    assert!(td.seen[1].td_end == 501 && td.seen[1].flags & w::MAXACK_SET == 0);
}

#[test]
fn first_segment_mid_stream_trusts_the_packet() {
    let mut td = TcpData {
        seen: [side(5000, 6000, 1000, 0, 0), TcpDirState::default()],
        ..TcpData::default()
    };
    let s = seg(9000, 5000).window(200).payload(&[b'x'; 10]);
    let (verdict, _) = check_reply(&mut td, &s);
    assert_eq!(verdict, WinAction::Accept);
    assert_eq!((td.seen[1].td_end, td.seen[1].td_maxwin), (9010, 200));
}

#[test]
fn mid_stream_side_answering_a_keepalive_bumps_receiver_end() {
    let mut td = TcpData {
        seen: [side(5000, 6000, 1000, 0, 0), TcpDirState::default()],
        ..TcpData::default()
    };
    check_reply(&mut td, &seg(9000, 5001));
    assert_eq!(td.seen[0].td_end, 5001);
}

// -- the four checks ------------------------------------------------------------------

#[test]
fn in_window_data_updates_both_sides() {
    let mut td = established();
    let s = seg(1101, 5001)
        .flags(ACK | PSH)
        .window(800)
        .payload(&[b'd'; 100]);
    assert_eq!(check(&mut td, &s), (WinAction::Accept, String::new()));
    let [orig, reply] = td.seen;
    assert!(orig.td_end == 1201 && orig.flags & w::DATA_UNACKNOWLEDGED != 0);
    assert!(orig.td_maxack == 5001 && orig.flags & w::MAXACK_SET != 0);
    assert_eq!(reply.td_maxend, 5001 + 1000); // ack + 800 would shrink it: kept
}

#[test]
fn right_edge_moves_with_ack_plus_window_and_zero_window_adds_one() {
    let mut td = established();
    check_reply(&mut td, &seg(5001, 1101).window(5000));
    assert_eq!(td.seen[0].td_maxend, 6101);
    let mut td = established();
    check(&mut td, &seg(1101, 5001).window(0));
    assert_eq!(td.seen[1].td_maxend, 6001); // never shrinks
    td.seen[1].td_maxend = 4000;
    check(&mut td, &seg(1101, 5001).window(0));
    assert_eq!(td.seen[1].td_maxend, 5002);
}

#[test]
fn ack_of_everything_clears_receivers_unacknowledged_flag() {
    let mut td = established();
    td.seen[0].flags |= w::DATA_UNACKNOWLEDGED;
    check_reply(&mut td, &seg(5001, 1100));
    assert_ne!(td.seen[0].flags & w::DATA_UNACKNOWLEDGED, 0);
    check_reply(&mut td, &seg(5001, 1101));
    assert_eq!(td.seen[0].flags & w::DATA_UNACKNOWLEDGED, 0);
}

#[test]
fn check_i_seq_beyond_right_edge_is_invalid() {
    let mut td = established();
    assert_eq!(
        check(&mut td, &seg(2101 + 5000, 5001).payload(b"x")),
        (
            WinAction::Invalid,
            "SEQ beyond the receiver's window (seq 7101 > max 2101)".to_string()
        )
    );
}

#[test]
fn check_i_small_overshoot_is_ignored_but_remembered() {
    let mut td = established();
    let maxend = td.seen[0].td_maxend;
    let (verdict, reason) = check(&mut td, &seg(maxend + 1, 5001).payload(&[b'x'; 10]));
    assert_eq!(verdict, WinAction::Ignore);
    assert!(reason.starts_with("12 bytes beyond"), "{reason}");
    assert_eq!(
        reason,
        "12 bytes beyond the receiver's window ignored (seq 2102 > max 2101)"
    );
    assert!(td.seen[0].td_end == maxend + 11 && td.seen[0].flags & w::DATA_UNACKNOWLEDGED != 0);
}

#[test]
fn check_iii_ack_of_unseen_data_is_invalid() {
    let mut td = established();
    assert_eq!(
        check_reply(&mut td, &seg(5001, 1102)),
        (
            WinAction::Invalid,
            "ACK of data never sent (ack 1102 > highest sequence seen 1101)".to_string()
        )
    );
}

#[test]
fn check_ii_old_retransmission_is_ignored_without_updates() {
    let mut td = established();
    let (verdict, reason) = check(&mut td, &seg(50, 5001).payload(&[b'x'; 10]));
    assert_eq!(verdict, WinAction::Ignore);
    assert!(reason.starts_with("old retransmission ignored"));
    assert_eq!(
        reason,
        "old retransmission ignored (ends at 60, before the window's left edge 101)"
    );
    assert_eq!(td.seen[0].flags & w::MAXACK_SET, 0);
}

#[test]
fn check_iv_overly_delayed_ack_is_ignored() {
    let mut td = established_with(1101, 100_000, 1000);
    let (verdict, reason) = check(&mut td, &seg(1101, 100_000 - 66001));
    assert_eq!(verdict, WinAction::Ignore);
    assert!(reason.starts_with("overly delayed ACK ignored"));
    assert_eq!(
        reason,
        "overly delayed ACK ignored (ack 33999 < lower bound 34000)"
    );
    assert_eq!(
        check(&mut td, &seg(1101, 100_000 - 66000)).0,
        WinAction::Accept
    );
}

#[test]
fn liberal_turns_failures_into_accept_without_updates() {
    let mut td = established();
    let s = seg(90000, 5001).payload(b"x");
    let (verdict, reason) = check_as(&mut td, &s, ORIG, ACK_SET, ESTABLISHED, true);
    assert_eq!(verdict, WinAction::Accept);
    assert!(reason.ends_with("accepted: liberal window tracking"));
    assert!(td.seen[0].td_end == 1101 && td.seen[0].flags & w::MAXACK_SET == 0);
}

#[test]
fn sequence_space_wraps() {
    let mut td = established_with(0xFFFF_FF00, 5001, 1000);
    assert_eq!(
        check(&mut td, &seg(0xFFFF_FF00, 5001).payload(&[b'x'; 512])).0,
        WinAction::Accept
    );
    assert_eq!(td.seen[0].td_end, 0x100);
    assert_eq!(check_reply(&mut td, &seg(5001, 0x100)).0, WinAction::Accept);
}

#[test]
fn scaled_window_widens_right_edge() {
    let mut td = established();
    td.seen[1].td_scale = 7;
    check_reply(&mut td, &seg(5001, 1101).window(1000));
    assert_eq!(td.seen[0].td_maxend, 1101 + (1000 << 7));
}

#[test]
fn sack_counts_toward_check_iii_only_if_receiver_permits_sack() {
    let opts = sack_option(&[(1200, 1300)]);
    let mut td = established();
    assert_eq!(
        check_reply(&mut td, &seg(5001, 1101).opts(&opts)).0,
        WinAction::Accept
    );
    let mut td = established();
    td.seen[0].flags |= w::SACK_PERM;
    assert_eq!(
        check_reply(&mut td, &seg(5001, 1101).opts(&opts)).0,
        WinAction::Invalid
    );
}

// -- RST and no-ACK special inputs, retransmission counter ----------------------------

#[test]
fn segment_without_ack_pretends_to_ack_everything() {
    let mut td = established();
    let s = seg(1101, 999_999).flags(RST);
    assert_eq!(
        check_as(&mut td, &s, ORIG, RST_SET, ESTABLISHED, false).0,
        WinAction::Accept
    );
}

#[test]
fn rst_ack_with_zero_ack_is_treated_like_no_ack() {
    let mut td = established();
    let s = seg(1101, 0).flags(RST | ACK);
    assert_eq!(
        check_as(&mut td, &s, ORIG, RST_SET, ESTABLISHED, false).0,
        WinAction::Accept
    );
}

#[test]
fn rst_with_zero_seq_answering_syn() {
    let mut td = TcpData {
        seen: [side(101, 101, 1000, 0, 0), side(0, 1000, 0, 0, 0)],
        ..TcpData::default()
    };
    let s = seg(0, 0).flags(RST);
    assert_eq!(
        check_as(&mut td, &s, ORIG, RST_SET, SYN_SENT, false).0,
        WinAction::Accept
    );
    td.seen = [
        side(0x8000_0101, 0x8000_0101, 1000, 0, 0),
        side(0, 1000, 0, 0, 0),
    ];
    assert_eq!(
        check_as(&mut td, &s, ORIG, RST_SET, ESTABLISHED, false).0,
        WinAction::Invalid
    );
}

#[test]
fn identical_ack_class_segments_count_as_retransmissions() {
    let mut td = established();
    for expected in [0, 1, 2, 3] {
        check_reply(&mut td, &seg(5001, 1101));
        assert_eq!(td.retrans, expected);
    }
    check_reply(&mut td, &seg(5001, 1101).window(999));
    assert_eq!((td.retrans, td.last_win), (0, 999));
    let s = seg(5001, 1101).flags(SYN | ACK);
    check_as(&mut td, &s, REPLY, SYNACK_SET, ESTABLISHED, false);
    assert_eq!(td.last_win, 999); // only ACK-class packets are remembered
}

#[test]
fn tcp_data_is_compact() {
    // It sits inline in every connection, which has a 256-byte budget.
    assert_eq!(std::mem::size_of::<TcpData>(), 64);
}
