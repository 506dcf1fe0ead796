"""Expectations: insertion, limits, matching, consumption, expiry, removal, listings.

Expected values come from the spec (expectations.md), whose "verified" facts
were observed on the live 6.18 kernel in network namespaces. The small
`Machine` below plays a host with conntrack, raw-table `CT --helper` rules
and no filter rules; the helper tests import it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from statewall import builder
from statewall.capture import open_capture
from statewall.config import Sysctls
from statewall.conntrack.conn import (
    CTSTATE_NAMES,
    IPS_CONFIRMED,
    IPS_EXPECTED,
    IPS_SEEN_REPLY,
    Conn,
)
from statewall.conntrack.core import ConntrackTable, CtResult
from statewall.conntrack.expect import (
    EXP_F_INACTIVE,
    EXP_F_PERMANENT,
    Expectation,
    ExpectationTable,
    ExpectPolicy,
    HelperParams,
    conntrack_expect_event_line,
    conntrack_expect_line,
    full_mask,
    proc_expect_line,
)
from statewall.decode import decode_datagram, decode_frame
from statewall.helpers import assign_helper, confirm_with_helper, helper_name_of
from statewall.packet import PROTO_TCP, PROTO_UDP, Packet

C4, S4 = "10.77.0.1", "10.77.0.2"
C6, S6 = "fd77::1", "fd77::2"

# The raw-table rules of the spec's setup: -p P --dport N -j CT --helper NAME.
CT_HELPER_RULES = {(PROTO_TCP, 21): "ftp", (PROTO_TCP, 6667): "irc",
                   (PROTO_UDP, 69): "tftp", (PROTO_UDP, 10080): "amanda"}


@dataclass
class Seen:
    """What happened to one packet."""

    state: str
    accepted: bool
    reason: str
    ct: CtResult
    pkt: Packet

    @property
    def conn(self) -> Conn | None:
        return self.ct.conn


class HelpedTable(ConntrackTable):
    """The core with the one hook the integration adds: a dying entry takes its
    expectations and helper data along (nf_ct_remove_expectations)."""

    expectations: ExpectationTable | None = None

    def destroy(self, conn: Conn, now: float, cause: str) -> None:
        super().destroy(conn, now, cause)
        if self.expectations is not None:
            self.expectations.master_destroyed(conn, now)


@dataclass
class Machine:
    """conntrack + helpers, as a host whose only rules are raw-table CT --helper rules."""

    cfg: Sysctls = field(default_factory=Sysctls)
    params: HelperParams = field(default_factory=HelperParams)
    rules: dict[tuple[int, int], str] = field(default_factory=lambda: dict(CT_HELPER_RULES))
    index: int = 0
    events: list[tuple[str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.exp = ExpectationTable(self.params, self._event)
        self.table = HelpedTable(self.cfg, expect_match=self.exp.match_new)
        self.table.expectations = self.exp

    def _event(self, kind: str, exp: Expectation, now: float) -> None:
        self.events.append((kind, exp.dport))

    def send(self, raw: bytes, now: float, filter_drops: bool = False) -> Seen:
        """One datagram through PREROUTING conntrack, the filter and the confirm step."""
        pkt = decode_datagram(raw, index=self.index, ts=now)
        self.index += 1
        ct = self.table.classify(pkt, now)
        conn = ct.conn
        state = CTSTATE_NAMES[ct.ctinfo]
        if conn is None or ct.drop:
            return Seen(state, not ct.drop, ct.reason, ct, pkt)
        if ct.unconfirmed:
            assign_helper(conn, self.rules.get((pkt.proto, pkt.dport)))
        if filter_drops:
            self.table.discard(ct)
            self.exp.master_destroyed(conn, now)
            return Seen(state, False, "dropped by a filter rule", ct, pkt)
        verdict = confirm_with_helper(self.table, self.exp, ct, pkt, now)
        return Seen(state, verdict.accept, verdict.reason, ct, pkt)

    def listing(self, now: float) -> set[str]:
        return {proc_expect_line(e, now) for e in self.exp.live(now)}


class Tcp:
    """One TCP connection between two endpoints, with consistent sequence numbers."""

    def __init__(self, box: Machine, client: str, server: str, cport: int, sport: int) -> None:
        self.box, self.c, self.s, self.cport, self.sport = box, client, server, cport, sport
        self.cseq, self.sseq = 1000, 50000

    def open(self, now: float) -> list[Seen]:
        syn = self.box.send(builder.tcp(self.c, self.s, self.cport, self.sport, "S",
                                        seq=self.cseq - 1), now)
        synack = self.box.send(builder.tcp(self.s, self.c, self.sport, self.cport, "SA",
                                           seq=self.sseq - 1, ack=self.cseq), now)
        ack = self.client(b"", now)
        return [syn, synack, ack]

    def client(self, data: bytes, now: float, advance: bool = True) -> Seen:
        flags = "PA" if data else "A"
        seen = self.box.send(builder.tcp(self.c, self.s, self.cport, self.sport, flags,
                                         seq=self.cseq, ack=self.sseq, payload=data), now)
        if advance:
            self.cseq += len(data)
        return seen

    def server(self, data: bytes, now: float, advance: bool = True) -> Seen:
        flags = "PA" if data else "A"
        seen = self.box.send(builder.tcp(self.s, self.c, self.sport, self.cport, flags,
                                         seq=self.sseq, ack=self.cseq, payload=data), now)
        if advance:
            self.sseq += len(data)
        return seen


@dataclass
class CaptureReplay:
    """A shared capture replayed through a Machine (every packet must be accepted)."""

    box: Machine
    states: list[str]  # each packet's ctstate
    first: dict[int, tuple[str, int]]  # per entry: its first ctstate and original dport


def replay_capture(path: Path) -> CaptureReplay:
    replayed = CaptureReplay(Machine(), [], {})
    box = replayed.box
    with open_capture(path) as capture:
        for frame in capture:
            pkt = decode_frame(frame.index, frame.ts, frame.data, frame.linktype, frame.iface)
            box.index = pkt.index
            seen = box.send(pkt.data, pkt.ts)
            replayed.states.append(seen.state)
            if seen.conn is not None:
                replayed.first.setdefault(id(seen.conn), (seen.state, seen.conn.orig_dport))
            assert seen.accepted, seen.reason
    return replayed


def ftp_with_port(box: Machine, now: float, port_cmd: bytes = b"PORT 10,77,0,1,156,64\r\n",
                  cport: int = 46182) -> Tcp:
    """An FTP control connection whose client announced `port_cmd` after a first line."""
    ctl = Tcp(box, C4, S4, cport, 21)
    ctl.open(now)
    ctl.client(b"USER a\r\n", now)
    ctl.client(port_cmd, now)
    return ctl


def data_syn(box: Machine, now: float, sport: int = 20, dport: int = 40000) -> Seen:
    return box.send(builder.tcp(S4, C4, sport, dport, "S", seq=7000), now)


# -- listings (verified lines) -----------------------------------------------------------


def test_proc_and_conntrack_lines_of_an_ftp_expectation() -> None:
    box = Machine()
    ftp_with_port(box, 100.0)
    (exp,) = box.exp.live(100.5)
    assert proc_expect_line(exp, 100.5) == (
        "299 l3proto = 2 proto=6 src=10.77.0.2 dst=10.77.0.1 sport=0 dport=40000 ftp\n")
    assert conntrack_expect_line(exp, 100.5) == (
        "299 proto=6 src=10.77.0.2 dst=10.77.0.1 sport=0 dport=40000 mask-src=255.255.255.255 "
        "mask-dst=255.255.255.255 sport=0 dport=65535 master-src=10.77.0.1 master-dst=10.77.0.2 "
        "sport=46182 dport=21 class=0 helper=ftp")
    assert conntrack_expect_event_line("NEW", exp, 300).startswith("    [NEW] 300 proto=6 ")


def test_ipv6_proc_line_is_fully_expanded() -> None:
    box = Machine()
    box.send(builder.udp(C6, S6, 12348, 69, b"\x00\x01f\x00octet\x00"), 5.0)
    assert box.listing(5.2) == {
        "299 l3proto = 10 proto=17 src=fd77:0000:0000:0000:0000:0000:0000:0002 "
        "dst=fd77:0000:0000:0000:0000:0000:0000:0001 sport=0 dport=12348 tftp\n"}


def test_flags_mask_and_policy_name_print_as_the_kernel_does() -> None:
    table = ExpectationTable()
    master = _conn(4, PROTO_UDP, "10.77.0.1", "10.77.0.255", 5137, 137)
    nb = Expectation(master, "netbios-ns", PROTO_UDP, _ip("10.77.0.255"), _ip("255.255.255.0"),
                     137, 0xFFFF, _ip("10.77.0.1"), 5137, flags=EXP_F_PERMANENT)
    assert table.related(nb, ExpectPolicy(1, 3), 10.0, 4096) is None
    assert proc_expect_line(nb, 10.2) == ("2 l3proto = 2 proto=17 src=10.77.0.255 dst=10.77.0.1 "
                                          "sport=137 dport=5137 PERMANENT netbios-ns\n")
    assert conntrack_expect_line(nb, 10.2) == (
        "2 proto=17 src=10.77.0.255 dst=10.77.0.1 sport=137 dport=5137 mask-src=255.255.255.0 "
        "mask-dst=255.255.255.255 sport=65535 dport=65535 master-src=10.77.0.1 "
        "master-dst=10.77.0.255 sport=5137 dport=137 PERMANENT class=0 helper=netbios-ns")
    sip_master = _conn(4, PROTO_UDP, "10.77.0.1", "10.77.0.2", 5060, 5060)
    sip = Expectation(sip_master, "sip", PROTO_UDP, _ip("10.77.0.2"), full_mask(4), 0, 0,
                      _ip("10.77.0.1"), 5060, flags=EXP_F_PERMANENT | EXP_F_INACTIVE)
    assert table.related(sip, ExpectPolicy(1, 180, "signalling"), 10.0, 4096) is None
    assert proc_expect_line(sip, 10.5) == ("179 l3proto = 2 proto=17 src=10.77.0.2 "
                                           "dst=10.77.0.1 sport=0 dport=5060 "
                                           "PERMANENT,INACTIVE sip/signalling\n")


def _ip(text: str) -> int:
    import ipaddress

    return int(ipaddress.ip_address(text))


def _conn(family: int, proto: int, src: str, dst: str, sport: int, dport: int,
          zone: int = 0) -> Conn:
    conn = Conn(family, proto, zone, (_ip(src), _ip(dst), sport, dport),
                (_ip(dst), _ip(src), dport, sport), 0.0)
    conn.status |= IPS_CONFIRMED
    conn.helper = "ftp"
    return conn


# -- matching and consumption ------------------------------------------------------------


def test_child_is_related_until_the_reply_then_established() -> None:
    box = Machine()
    ftp_with_port(box, 1.0)
    syn = data_syn(box, 2.0)
    retransmitted = data_syn(box, 2.5)
    synack = box.send(builder.tcp(C4, S4, 40000, 20, "SA", seq=900, ack=7001), 3.0)
    ack = box.send(builder.tcp(S4, C4, 20, 40000, "A", seq=7001, ack=901), 3.0)
    assert [syn.state, retransmitted.state, synack.state, ack.state] == [
        "RELATED", "RELATED", "ESTABLISHED", "ESTABLISHED"]
    child = ack.conn
    assert child is not None and child.status & IPS_EXPECTED and child.status & IPS_SEEN_REPLY
    assert child.helper is None  # FTP children get no helper (verified)
    assert helper_name_of(child) == "ftp"  # what -m helper --helper ftp compares
    assert helper_name_of(child.master) is None  # never the control connection
    assert box.exp.live(3.0) == []
    reason = box.exp.related_reason(child)
    assert reason == ("RELATED: expected by ftp control 10.77.0.1:46182 → 10.77.0.2:21, "
                      "PORT command in packet #5")  # SYN, SYN/ACK, ACK, USER, PORT


def test_a_consumed_expectation_does_not_match_a_second_connection() -> None:
    box = Machine()
    ftp_with_port(box, 1.0)
    assert data_syn(box, 2.0, sport=20).state == "RELATED"
    assert data_syn(box, 2.0, sport=21000).state == "NEW"
    assert box.exp.stats.expect_new == 1


def test_expectation_is_consumed_even_when_the_first_packet_is_dropped() -> None:
    box = Machine()
    ftp_with_port(box, 1.0)
    first = box.send(builder.tcp(S4, C4, 20, 40000, "S", seq=7000), 2.0, filter_drops=True)
    assert first.state == "RELATED" and not first.accepted
    again = data_syn(box, 3.0)
    assert again.state == "NEW"  # verified: the retransmitted SYN is NEW, no master
    assert again.conn is not None and again.conn.master is None


def test_source_must_match_unless_masked_and_destination_always() -> None:
    box = Machine()
    ftp_with_port(box, 1.0)
    # FTP expects the server's address exactly, any source port.
    assert box.send(builder.tcp("10.77.0.9", C4, 20, 40000, "S"), 2.0).state == "NEW"
    assert box.send(builder.tcp(S4, C4, 20, 40001, "S"), 2.0).state == "NEW"
    assert box.send(builder.tcp(S4, C4, 33333, 40000, "S"), 2.0).state == "RELATED"


def test_master_mark_is_copied_to_the_child() -> None:
    box = Machine()
    ctl = ftp_with_port(box, 1.0)
    master = ctl.client(b"", 1.0).conn
    assert master is not None
    master.mark = 7  # CONNMARK on the control connection (verified: data mark=7)
    child = data_syn(box, 2.0).conn
    assert child is not None and child.mark == 7 and child.master is master


def test_expectation_matches_only_in_its_zone() -> None:
    table = ExpectationTable()
    master = _conn(4, PROTO_TCP, C4, S4, 46182, 21, zone=5)
    exp = Expectation(master, "ftp", PROTO_TCP, _ip(S4), full_mask(4), 0, 0, _ip(C4), 40000)
    assert table.related(exp, ExpectPolicy(1, 300), 0.0, 4096) is None
    assert table.match_new(_conn(4, PROTO_TCP, S4, C4, 20, 40000, zone=0), None, 1.0) is None
    assert table.match_new(_conn(4, PROTO_TCP, S4, C4, 20, 40000, zone=5), None, 1.0) is master


def test_unconfirmed_master_does_not_lend_its_expectations() -> None:
    table = ExpectationTable()
    master = _conn(4, PROTO_UDP, C4, S4, 12346, 69)
    master.status &= ~IPS_CONFIRMED
    exp = Expectation(master, "tftp", PROTO_UDP, _ip(S4), full_mask(4), 0, 0, _ip(C4), 12346)
    table.related(exp, ExpectPolicy(1, 300), 0.0, 4096)
    child = _conn(4, PROTO_UDP, S4, C4, 50000, 12346)
    assert table.match_new(child, None, 0.5) is None
    master.status |= IPS_CONFIRMED
    assert table.match_new(child, None, 0.6) is master


def test_inactive_and_permanent_flags() -> None:
    table = ExpectationTable()
    master = _conn(4, PROTO_UDP, C4, S4, 5060, 5060)
    exp = Expectation(master, "sip", PROTO_UDP, _ip(S4), full_mask(4), 0, 0, _ip(C4), 5060,
                      flags=EXP_F_PERMANENT | EXP_F_INACTIVE)
    table.related(exp, ExpectPolicy(1, 180), 0.0, 4096)
    child = _conn(4, PROTO_UDP, S4, C4, 5060, 5060)
    assert table.match_new(child, None, 1.0) is None  # inactive: ignored
    exp.flags = EXP_F_PERMANENT
    assert table.match_new(child, None, 1.0) is master
    assert table.match_new(child, None, 2.0) is master  # permanent: not consumed
    assert table.count == 1


# -- lifetime ----------------------------------------------------------------------------


def test_expiry_is_fixed_at_creation_and_not_refreshed_by_master_traffic() -> None:
    box = Machine()
    ctl = ftp_with_port(box, 1000.0)
    ctl.client(b"NOOP\r\n", 1200.0)
    ctl.server(b"200 ok\r\n", 1200.0)
    (exp,) = box.exp.live(1299.0)
    assert exp.remaining(1299.0) == 1
    assert data_syn(box, 1299.5).state == "RELATED"


def test_expired_expectation_no_longer_matches() -> None:
    box = Machine()
    ftp_with_port(box, 1000.0)
    # Beyond the live kernel's timer slack (up to ~16 s for 300 s timeouts).
    assert box.exp.live(1320.0) == []
    assert data_syn(box, 1320.0).state == "NEW"
    assert ("DESTROY", 40000) in box.events


def test_master_death_removes_its_expectations_but_not_its_children() -> None:
    box = Machine()
    ctl = ftp_with_port(box, 1.0)
    child = data_syn(box, 2.0).conn
    ctl.client(b"PORT 10,77,0,1,156,65\r\n", 3.0)
    master = ctl.client(b"", 3.0).conn
    assert master is not None and child is not None
    assert len(box.exp.live(3.0)) == 1
    box.table.destroy(master, 4.0, "conntrack -D")  # calls master_destroyed
    assert box.exp.live(4.0) == [] and box.events[-1] == ("DESTROY", 40001)
    assert box.table.lookup(4, PROTO_TCP, _ip(S4), _ip(C4), 20, 40000, 0, 5.0) is not None


# -- limits ------------------------------------------------------------------------------


def test_second_port_evicts_the_first_max_expected_1() -> None:
    box = Machine()
    ctl = ftp_with_port(box, 1.0)
    ctl.client(b"PORT 10,77,0,1,156,65\r\n", 2.0)
    assert box.events == [("NEW", 40000), ("DESTROY", 40000), ("NEW", 40001)]
    assert box.listing(2.5) == {
        "299 l3proto = 2 proto=6 src=10.77.0.2 dst=10.77.0.1 sport=0 dport=40001 ftp\n"}


def test_retransmitted_command_replaces_the_identical_expectation() -> None:
    box = Machine()
    ctl = ftp_with_port(box, 1.0)
    ctl.cseq -= len(b"PORT 10,77,0,1,156,64\r\n")
    ctl.client(b"PORT 10,77,0,1,156,64\r\n", 100.0)
    assert box.events == [("NEW", 40000), ("DESTROY", 40000), ("NEW", 40000)]
    (exp,) = box.exp.live(100.0)
    assert exp.expires == 400.0


def test_same_announcement_from_another_master_clashes_and_is_dropped() -> None:
    box = Machine()
    replies = []
    for cport in (46001, 46002):
        ctl = Tcp(box, C4, S4, cport, 21)
        ctl.open(1.0)
        ctl.server(b"220 hi\r\n", 1.0)
        replies.append(ctl.server(b"227 Entering Passive Mode (10,77,0,2,156,65).\r\n", 2.0))
    assert replies[0].accepted
    assert not replies[1].accepted and "clashes" in replies[1].reason
    assert len(box.exp.live(2.0)) == 1


def test_expect_max_refuses_and_the_request_is_dropped_with_its_entry() -> None:
    box = Machine(cfg=Sysctls(nf_conntrack_expect_max=3))
    seen = [box.send(builder.udp(C4, S4, 20000 + i, 69, b"\x00\x01f\x00octet\x00"), 1.0)
            for i in range(5)]
    assert [s.accepted for s in seen] == [True, True, True, False, False]
    assert "expectation table full" in seen[3].reason
    assert box.exp.count == 3 and box.table.count == 3


def test_expect_max_counts_after_eviction() -> None:
    """Step 3 (eviction) happens before step 4 (the cap), so a replacement fits."""
    box = Machine(cfg=Sysctls(nf_conntrack_expect_max=1))
    ctl = ftp_with_port(box, 1.0)
    assert ctl.client(b"PORT 10,77,0,1,156,65\r\n", 2.0).accepted
    assert [e.dport for e in box.exp.live(2.0)] == [40001]


def test_policy_zero_means_the_kernel_cap() -> None:
    table = ExpectationTable()
    master = _conn(4, PROTO_TCP, C4, S4, 1, 2)
    for port in range(1, 300):
        exp = Expectation(master, "x", PROTO_TCP, 0, 0, 0, 0, _ip(C4), port)
        assert table.related(exp, ExpectPolicy(0, 60), 0.0, 4096) is None
    assert table.count == 255


@pytest.mark.parametrize("klass", [0, 1])
def test_same_tuple_same_master_other_class_is_refused(klass: int) -> None:
    table = ExpectationTable()
    master = _conn(4, PROTO_UDP, C4, S4, 5060, 5060)
    first = Expectation(master, "sip", PROTO_UDP, _ip(S4), full_mask(4), 0, 0, _ip(C4), 7000)
    table.related(first, ExpectPolicy(4, 180), 0.0, 4096)
    second = Expectation(master, "sip", PROTO_UDP, _ip(S4), full_mask(4), 0, 0, _ip(C4), 7000,
                         klass=klass)
    refusal = table.related(second, ExpectPolicy(4, 180), 1.0, 4096)
    assert (refusal is None) == (klass == 0)
    assert table.count == 1
