"""Generic protocols, GRE and SCTP as Linux 6.18 tracks them (spec: udp-icmp-generic.md §5-8).

Packets are built here byte by byte (the SCTP CRC32c with an independent
bit-by-bit implementation); scenarios run through a firewall as a router
sees them.
"""

from __future__ import annotations

import struct

import pytest
from ctharness import (
    CT_ESTABLISHED,
    CT_ESTABLISHED_REPLY,
    CT_INVALID,
    CT_NEW,
    IPS_ASSURED,
    LiveConn,
    Machine,
    Step,
)

from statewall.config import Sysctls
from statewall.packet import Packet

# SCTP chunk types (RFC 9260).
DATA, INIT, INIT_ACK, SACK, HEARTBEAT, HEARTBEAT_ACK, ABORT = 0, 1, 2, 3, 4, 5, 6
SHUTDOWN, SHUTDOWN_ACK, COOKIE_ECHO, COOKIE_ACK, SHUTDOWN_COMPLETE = 7, 8, 10, 11, 14

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


def step(table: Machine, pkt: Packet, now: float) -> Step:
    """One forwarded packet: conntrack at PREROUTING, confirmation at POSTROUTING."""
    return table.step(pkt, now)


# -- generic ---------------------------------------------------------------------

def test_generic_protocol_600_seconds_never_assured() -> None:
    table = Machine(CFG)
    first = step(table, ip_packet(A, B, 99, b"anything"), 0.0)
    conn = first.conn
    assert first.ctinfo == CT_NEW and conn is not None and conn.expires == pytest.approx(600.0)
    reply = step(table, ip_packet(B, A, 99, b"answer"), 1.0)
    assert reply.ctinfo == CT_ESTABLISHED_REPLY and conn.expires == pytest.approx(601.0)
    for now in (5.0, 50.0, 500.0):
        assert step(table, ip_packet(A, B, 99, b"more"), now).ctinfo == CT_ESTABLISHED
    assert conn.expires == pytest.approx(1100.0) and not conn.status & IPS_ASSURED


def test_esp_security_associations_share_one_entry() -> None:
    table = Machine(CFG)
    first = step(table, ip_packet(A, B, 50, struct.pack("!II", 0x1001, 1)), 0.0)
    second = step(table, ip_packet(A, B, 50, struct.pack("!II", 0x2002, 1)), 0.1)
    assert second.conn is first.conn and table.firewall.count == 1


def test_dccp_is_generic_in_6_18() -> None:
    table = Machine(CFG)
    first = step(table, ip_packet(A, B, 33, b""), 3.0)
    conn = first.conn
    assert first.ctinfo == CT_NEW and conn is not None
    assert conn.expires == pytest.approx(603.0)
    (line,) = table.proc_lines()
    assert line.split()[2:4] == ["unknown", "33"]  # the generic tracker's name


def test_generic_timeout_follows_sysctl() -> None:
    table = Machine(CFG.with_values({"nf_conntrack_generic_timeout": 77}))
    conn = step(table, ip_packet(A, B, 112, b"vrrp"), 2.0).conn
    assert conn is not None and conn.expires == pytest.approx(79.0)


# -- GRE -------------------------------------------------------------------------

def gre_v0(src: int, dst: int) -> Packet:
    return ip_packet(src, dst, 47, struct.pack("!HH", 0, 0x0800) + bytes(20))


def gre_v1(src: int, dst: int, call_id: int, protocol: int = 0x880B) -> Packet:
    header = struct.pack("!BBHHH", 0x30, 0x81, protocol, 0, call_id)
    return ip_packet(src, dst, 47, header + bytes(8), 0, call_id)


def test_gre_v0_timeouts_and_assured_after_reply() -> None:
    table = Machine(CFG)
    first = step(table, gre_v0(A, B), 0.0)
    conn = first.conn
    assert first.ctinfo == CT_NEW and conn is not None
    assert conn.expires == pytest.approx(30.0)
    reply = step(table, gre_v0(B, A), 0.5)
    assert reply.ctinfo == CT_ESTABLISHED_REPLY
    assert conn.expires == pytest.approx(30.5) and not conn.status & IPS_ASSURED
    nxt = step(table, gre_v0(A, B), 0.6)
    assert nxt.ctinfo == CT_ESTABLISHED
    assert conn.expires == pytest.approx(180.6) and conn.status & IPS_ASSURED


def test_gre_v1_keys_from_call_id() -> None:
    table = Machine(CFG)
    conn = step(table, gre_v1(A, B, 7), 0.0).conn
    assert conn is not None
    assert (*conn.orig[2:], *conn.reply[2:]) == (0, 7, 7, 0)


def test_gre_v1_not_ppp_is_invalid() -> None:
    pkt = gre_v1(A, B, 7, protocol=0x0800)
    result = step(Machine(CFG), pkt, 0.0)
    assert result.ctinfo == CT_INVALID and "PPP" in result.reason


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


def handshake(table: Machine) -> LiveConn:
    """INIT / INIT_ACK / COOKIE_ECHO / COOKIE_ACK, checking each step as observed."""
    init = step(table, sctp(A, B, 5000, 80, 0, chunk(INIT, init_value(TAG_A))), 0.0)
    conn = init.conn
    assert init.ctinfo == CT_NEW and conn is not None
    assert conn.state == "CLOSED" and conn.expires == pytest.approx(10.0)
    init_ack = sctp(B, A, 80, 5000, TAG_A, chunk(INIT_ACK, init_value(TAG_B)))
    assert step(table, init_ack, 0.1).ctinfo == CT_ESTABLISHED_REPLY
    assert conn.state == "COOKIE_WAIT" and conn.expires == pytest.approx(3.1)
    echo = step(table, sctp(A, B, 5000, 80, TAG_B, chunk(COOKIE_ECHO, b"cookie!!")), 0.2)
    assert echo.ctinfo == CT_ESTABLISHED
    assert conn.state == "COOKIE_ECHOED" and not conn.status & IPS_ASSURED
    ack = step(table, sctp(B, A, 80, 5000, TAG_A, chunk(COOKIE_ACK)), 0.3)
    assert ack.ctinfo == CT_ESTABLISHED_REPLY
    assert conn.state == "ESTABLISHED"
    assert conn.status & IPS_ASSURED and conn.expires == pytest.approx(210.3)
    return conn


def test_sctp_handshake_data_and_shutdown() -> None:
    table = Machine(CFG)
    conn = handshake(table)
    data = step(table, sctp(A, B, 5000, 80, TAG_B, chunk(DATA, bytes(16))), 1.0)
    assert data.ctinfo == CT_ESTABLISHED and conn.expires == pytest.approx(211.0)
    assert step(table, sctp(B, A, 80, 5000, TAG_A, chunk(SACK, bytes(12))), 1.1).conn is conn
    step(table, sctp(A, B, 5000, 80, TAG_B, chunk(SHUTDOWN, bytes(4))), 2.0)
    assert conn.state == "SHUTDOWN_SENT" and conn.expires == pytest.approx(5.0)
    step(table, sctp(B, A, 80, 5000, TAG_A, chunk(SHUTDOWN_ACK)), 2.1)
    assert conn.state == "SHUTDOWN_ACK_SENT"
    step(table, sctp(A, B, 5000, 80, TAG_B, chunk(SHUTDOWN_COMPLETE)), 2.2)
    assert conn.state == "CLOSED" and conn.expires == pytest.approx(12.2)


def test_sctp_shutdown_from_responder_is_shutdown_recd() -> None:
    table = Machine(CFG)
    conn = handshake(table)
    step(table, sctp(B, A, 80, 5000, TAG_A, chunk(SHUTDOWN, bytes(4))), 1.0)
    assert conn.state == "SHUTDOWN_RECD"


def test_sctp_wrong_vtag_is_invalid() -> None:
    table = Machine(CFG)
    conn = handshake(table)
    bad = step(table, sctp(A, B, 5000, 80, 0xDEADBEEF, chunk(DATA, bytes(16))), 1.0)
    assert bad.ctinfo == CT_INVALID and conn.expires == pytest.approx(210.3)


def test_sctp_abort_tag_rules() -> None:
    table = Machine(CFG)
    conn = handshake(table)
    # Without the T flag the sender's own tag is required; with it, the peer's.
    reflected = sctp(A, B, 5000, 80, TAG_A, chunk(ABORT))
    assert step(table, reflected, 1.0).ctinfo == CT_INVALID
    ok = sctp(A, B, 5000, 80, TAG_A, chunk(ABORT, flags=1))
    assert step(table, ok, 1.1).ctinfo == CT_ESTABLISHED
    assert conn.state == "CLOSED"


def test_sctp_data_as_first_packet_is_invalid() -> None:
    table = Machine(CFG)
    assert step(table, sctp(A, B, 1, 2, 5, chunk(DATA, bytes(8))), 0.0).ctinfo == CT_INVALID
    assert table.firewall.count == 0


def test_sctp_init_with_non_zero_vtag_is_invalid() -> None:
    table = Machine(CFG)
    result = step(table, sctp(A, B, 1, 2, 9, chunk(INIT, init_value(TAG_A))), 0.0)
    assert result.ctinfo == CT_INVALID and table.firewall.count == 0


@pytest.mark.parametrize("ctype", [ABORT, SHUTDOWN_COMPLETE, COOKIE_ACK])
def test_sctp_chunks_that_cannot_start_an_entry(ctype: int) -> None:
    table = Machine(CFG)
    assert step(table, sctp(A, B, 1, 2, 9, chunk(ctype)), 0.0).ctinfo == CT_INVALID


def test_sctp_first_heartbeat_creates_heartbeat_sent() -> None:
    table = Machine(CFG)
    result = step(table, sctp(A, B, 1, 2, 9, chunk(HEARTBEAT, bytes(8))), 0.0)
    conn = result.conn
    assert result.ctinfo == CT_NEW and conn is not None
    assert conn.state == "HEARTBEAT_SENT"
    assert conn.expires == pytest.approx(30.0)
    ack = step(table, sctp(B, A, 2, 1, 7, chunk(HEARTBEAT_ACK, bytes(8))), 0.1)
    assert ack.ctinfo == CT_ESTABLISHED_REPLY
    assert conn.state == "ESTABLISHED" and conn.status & IPS_ASSURED


def test_sctp_retransmitted_init_does_not_refresh_closed_entry() -> None:
    table = Machine(CFG)
    init = sctp(A, B, 5000, 80, 0, chunk(INIT, init_value(TAG_A)))
    conn = step(table, init, 0.0).conn
    assert conn is not None
    again = step(table, init, 5.0)
    assert again.ctinfo == CT_NEW and conn.expires == pytest.approx(10.0)


def test_sctp_crc() -> None:
    assert _crc32c_bitwise(b"123456789") == 0xE3069283
    bad = sctp(A, B, 1, 2, 0, chunk(INIT, init_value(TAG_A)), bad_crc=True)
    result = step(Machine(CFG), bad, 0.0)
    assert result.ctinfo == CT_INVALID and "CRC" in result.reason
    # Not checked when the machine sends it (LOCAL_OUT) or with the sysctl off.
    assert step(Machine(CFG, local=["10.99.1.1"]), bad, 0.0).ctinfo == CT_NEW
    assert step(Machine(CFG.with_values({"nf_conntrack_checksum": 0})), bad, 0.0).ctinfo == CT_NEW


@pytest.mark.parametrize("chunks", [
    (),  # no chunks at all
    (struct.pack("!BBH", DATA, 0, 0),),  # zero-length chunk
    (chunk(INIT, init_value(TAG_A)), chunk(DATA, bytes(4))),  # INIT not alone
    (chunk(DATA, bytes(4)), chunk(INIT, init_value(TAG_A))),  # INIT not first
    (chunk(DATA, bytes(4)), chunk(COOKIE_ECHO, bytes(4))),  # COOKIE_ECHO not first
    (chunk(SACK, bytes(12)), chunk(COOKIE_ACK)),  # COOKIE_ACK not first
])
def test_sctp_basic_checks(chunks: tuple[bytes, ...]) -> None:
    assert step(Machine(CFG), sctp(A, B, 1, 2, 0, *chunks), 0.0).ctinfo == CT_INVALID


def test_sctp_cookie_echo_bundled_with_data_is_fine() -> None:
    pkt = sctp(A, B, 1, 2, 0, chunk(COOKIE_ECHO, bytes(4)), chunk(DATA, bytes(4)))
    # It passes the basic checks; what refuses it is that it cannot open an entry.
    result = step(Machine(CFG), pkt, 0.0)
    assert "cannot start a connection" in result.reason


def test_sctp_short_header_is_invalid() -> None:
    segment = sctp(A, B, 1, 2, 0, chunk(INIT, init_value(TAG_A))).data[20:31]
    assert step(Machine(CFG), ip_packet(A, B, 132, segment), 0.0).ctinfo == CT_INVALID


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
    from statewall.oracle.kernel import KernelFirewall

    rules = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    table = Machine(CFG)
    with KernelFirewall(rules) as fw:
        for name, packets in KERNEL_CASES.items():
            for number, (side, pkt) in enumerate(packets):
                observed = fw.send(pkt.data, side)
                model = step(table, pkt, 0.0)
                where = f"{name} #{number}: {model.reason}"
                assert observed.ctstate == model.verdict.ctstate, where
        states = {line.split()[8]: line.split()[5] for line in fw.proc_conntrack()
                  if " sctp " in line}
        for conn in table.firewall.connections(table.now):
            if conn.proto == 132:
                assert states[f"sport={conn.orig_sport}"] == conn.state
