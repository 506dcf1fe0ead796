"""The TCP state machine against the behaviour observed on Linux 6.18 (spec/tcp.md).

Packets are real IPv4/IPv6 datagrams built here; `Flow` runs one connection's
packets through a firewall and reports, after each, the packet's ctstate and
the entry as the table then holds it, so whole scenarios read like the spec's
observations.
"""

from __future__ import annotations

import ipaddress
import random
import struct
from dataclasses import dataclass

import pytest
from ctharness import IPS_ASSURED, IPS_SEEN_REPLY, LiveConn, Machine

from statewall.checksum import internet_checksum, pseudo_header_sum
from statewall.config import Sysctls
from statewall.packet import ACK, CWR, ECE, FIN, PROTO_TCP, PSH, RST, SYN, URG, Packet

CLIENT, SERVER = 0x0A000001, 0x0A000002  # 10.0.0.1 -> 10.0.0.2
ORIGINAL, REPLY = 0, 1
CPORT, SPORT = 40000, 80
ISN_C, ISN_S = 100, 500  # the spec's RST observations use these (max acks 201 / 501)
WIN = 1000

LETTERS = {"S": SYN, "A": ACK, "F": FIN, "R": RST, "P": PSH, "U": URG, "E": ECE, "C": CWR}


def wscale(shift: int) -> bytes:
    return bytes((1, 3, 3, shift))


SACK_PERM_OPT = b"\x01\x01\x04\x02"


def build(src: int, dst: int, sport: int, dport: int, seq: int, ack: int, flags: int,
          window: int = WIN, payload: bytes = b"", options: bytes = b"", family: int = 4,
          doff: int | None = None, bad_checksum: bool = False) -> Packet:
    """A complete IP datagram carrying one TCP segment, decoded the way the decoder would."""
    options += b"\x00" * (-len(options) % 4)
    header_len = 20 + len(options)
    offset = header_len // 4 if doff is None else doff
    segment = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, offset << 4, flags, window,
                          0, 0) + options + payload
    csum = internet_checksum(segment, pseudo_header_sum(family, src, dst, PROTO_TCP, len(segment)))
    if bad_checksum:
        csum ^= 0x5555
    segment = segment[:16] + struct.pack("!H", csum) + segment[18:]
    if family == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 0, 0, 64, PROTO_TCP, 0,
                         src.to_bytes(4, "big"), dst.to_bytes(4, "big"))
        ip = ip[:10] + struct.pack("!H", internet_checksum(ip)) + ip[12:]
    else:
        ip = struct.pack("!IHBB", 0x60000000, len(segment), PROTO_TCP, 64)
        ip += src.to_bytes(16, "big") + dst.to_bytes(16, "big")
    pkt = Packet(0, 0.0, ip + segment, family)
    pkt.src, pkt.dst, pkt.proto = src, dst, PROTO_TCP
    pkt.l4_off = len(ip)
    pkt.payload_off = len(ip) + header_len
    pkt.sport, pkt.dport = sport, dport
    pkt.tcp_flags, pkt.seq, pkt.ack, pkt.window = flags, seq, ack, window
    return pkt


@dataclass
class Seen:
    """What the kernel would show for one packet: its ctstate and the entry afterwards."""

    ctstate: str
    reason: str
    state: str | None  # None: no entry left
    timeout: float | None
    assured: bool


class Flow:
    """One TCP flow between CLIENT:CPORT and SERVER:SPORT through a firewall."""

    def __init__(self, cfg: Sysctls | None = None, now: float = 1000.0) -> None:
        self.cfg = cfg or Sysctls()
        self.now = now
        self.machines: dict[str, Machine] = {}
        self.last: LiveConn | None = None

    def o(self, flags: int, seq: int, ack: int = 0, **kw: object) -> Seen:
        return self.feed(build(CLIENT, SERVER, CPORT, SPORT, seq, ack, flags, **kw))  # type: ignore[arg-type]

    def r(self, flags: int, seq: int, ack: int = 0, **kw: object) -> Seen:
        return self.feed(build(SERVER, CLIENT, SPORT, CPORT, seq, ack, flags, **kw))  # type: ignore[arg-type]

    def wait(self, seconds: float) -> None:
        self.now += seconds

    def machine(self, local: str | None = None) -> Machine:
        """The firewall (one whose own address `local` is, for LOCAL_OUT packets)."""
        key = local or ""
        if key not in self.machines:
            self.machines[key] = Machine(self.cfg, local=[local] if local else [])
        return self.machines[key]

    def feed(self, pkt: Packet, in_prerouting: bool = True) -> Seen:
        """`in_prerouting` False: the packet is sent by the firewall itself (LOCAL_OUT)."""
        local = None if in_prerouting else str(ipaddress.ip_address(pkt.src))
        step = self.machine(local).step(pkt, self.now)
        if step.conn is not None:
            self.last = step.conn
        return self._seen(step.verdict.ctstate or "", step.reason)

    @property
    def conn(self) -> LiveConn | None:
        """The flow's entry now, if the table holds one."""
        machine = self.machine()
        live = machine.firewall.connections(self.now)
        return machine.view(live[0].conn) if live else None

    def _seen(self, ctstate: str, reason: str) -> Seen:
        conn = self.conn
        if conn is None:
            return Seen(ctstate, reason, None, None, False)
        return Seen(ctstate, reason, conn.state, conn.expires - self.now,
                    bool(conn.status & IPS_ASSURED))


def handshake(flow: Flow, syn_opts: bytes = b"", synack_opts: bytes = b"") -> None:
    flow.o(SYN, ISN_C, options=syn_opts)
    flow.r(SYN | ACK, ISN_S, ISN_C + 1, options=synack_opts)
    seen = flow.o(ACK, ISN_C + 1, ISN_S + 1)
    assert (seen.state, seen.assured) == ("ESTABLISHED", True)


def established_with_data(flow: Flow) -> None:
    """Handshake, 100 bytes from the client, acked: peer max acks become 201 and 501."""
    handshake(flow)
    flow.o(ACK | PSH, ISN_C + 1, ISN_S + 1, payload=b"x" * 100)
    flow.r(ACK, ISN_S + 1, ISN_C + 101)


def flags_of(letters: str) -> int:
    value = 0
    for letter in letters:
        value |= LETTERS[letter]
    return value


# -- flags and first packets (facts 1, 14) ------------------------------------------

FIRST_PACKET = {
    "S": "SYN_SENT", "SU": "SYN_SENT", "SP": "SYN_SENT", "SE": "SYN_SENT", "SEC": "SYN_SENT",
    "A": "ESTABLISHED", "AU": "ESTABLISHED",
    "SA": None, "FA": None, "R": None, "RA": None, "SF": None, "SR": None, "F": None, "": None,
    "U": None, "P": None, "FPU": None, "FSRPAU": None, "SRA": None, "FR": None, "FRA": None,
    "SAU": None, "SAF": None, "SAR": None, "RU": None, "SPA": None, "FAU": None,
}


@pytest.mark.parametrize("letters", sorted(FIRST_PACKET))
def test_flag_combination_as_first_packet(letters: str) -> None:
    seen = Flow().o(flags_of(letters), 1000, 1 if "A" in letters else 0)
    expected = FIRST_PACKET[letters]
    if expected is None:
        assert seen.ctstate == "INVALID"
    else:
        assert (seen.ctstate, seen.state) == ("NEW", expected)


def tcp_error(pkt: Packet) -> str | None:
    """Why conntrack calls the packet INVALID as the first of its flow, or None."""
    seen = Flow().feed(pkt)
    return seen.reason if seen.ctstate == "INVALID" else None


def test_invalid_combinations_are_rejected_by_tcp_error() -> None:
    for letters in ("SF", "SR", "F", "", "U", "P", "FPU", "FSRPAU", "SRA", "FR", "FRA", "SAU",
                    "SAF", "SAR", "RU"):
        pkt = build(CLIENT, SERVER, CPORT, SPORT, 1, 1, flags_of(letters))
        reason = tcp_error(pkt)
        assert reason is not None and reason.startswith("invalid TCP flag combination"), letters
    reason = tcp_error(build(CLIENT, SERVER, CPORT, SPORT, 1, 1, SYN | FIN))
    assert reason == "invalid TCP flag combination SYN+FIN"


def test_valid_flags_that_cannot_start_a_connection_get_their_own_reason() -> None:
    for letters in ("SA", "FA", "R", "RA", "SPA", "FAU"):
        pkt = build(CLIENT, SERVER, CPORT, SPORT, 1, 1, flags_of(letters))
        seen = Flow().feed(pkt)
        assert not seen.reason.startswith("invalid TCP flag combination"), letters
        assert seen.ctstate == "INVALID" and "cannot start a connection" in seen.reason


def test_invalid_combinations_inside_established() -> None:
    flow = Flow()
    handshake(flow)
    for letters in ("F", "", "SF", "SR", "FR", "SAR", "U"):
        seen = flow.o(flags_of(letters), ISN_C + 1, ISN_S + 1)
        assert seen.ctstate == "INVALID", letters
        assert (seen.state, seen.timeout) == ("ESTABLISHED", 432000)


def test_bad_checksum_only_checked_in_prerouting_and_when_enabled() -> None:
    pkt = build(CLIENT, SERVER, CPORT, SPORT, 1, 0, SYN, bad_checksum=True)
    assert Flow().feed(pkt).ctstate == "INVALID"
    assert Flow().feed(pkt).reason == "bad TCP checksum"
    assert Flow().feed(pkt, in_prerouting=False).ctstate == "NEW"
    assert Flow(Sysctls(nf_conntrack_checksum=0)).feed(pkt).ctstate == "NEW"
    good = build(CLIENT, SERVER, CPORT, SPORT, 1, 0, SYN, options=wscale(7), payload=b"abc")
    assert Flow().feed(good).ctstate == "NEW"


def test_checksum_ipv6() -> None:
    src, dst = 0x20010DB8 << 96 | 1, 0x20010DB8 << 96 | 2
    good = build(src, dst, CPORT, SPORT, 7, 0, SYN, family=6)
    bad = build(src, dst, CPORT, SPORT, 7, 0, SYN, family=6, bad_checksum=True)
    assert tcp_error(good) is None
    assert tcp_error(bad) == "bad TCP checksum"


# -- handshake and teardown (facts 2, 3, 4) ------------------------------------------

def test_three_way_handshake() -> None:
    flow = Flow()
    syn = flow.o(SYN, ISN_C)
    assert (syn.ctstate, syn.state, syn.timeout, syn.assured) == ("NEW", "SYN_SENT", 120, False)
    synack = flow.r(SYN | ACK, ISN_S, ISN_C + 1)
    assert (synack.ctstate, synack.state, synack.timeout) == ("ESTABLISHED", "SYN_RECV", 60)
    assert synack.reason == "SYN/ACK in SYN_SENT: SYN_SENT → SYN_RECV"
    ack = flow.o(ACK, ISN_C + 1, ISN_S + 1)
    assert (ack.ctstate, ack.state, ack.timeout, ack.assured) == \
        ("ESTABLISHED", "ESTABLISHED", 432000, True)


def test_synack_with_wrong_ack_is_invalid_and_entry_stays_unreplied() -> None:
    flow = Flow()
    flow.o(SYN, ISN_C)
    bad = flow.r(SYN | ACK, ISN_S, ISN_C + 2)
    assert bad.ctstate == "INVALID" and "ACK of data never sent" in bad.reason
    assert bad.state == "SYN_SENT"
    assert flow.conn is not None and not flow.conn.status & IPS_SEEN_REPLY


def test_fin_close_sequence_states_and_timeouts() -> None:
    flow = Flow()
    handshake(flow)
    fin_o = flow.o(FIN | ACK, ISN_C + 1, ISN_S + 1)
    assert (fin_o.state, fin_o.timeout) == ("FIN_WAIT", 120)
    ack_r = flow.r(ACK, ISN_S + 1, ISN_C + 2)
    assert (ack_r.state, ack_r.timeout) == ("CLOSE_WAIT", 60)
    fin_r = flow.r(FIN | ACK, ISN_S + 1, ISN_C + 2)
    assert (fin_r.state, fin_r.timeout) == ("LAST_ACK", 30)
    ack_o = flow.o(ACK, ISN_C + 2, ISN_S + 2)
    assert (ack_o.state, ack_o.timeout) == ("TIME_WAIT", 120)
    assert all(s.ctstate == "ESTABLISHED" for s in (fin_o, ack_r, fin_r, ack_o))


def test_fin_from_both_sides_goes_straight_to_last_ack() -> None:
    flow = Flow()
    handshake(flow)
    flow.o(FIN | ACK, ISN_C + 1, ISN_S + 1)
    assert flow.r(FIN | ACK, ISN_S + 1, ISN_C + 1).state == "LAST_ACK"


# -- reopen and resync (facts 5, 6, 10) -----------------------------------------------

def closed_to_time_wait(flow: Flow) -> None:
    handshake(flow)
    flow.o(FIN | ACK, ISN_C + 1, ISN_S + 1)
    flow.r(FIN | ACK, ISN_S + 1, ISN_C + 2)
    assert flow.o(ACK, ISN_C + 2, ISN_S + 2).state == "TIME_WAIT"


def test_syn_from_originator_in_time_wait_reopens() -> None:
    flow = Flow()
    closed_to_time_wait(flow)
    old = flow.conn
    seen = flow.o(SYN, 90000)
    assert (seen.ctstate, seen.state, seen.timeout) == ("NEW", "SYN_SENT", 120)
    assert flow.conn is not old


def test_syn_from_responder_in_time_wait_reopens_with_roles_swapped() -> None:
    flow = Flow()
    closed_to_time_wait(flow)
    seen = flow.r(SYN, 90000)
    assert (seen.ctstate, seen.state) == ("NEW", "SYN_SENT")
    assert flow.conn is not None and flow.conn.orig_src == str(ipaddress.IPv4Address(SERVER))


def test_syn_in_fin_wait_is_ignored() -> None:
    flow = Flow()
    handshake(flow)
    fw = flow.o(FIN | ACK, ISN_C + 1, ISN_S + 1)
    seen = flow.o(SYN, 90000)
    assert (seen.ctstate, seen.state, seen.timeout) == ("ESTABLISHED", "FIN_WAIT", fw.timeout)
    assert "ignored" in seen.reason


def test_resync_on_synack_answering_an_ignored_syn() -> None:
    flow = Flow()
    handshake(flow)
    flow.wait(5)
    syn = flow.o(SYN, 70000, options=wscale(2))
    assert (syn.ctstate, syn.state, syn.timeout) == ("ESTABLISHED", "ESTABLISHED", 431995)
    synack = flow.r(SYN | ACK, 9000, 70001)
    assert (synack.state, synack.timeout) == ("SYN_RECV", 60)
    ack = flow.o(ACK, 70001, 9001)
    assert (ack.state, ack.timeout, ack.assured) == ("ESTABLISHED", 432000, True)


def test_synack_not_answering_the_ignored_syn_is_ignored() -> None:
    flow = Flow()
    handshake(flow)
    flow.o(SYN, 70000)
    seen = flow.r(SYN | ACK, 9000, 12345)
    assert (seen.ctstate, seen.state) == ("ESTABLISHED", "ESTABLISHED")


def test_syn_after_responder_rst_is_ignored_then_resyncs() -> None:
    flow = Flow()
    established_with_data(flow)
    assert flow.r(RST, ISN_S + 1).state == "CLOSE"
    syn = flow.o(SYN, 70000)
    assert (syn.ctstate, syn.state) == ("ESTABLISHED", "CLOSE")
    assert flow.r(SYN | ACK, 9000, 70001).state == "SYN_RECV"
    assert flow.o(ACK, 70001, 9001).state == "ESTABLISHED"


def test_syn_after_originator_rst_reopens() -> None:
    flow = Flow()
    established_with_data(flow)
    assert flow.o(RST, ISN_C + 101).state == "CLOSE"
    seen = flow.o(SYN, 70000)
    assert (seen.ctstate, seen.state) == ("NEW", "SYN_SENT")


def test_syn_after_originator_rst_then_ack_is_ignored() -> None:
    flow = Flow()
    established_with_data(flow)
    flow.o(RST, ISN_C + 101)
    flow.o(ACK, ISN_C + 101, ISN_S + 1)
    seen = flow.o(SYN, 70000)
    assert (seen.ctstate, seen.state) == ("ESTABLISHED", "CLOSE")


# -- simultaneous open (fact 7) ----------------------------------------------------

def test_simultaneous_open() -> None:
    flow = Flow()
    assert flow.o(SYN, ISN_C).state == "SYN_SENT"
    syn_r = flow.r(SYN, ISN_S)
    assert (syn_r.ctstate, syn_r.state) == ("ESTABLISHED", "SYN_SENT2")
    synack_o = flow.o(SYN | ACK, ISN_C, ISN_S + 1)
    assert (synack_o.ctstate, synack_o.state, synack_o.assured) == \
        ("ESTABLISHED", "SYN_RECV", False)
    synack_r = flow.r(SYN | ACK, ISN_S, ISN_C + 1)
    assert (synack_r.state, "ignored" in synack_r.reason) == ("SYN_RECV", True)
    ack_r = flow.r(ACK, ISN_S + 1, ISN_C + 1)
    assert (ack_r.state, ack_r.assured, ack_r.timeout) == ("ESTABLISHED", True, 432000)


def test_responder_syn_in_syn_sent_does_not_refresh() -> None:
    flow = Flow()
    flow.o(SYN, ISN_C)
    flow.wait(2)
    assert flow.r(SYN, ISN_S).timeout == 118


# -- SYN_SENT oddities (fact 8) and RSTs (facts 9, 15) ------------------------------

@pytest.mark.parametrize("flags,direction", [
    (ACK, ORIGINAL), (FIN | ACK, ORIGINAL), (SYN | ACK, ORIGINAL), (FIN | ACK, REPLY),
])
def test_invalid_in_syn_sent(flags: int, direction: int) -> None:
    flow = Flow()
    flow.o(SYN, ISN_C)
    send = flow.o if direction == ORIGINAL else flow.r
    seen = send(flags, ISN_C + 1 if direction == ORIGINAL else ISN_S, ISN_C + 1)
    assert seen.ctstate == "INVALID" and "is invalid" in seen.reason
    assert seen.state == "SYN_SENT"


def test_challenge_ack_in_syn_sent_then_rst_at_its_ack() -> None:
    flow = Flow()
    flow.o(SYN, ISN_C)
    ack = flow.r(ACK, 777, 4242)
    assert (ack.ctstate, ack.state) == ("ESTABLISHED", "SYN_SENT")
    assert flow.conn is not None and flow.conn.status & IPS_SEEN_REPLY
    rst = flow.o(RST, 4242)
    assert (rst.ctstate, rst.state, rst.timeout) == ("ESTABLISHED", "CLOSE", 10)


def test_retransmitted_syn_does_not_refresh_the_timeout() -> None:
    flow = Flow()
    flow.o(SYN, ISN_C)
    flow.wait(3)
    again = flow.o(SYN, ISN_C)
    assert (again.ctstate, again.state, again.timeout) == ("NEW", "SYN_SENT", 117)
    assert "does not refresh" in again.reason


def test_rst_from_responder_answering_syn_deletes_entry() -> None:
    for flags in (RST, RST | ACK):
        flow = Flow()
        flow.o(SYN, ISN_C)
        seen = flow.r(flags, 31337, ISN_C + 1)
        assert (seen.ctstate, seen.state) == ("ESTABLISHED", None)
        assert flow.last is not None and flow.last.gone  # deleted (IPS_DYING)


def test_rst_ack_from_responder_with_wrong_ack_is_invalid() -> None:
    flow = Flow()
    flow.o(SYN, ISN_C)
    seen = flow.r(RST | ACK, 0, ISN_C + 50)
    assert (seen.ctstate, seen.state) == ("INVALID", "SYN_SENT")


def test_originator_rst_in_syn_sent() -> None:
    flow = Flow()
    flow.o(SYN, ISN_C)
    zero = flow.o(RST, 0)
    assert (zero.ctstate, zero.state) == ("NEW", None)
    flow = Flow()
    flow.o(SYN, ISN_C)
    assert flow.o(RST, ISN_C + 5000).ctstate == "INVALID"


def test_rst_exact_sequence_closes() -> None:
    flow = Flow()
    established_with_data(flow)
    seen = flow.r(RST, ISN_S + 1)
    assert (seen.ctstate, seen.state, seen.timeout) == ("ESTABLISHED", "CLOSE", 10)


def test_rst_in_window_not_exact_keeps_state_with_close_timeout() -> None:
    flow = Flow()
    established_with_data(flow)
    seen = flow.r(RST, 700)
    assert (seen.ctstate, seen.state, seen.timeout) == ("ESTABLISHED", "ESTABLISHED", 10)


def test_rst_below_peer_max_ack_is_invalid() -> None:
    flow = Flow()
    established_with_data(flow)
    seen = flow.o(RST, 150)
    assert seen.ctstate == "INVALID" and "below what the peer already acknowledged" in seen.reason
    assert (seen.state, seen.timeout) == ("ESTABLISHED", 432000)


def test_ignore_invalid_rst() -> None:
    flow = Flow(Sysctls(nf_conntrack_tcp_ignore_invalid_rst=1))
    established_with_data(flow)
    seen = flow.o(RST, 150)
    assert (seen.ctstate, seen.state, seen.timeout) == ("ESTABLISHED", "ESTABLISHED", 10)


def test_rst_beyond_window_is_invalid() -> None:
    flow = Flow()
    established_with_data(flow)
    seen = flow.o(RST, 90000)
    assert seen.ctstate == "INVALID" and "SEQ beyond the receiver's window" in seen.reason


def test_rst_answering_an_ignored_syn_skips_the_window_check() -> None:
    flow = Flow()
    established_with_data(flow)
    flow.o(SYN, 70000)
    seen = flow.r(RST | ACK, 0x40000000, 70001)
    assert (seen.ctstate, seen.state, seen.timeout) == ("ESTABLISHED", "CLOSE", 10)


def test_rst_after_own_syn_is_window_checked() -> None:
    """RST with ack == remembered SYN end, but from the SYN's own side: no shortcut."""
    flow = Flow()
    flow.o(SYN, ISN_C)
    assert flow.r(SYN, ISN_S).state == "SYN_SENT2"
    seen = flow.r(RST | ACK, ISN_S + 100000, 0)
    assert (seen.ctstate, seen.state) == ("INVALID", "SYN_SENT2")


def test_rst_ack_with_zero_ack_and_exact_seq_closes() -> None:
    flow = Flow()
    established_with_data(flow)
    assert flow.o(RST | ACK, ISN_C + 101, 0).state == "CLOSE"


def test_rst_in_closing_states_skips_window_check() -> None:
    flow = Flow()
    handshake(flow)
    flow.o(FIN | ACK, ISN_C + 1, ISN_S + 1)
    seen = flow.r(RST, 0x7000_0000)
    assert (seen.ctstate, seen.state, seen.timeout) == ("ESTABLISHED", "CLOSE", 10)


def test_rst_old_sequence_still_invalid_when_liberal() -> None:
    flow = Flow(Sysctls(nf_conntrack_tcp_be_liberal=1))
    established_with_data(flow)
    assert flow.o(RST, 150).ctstate == "INVALID"


# -- pickup (fact 11) -----------------------------------------------------------------

def test_mid_stream_pickup() -> None:
    flow = Flow()
    first = flow.o(ACK, 5000, 9000)
    assert (first.ctstate, first.state, first.timeout, first.assured) == \
        ("NEW", "ESTABLISHED", 300, False)
    reply = flow.r(ACK, 9000, 5000)
    assert (reply.ctstate, reply.state, reply.timeout, reply.assured) == \
        ("ESTABLISHED", "ESTABLISHED", 300, False)
    third = flow.o(ACK, 5000, 9000)
    assert (third.state, third.timeout, third.assured) == ("ESTABLISHED", 432000, True)
    wild = flow.o(ACK | PSH, 5000 + 90_000_000, 1_234_567, payload=b"z" * 10)
    assert (wild.ctstate, wild.state) == ("ESTABLISHED", "ESTABLISHED")


def test_pickup_refused_without_loose() -> None:
    seen = Flow(Sysctls(nf_conntrack_tcp_loose=0)).o(ACK, 5000, 9000)
    assert seen.ctstate == "INVALID" and "nf_conntrack_tcp_loose=0" in seen.reason


# -- window (fact 12) ---------------------------------------------------------------

def test_data_inside_and_beyond_the_window() -> None:
    flow = Flow()
    handshake(flow)
    inside = flow.o(ACK | PSH, ISN_C + 1, ISN_S + 1, payload=b"a" * 500)
    assert (inside.ctstate, inside.timeout) == ("ESTABLISHED", 300)
    beyond = flow.o(ACK | PSH, ISN_C + 1 + 5000, ISN_S + 1, payload=b"b" * 10)
    assert beyond.ctstate == "INVALID" and "SEQ beyond the receiver's window" in beyond.reason


def test_ack_of_unseen_data_is_invalid() -> None:
    flow = Flow()
    handshake(flow)
    seen = flow.r(ACK, ISN_S + 1, ISN_C + 1 + 50000)
    assert seen.ctstate == "INVALID" and "ACK of data never sent" in seen.reason


def test_old_retransmission_and_stale_ack_are_ignored() -> None:
    flow = Flow()
    handshake(flow)
    flow.wait(1)
    old = flow.o(ACK | PSH, (ISN_C - 100000) & 0xFFFFFFFF, ISN_S + 1, payload=b"o" * 10)
    assert (old.ctstate, old.state, old.timeout) == ("ESTABLISHED", "ESTABLISHED", 431999)
    assert "old retransmission ignored" in old.reason
    stale = flow.r(ACK, ISN_S + 1, (ISN_C - 100000) & 0xFFFFFFFF)
    assert (stale.ctstate, stale.timeout) == ("ESTABLISHED", 431999)
    assert "overly delayed ACK ignored" in stale.reason


@pytest.mark.parametrize("syn_scale,synack_scale,verdict", [
    (7, 7, "ESTABLISHED"), (7, None, "INVALID"), (None, 7, "INVALID"),
])
def test_window_scale_needs_both_sides(syn_scale: int | None, synack_scale: int | None,
                                       verdict: str) -> None:
    flow = Flow()
    handshake(flow, b"" if syn_scale is None else wscale(syn_scale),
              b"" if synack_scale is None else wscale(synack_scale))
    flow.r(ACK, ISN_S + 1, ISN_C + 1)  # the server's first scaled window: 1000 << 7
    seen = flow.o(ACK | PSH, ISN_C + 1 + 50000, ISN_S + 1, payload=b"w" * 10)
    assert seen.ctstate == verdict


def test_be_liberal_accepts_out_of_window() -> None:
    flow = Flow(Sysctls(nf_conntrack_tcp_be_liberal=1))
    handshake(flow)
    beyond = flow.o(ACK | PSH, ISN_C + 1 + 5000, ISN_S + 1, payload=b"b" * 10)
    assert (beyond.ctstate, beyond.state) == ("ESTABLISHED", "ESTABLISHED")
    assert "liberal" in beyond.reason
    assert flow.r(ACK, ISN_S + 1, ISN_C + 1 + 50000).ctstate == "ESTABLISHED"


def test_sack_block_beyond_sent_data_is_invalid_only_when_sack_permitted() -> None:
    sack = b"\x01\x01\x05\x0a" + struct.pack("!II", ISN_C + 1, ISN_C + 900)
    for opts, verdict in ((SACK_PERM_OPT, "INVALID"), (b"", "ESTABLISHED")):
        flow = Flow()
        handshake(flow, syn_opts=opts, synack_opts=opts)
        flow.o(ACK | PSH, ISN_C + 1, ISN_S + 1, payload=b"d" * 100)
        assert flow.r(ACK, ISN_S + 1, ISN_C + 1, options=sack).ctstate == verdict


# -- timeouts (fact 13), challenge ACK, handle_invalid, early drop --------------------

def test_unacknowledged_data_timeout() -> None:
    flow = Flow()
    handshake(flow)
    assert flow.o(ACK | PSH, ISN_C + 1, ISN_S + 1, payload=b"x" * 100).timeout == 300
    assert flow.r(ACK, ISN_S + 1, ISN_C + 101).timeout == 432000


def test_identical_acks_trigger_retrans_timeout() -> None:
    flow = Flow()
    handshake(flow)
    timeouts = [flow.r(ACK, ISN_S + 1, ISN_C + 1).timeout for _ in range(4)]
    assert timeouts == [432000, 432000, 432000, 300]
    assert flow.r(ACK, ISN_S + 1, ISN_C + 1, window=2000).timeout == 432000


def test_max_retrans_is_a_knob() -> None:
    flow = Flow(Sysctls(nf_conntrack_tcp_max_retrans=1))
    handshake(flow)
    timeouts = [flow.r(ACK, ISN_S + 1, ISN_C + 1).timeout for _ in range(2)]
    assert timeouts == [432000, 300]


def test_zero_window_timeout() -> None:
    flow = Flow()
    handshake(flow)
    assert flow.r(ACK, ISN_S + 1, ISN_C + 1, window=0).timeout == 300
    assert flow.r(ACK, ISN_S + 1, ISN_C + 1, window=500).timeout == 432000


def test_challenge_ack_in_last_ack_does_not_close() -> None:
    flow = Flow()
    handshake(flow)
    flow.o(FIN | ACK, ISN_C + 1, ISN_S + 1)
    la = flow.r(FIN | ACK, ISN_S + 1, ISN_C + 2)
    assert la.state == "LAST_ACK"
    assert "ignored" in flow.o(SYN, 60000).reason
    challenge = flow.r(ACK, ISN_S + 2, ISN_C + 2)
    assert (challenge.state, challenge.timeout) == ("LAST_ACK", 30)
    assert "challenge ACK" in challenge.reason
    assert flow.r(ACK, ISN_S + 2, ISN_C + 2).state == "TIME_WAIT"


def test_out_of_window_fin_from_both_sides_cuts_lifetime() -> None:
    flow = Flow()
    handshake(flow)
    first = flow.o(FIN | ACK, ISN_C + 1 + 90000, ISN_S + 1)
    assert (first.ctstate, first.timeout) == ("INVALID", 432000)
    second = flow.r(FIN | ACK, ISN_S + 1 + 90000, ISN_C + 1)
    assert (second.ctstate, second.timeout) == ("INVALID", 300)
    assert "cut to 300 s" in second.reason


# -- the live kernel as the judge -----------------------------------------------------

# Steps: (side, scapy-style flags, seq, ack, window, payload length, options).
Step = tuple[str, str, int, int, int, int, bytes]
SACK_BEYOND = b"\x01\x01\x05\x0a" + struct.pack("!II", ISN_C + 1, ISN_C + 900)


def _steps(*steps: tuple[object, ...]) -> list[Step]:
    defaults: tuple[object, ...] = ("o", "A", 0, 0, WIN, 0, b"")
    return [tuple(step + defaults[len(step):]) for step in steps]  # type: ignore[misc]


_HS = (("o", "S", ISN_C), ("r", "SA", ISN_S, ISN_C + 1), ("o", "A", ISN_C + 1, ISN_S + 1))
_DATA = (("o", "PA", ISN_C + 1, ISN_S + 1, WIN, 100), ("r", "A", ISN_S + 1, ISN_C + 101))
KERNEL_SCENARIOS: dict[str, tuple[dict[str, int], list[Step]]] = {
    "fin teardown": ({}, _steps(*_HS, *_DATA, ("o", "FA", ISN_C + 101, ISN_S + 1),
                                ("r", "A", ISN_S + 1, ISN_C + 102),
                                ("r", "FA", ISN_S + 1, ISN_C + 102),
                                ("o", "A", ISN_C + 102, ISN_S + 2), ("o", "S", 90000))),
    "rst rules": ({}, _steps(*_HS, *_DATA, ("o", "R", 150), ("o", "R", 90000),
                             ("r", "R", 700), ("o", "S", 70000), ("r", "SA", 9000, 70001))),
    "rst exact then syn": ({}, _steps(*_HS, *_DATA, ("r", "R", ISN_S + 1), ("o", "S", 70000),
                                      ("r", "SA", 9000, 70001), ("o", "A", 70001, 9001))),
    "ignore invalid rst": ({"nf_conntrack_tcp_ignore_invalid_rst": 1},
                           _steps(*_HS, *_DATA, ("o", "R", 150))),
    "rst while closing": ({}, _steps(*_HS, ("o", "FA", ISN_C + 1, ISN_S + 1),
                                     ("r", "R", 0x70000000))),
    "syn_sent oddities": ({}, _steps(("o", "S", ISN_C), ("o", "A", ISN_C + 1, 1),
                                     ("o", "FA", ISN_C + 1, 1), ("r", "FA", ISN_S, ISN_C + 1),
                                     ("r", "SA", ISN_S, ISN_C + 2), ("r", "A", 777, 4242),
                                     ("o", "R", 4242))),
    "rst answers syn": ({}, _steps(("o", "S", ISN_C), ("o", "S", ISN_C),
                                   ("r", "RA", 31337, ISN_C + 1))),
    "rst answers ignored syn": ({}, _steps(*_HS, *_DATA, ("o", "S", 70000),
                                           ("r", "RA", 0x40000000, 70001))),
    "rst after own syn": ({}, _steps(("o", "S", ISN_C), ("r", "S", ISN_S),
                                     ("r", "RA", ISN_S + 100000, 0))),
    "simultaneous open": ({}, _steps(("o", "S", ISN_C), ("r", "S", ISN_S),
                                     ("o", "SA", ISN_C, ISN_S + 1), ("r", "SA", ISN_S, ISN_C + 1),
                                     ("r", "A", ISN_S + 1, ISN_C + 1))),
    "pickup": ({}, _steps(("o", "A", 5000, 9000), ("r", "A", 9000, 5000),
                          ("o", "A", 5000, 9000), ("o", "PA", 90_005_000, 1_234_567, WIN, 10))),
    "window": ({}, _steps(*_HS, ("o", "PA", ISN_C + 1 + 5000, ISN_S + 1, WIN, 10),
                          ("r", "A", ISN_S + 1, ISN_C + 50001),
                          ("o", "PA", ISN_C + 1 + 995, ISN_S + 1, WIN, 20),
                          ("o", "PA", ISN_C - 100000, ISN_S + 1, WIN, 10),
                          ("r", "A", ISN_S + 1, ISN_C - 100000))),
    "liberal": ({"nf_conntrack_tcp_be_liberal": 1},
                _steps(*_HS, ("o", "PA", ISN_C + 1 + 5000, ISN_S + 1, WIN, 10),
                       ("r", "A", ISN_S + 1, ISN_C + 50001))),
    "wscale both": ({}, _steps(("o", "S", ISN_C, 0, WIN, 0, wscale(7)),
                               ("r", "SA", ISN_S, ISN_C + 1, WIN, 0, wscale(7)), *_HS[2:],
                               ("r", "A", ISN_S + 1, ISN_C + 1),
                               ("o", "PA", ISN_C + 50001, ISN_S + 1, WIN, 10))),
    "wscale one": ({}, _steps(("o", "S", ISN_C, 0, WIN, 0, wscale(7)),
                              ("r", "SA", ISN_S, ISN_C + 1), *_HS[2:],
                              ("r", "A", ISN_S + 1, ISN_C + 1),
                              ("o", "PA", ISN_C + 50001, ISN_S + 1, WIN, 10))),
    "sack beyond": ({}, _steps(("o", "S", ISN_C, 0, WIN, 0, SACK_PERM_OPT),
                               ("r", "SA", ISN_S, ISN_C + 1, WIN, 0, SACK_PERM_OPT), *_HS[2:],
                               ("o", "PA", ISN_C + 1, ISN_S + 1, WIN, 100),
                               ("r", "A", ISN_S + 1, ISN_C + 1, WIN, 0, SACK_BEYOND))),
    "timeouts": ({}, _steps(*_HS, *[("r", "A", ISN_S + 1, ISN_C + 1)] * 4,
                            ("r", "A", ISN_S + 1, ISN_C + 1, 2000),
                            ("r", "A", ISN_S + 1, ISN_C + 1, 0),
                            ("r", "A", ISN_S + 1, ISN_C + 1, 500))),
    "challenge ack in last_ack": ({}, _steps(*_HS, ("o", "FA", ISN_C + 1, ISN_S + 1),
                                             ("r", "FA", ISN_S + 1, ISN_C + 2),
                                             ("o", "S", 60000), ("r", "A", ISN_S + 2, ISN_C + 2),
                                             ("r", "A", ISN_S + 2, ISN_C + 2))),
    "out-of-window fins": ({}, _steps(*_HS, ("o", "FA", ISN_C + 90001, ISN_S + 1),
                                      ("r", "FA", ISN_S + 90001, ISN_C + 1))),
    "overshoot": ({}, _steps(*_HS, ("o", "PA", ISN_C + 1 + 995, ISN_S + 1, WIN, 20),
                             ("r", "A", ISN_S + 1, ISN_C + 1016))),
    "first packets": ({}, _steps(*[("o", letters, 1000, 1) for letters in sorted(FIRST_PACKET)])),
}


def _kernel_entry(lines: list[str]) -> tuple[str | None, int | None, bool]:
    tcp_lines = [line.split() for line in lines if line.startswith("tcp ")]
    if not tcp_lines:
        return None, None, False
    assert len(tcp_lines) == 1, tcp_lines
    fields = tcp_lines[0]
    return fields[3], int(fields[2]), "[ASSURED]" in fields


@pytest.mark.kernel
@pytest.mark.parametrize("name", sorted(KERNEL_SCENARIOS))
def test_against_live_kernel(kernel: None, name: str) -> None:
    from statewall.oracle import netns
    from statewall.oracle.kernel import KernelFirewall

    sysctls, steps = KERNEL_SCENARIOS[name]
    rules = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    with KernelFirewall(rules, sysctls=sysctls) as fw:
        assert fw.topology is not None
        flow = Flow(Sysctls(**sysctls))
        for number, (who, letters, seq, ack, win, length, opts) in enumerate(steps, 1):
            if name == "first packets":
                netns.run(["conntrack", "-F"], fw.topology.firewall)
                flow = Flow(Sysctls(**sysctls))
            src, dst, sport, dport = (CLIENT, SERVER, CPORT, SPORT) if who == "o" else \
                (SERVER, CLIENT, SPORT, CPORT)
            pkt = build(src, dst, sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                        flags_of(letters), win, b"p" * length, opts)
            observed = fw.send(pkt.data, 0 if who == "o" else 1)
            state, timeout, assured = _kernel_entry(fw.conntrack_list())
            model = flow.feed(pkt)
            where = f"{name} step {number} ({who} {letters or 'none'}): {model.reason}"
            assert observed.ctstate == model.ctstate, where
            assert (state, assured) == (model.state, model.assured), where
            if timeout is not None and model.timeout is not None:
                assert 0 <= model.timeout - timeout <= 2, where


def _random_steps(rng: random.Random, count: int) -> list[Step]:
    """A handshake (usually), then segments with plausible and implausible numbers."""
    base = {"o": rng.choice([100, 0xFFFFFF00, 2**31 - 50]), "r": rng.choice([500, 0xFFFFFFF0])}
    sent = {"o": 0, "r": 0}
    steps: list[Step] = []
    if rng.random() < 0.7:
        steps += [("o", "S", base["o"], 0, WIN, 0, rng.choice([b"", wscale(7), SACK_PERM_OPT])),
                  ("r", "SA", base["r"], base["o"] + 1, WIN, 0, rng.choice([b"", wscale(7)])),
                  ("o", "A", base["o"] + 1, base["r"] + 1, WIN, 0, b"")]
    for _ in range(count):
        who = rng.choice("or")
        letters = rng.choice(["S", "SA", "A", "A", "PA", "FA", "FA", "R", "RA"])
        nxt = base[who] + 1 + sent[who]
        peer = base["r" if who == "o" else "o"] + 1 + sent["r" if who == "o" else "o"]
        seq = rng.choice([nxt, nxt, nxt, nxt - 50, nxt + 900, nxt + 5000, 0, rng.getrandbits(32)])
        ack = rng.choice([peer, peer, peer, peer - 30, peer + 10, peer + 70000, 0])
        length = 0 if "S" in letters or "R" in letters else rng.choice([0, 0, 10, 1500])
        opts = rng.choice([b"", wscale(rng.choice([0, 7, 14])), SACK_PERM_OPT]) \
            if "S" in letters else b""
        if seq == nxt and rng.random() < 0.7:
            sent[who] += length + ("S" in letters) + ("F" in letters)
        steps.append((who, letters, seq, ack, rng.choice([WIN, 0, 65535]), length, opts))
    return steps


@pytest.mark.kernel
@pytest.mark.parametrize("sysctls", [{}, {"nf_conntrack_tcp_be_liberal": 1},
                                     {"nf_conntrack_tcp_ignore_invalid_rst": 1}])
def test_random_sequences_against_live_kernel(kernel: None, sysctls: dict[str, int]) -> None:
    from statewall.oracle import netns
    from statewall.oracle.kernel import KernelFirewall

    rng = random.Random(f"tcp-{sorted(sysctls.items())}")
    rules = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    with KernelFirewall(rules, sysctls=sysctls) as fw:
        assert fw.topology is not None
        for number in range(40):
            netns.run(["conntrack", "-F"], fw.topology.firewall)
            flow = Flow(Sysctls(**sysctls))
            steps = _random_steps(rng, 12)
            for who, letters, seq, ack, win, length, opts in steps:
                src, dst, sport, dport = (CLIENT, SERVER, CPORT, SPORT) if who == "o" else \
                    (SERVER, CLIENT, SPORT, CPORT)
                pkt = build(src, dst, sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                            flags_of(letters), win, b"p" * length, opts)
                observed = fw.send(pkt.data, 0 if who == "o" else 1)
                state, timeout, assured = _kernel_entry(fw.conntrack_list())
                model = flow.feed(pkt)
                where = f"scenario {number} {steps}: {model.reason}"
                assert (observed.ctstate, state, assured) == \
                    (model.ctstate, model.state, model.assured), where
                if timeout is not None and model.timeout is not None:
                    assert 0 <= model.timeout - timeout <= 2, where
