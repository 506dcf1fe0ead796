"""tcp_in_window and its helpers, checked against the kernel's rules (spec/tcp.md §7).

Each test sets up the per-direction window data by hand, feeds one segment and
checks the outcome and the data the kernel would have updated.
"""

from __future__ import annotations

import struct

import pytest

from statewall.conntrack import tcp_window as w
from statewall.conntrack.tcp_window import (
    ACK_SET,
    ESTABLISHED,
    RST_SET,
    SYN_SENT,
    SYN_SET,
    SYNACK_SET,
    TcpData,
    TcpDirState,
    after,
    before,
    tcp_in_window,
)
from statewall.packet import ACK, FIN, PSH, RST, SYN, Packet

ORIG, REPLY = 0, 1
TS_ONLY = b"\x01\x01\x08\x0a" + struct.pack("!II", 1, 2)


def seg(seq: int, ack: int = 0, flags: int = ACK, window: int = 1000, payload: bytes = b"",
        options: bytes = b"") -> Packet:
    """A TCP segment in a minimal IPv4 datagram (checksums are not looked at here)."""
    options += b"\x00" * (-len(options) % 4)
    header = struct.pack("!HHIIBBHHH", 1, 2, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                         (20 + len(options)) // 4 << 4, flags, window, 0, 0) + options
    pkt = Packet(data=b"\x45" + b"\x00" * 19 + header + payload)
    pkt.l4_off, pkt.payload_off = 20, 20 + len(header)
    pkt.tcp_flags, pkt.seq, pkt.ack, pkt.window = flags, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, window
    return pkt


def side(end: int, maxend: int, maxwin: int, flags: int = 0, scale: int = 0) -> TcpDirState:
    state = TcpDirState()
    state.td_end, state.td_maxend, state.td_maxwin = end, maxend, maxwin
    state.flags, state.td_scale = flags, scale
    return state


def established(orig_end: int = 1101, reply_end: int = 5001, win: int = 1000) -> TcpData:
    """Both sides sent SYNs with windows of `win`, each has acked everything of the other."""
    td = TcpData()
    td.seen = (side(orig_end, orig_end + win, win), side(reply_end, reply_end + win, win))
    return td


def check(td: TcpData, pkt: Packet, direction: int = ORIG, index: int = ACK_SET,
          state: int = ESTABLISHED, liberal: bool = False) -> tuple[int, str]:
    return tcp_in_window(td, state, direction, index, pkt, liberal)


# -- serial arithmetic and segment length -------------------------------------------

def test_serial_comparisons_wrap() -> None:
    assert before(1, 2) and after(2, 1) and not before(2, 2) and not after(2, 2)
    assert before(0xFFFFFFF0, 5) and after(5, 0xFFFFFFF0)


def test_segment_end_counts_syn_fin_and_payload_and_wraps() -> None:
    assert w.segment_end(seg(100, flags=SYN)) == 101
    assert w.segment_end(seg(100, flags=FIN | ACK, payload=b"abc")) == 104
    assert w.segment_end(seg(0xFFFFFFFF, payload=b"ab")) == 1


# -- options ------------------------------------------------------------------------

def test_parse_options_window_scale_and_sack_permitted() -> None:
    state = TcpDirState()
    w.parse_options(seg(1, flags=SYN, options=b"\x02\x04\x05\xb4\x04\x02\x01\x03\x03\x07"), state)
    assert (state.td_scale, state.flags) == (7, w.WINDOW_SCALE | w.SACK_PERM)


def test_parse_options_clamps_scale_to_14() -> None:
    state = TcpDirState()
    w.parse_options(seg(1, flags=SYN, options=b"\x01\x03\x03\x0f"), state)
    assert state.td_scale == 14


def test_parse_options_resets_all_but_liberal_and_needs_options_to_reset() -> None:
    state = side(0, 0, 0, flags=w.BE_LIBERAL | w.WINDOW_SCALE | w.CLOSE_INIT, scale=5)
    w.parse_options(seg(1, flags=SYN), state)  # no options: untouched
    assert (state.td_scale, state.flags) == (5, w.BE_LIBERAL | w.WINDOW_SCALE | w.CLOSE_INIT)
    w.parse_options(seg(1, flags=SYN, options=b"\x01\x01\x01\x01"), state)
    assert (state.td_scale, state.flags) == (0, w.BE_LIBERAL)


@pytest.mark.parametrize("options", [
    b"\x00\x01\x03\x03\x07",          # EOL ends the list
    b"\x08\x01\x01\x03\x03\x07",      # length below 2: "silly option", stop
    b"\x08\x30\x01\x03\x03\x07",      # length beyond the header: stop
])
def test_parse_options_stops_where_the_kernel_stops(options: bytes) -> None:
    state = TcpDirState()
    w.parse_options(seg(1, flags=SYN, options=options), state)
    assert state.flags & w.WINDOW_SCALE == 0


def test_window_scale_option_with_wrong_length_is_skipped() -> None:
    state = TcpDirState()
    w.parse_options(seg(1, flags=SYN, options=b"\x03\x04\x07\x00\x04\x02"), state)
    assert state.flags == w.SACK_PERM and state.td_scale == 0


def sack_option(*blocks: tuple[int, int]) -> bytes:
    body = b"".join(struct.pack("!II", left, right) for left, right in blocks)
    return b"\x01\x01" + bytes((5, 2 + len(body))) + body


def test_sack_edge_takes_highest_right_edge_of_first_sack_option() -> None:
    opts = sack_option((10, 300), (400, 900), (50, 200)) + sack_option((1, 5000))
    assert w.sack_edge(seg(1, 100, options=opts), 100) == 900


def test_sack_edge_keeps_ack_when_blocks_are_older() -> None:
    assert w.sack_edge(seg(1, 1000, options=sack_option((10, 300))), 1000) == 1000


def test_sack_edge_wraps() -> None:
    opts = sack_option((0xFFFFFFF0, 20))
    assert w.sack_edge(seg(1, 0xFFFFFF00, options=opts), 0xFFFFFF00) == 20


def test_sack_edge_timestamp_only_and_malformed() -> None:
    assert w.sack_edge(seg(1, 7, options=TS_ONLY), 7) == 7
    bad = b"\x01\x01\x05\x07" + b"\x00" * 5 + sack_option((1, 500))  # 5 bytes: not a block list
    assert w.sack_edge(seg(1, 7, options=bad), 7) == 500


# -- initialisation ------------------------------------------------------------------

def test_init_sender_on_synack_drops_scaling_unless_both_offered() -> None:
    orig = side(101, 101, 1000, flags=w.WINDOW_SCALE, scale=7)
    reply = TcpDirState()
    w.init_sender(reply, orig, seg(500, 101, SYN | ACK, window=0), 501, REPLY)
    assert (reply.td_end, reply.td_maxend, reply.td_maxwin) == (501, 501, 1)
    assert (orig.td_scale, reply.td_scale) == (0, 0)


def test_init_sender_for_a_new_originator_syn_keeps_its_scale() -> None:
    orig, reply = side(101, 101, 1000), TcpDirState()
    w.init_sender(orig, reply, seg(900, flags=SYN, options=b"\x01\x03\x03\x07"), 901, ORIG)
    assert orig.td_scale == 7


def test_syn_with_later_isn_in_syn_sent_reinitialises_sender() -> None:
    td = TcpData()
    td.seen = (side(101, 101, 1000), TcpDirState())
    verdict, _ = check(td, seg(5000, flags=SYN, window=3000), ORIG, SYN_SET, SYN_SENT)
    assert verdict == w.WIN_ACCEPT
    assert (td.seen[0].td_end, td.seen[0].td_maxwin) == (5001, 3000)


def test_responder_syn_is_accepted_at_once() -> None:
    td = TcpData()
    td.seen = (side(101, 101, 1000), TcpDirState())
    assert check(td, seg(500, flags=SYN), REPLY, SYN_SET, SYN_SENT) == (w.WIN_ACCEPT, "")
    assert td.seen[1].td_end == 501 and td.seen[1].flags & w.MAXACK_SET == 0


def test_first_segment_mid_stream_trusts_the_packet() -> None:
    td = TcpData()
    td.seen = (side(5000, 6000, 1000), TcpDirState())
    verdict, _ = check(td, seg(9000, 5000, window=200, payload=b"x" * 10), REPLY)
    assert verdict == w.WIN_ACCEPT
    assert (td.seen[1].td_end, td.seen[1].td_maxwin) == (9010, 200)


def test_mid_stream_side_answering_a_keepalive_bumps_receiver_end() -> None:
    td = TcpData()
    td.seen = (side(5000, 6000, 1000), TcpDirState())
    check(td, seg(9000, 5001), REPLY)
    assert td.seen[0].td_end == 5001


# -- the four checks ------------------------------------------------------------------

def test_in_window_data_updates_both_sides() -> None:
    td = established()
    verdict, reason = check(td, seg(1101, 5001, ACK | PSH, window=800, payload=b"d" * 100))
    assert (verdict, reason) == (w.WIN_ACCEPT, "")
    orig, reply = td.seen
    assert orig.td_end == 1201 and orig.flags & w.DATA_UNACKNOWLEDGED
    assert orig.td_maxack == 5001 and orig.flags & w.MAXACK_SET
    assert reply.td_maxend == 5001 + 1000  # ack + 800 would shrink it: kept


def test_right_edge_moves_with_ack_plus_window_and_zero_window_adds_one() -> None:
    td = established()
    check(td, seg(5001, 1101, window=5000), REPLY)
    assert td.seen[0].td_maxend == 6101
    td = established()
    check(td, seg(1101, 5001, window=0), ORIG)
    assert td.seen[1].td_maxend == 6001  # never shrinks
    td.seen[1].td_maxend = 4000
    check(td, seg(1101, 5001, window=0), ORIG)
    assert td.seen[1].td_maxend == 5002


def test_ack_of_everything_clears_receivers_unacknowledged_flag() -> None:
    td = established()
    td.seen[0].flags |= w.DATA_UNACKNOWLEDGED
    check(td, seg(5001, 1100), REPLY)
    assert td.seen[0].flags & w.DATA_UNACKNOWLEDGED
    check(td, seg(5001, 1101), REPLY)
    assert not td.seen[0].flags & w.DATA_UNACKNOWLEDGED


def test_check_i_seq_beyond_right_edge_is_invalid() -> None:
    td = established()
    assert check(td, seg(2101 + 5000, 5001, payload=b"x")) == \
        (w.WIN_INVALID, "SEQ beyond the receiver's window (seq 7101 > max 2101)")


def test_check_i_small_overshoot_is_ignored_but_remembered() -> None:
    td = established()
    maxend = td.seen[0].td_maxend
    verdict, reason = check(td, seg(maxend + 1, 5001, payload=b"x" * 10))
    assert verdict == w.WIN_IGNORE and reason.startswith("12 bytes beyond")
    assert td.seen[0].td_end == maxend + 11 and td.seen[0].flags & w.DATA_UNACKNOWLEDGED


def test_check_iii_ack_of_unseen_data_is_invalid() -> None:
    td = established()
    assert check(td, seg(5001, 1102), REPLY) == \
        (w.WIN_INVALID, "ACK of data never sent (ack 1102 > highest sequence seen 1101)")


def test_check_ii_old_retransmission_is_ignored_without_updates() -> None:
    td = established()
    verdict, reason = check(td, seg(50, 5001, payload=b"x" * 10))
    assert verdict == w.WIN_IGNORE and reason.startswith("old retransmission ignored")
    assert td.seen[0].flags & w.MAXACK_SET == 0


def test_check_iv_overly_delayed_ack_is_ignored() -> None:
    td = established(reply_end=100000)
    verdict, reason = check(td, seg(1101, 100000 - 66001))
    assert verdict == w.WIN_IGNORE and reason.startswith("overly delayed ACK ignored")
    assert check(td, seg(1101, 100000 - 66000))[0] == w.WIN_ACCEPT


def test_liberal_turns_failures_into_accept_without_updates() -> None:
    td = established()
    verdict, reason = check(td, seg(90000, 5001, payload=b"x"), liberal=True)
    assert verdict == w.WIN_ACCEPT and reason.endswith("accepted: liberal window tracking")
    assert td.seen[0].td_end == 1101 and not td.seen[0].flags & w.MAXACK_SET


def test_sequence_space_wraps() -> None:
    td = established(orig_end=0xFFFFFF00, reply_end=5001)
    assert check(td, seg(0xFFFFFF00, 5001, payload=b"x" * 512))[0] == w.WIN_ACCEPT
    assert td.seen[0].td_end == 0x100
    assert check(td, seg(5001, 0x100), REPLY)[0] == w.WIN_ACCEPT


def test_scaled_window_widens_right_edge() -> None:
    td = established()
    td.seen[1].td_scale = 7
    check(td, seg(5001, 1101, window=1000), REPLY)
    assert td.seen[0].td_maxend == 1101 + (1000 << 7)


def test_sack_counts_toward_check_iii_only_if_receiver_permits_sack() -> None:
    opts = sack_option((1200, 1300))
    td = established()
    assert check(td, seg(5001, 1101, options=opts), REPLY)[0] == w.WIN_ACCEPT
    td = established()
    td.seen[0].flags |= w.SACK_PERM
    assert check(td, seg(5001, 1101, options=opts), REPLY)[0] == w.WIN_INVALID


# -- RST and no-ACK special inputs, retransmission counter ----------------------------

def test_segment_without_ack_pretends_to_ack_everything() -> None:
    td = established()
    assert check(td, seg(1101, 999999, flags=RST), ORIG, RST_SET)[0] == w.WIN_ACCEPT


def test_rst_ack_with_zero_ack_is_treated_like_no_ack() -> None:
    td = established()
    assert check(td, seg(1101, 0, flags=RST | ACK), ORIG, RST_SET)[0] == w.WIN_ACCEPT


def test_rst_with_zero_seq_answering_syn() -> None:
    td = TcpData()
    td.seen = (side(101, 101, 1000), side(0, 1000, 0))
    assert check(td, seg(0, flags=RST), ORIG, RST_SET, SYN_SENT)[0] == w.WIN_ACCEPT
    td.seen = (side(0x80000101, 0x80000101, 1000), side(0, 1000, 0))
    assert check(td, seg(0, flags=RST), ORIG, RST_SET, ESTABLISHED)[0] == w.WIN_INVALID


def test_identical_ack_class_segments_count_as_retransmissions() -> None:
    td = established()
    for expected in (0, 1, 2, 3):
        check(td, seg(5001, 1101), REPLY)
        assert td.retrans == expected
    check(td, seg(5001, 1101, window=999), REPLY)
    assert (td.retrans, td.last_win) == (0, 999)
    check(td, seg(5001, 1101, flags=SYN | ACK), REPLY, SYNACK_SET)
    assert td.last_win == 999  # only ACK-class packets are remembered
