"""The TFTP and Amanda helpers (helpers.md §3 and §4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ctharness import IPS_SEEN_REPLY
from ctharness import Machine as Host
from test_expect import C4, C6, S4, S6, Machine, replay_capture

from statewall import builder

RRQ = b"\x00\x01file\x00octet\x00"


def listing(box: Machine, now: float) -> set[str]:
    return box.listing(now)


# -- TFTP ---------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [RRQ, b"\x00\x02file\x00octet\x00"])
def test_read_and_write_requests_expect_the_server_from_any_port(payload: bytes) -> None:
    box = Machine()
    seen = box.send(builder.udp(C4, S4, 12346, 69, payload), 1.0)
    assert seen.state == "NEW" and seen.accepted  # parsed on the very first packet
    assert listing(box, 1.5) == {
        "299 l3proto = 2 proto=17 src=10.77.0.2 dst=10.77.0.1 sport=0 dport=12346 tftp\n"}


@pytest.mark.parametrize("payload", [b"\x00\x03\x00\x01data", b"\x00\x04\x00\x01",
                                     b"\x00\x05\x00\x01err\x00", b"\x00\x09", b"\x00",
                                     b"\x01\x01file"])
def test_other_opcodes_give_nothing(payload: bytes) -> None:
    box = Machine()
    box.send(builder.udp(C4, S4, 12346, 69, payload), 1.0)
    assert box.exp.live(1.0) == []


def test_read_transfer_from_a_new_port_is_related_until_the_client_answers() -> None:
    box = Machine()
    request = box.send(builder.udp(C4, S4, 12345, 69, RRQ), 1.0)
    first = box.send(builder.udp(S4, C4, 50000, 12345, b"\x00\x03\x00\x01" + b"x" * 512), 1.1)
    second = box.send(builder.udp(S4, C4, 50000, 12345, b"\x00\x03\x00\x01" + b"x" * 512), 1.2)
    ack = box.send(builder.udp(C4, S4, 12345, 50000, b"\x00\x04\x00\x01"), 1.3)
    third = box.send(builder.udp(S4, C4, 50000, 12345, b"\x00\x03\x00\x02"), 1.4)
    assert [first.state, second.state, ack.state, third.state] == [
        "RELATED", "RELATED", "ESTABLISHED", "ESTABLISHED"]
    master = request.conn
    assert master is not None and not master.status & IPS_SEEN_REPLY  # stays [UNREPLIED]
    assert first.conn is not None and first.conn.master is master
    assert box.exp.related_reason(first.conn) == (
        "RELATED: expected by tftp control 10.77.0.1:12345 → 10.77.0.2:69, "
        "RRQ (read request) in packet #1")


def test_tftp_ipv6() -> None:
    box = Machine()
    box.send(builder.udp(C6, S6, 12348, 69, b"\x00\x01f\x00octet\x00"), 1.0)
    assert box.send(builder.udp(S6, C6, 40000, 12348, b"\x00\x03\x00\x01"), 2.0).state == \
        "RELATED"


def test_repeated_request_replaces_the_expectation() -> None:
    box = Machine()
    box.send(builder.udp(C4, S4, 12346, 69, RRQ), 1.0)
    box.send(builder.udp(C4, S4, 12346, 69, RRQ), 10.0)
    assert box.events == [("NEW", 12346), ("DESTROY", 12346), ("NEW", 12346)]
    assert [e.expires for e in box.exp.live(10.0)] == [310.0]


def test_master_timing_out_takes_its_expectation_along() -> None:
    box = Machine()
    box.send(builder.udp(C4, S4, 12346, 69, RRQ), 1.0)
    box.advance(40.0)  # the unreplied UDP master lives 30 s
    assert box.exp.live(40.0) == []
    # A new request from the same port is a new master: no clash with a leftover.
    assert box.send(builder.udp(C4, S4, 12346, 69, RRQ), 41.0).accepted
    assert len(box.exp.live(41.0)) == 1


@pytest.mark.parametrize(("name", "data_port"), [("tftp-rrq-read.pcap", 50618),
                                                 ("tftp-wrq-write.pcap", None)])
def test_shared_tftp_captures(name: str, data_port: int | None, shared: Path) -> None:
    first = replay_capture(shared / "traces" / name).first
    related = [port for state, port in first.values() if state == "RELATED"]
    assert len(related) == 1  # the transfer, from the server's new port
    if data_port is not None:
        assert related == [data_port]


# -- Amanda -------------------------------------------------------------------------


def amanda(box: Machine, reply: bytes, now: float = 2.0) -> None:
    box.send(builder.udp(C4, S4, 850, 10080, b"Amanda 2.6 REQ HANDLE 000\n"), 1.0)
    box.send(builder.udp(S4, C4, 10080, 850, reply), now)


def amanda_ports(box: Machine) -> list[int]:
    return sorted(e.dport for e in box.exp.live(3.0))


@pytest.mark.parametrize(("reply", "expected"), [
    (b"Amanda 2.6 REP\nCONNECT DATA 50000 MESG 50001 INDEX 50002\nOPTIONS features=x;\n",
     [50000, 50001, 50002]),
    (b"CONNECT STATE 50010 INDEX 50011 MESG 50012 DATA 50013\n", [50010, 50011, 50012, 50013]),
    (b"CONNECT DATA 0 MESG 50021 INDEX 50022\n", []),
    (b"CONNECT DATA 50030 MESG x INDEX 50032\n", [50030]),
    (b"CONNECT DATA 123456 MESG 99999\n", [12345, 34463]),
    (b"CONNECT DATA  50090\n", []),
    (b"CONNECT DATA -5\n", []),
    (b"connect DATA 5\n", []),
    (b"CONNECT \nDATA 50070\n", []),
    (b"CONNECT DATA 50080 DATA 50081\n", [50080]),
    (b"xxCONNECT DATA 50060\n", [50060]),
    (b"CONNECT DATA 50061", []),  # no newline after CONNECT
])
def test_connect_lines(reply: bytes, expected: list[int]) -> None:
    box = Machine()
    amanda(box, reply)
    assert amanda_ports(box) == expected


def test_amanda_expectation_shape_and_related_data_connection() -> None:
    box = Machine()
    amanda(box, b"CONNECT DATA 50000\n")
    assert listing(box, 2.5) == {
        "179 l3proto = 2 proto=6 src=10.77.0.1 dst=10.77.0.2 sport=0 dport=50000 amanda\n"}
    syn = box.send(builder.tcp(C4, S4, 41000, 50000, "S"), 3.0)
    assert syn.state == "RELATED"


def test_reply_pushes_the_master_timeout_to_300s_and_requests_do_not() -> None:
    box = Machine()
    request = box.send(builder.udp(C4, S4, 850, 10080, b"Amanda 2.6 REQ\n"), 1.0)
    box.send(builder.udp(S4, C4, 10080, 850, b""), 2.0)
    master = request.conn
    assert master is not None and master.expires == 302.0
    box.send(builder.udp(C4, S4, 850, 10080, b"CONNECT DATA 50000\n"), 5.0)
    udp_timeouts = (box.cfg.nf_conntrack_udp_timeout, box.cfg.nf_conntrack_udp_timeout_stream)
    assert master.expires - 5.0 in udp_timeouts  # the UDP tracker's own, not 300 s
    assert box.exp.live(5.0) == []  # ORIGINAL-direction CONNECT lines are ignored


def test_fifth_port_evicts_the_oldest() -> None:
    box = Machine()
    amanda(box, b"CONNECT DATA 50001 MESG 50002 INDEX 50003 STATE 50004\n")
    box.send(builder.udp(S4, C4, 10080, 850, b"CONNECT DATA 50005\n"), 2.5)
    assert amanda_ports(box) == [50002, 50003, 50004, 50005]


def test_connect_ports_reads_at_most_five_digits() -> None:
    box = Machine()
    amanda(box, b"CONNECT DATA 655370\n")
    assert amanda_ports(box) == [65537 & 0xFFFF]


# -- registry ---------------------------------------------------------------------


def helper_for_port(datagram: bytes) -> str | None:
    """The helper the legacy assignment by port (automatic helpers) gives a new entry."""
    seen = Host(auto_helpers=True).step(datagram, 1.0)
    assert seen.conn is not None
    return seen.conn.helper


def test_legacy_assignment_by_port() -> None:
    assert helper_for_port(builder.tcp(C4, S4, 40000, 21, "S")) == "ftp"
    assert helper_for_port(builder.tcp(C6, S6, 40000, 6667, "S")) is None  # irc: IPv4 only
    assert helper_for_port(builder.udp(C6, S6, 40000, 69, RRQ)) == "tftp"
    assert helper_for_port(builder.udp(C4, S4, 40000, 10080, b"x")) == "amanda"
    assert helper_for_port(builder.tcp(C4, S4, 40000, 2121, "S")) is None
