"""UDP and UDP-Lite tracking as Linux 6.18 does it (spec: udp-icmp-generic.md §1-2).

Packets are built here byte by byte; scenarios run through a firewall the
way a router sees them (classify at PREROUTING, confirm at POSTROUTING), and
assert ctstate, timeout and status bits the kernel shows.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest
from ctharness import (
    CT_ESTABLISHED,
    CT_ESTABLISHED_REPLY,
    CT_INVALID,
    CT_NEW,
    IPS_ASSURED,
    IPS_SEEN_REPLY,
    Machine,
    Step,
)

from statewall.config import Sysctls
from statewall.packet import Packet

CLIENT = 0x0A630101  # 10.99.1.1
SERVER = 0x0A630201  # 10.99.2.1
CLIENT6 = 0xFD990001000000000000000000000001
SERVER6 = 0xFD990002000000000000000000000001
CFG = Sysctls()


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


def _pseudo(family: int, src: int, dst: int, proto: int, length: int) -> int:
    if family == 4:
        return _sum16(struct.pack("!IIBBH", src, dst, 0, proto, length))
    addrs = src.to_bytes(16, "big") + dst.to_bytes(16, "big")
    return _sum16(addrs + struct.pack("!IxxxB", length, proto))


def _checksum(seed: int, covered: bytes) -> int:
    value = ~_fold(seed + _sum16(covered)) & 0xFFFF
    return value or 0xFFFF


def _ip_header(family: int, src: int, dst: int, proto: int, payload_len: int) -> bytes:
    if family == 4:
        head = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + payload_len, 1, 0, 64, proto, 0, src, dst)
        check = ~_fold(_sum16(head)) & 0xFFFF
        return head[:10] + struct.pack("!H", check) + head[12:]
    head = struct.pack("!IHBB", 6 << 28, payload_len, proto, 64)
    return head + src.to_bytes(16, "big") + dst.to_bytes(16, "big")


def _packet(family: int, src: int, dst: int, proto: int, segment: bytes, sport: int,
            dport: int) -> Packet:
    data = _ip_header(family, src, dst, proto, len(segment)) + segment
    pkt = Packet(data=data, family=family)
    pkt.src, pkt.dst, pkt.proto, pkt.ttl = src, dst, proto, 64
    pkt.l4_off = 20 if family == 4 else 40
    pkt.payload_off = pkt.l4_off + 8
    pkt.sport, pkt.dport = sport, dport
    return pkt


def udp(src: int, dst: int, sport: int, dport: int, payload: bytes = b"hello", *,
        family: int = 4, length: int | None = None, checksum: str = "good") -> Packet:
    """A UDP datagram; checksum is "good", "bad" or "zero"; length overrides the length field."""
    real_len = 8 + len(payload)
    field = real_len if length is None else length
    segment = struct.pack("!HHHH", sport, dport, field, 0) + payload
    value = 0
    if checksum != "zero":
        value = _checksum(_pseudo(family, src, dst, 17, real_len), segment)
        if checksum == "bad":
            value ^= 0x0101
    segment = segment[:6] + struct.pack("!H", value) + segment[8:]
    return _packet(family, src, dst, 17, segment, sport, dport)


def udplite(src: int, dst: int, sport: int, dport: int, payload: bytes = b"lite", *,
            family: int = 4, coverage: int = 0, pseudo_proto: int = 136,
            pseudo_len: int | None = None, checksum: bool = True) -> Packet:
    """A UDP-Lite datagram whose checksum was computed with the given pseudo-header."""
    total = 8 + len(payload)
    segment = struct.pack("!HHHH", sport, dport, coverage, 0) + payload
    covered = segment[: coverage or total]
    plen = total if pseudo_len is None else pseudo_len
    value = _checksum(_pseudo(family, src, dst, pseudo_proto, plen), covered) if checksum else 0
    segment = segment[:6] + struct.pack("!H", value) + segment[8:]
    return _packet(family, src, dst, 136, segment, sport, dport)


def step(table: Machine, pkt: Packet, now: float) -> Step:
    """One forwarded packet: conntrack at PREROUTING, confirmation at POSTROUTING."""
    return table.step(pkt, now)


def _error(pkt: Packet, cfg: Sysctls, in_prerouting: bool) -> str | None:
    """Why conntrack calls the packet INVALID, or None when it does not; a packet not
    in PREROUTING is one the machine sends itself (LOCAL_OUT)."""
    local = [str(ipaddress.ip_address(pkt.src))] if not in_prerouting else []
    seen = Machine(cfg, local=local).step(pkt, 0.0)
    assert seen.ctinfo is not None
    return seen.reason if seen.ctinfo == CT_INVALID else None


udp_error = udplite_error = _error


# -- UDP validation (udp_error) ------------------------------------------------

def test_udp_good_checksum_is_valid() -> None:
    assert udp_error(udp(CLIENT, SERVER, 1000, 53), CFG, True) is None


def test_udp_bad_checksum_is_invalid_at_prerouting_only() -> None:
    pkt = udp(CLIENT, SERVER, 1000, 53, checksum="bad")
    reason = udp_error(pkt, CFG, True)
    assert reason is not None and "checksum" in reason
    # Locally generated packets (LOCAL_OUT) are never checked.
    assert udp_error(pkt, CFG, False) is None


def test_udp_bad_checksum_accepted_when_checksum_sysctl_off() -> None:
    pkt = udp(CLIENT, SERVER, 1000, 53, checksum="bad")
    assert udp_error(pkt, CFG.with_values({"nf_conntrack_checksum": 0}), True) is None


@pytest.mark.parametrize("family", [4, 6])
def test_udp_zero_checksum_accepted_without_verification(family: int) -> None:
    src, dst = (CLIENT, SERVER) if family == 4 else (CLIENT6, SERVER6)
    assert udp_error(udp(src, dst, 1000, 53, family=family, checksum="zero"), CFG, True) is None


def test_udp_ipv6_checksum_verified() -> None:
    assert udp_error(udp(CLIENT6, SERVER6, 1000, 53, family=6), CFG, True) is None
    assert udp_error(udp(CLIENT6, SERVER6, 1000, 53, family=6, checksum="bad"), CFG, True)


def test_udp_length_field_larger_than_datagram_is_invalid() -> None:
    # Observed: length field 100 on a 9-byte datagram.
    pkt = udp(CLIENT, SERVER, 1000, 53, b"x", length=100, checksum="zero")
    reason = udp_error(pkt, CFG, True)
    assert reason is not None and "malformed" in reason


def test_udp_length_field_below_header_is_invalid() -> None:
    assert udp_error(udp(CLIENT, SERVER, 1000, 53, length=7, checksum="zero"), CFG, True)


def test_udp_shorter_length_field_than_datagram_is_accepted() -> None:
    # Only a length beyond the data is malformed; trailing bytes are tolerated.
    pkt = udp(CLIENT, SERVER, 1000, 53, b"abcdef", length=10, checksum="zero")
    assert udp_error(pkt, CFG, True) is None


# -- UDP timeouts and ASSURED (nf_conntrack_udp_packet) -------------------------

def test_udp_query_response_stream() -> None:
    table = Machine(CFG)
    first = step(table, udp(CLIENT, SERVER, 1091, 53), 0.0)
    assert first.ctinfo == CT_NEW
    conn = first.conn
    assert conn is not None
    assert conn.remaining(0.5) == 29 and not conn.status & IPS_SEEN_REPLY

    reply = step(table, udp(SERVER, CLIENT, 53, 1091), 0.1)
    assert reply.ctinfo == CT_ESTABLISHED_REPLY and reply.conn is conn
    assert conn.status & IPS_SEEN_REPLY and not conn.status & IPS_ASSURED
    assert conn.expires == pytest.approx(30.1)

    early = step(table, udp(CLIENT, SERVER, 1091, 53), 1.5)
    assert early.ctinfo == CT_ESTABLISHED
    assert conn.expires == pytest.approx(31.5) and not conn.status & IPS_ASSURED

    late = step(table, udp(CLIENT, SERVER, 1091, 53), 2.5)
    assert late.ctinfo == CT_ESTABLISHED
    assert conn.expires == pytest.approx(122.5) and conn.status & IPS_ASSURED


def test_udp_two_second_rule_is_strict_and_counts_from_creation() -> None:
    table = Machine(CFG)
    conn = step(table, udp(CLIENT, SERVER, 2000, 53), 10.0).conn
    assert conn is not None
    step(table, udp(SERVER, CLIENT, 53, 2000), 10.5)
    step(table, udp(CLIENT, SERVER, 2000, 53), 12.0)  # exactly 2 s: not after
    assert not conn.status & IPS_ASSURED and conn.expires == pytest.approx(42.0)
    step(table, udp(SERVER, CLIENT, 53, 2000), 12.01)  # either direction counts
    assert conn.status & IPS_ASSURED and conn.expires == pytest.approx(132.01)


def test_udp_first_reply_after_two_seconds_does_not_assure() -> None:
    table = Machine(CFG)
    conn = step(table, udp(CLIENT, SERVER, 3000, 53), 0.0).conn
    assert conn is not None
    reply = step(table, udp(SERVER, CLIENT, 53, 3000), 2.2)
    assert reply.ctinfo == CT_ESTABLISHED_REPLY
    assert not conn.status & IPS_ASSURED and conn.expires == pytest.approx(32.2)
    step(table, udp(CLIENT, SERVER, 3000, 53), 2.3)
    assert conn.status & IPS_ASSURED and conn.expires == pytest.approx(122.3)


def test_udp_unreplied_repeats_stay_new_and_rearm_to_30() -> None:
    table = Machine(CFG)
    first = step(table, udp(CLIENT, SERVER, 4000, 53), 0.0)
    again = step(table, udp(CLIENT, SERVER, 4000, 53), 1.0)
    assert again.ctinfo == CT_NEW and again.conn is first.conn
    assert again.conn is not None and again.conn.expires == pytest.approx(31.0)
    later = step(table, udp(CLIENT, SERVER, 4000, 53), 25.0)
    assert later.ctinfo == CT_NEW and later.conn is not None
    assert later.conn.expires == pytest.approx(55.0)  # re-armed, not added up


def test_udp_stream_timeout_follows_sysctl() -> None:
    cfg = CFG.with_values({"nf_conntrack_udp_timeout_stream": 180, "nf_conntrack_udp_timeout": 10})
    table = Machine(cfg)
    conn = step(table, udp(CLIENT, SERVER, 5000, 53), 0.0).conn
    assert conn is not None and conn.expires == pytest.approx(10.0)
    step(table, udp(SERVER, CLIENT, 53, 5000), 0.1)
    step(table, udp(CLIENT, SERVER, 5000, 53), 3.0)
    assert conn.expires == pytest.approx(183.0)


def test_udp_bad_checksum_packet_is_invalid_and_leaves_entry_alone() -> None:
    table = Machine(CFG)
    conn = step(table, udp(CLIENT, SERVER, 6000, 53), 0.0).conn
    assert conn is not None
    bad = step(table, udp(SERVER, CLIENT, 53, 6000, checksum="bad"), 1.0)
    assert bad.ctinfo == CT_INVALID and bad.conn is None
    assert not conn.status & IPS_SEEN_REPLY and conn.expires == pytest.approx(30.0)


# -- UDP-Lite --------------------------------------------------------------------

def test_udplite_correct_checksum_is_invalid_in_6_18() -> None:
    # Observed: a correctly summed UDP-Lite packet (pseudo-header 136) is INVALID...
    pkt = udplite(CLIENT, SERVER, 7000, 9000)
    assert udplite_error(pkt, CFG, True) is not None
    # ...and NEW with nf_conntrack_checksum=0.
    assert udplite_error(pkt, CFG.with_values({"nf_conntrack_checksum": 0}), True) is None


def test_udplite_ipv4_kernel_accepts_udp_pseudo_header() -> None:
    # Short segment: protocol byte = length mod 256 and length 17 sum like protocol 17.
    pkt = udplite(CLIENT, SERVER, 7000, 9000, pseudo_proto=17)
    assert udplite_error(pkt, CFG, True) is None


def test_udplite_ipv4_quirk_uses_length_modulo_256() -> None:
    payload = bytes(300)
    total = 8 + len(payload)
    swapped = udplite(CLIENT, SERVER, 7000, 9000, payload, pseudo_proto=total & 0xFF, pseudo_len=17)
    assert udplite_error(swapped, CFG, True) is None
    plain_udp = udplite(CLIENT, SERVER, 7000, 9000, payload, pseudo_proto=17)
    assert udplite_error(plain_udp, CFG, True) is not None


def test_udplite_ipv6_kernel_accepts_next_header_17_only() -> None:
    good_for_kernel = udplite(CLIENT6, SERVER6, 7000, 9000, family=6, pseudo_proto=17)
    assert udplite_error(good_for_kernel, CFG, True) is None
    correct = udplite(CLIENT6, SERVER6, 7000, 9000, family=6)
    assert udplite_error(correct, CFG, True) is not None


def test_udplite_partial_coverage_checks_only_covered_bytes() -> None:
    pkt = udplite(CLIENT, SERVER, 7000, 9000, b"abcdefgh", coverage=8, pseudo_proto=17)
    assert udplite_error(pkt, CFG, True) is None
    pkt.data = pkt.data[:-1] + b"Z"  # outside the coverage: still fine
    assert udplite_error(pkt, CFG, True) is None


def test_udplite_checksum_zero_is_always_invalid() -> None:
    pkt = udplite(CLIENT, SERVER, 7000, 9000, checksum=False)
    for cfg in (CFG, CFG.with_values({"nf_conntrack_checksum": 0})):
        reason = udplite_error(pkt, cfg, True)
        assert reason is not None and "missing" in reason


@pytest.mark.parametrize("coverage", [1, 7, 100])
def test_udplite_bad_coverage_is_invalid(coverage: int) -> None:
    pkt = udplite(CLIENT, SERVER, 7000, 9000, coverage=coverage, checksum=True, pseudo_proto=17)
    reason = udplite_error(pkt, CFG.with_values({"nf_conntrack_checksum": 0}), True)
    assert reason is not None and "coverage" in reason


def test_udplite_assured_on_packet_after_first_reply() -> None:
    table = Machine(CFG.with_values({"nf_conntrack_checksum": 0}))
    first = step(table, udplite(CLIENT, SERVER, 7000, 9000), 0.0)
    conn = first.conn
    assert first.ctinfo == CT_NEW and conn is not None and conn.expires == pytest.approx(30.0)
    reply = step(table, udplite(SERVER, CLIENT, 9000, 7000), 0.1)
    assert reply.ctinfo == CT_ESTABLISHED_REPLY
    assert not conn.status & IPS_ASSURED and conn.expires == pytest.approx(30.1)
    # No 2-second rule for UDP-Lite: the next packet assures at once.
    nxt = step(table, udplite(CLIENT, SERVER, 7000, 9000), 0.2)
    assert nxt.ctinfo == CT_ESTABLISHED
    assert conn.status & IPS_ASSURED and conn.expires == pytest.approx(120.2)


# -- the live kernel as oracle ------------------------------------------------------

KERNEL_CASES: dict[str, list[tuple[int, Packet]]] = {
    "udp good": [(0, udp(CLIENT, SERVER, 1001, 53))],
    "udp bad checksum": [(0, udp(CLIENT, SERVER, 1002, 53, checksum="bad"))],
    "udp zero checksum": [(0, udp(CLIENT, SERVER, 1003, 53, checksum="zero"))],
    "udp length too large": [(0, udp(CLIENT, SERVER, 1004, 53, b"x", length=100, checksum="zero"))],
    "udp6 bad checksum": [(0, udp(CLIENT6, SERVER6, 1005, 53, family=6, checksum="bad"))],
    "udplite correct": [(0, udplite(CLIENT, SERVER, 1006, 9000))],
    "udplite pseudo 17": [(0, udplite(CLIENT, SERVER, 1007, 9000, pseudo_proto=17)),
                          (1, udplite(SERVER, CLIENT, 9000, 1007, pseudo_proto=17))],
    "udplite6 pseudo 17": [(0, udplite(CLIENT6, SERVER6, 1008, 9000, family=6, pseudo_proto=17))],
    "udplite no checksum": [(0, udplite(CLIENT, SERVER, 1009, 9000, checksum=False))],
    "udplite coverage 4": [(0, udplite(CLIENT, SERVER, 1010, 9000, coverage=4, pseudo_proto=17))],
}


@pytest.mark.kernel
def test_validation_against_live_kernel(kernel: None) -> None:
    from statewall.oracle.kernel import KernelFirewall

    rules = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    table = Machine(CFG)
    with KernelFirewall(rules, rules) as fw:
        for name, packets in KERNEL_CASES.items():
            for number, (side, pkt) in enumerate(packets):
                observed = fw.send(pkt.data, side)
                model = step(table, pkt, 0.0)
                where = f"{name} #{number}: {model.reason}"
                assert observed.ctstate == model.verdict.ctstate, where
