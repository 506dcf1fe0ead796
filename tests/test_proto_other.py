"""Generic protocols, GRE and SCTP as Linux 6.18 tracks them (spec: udp-icmp-generic.md §5-8).

Packets are built here byte by byte (the SCTP CRC32c with an independent
bit-by-bit implementation); scenarios run through the conntrack table as a
router sees them.
"""

from __future__ import annotations

import struct

import pytest

from statewall.config import Sysctls
from statewall.conntrack.conn import (
    CT_ESTABLISHED,
    CT_ESTABLISHED_REPLY,
    CT_INVALID,
    CT_NEW,
    IPS_ASSURED,
    IPS_SEEN_REPLY,
    Conn,
)
from statewall.conntrack.core import ConntrackTable, CtResult
from statewall.conntrack.proto_generic import GENERIC_TRACKER
from statewall.conntrack.proto_gre import GRE_TRACKER, GreTimeouts, gre_keys
from statewall.conntrack.proto_sctp import (
    ABORT,
    COOKIE_ACK,
    COOKIE_ECHO,
    DATA,
    HEARTBEAT,
    HEARTBEAT_ACK,
    INIT,
    INIT_ACK,
    SACK,
    SCTP_TRACKER,
    SHUTDOWN,
    SHUTDOWN_ACK,
    SHUTDOWN_COMPLETE,
    STATE_NAMES,
    TRANSITIONS,
    crc32c,
    sctp_error,
)
from statewall.conntrack.trackers import tracker_for
from statewall.packet import Packet

A = 0x0A630101  # 10.99.1.1
B = 0x0A630201  # 10.99.2.1
CFG = Sysctls()


def ip_packet(src: int, dst: int, proto: int, segment: bytes, sport: int = 0,
              dport: int = 0) -> Packet:
    head = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(segment), 1, 0, 64, proto, 0, src, dst)
    total = sum(struct.unpack("!10H", head))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    head = head[:10] + struct.pack("!H", ~total & 0xFFFF) + head[12:]
    pkt = Packet(data=head + segment, family=4)
    pkt.src, pkt.dst, pkt.proto, pkt.ttl = src, dst, proto, 64
    pkt.l4_off = 20
    pkt.payload_off = 20
    pkt.sport, pkt.dport = sport, dport
    return pkt


def step(table: ConntrackTable, pkt: Packet, now: float) -> CtResult:
    """One forwarded packet: conntrack at PREROUTING, confirmation at POSTROUTING."""
    result = table.classify(pkt, now)
    table.confirm(result, now)
    return result


# -- generic ---------------------------------------------------------------------

def test_generic_protocol_600_seconds_never_assured() -> None:
    table = ConntrackTable(CFG)
    first = step(table, ip_packet(A, B, 99, b"anything"), 0.0)
    conn = first.conn
    assert first.ctinfo == CT_NEW and conn is not None and conn.expires == pytest.approx(600.0)
    reply = step(table, ip_packet(B, A, 99, b"answer"), 1.0)
    assert reply.ctinfo == CT_ESTABLISHED_REPLY and conn.expires == pytest.approx(601.0)
    for now in (5.0, 50.0, 500.0):
        assert step(table, ip_packet(A, B, 99, b"more"), now).ctinfo == CT_ESTABLISHED
    assert conn.expires == pytest.approx(1100.0) and not conn.status & IPS_ASSURED


def test_esp_security_associations_share_one_entry() -> None:
    table = ConntrackTable(CFG)
    first = step(table, ip_packet(A, B, 50, struct.pack("!II", 0x1001, 1)), 0.0)
    second = step(table, ip_packet(A, B, 50, struct.pack("!II", 0x2002, 1)), 0.1)
    assert second.conn is first.conn and table.count == 1


def test_dccp_is_generic_in_6_18() -> None:
    assert tracker_for(33) is GENERIC_TRACKER
    assert GENERIC_TRACKER.name == "unknown"
    conn = Conn(4, 33, 0, (A, B, 0, 0), (B, A, 0, 0), 0.0)
    assert GENERIC_TRACKER.error(ip_packet(A, B, 33, b""), CFG, True) is None
    assert GENERIC_TRACKER.packet(conn, ip_packet(A, B, 33, b""), 0, CT_NEW, 3.0, CFG)[0] == 1
    assert conn.expires == pytest.approx(603.0)


def test_generic_timeout_follows_sysctl() -> None:
    table = ConntrackTable(CFG.with_values({"nf_conntrack_generic_timeout": 77}))
    conn = step(table, ip_packet(A, B, 112, b"vrrp"), 2.0).conn
    assert conn is not None and conn.expires == pytest.approx(79.0)


# -- GRE -------------------------------------------------------------------------

def gre_v0(src: int, dst: int) -> Packet:
    return ip_packet(src, dst, 47, struct.pack("!HH", 0, 0x0800) + bytes(20))


def gre_v1(src: int, dst: int, call_id: int, protocol: int = 0x880B) -> Packet:
    header = struct.pack("!BBHHH", 0x30, 0x81, protocol, 0, call_id)
    keys = gre_keys(header, 0)
    sport, dport = keys if keys is not None else (0, 0)
    return ip_packet(src, dst, 47, header + bytes(8), sport, dport)


def test_gre_v0_timeouts_and_assured_after_reply() -> None:
    table = ConntrackTable(CFG)
    first = step(table, gre_v0(A, B), 0.0)
    conn = first.conn
    assert first.ctinfo == CT_NEW and conn is not None
    assert conn.expires == pytest.approx(30.0) and conn.proto_data == (30, 180)
    reply = step(table, gre_v0(B, A), 0.5)
    assert reply.ctinfo == CT_ESTABLISHED_REPLY
    assert conn.expires == pytest.approx(30.5) and not conn.status & IPS_ASSURED
    nxt = step(table, gre_v0(A, B), 0.6)
    assert nxt.ctinfo == CT_ESTABLISHED
    assert conn.expires == pytest.approx(180.6) and conn.status & IPS_ASSURED


def test_gre_v1_keys_from_call_id() -> None:
    header = struct.pack("!BBHHH", 0x30, 0x81, 0x880B, 4, 7)
    assert gre_keys(header, 0) == (0, 7)
    table = ConntrackTable(CFG)
    conn = step(table, gre_v1(A, B, 7), 0.0).conn
    assert conn is not None
    assert (conn.orig_sport, conn.orig_dport, conn.reply_sport, conn.reply_dport) == (0, 7, 7, 0)


def test_gre_v1_not_ppp_is_invalid() -> None:
    pkt = gre_v1(A, B, 7, protocol=0x0800)
    reason = GRE_TRACKER.error(pkt, CFG, True)
    assert reason is not None and "PPP" in reason
    assert step(ConntrackTable(CFG), pkt, 0.0).ctinfo == CT_INVALID


def test_gre_short_headers_give_zero_keys() -> None:
    assert gre_keys(struct.pack("!BBHH", 0x30, 0x81, 0x0800, 0), 0) == (0, 0)  # v1, 6 bytes
    assert gre_keys(b"\x00", 0) == (0, 0)
    assert gre_keys(struct.pack("!BBHHH", 0, 2, 0x0800, 0, 9), 0) == (0, 0)  # version 2


def test_gre_entry_keeps_its_own_timeouts() -> None:
    # The PPTP helper raises the timeouts of its data channel entries.
    conn = Conn(4, 47, 0, (A, B, 0, 0), (B, A, 0, 0), 0.0)
    assert GRE_TRACKER.new(conn, gre_v0(A, B), CFG) is None
    conn.proto_data = GreTimeouts(600, 18000)
    conn.status |= IPS_SEEN_REPLY
    GRE_TRACKER.packet(conn, gre_v0(A, B), 0, CT_ESTABLISHED, 1.0, CFG)
    assert conn.expires == pytest.approx(18001.0)


# -- SCTP ------------------------------------------------------------------------

def _crc32c_bitwise(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 * (crc & 1))
    return crc ^ 0xFFFFFFFF


def chunk(ctype: int, value: bytes = b"", flags: int = 0) -> bytes:
    raw = struct.pack("!BBH", ctype, flags, 4 + len(value)) + value
    return raw + bytes(-len(raw) % 4)


def init_value(tag: int) -> bytes:
    return struct.pack("!IIHHI", tag, 65535, 10, 10, 1)


def sctp(src: int, dst: int, sport: int, dport: int, vtag: int, *chunks: bytes,
         bad_crc: bool = False) -> Packet:
    body = struct.pack("!HHII", sport, dport, vtag, 0) + b"".join(chunks)
    crc = _crc32c_bitwise(body) ^ (1 if bad_crc else 0)
    segment = body[:8] + crc.to_bytes(4, "little") + body[12:]
    return ip_packet(src, dst, 132, segment, sport, dport)


TAG_A, TAG_B = 0x11111111, 0x22222222


def handshake(table: ConntrackTable) -> Conn:
    """INIT / INIT_ACK / COOKIE_ECHO / COOKIE_ACK, checking each step as observed."""
    init = step(table, sctp(A, B, 5000, 80, 0, chunk(INIT, init_value(TAG_A))), 0.0)
    conn = init.conn
    assert init.ctinfo == CT_NEW and conn is not None
    assert SCTP_TRACKER.state_name(conn) == "CLOSED" and conn.expires == pytest.approx(10.0)
    init_ack = sctp(B, A, 80, 5000, TAG_A, chunk(INIT_ACK, init_value(TAG_B)))
    assert step(table, init_ack, 0.1).ctinfo == CT_ESTABLISHED_REPLY
    assert SCTP_TRACKER.state_name(conn) == "COOKIE_WAIT" and conn.expires == pytest.approx(3.1)
    echo = step(table, sctp(A, B, 5000, 80, TAG_B, chunk(COOKIE_ECHO, b"cookie!!")), 0.2)
    assert echo.ctinfo == CT_ESTABLISHED
    assert SCTP_TRACKER.state_name(conn) == "COOKIE_ECHOED" and not conn.status & IPS_ASSURED
    ack = step(table, sctp(B, A, 80, 5000, TAG_A, chunk(COOKIE_ACK)), 0.3)
    assert ack.ctinfo == CT_ESTABLISHED_REPLY
    assert SCTP_TRACKER.state_name(conn) == "ESTABLISHED"
    assert conn.status & IPS_ASSURED and conn.expires == pytest.approx(210.3)
    return conn


def test_sctp_handshake_data_and_shutdown() -> None:
    table = ConntrackTable(CFG)
    conn = handshake(table)
    data = step(table, sctp(A, B, 5000, 80, TAG_B, chunk(DATA, bytes(16))), 1.0)
    assert data.ctinfo == CT_ESTABLISHED and conn.expires == pytest.approx(211.0)
    assert step(table, sctp(B, A, 80, 5000, TAG_A, chunk(SACK, bytes(12))), 1.1).conn is conn
    step(table, sctp(A, B, 5000, 80, TAG_B, chunk(SHUTDOWN, bytes(4))), 2.0)
    assert SCTP_TRACKER.state_name(conn) == "SHUTDOWN_SENT" and conn.expires == pytest.approx(5.0)
    assert SCTP_TRACKER.can_early_drop(conn)
    step(table, sctp(B, A, 80, 5000, TAG_A, chunk(SHUTDOWN_ACK)), 2.1)
    assert SCTP_TRACKER.state_name(conn) == "SHUTDOWN_ACK_SENT"
    step(table, sctp(A, B, 5000, 80, TAG_B, chunk(SHUTDOWN_COMPLETE)), 2.2)
    assert SCTP_TRACKER.state_name(conn) == "CLOSED" and conn.expires == pytest.approx(12.2)
    assert not SCTP_TRACKER.can_early_drop(conn)


def test_sctp_shutdown_from_responder_is_shutdown_recd() -> None:
    table = ConntrackTable(CFG)
    conn = handshake(table)
    step(table, sctp(B, A, 80, 5000, TAG_A, chunk(SHUTDOWN, bytes(4))), 1.0)
    assert SCTP_TRACKER.state_name(conn) == "SHUTDOWN_RECD"


def test_sctp_wrong_vtag_is_invalid() -> None:
    table = ConntrackTable(CFG)
    conn = handshake(table)
    bad = step(table, sctp(A, B, 5000, 80, 0xDEADBEEF, chunk(DATA, bytes(16))), 1.0)
    assert bad.ctinfo == CT_INVALID and conn.expires == pytest.approx(210.3)


def test_sctp_abort_tag_rules() -> None:
    table = ConntrackTable(CFG)
    conn = handshake(table)
    # Without the T flag the sender's own tag is required; with it, the peer's.
    reflected = sctp(A, B, 5000, 80, TAG_A, chunk(ABORT))
    assert step(table, reflected, 1.0).ctinfo == CT_INVALID
    ok = sctp(A, B, 5000, 80, TAG_A, chunk(ABORT, flags=1))
    assert step(table, ok, 1.1).ctinfo == CT_ESTABLISHED
    assert SCTP_TRACKER.state_name(conn) == "CLOSED"


def test_sctp_data_as_first_packet_is_invalid() -> None:
    table = ConntrackTable(CFG)
    assert step(table, sctp(A, B, 1, 2, 5, chunk(DATA, bytes(8))), 0.0).ctinfo == CT_INVALID
    assert table.count == 0


def test_sctp_init_with_non_zero_vtag_is_invalid() -> None:
    table = ConntrackTable(CFG)
    result = step(table, sctp(A, B, 1, 2, 9, chunk(INIT, init_value(TAG_A))), 0.0)
    assert result.ctinfo == CT_INVALID and table.count == 0


@pytest.mark.parametrize("ctype", [ABORT, SHUTDOWN_COMPLETE, COOKIE_ACK])
def test_sctp_chunks_that_cannot_start_an_entry(ctype: int) -> None:
    table = ConntrackTable(CFG)
    assert step(table, sctp(A, B, 1, 2, 9, chunk(ctype)), 0.0).ctinfo == CT_INVALID


def test_sctp_first_heartbeat_creates_heartbeat_sent() -> None:
    table = ConntrackTable(CFG)
    result = step(table, sctp(A, B, 1, 2, 9, chunk(HEARTBEAT, bytes(8))), 0.0)
    conn = result.conn
    assert result.ctinfo == CT_NEW and conn is not None
    assert SCTP_TRACKER.state_name(conn) == "HEARTBEAT_SENT"
    assert conn.expires == pytest.approx(30.0)
    ack = step(table, sctp(B, A, 2, 1, 7, chunk(HEARTBEAT_ACK, bytes(8))), 0.1)
    assert ack.ctinfo == CT_ESTABLISHED_REPLY
    assert SCTP_TRACKER.state_name(conn) == "ESTABLISHED" and conn.status & IPS_ASSURED


def test_sctp_retransmitted_init_does_not_refresh_closed_entry() -> None:
    table = ConntrackTable(CFG)
    init = sctp(A, B, 5000, 80, 0, chunk(INIT, init_value(TAG_A)))
    conn = step(table, init, 0.0).conn
    assert conn is not None
    again = step(table, init, 5.0)
    assert again.ctinfo == CT_NEW and conn.expires == pytest.approx(10.0)


def test_sctp_crc() -> None:
    assert _crc32c_bitwise(b"123456789") == crc32c(b"123456789") == 0xE3069283
    bad = sctp(A, B, 1, 2, 0, chunk(INIT, init_value(TAG_A)), bad_crc=True)
    reason = sctp_error(bad, CFG, True)
    assert reason is not None and "CRC" in reason
    assert sctp_error(bad, CFG, False) is None
    assert sctp_error(bad, CFG.with_values({"nf_conntrack_checksum": 0}), True) is None


@pytest.mark.parametrize("chunks", [
    (),  # no chunks at all
    (struct.pack("!BBH", DATA, 0, 0),),  # zero-length chunk
    (chunk(INIT, init_value(TAG_A)), chunk(DATA, bytes(4))),  # INIT not alone
    (chunk(DATA, bytes(4)), chunk(INIT, init_value(TAG_A))),  # INIT not first
    (chunk(DATA, bytes(4)), chunk(COOKIE_ECHO, bytes(4))),  # COOKIE_ECHO not first
    (chunk(SACK, bytes(12)), chunk(COOKIE_ACK)),  # COOKIE_ACK not first
])
def test_sctp_basic_checks(chunks: tuple[bytes, ...]) -> None:
    assert sctp_error(sctp(A, B, 1, 2, 0, *chunks), CFG, True) is not None


def test_sctp_cookie_echo_bundled_with_data_is_fine() -> None:
    pkt = sctp(A, B, 1, 2, 0, chunk(COOKIE_ECHO, bytes(4)), chunk(DATA, bytes(4)))
    assert sctp_error(pkt, CFG, True) is None


def test_sctp_short_header_is_invalid() -> None:
    pkt = sctp(A, B, 1, 2, 0, chunk(INIT, init_value(TAG_A)))
    pkt.data = pkt.data[:31]
    assert sctp_error(pkt, CFG, True) is not None


def test_sctp_transition_table_is_complete() -> None:
    chunk_types = {INIT, INIT_ACK, ABORT, SHUTDOWN, SHUTDOWN_ACK, 9, COOKIE_ECHO, COOKIE_ACK,
                   SHUTDOWN_COMPLETE, HEARTBEAT, HEARTBEAT_ACK}
    for direction in (0, 1):
        assert set(TRANSITIONS[direction]) == chunk_types
        for row in TRANSITIONS[direction].values():
            assert len(row) == len(STATE_NAMES)
            assert all(0 < state <= len(STATE_NAMES) for state in row)


# -- the live kernel as oracle ------------------------------------------------------

def _handshake_packets(port: int) -> list[tuple[int, Packet]]:
    return [(0, sctp(A, B, port, 80, 0, chunk(INIT, init_value(TAG_A)))),
            (1, sctp(B, A, 80, port, TAG_A, chunk(INIT_ACK, init_value(TAG_B)))),
            (0, sctp(A, B, port, 80, TAG_B, chunk(COOKIE_ECHO, b"cookie!!"))),
            (1, sctp(B, A, 80, port, TAG_A, chunk(COOKIE_ACK)))]


KERNEL_CASES: dict[str, list[tuple[int, Packet]]] = {
    "abort own tag": _handshake_packets(5001) + [(0, sctp(A, B, 5001, 80, TAG_B, chunk(ABORT)))],
    "abort peer tag": _handshake_packets(5002) + [(0, sctp(A, B, 5002, 80, TAG_A, chunk(ABORT)))],
    "abort reflected": _handshake_packets(5003)
    + [(0, sctp(A, B, 5003, 80, TAG_A, chunk(ABORT, flags=1)))],
    "shutdown_ack and error first": [
        (0, sctp(A, B, 5004, 80, 77, chunk(SHUTDOWN_ACK), chunk(9, bytes(4))))],
    "heartbeat with data first": [
        (0, sctp(A, B, 5005, 80, 77, chunk(HEARTBEAT, bytes(8)), chunk(DATA, bytes(8))))],
    "init_ack wrong tag": [(0, sctp(A, B, 5006, 80, 0, chunk(INIT, init_value(TAG_A)))),
                           (1, sctp(B, A, 80, 5006, 999, chunk(INIT_ACK, init_value(TAG_B))))],
    "close": _handshake_packets(5007) + [
        (0, sctp(A, B, 5007, 80, TAG_B, chunk(SHUTDOWN, bytes(4)))),
        (1, sctp(B, A, 80, 5007, TAG_A, chunk(SHUTDOWN_ACK))),
        (0, sctp(A, B, 5007, 80, TAG_A, chunk(SHUTDOWN_COMPLETE, flags=1)))],
    "gre v1 not ppp": [(0, gre_v1(A, B, 9, protocol=0x0800))],
    "gre v0": [(0, gre_v0(A, B)), (1, gre_v0(B, A))],
    "protocol 99": [(0, ip_packet(A, B, 99, b"x")), (1, ip_packet(B, A, 99, b"y"))],
}


@pytest.mark.kernel
def test_against_live_kernel(kernel: None) -> None:
    from statewall.conntrack.conn import CTSTATE_NAMES
    from statewall.oracle.kernel import KernelFirewall

    rules = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    table = ConntrackTable(CFG)
    with KernelFirewall(rules) as fw:
        for name, packets in KERNEL_CASES.items():
            for number, (side, pkt) in enumerate(packets):
                observed = fw.send(pkt.data, side)
                model = step(table, pkt, 0.0)
                where = f"{name} #{number}: {model.reason}"
                assert observed.ctstate == CTSTATE_NAMES[model.ctinfo], where
        states = {line.split()[8]: line.split()[5] for line in fw.proc_conntrack()
                  if " sctp " in line}
        for conn in table:
            if conn.proto == 132:
                assert states[f"sport={conn.orig_sport}"] == SCTP_TRACKER.state_name(conn)
