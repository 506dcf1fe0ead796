"""ICMP and ICMPv6 as Linux 6.18 tracks them (spec: udp-icmp-generic.md §3-4).

Packets, including the datagram an error quotes (`Packet.inner`), are built
here byte by byte. Scenarios run through a firewall as a router sees them.
"""

from __future__ import annotations

import struct

import pytest
from ctharness import (
    CT_ESTABLISHED,
    CT_ESTABLISHED_REPLY,
    CT_INVALID,
    CT_NEW,
    CT_RELATED,
    CT_RELATED_REPLY,
    CT_UNTRACKED,
    IPS_ASSURED,
    IPS_SEEN_REPLY,
    LiveConn,
    Machine,
    Step,
)

from statewall.config import Sysctls
from statewall.packet import DecodeError, FragmentInfo, Packet
from statewall.rules.hooks import IptablesEngine, compile_text

CLIENT = 0x0A630101  # 10.99.1.1
SERVER = 0x0A630201  # 10.99.2.1
ROUTER = 0x0A6302FE  # 10.99.2.254
OTHER = 0x0A630302  # 10.99.3.2
CLIENT6 = 0xFD990001000000000000000000000001
SERVER6 = 0xFD990002000000000000000000000001
ROUTER6 = 0xFD9900020000000000000000000000FE
LINK_LOCAL6 = 0xFE800000000000000000000000000001
CFG = Sysctls()


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


def _v6_pseudo(src: int, dst: int, proto: int, length: int) -> int:
    addrs = src.to_bytes(16, "big") + dst.to_bytes(16, "big")
    return _sum16(addrs + struct.pack("!IxxxB", length, proto))


def _ip_header(family: int, src: int, dst: int, proto: int, payload_len: int, ttl: int,
               frag_offset: int = 0) -> bytes:
    if family == 4:
        head = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + payload_len, 7, frag_offset // 8, ttl,
                           proto, 0, src, dst)
        return head[:10] + struct.pack("!H", ~_fold(_sum16(head)) & 0xFFFF) + head[12:]
    head = struct.pack("!IHBB", 6 << 28, payload_len, proto, ttl)
    return head + src.to_bytes(16, "big") + dst.to_bytes(16, "big")


def _packet(family: int, src: int, dst: int, proto: int, segment: bytes, *, ttl: int = 64,
            sport: int = 0, dport: int = 0, frag_offset: int = 0) -> Packet:
    data = _ip_header(family, src, dst, proto, len(segment), ttl, frag_offset) + segment
    pkt = Packet(data=data, family=family)
    pkt.src, pkt.dst, pkt.proto, pkt.ttl = src, dst, proto, ttl
    pkt.l4_off = 20 if family == 4 else 40
    pkt.payload_off = pkt.l4_off + 8
    pkt.sport, pkt.dport = sport, dport
    if frag_offset:
        pkt.fragment = FragmentInfo(7, frag_offset, False, proto, pkt.l4_off)
    return pkt


def udp(src: int, dst: int, sport: int, dport: int, family: int = 4) -> Packet:
    """A UDP datagram with checksum 0 (accepted unchecked)."""
    segment = struct.pack("!HHHH", sport, dport, 12, 0) + b"ping"
    return _packet(family, src, dst, 17, segment, sport=sport, dport=dport)


def icmp(src: int, dst: int, icmp_type: int, code: int = 0, ident: int = 0, body: bytes = b"",
         *, family: int = 4, bad_checksum: bool = False, ttl: int = 64) -> Packet:
    """An ICMP (family 4) or ICMPv6 (family 6) message with a correct checksum."""
    proto = 1 if family == 4 else 58
    message = struct.pack("!BBHHH", icmp_type, code, 0, ident, 1) + body
    seed = 0 if family == 4 else _v6_pseudo(src, dst, 58, len(message))
    check = ~_fold(seed + _sum16(message)) & 0xFFFF
    if bad_checksum:
        check ^= 0x00FF
    message = message[:2] + struct.pack("!H", check) + message[4:]
    pkt = _packet(family, src, dst, proto, message, ttl=ttl, sport=ident,
                  dport=icmp_type << 8 | code)
    pkt.icmp_type, pkt.icmp_code, pkt.icmp_id = icmp_type, code, ident
    return pkt


def quoted(original: Packet, keep: int | None = None) -> Packet:
    """What a decoder makes of `original` quoted (possibly truncated) inside an error."""
    data = original.data if keep is None else original.data[:keep]
    inner = Packet(data=data, family=original.family)
    for name in ("src", "dst", "proto", "ttl", "l4_off", "fragment", "icmp_type", "icmp_code",
                 "icmp_id"):
        setattr(inner, name, getattr(original, name))
    if len(data) < original.l4_off:
        inner.error = DecodeError("ipv4" if original.family == 4 else "ipv6", 0, "truncated")
        return inner
    l4_bytes = len(data) - original.l4_off
    if l4_bytes >= 4 or original.proto not in (6, 17, 132, 136):
        inner.sport, inner.dport = original.sport, original.dport
    if original.proto in (1, 58) and l4_bytes < 8:
        inner.sport = inner.dport = 0
    return inner


def icmp_err(src: int, dst: int, icmp_type: int, code: int, about: Packet,
             keep: int | None = None, *, family: int = 4, bad_checksum: bool = False) -> Packet:
    """An ICMP/ICMPv6 error quoting `about` (its first `keep` bytes)."""
    inner = quoted(about, keep)
    pkt = icmp(src, dst, icmp_type, code, 0, inner.data, family=family, bad_checksum=bad_checksum)
    pkt.inner = inner
    return pkt


def redirect6(src: int, dst: int, about: Packet | None, *, ttl: int = 255, code: int = 0,
              option: int = 4, option_len: int = 8) -> Packet:
    """An ICMPv6 redirect: target, destination, then one ND option quoting `about`."""
    body = ROUTER6.to_bytes(16, "big") + SERVER6.to_bytes(16, "big")
    if about is not None:
        body += struct.pack("!BB6x", option, option_len) + about.data
    pkt = icmp(src, dst, 137, code, 0, body, family=6, ttl=ttl)
    if about is not None:
        pkt.inner = quoted(about)
    return pkt


def step(table: Machine, pkt: Packet, now: float) -> Step:
    """One forwarded packet: conntrack at PREROUTING, confirmation at POSTROUTING."""
    return table.step(pkt, now)


def udp_flow(table: Machine, family: int = 4) -> tuple[Packet, LiveConn]:
    src, dst = (CLIENT, SERVER) if family == 4 else (CLIENT6, SERVER6)
    request = udp(src, dst, 1091, 53, family)
    result = step(table, request, 0.0)
    assert result.ctinfo == CT_NEW and result.conn is not None
    return request, result.conn


def later_fragment(src: int, dst: int, sport: int, dport: int) -> Packet:
    """The second fragment of a UDP datagram (offset 8): no UDP header of its own."""
    whole = udp(src, dst, sport, dport)
    return _packet(4, src, dst, 17, whole.data[20:], sport=sport, dport=dport, frag_offset=8)


# -- queries -------------------------------------------------------------------

def test_echo_request_reply_and_entry_survives_reply() -> None:
    table = Machine(CFG)
    first = step(table, icmp(CLIENT, SERVER, 8, 0, 77), 0.0)
    conn = first.conn
    assert first.ctinfo == CT_NEW and conn is not None
    assert (conn.reply_src, conn.reply_dst, conn.reply_sport, conn.reply_dport) == (
        "10.99.2.1", "10.99.1.1", 77, 0 << 8 | 0)
    again = step(table, icmp(CLIENT, SERVER, 8, 0, 77), 0.5)
    assert again.ctinfo == CT_NEW and again.conn is conn  # no reply yet: NEW each time
    reply = step(table, icmp(SERVER, CLIENT, 0, 0, 77), 0.6)
    assert reply.ctinfo == CT_ESTABLISHED_REPLY and reply.conn is conn
    assert conn.expires == pytest.approx(30.6)  # not deleted, re-armed
    later = step(table, icmp(CLIENT, SERVER, 8, 0, 77), 5.0)
    assert later.ctinfo == CT_ESTABLISHED and later.conn is conn
    assert conn.expires == pytest.approx(35.0) and not conn.status & IPS_ASSURED


@pytest.mark.parametrize(("request_type", "reply_type"), [(8, 0), (13, 14), (15, 16), (17, 18)])
def test_every_query_pair(request_type: int, reply_type: int) -> None:
    table = Machine(CFG)
    first = step(table, icmp(CLIENT, SERVER, request_type, 0, 9), 0.0)
    assert first.ctinfo == CT_NEW and first.conn is not None
    assert first.conn.reply_dport >> 8 == reply_type
    reply = step(table, icmp(SERVER, CLIENT, reply_type, 0, 9), 0.1)
    assert reply.ctinfo == CT_ESTABLISHED_REPLY and reply.conn is first.conn


@pytest.mark.parametrize("reply_type", [0, 14, 16, 18])
def test_reply_without_request_is_invalid(reply_type: int) -> None:
    table = Machine(CFG)
    result = step(table, icmp(SERVER, CLIENT, reply_type, 0, 9), 0.0)
    assert result.ctinfo == CT_INVALID and table.firewall.count == 0


def test_reply_with_other_code_does_not_match() -> None:
    table = Machine(CFG)
    step(table, icmp(CLIENT, SERVER, 8, 5, 9), 0.0)
    assert step(table, icmp(SERVER, CLIENT, 0, 0, 9), 0.1).ctinfo == CT_INVALID
    assert step(table, icmp(SERVER, CLIENT, 0, 5, 9), 0.2).ctinfo == CT_ESTABLISHED_REPLY


@pytest.mark.parametrize("icmp_type", [1, 2, 6, 7, 9, 10])
def test_types_without_reply_type_are_invalid(icmp_type: int) -> None:
    table = Machine(CFG)
    assert step(table, icmp(CLIENT, SERVER, icmp_type), 0.0).ctinfo == CT_INVALID
    assert table.firewall.count == 0


@pytest.mark.parametrize("icmp_type", [19, 30, 40, 255])
def test_types_above_18_are_rejected_by_the_error_handler(icmp_type: int) -> None:
    outcome = step(Machine(CFG), icmp(CLIENT, SERVER, icmp_type), 0.0)
    assert outcome.ctinfo == CT_INVALID and "unknown" in outcome.reason


def test_icmp_timeout_follows_sysctl() -> None:
    table = Machine(CFG.with_values({"nf_conntrack_icmp_timeout": 5}))
    conn = step(table, icmp(CLIENT, SERVER, 8, 0, 1), 1.0).conn
    assert conn is not None and conn.expires == pytest.approx(6.0)


def test_icmp_checksum() -> None:
    bad = icmp(CLIENT, SERVER, 8, 0, 1, bad_checksum=True)
    outcome = step(Machine(CFG), bad, 0.0)
    assert outcome.ctinfo == CT_INVALID and "checksum" in outcome.reason
    # Not checked when the machine sends it (LOCAL_OUT) or with the sysctl off: the
    # echo request then opens its entry.
    assert step(Machine(CFG, local=["10.99.1.1"]), bad, 0.0).ctinfo == CT_NEW
    off = CFG.with_values({"nf_conntrack_checksum": 0})
    assert step(Machine(off), bad, 0.0).ctinfo == CT_NEW


# -- errors (nf_conntrack_icmpv4_error / nf_conntrack_inet_error) ----------------

def test_port_unreachable_is_related_reply_and_changes_nothing() -> None:
    table = Machine(CFG)
    request, conn = udp_flow(table)
    expires, status = conn.expires, conn.status
    result = step(table, icmp_err(SERVER, CLIENT, 3, 3, request), 1.0)
    assert result.ctinfo == CT_RELATED_REPLY and result.conn is conn
    assert "port unreachable" in result.reason and "udp 10.99.1.1:1091" in result.reason
    assert conn.expires == expires and conn.status == status
    assert not conn.status & IPS_SEEN_REPLY  # still [UNREPLIED]


@pytest.mark.parametrize(("icmp_type", "code"), [(3, 1), (4, 0), (5, 1), (11, 0), (12, 0)])
def test_every_error_type_relates(icmp_type: int, code: int) -> None:
    table = Machine(CFG)
    request, conn = udp_flow(table)
    result = step(table, icmp_err(ROUTER, CLIENT, icmp_type, code, request), 1.0)
    assert result.ctinfo == CT_RELATED_REPLY and result.conn is conn


def test_error_in_original_direction_is_related() -> None:
    table = Machine(CFG)
    _request, conn = udp_flow(table)
    answer = udp(SERVER, CLIENT, 53, 1091)
    step(table, answer, 0.1)
    # The client's side reports the answer as undeliverable, towards the server.
    result = step(table, icmp_err(CLIENT, SERVER, 3, 3, answer), 0.2)
    assert result.ctinfo == CT_RELATED and result.conn is conn


def test_host_unreachable_quoting_echo_request() -> None:
    table = Machine(CFG)
    ping = icmp(CLIENT, SERVER, 8, 0, 42, b"payload!")
    conn = step(table, ping, 0.0).conn
    result = step(table, icmp_err(ROUTER, CLIENT, 3, 1, ping), 0.5)
    assert result.ctinfo == CT_RELATED_REPLY and result.conn is conn


def test_error_quoting_unknown_flow_is_invalid() -> None:
    table = Machine(CFG)
    stranger = udp(CLIENT, SERVER, 9999, 53)
    result = step(table, icmp_err(SERVER, CLIENT, 3, 3, stranger), 0.0)
    assert result.ctinfo == CT_INVALID and "unknown connection" in result.reason


def test_error_quoting_only_ip_header_is_invalid_but_four_bytes_suffice() -> None:
    table = Machine(CFG)
    request, conn = udp_flow(table)
    assert step(table, icmp_err(SERVER, CLIENT, 3, 3, request, keep=20), 0.1).ctinfo == CT_INVALID
    two_bytes = step(table, icmp_err(SERVER, CLIENT, 3, 3, request, keep=22), 0.1)
    assert two_bytes.ctinfo == CT_INVALID and "2 bytes of the udp header" in two_bytes.reason
    result = step(table, icmp_err(SERVER, CLIENT, 3, 3, request, keep=24), 0.1)
    assert result.ctinfo == CT_RELATED_REPLY and result.conn is conn


def test_error_quoting_icmp_needs_eight_bytes() -> None:
    table = Machine(CFG)
    ping = icmp(CLIENT, SERVER, 8, 0, 42)
    step(table, ping, 0.0)
    short = step(table, icmp_err(ROUTER, CLIENT, 11, 0, ping, keep=27), 0.1)
    assert short.ctinfo == CT_INVALID and "7 bytes of the icmp header" in short.reason
    whole = step(table, icmp_err(ROUTER, CLIENT, 11, 0, ping, keep=28), 0.1)
    assert whole.ctinfo == CT_RELATED_REPLY


def test_error_quoting_an_error_is_invalid() -> None:
    table = Machine(CFG)
    request, _conn = udp_flow(table)
    first_error = icmp_err(SERVER, CLIENT, 3, 3, request)
    result = step(table, icmp_err(ROUTER, SERVER, 3, 1, first_error), 0.2)
    assert result.ctinfo == CT_INVALID


def test_error_quoting_non_first_fragment_is_invalid() -> None:
    table = Machine(CFG)
    udp_flow(table)
    fragment = later_fragment(CLIENT, SERVER, 1091, 53)
    outcome = step(table, icmp_err(SERVER, CLIENT, 3, 3, fragment), 0.1)
    assert outcome.ctinfo == CT_INVALID and "fragment" in outcome.reason


def test_error_sent_to_another_host_is_invalid() -> None:
    table = Machine(CFG)
    request, conn = udp_flow(table)
    status = conn.status
    outcome = step(table, icmp_err(SERVER, OTHER, 3, 3, request), 0.1)
    assert outcome.ctinfo == CT_INVALID and conn.status == status


def test_error_from_any_router_is_related() -> None:
    table = Machine(CFG)
    request, conn = udp_flow(table)
    outcome = step(table, icmp_err(OTHER, CLIENT, 11, 0, request), 0.1)
    assert (outcome.ctinfo, outcome.conn) == (CT_RELATED_REPLY, conn)


def test_error_checksum_bad_is_invalid() -> None:
    table = Machine(CFG)
    request, _conn = udp_flow(table)
    pkt = icmp_err(SERVER, CLIENT, 3, 3, request, bad_checksum=True)
    assert step(table, pkt, 0.1).ctinfo == CT_INVALID


def test_error_lookup_uses_the_zone() -> None:
    """The quoted tuple is looked up in the error's own zone (here set by CT --zone)."""
    zoned = IptablesEngine(compile_text(
        "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p icmp -j CT --zone 5\nCOMMIT\n",
        "zone.rules", 4), None)
    for rules, expected in ((None, CT_RELATED_REPLY), (zoned, CT_INVALID)):
        table = Machine(CFG, rules=rules)
        request, _conn = udp_flow(table)
        pkt = icmp_err(SERVER, CLIENT, 3, 3, request)
        assert step(table, pkt, 0.1).ctinfo == expected


# -- ICMPv6 ----------------------------------------------------------------------

@pytest.mark.parametrize("icmp_type", [130, 131, 132, 133, 134, 135, 136, 143, 151, 152])
def test_icmpv6_nd_and_mld_are_untracked(icmp_type: int) -> None:
    table = Machine(CFG)
    result = step(table, icmp(LINK_LOCAL6, SERVER6, icmp_type, family=6, ttl=255), 0.0)
    assert result.ctinfo == CT_UNTRACKED and result.conn is None and table.firewall.count == 0
    outcome = step(Machine(CFG), icmp(CLIENT6, SERVER6, icmp_type, family=6), 0.0)
    assert outcome.ctinfo == CT_UNTRACKED


@pytest.mark.parametrize(("request_type", "reply_type"), [(128, 129), (139, 140)])
def test_icmpv6_queries(request_type: int, reply_type: int) -> None:
    table = Machine(CFG)
    first = step(table, icmp(CLIENT6, SERVER6, request_type, 0, 5, family=6), 0.0)
    assert first.ctinfo == CT_NEW and first.conn is not None
    assert first.conn.expires == pytest.approx(30.0)
    reply = step(table, icmp(SERVER6, CLIENT6, reply_type, 0, 5, family=6), 0.1)
    assert reply.ctinfo == CT_ESTABLISHED_REPLY and reply.conn is first.conn
    assert first.conn.expires == pytest.approx(30.1)


@pytest.mark.parametrize("icmp_type", [129, 140, 137, 138, 200])
def test_icmpv6_replies_and_unknown_informational_types_are_invalid(icmp_type: int) -> None:
    table = Machine(CFG)
    result = step(table, icmp(SERVER6, CLIENT6, icmp_type, family=6), 0.0)
    assert result.ctinfo == CT_INVALID and table.firewall.count == 0


def test_icmpv6_checksum_failed_is_invalid() -> None:
    pkt = icmp(CLIENT6, SERVER6, 128, family=6, bad_checksum=True)
    assert step(Machine(CFG), pkt, 0.0).ctinfo == CT_INVALID
    # Sent by the machine itself (LOCAL_OUT): not checked, the echo request opens its entry.
    assert step(Machine(CFG, local=["fd99:1::1"]), pkt, 0.0).ctinfo == CT_NEW


@pytest.mark.parametrize(("icmp_type", "code"), [(2, 0), (1, 4), (3, 0), (4, 1), (100, 0)])
def test_icmpv6_errors_relate(icmp_type: int, code: int) -> None:
    table = Machine(CFG)
    request, conn = udp_flow(table, 6)
    pkt = icmp_err(ROUTER6, CLIENT6, icmp_type, code, request, family=6)
    result = step(table, pkt, 0.5)
    assert result.ctinfo == CT_RELATED_REPLY and result.conn is conn
    assert not conn.status & IPS_SEEN_REPLY


def test_icmpv6_error_about_unknown_flow_is_invalid() -> None:
    table = Machine(CFG)
    stranger = udp(CLIENT6, SERVER6, 4444, 53, 6)
    result = step(table, icmp_err(ROUTER6, CLIENT6, 1, 4, stranger, family=6), 0.0)
    assert result.ctinfo == CT_INVALID


def test_icmpv6_error_to_another_host_is_invalid() -> None:
    table = Machine(CFG)
    request, _conn = udp_flow(table, 6)
    pkt = icmp_err(ROUTER6, ROUTER6 + 1, 2, 0, request, family=6)
    assert step(table, pkt, 0.1).ctinfo == CT_INVALID


def test_icmpv6_redirect_rules() -> None:
    table = Machine(CFG)
    request, conn = udp_flow(table, 6)
    good = step(table, redirect6(LINK_LOCAL6, CLIENT6, request), 0.1)
    assert good.ctinfo == CT_RELATED_REPLY and good.conn is conn
    from_global = redirect6(ROUTER6, CLIENT6, request)
    assert step(table, from_global, 0.2).ctinfo == CT_INVALID
    low_hop_limit = redirect6(LINK_LOCAL6, CLIENT6, request, ttl=64)
    assert step(table, low_hop_limit, 0.3).ctinfo == CT_INVALID
    no_options = redirect6(LINK_LOCAL6, CLIENT6, None)
    assert step(table, no_options, 0.4).ctinfo == CT_INVALID
    zero_length = redirect6(LINK_LOCAL6, CLIENT6, request, option_len=0)
    assert step(table, zero_length, 0.5).ctinfo == CT_INVALID
    # Another code or another first option: an ordinary message (type 137 has no pair),
    # which cannot open an entry.
    other_code = step(table, redirect6(ROUTER6, CLIENT6, request, code=1), 0.6)
    assert other_code.ctinfo == CT_INVALID and "cannot start a connection" in other_code.reason
    other_option = step(table, redirect6(LINK_LOCAL6, CLIENT6, request, option=1), 0.7)
    assert other_option.ctinfo == CT_INVALID and \
        "cannot start a connection" in other_option.reason


def test_icmpv6_redirect_from_global_address_is_invalid_through_table() -> None:
    table = Machine(CFG)
    request, _conn = udp_flow(table, 6)
    result = step(table, redirect6(ROUTER6, CLIENT6, request), 0.5)
    assert result.ctinfo == CT_INVALID


def test_icmpv6_quoting_no_next_header_is_invalid() -> None:
    table = Machine(CFG)
    udp_flow(table, 6)
    empty = _packet(6, CLIENT6, SERVER6, 59, b"")
    outcome = step(table, icmp_err(ROUTER6, CLIENT6, 1, 0, empty, family=6), 0.1)
    assert outcome.ctinfo == CT_INVALID


# -- the live kernel as oracle ------------------------------------------------------

def _kernel_cases() -> dict[str, list[tuple[int, Packet]]]:
    def req(port: int, family: int = 4) -> Packet:
        return udp(CLIENT, SERVER, port, 53) if family == 4 else udp(CLIENT6, SERVER6, port, 53, 6)

    fragment = udp(CLIENT, SERVER, 1105, 53)
    later_piece = _packet(4, CLIENT, SERVER, 17, fragment.data[20:], sport=1105, dport=53,
                          frag_offset=8)
    answer = udp(SERVER, CLIENT, 53, 1106)
    ping = icmp(CLIENT, SERVER, 8, 0, 55)
    return {
        "quote ip+2": [(0, req(1101)), (1, icmp_err(SERVER, CLIENT, 3, 3, req(1101), keep=22))],
        "quote ip+4": [(0, req(1102)), (1, icmp_err(SERVER, CLIENT, 3, 3, req(1102), keep=24))],
        "quote later fragment": [(0, req(1105)), (1, icmp_err(SERVER, CLIENT, 3, 3, later_piece))],
        "original direction": [(0, req(1106)), (1, answer),
                               (0, icmp_err(CLIENT, SERVER, 3, 3, answer))],
        "ping quoted in 7 bytes": [(0, ping), (1, icmp_err(ROUTER, CLIENT, 11, 0, ping, keep=27))],
        "reply code differs": [(0, icmp(CLIENT, SERVER, 8, 5, 56)),
                               (1, icmp(SERVER, CLIENT, 0, 0, 56))],
        "v6 type 100": [(0, req(1201, 6)),
                        (1, icmp_err(ROUTER6, CLIENT6, 100, 0, req(1201, 6), family=6))],
        "v6 redirect": [(0, req(1203, 6)), (1, redirect6(LINK_LOCAL6, CLIENT6, req(1203, 6)))],
        "v6 redirect option 1": [(0, req(1204, 6)),
                                 (1, redirect6(LINK_LOCAL6, CLIENT6, req(1204, 6), option=1))],
        "v6 redirect code 1": [(0, req(1205, 6)),
                               (1, redirect6(LINK_LOCAL6, CLIENT6, req(1205, 6), code=1))],
        "v6 multicast router adv": [(0, icmp(LINK_LOCAL6, SERVER6, 151, family=6, ttl=1))],
        "v6 node information": [(0, icmp(CLIENT6, SERVER6, 139, 0, 3, family=6)),
                                (1, icmp(SERVER6, CLIENT6, 140, 0, 3, family=6))],
        "v6 error to other host": [
            (0, req(1206, 6)), (1, icmp_err(ROUTER6, ROUTER6 + 1, 1, 4, req(1206, 6), family=6))],
    }


@pytest.mark.kernel
def test_against_live_kernel(kernel: None) -> None:
    from statewall.oracle.kernel import KernelFirewall

    rules = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
    rules += "COMMIT\n"
    table = Machine(CFG)
    with KernelFirewall(rules, rules) as fw:
        for name, packets in _kernel_cases().items():
            for number, (side, pkt) in enumerate(packets):
                observed = fw.send(pkt.data, side)
                model = step(table, pkt, 0.0)
                where = f"{name} #{number}: {model.reason}"
                assert observed.ctstate == model.verdict.ctstate, where
                if model.conn is not None:
                    assert observed.ctdir == ("REPLY" if model.direction else "ORIGINAL"), where
