"""Whole captures through decoder, defragmenter, conntrack and the jsonl renderer.

Two parts. First, the seams between the decoder and the ICMP/GRE trackers,
on packets built here: what `nf_conntrack_inet_error` needs from a quoted
datagram (only a readable IP header, then 4 bytes of ports or 8 of ICMP),
quoted fragments, the ICMPv6 redirect's Redirected Header option and the
GRE keys of `gre_pkt_to_tuple`. Second, every capture in ../shared/traces
replayed without a ruleset: one record per packet, in order, and the
properties the kernel guarantees on any traffic. The per-capture outcomes
asserted at the end were checked against the live 6.18 kernel with the
oracle (`statewall.oracle.verify.verify_capture`: all ctstates and
directions agree).
"""

from __future__ import annotations

import ipaddress
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from statewall import builder as b
from statewall.capture import open_capture
from statewall.checksum import l4_checksum_ok
from statewall.decode import STACK_DROP_LAYERS, decode_datagram
from statewall.decode.stream import read_packets
from statewall.engine import Firewall
from statewall.packet import (
    ACK,
    FIN,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    RST,
    SYN,
    Packet,
)
from statewall.verdict import PacketVerdict

CLIENT, SERVER, ROUTER = "192.0.2.1", "198.51.100.7", "203.0.113.1"
CLIENT6, SERVER6, ROUTER_LL, ROUTER6 = "2001:db8::1", "2001:db8:1::2", "fe80::1", "2001:db8::fe"
TARGET6 = "2001:db8::99"
GRE_PPP = 0x880B


def replay(*datagrams: bytes) -> list[PacketVerdict]:
    """Decode each datagram as a capture would and run it through one firewall."""
    firewall = Firewall()
    return [firewall.process(decode_datagram(data, index=i, ts=1.0 + i))
            for i, data in enumerate(datagrams)]


def state(verdict: PacketVerdict) -> tuple[str | None, str | None]:
    return verdict.ctstate, verdict.ctdir


def quoted_inner(error: bytes) -> Packet:
    pkt = decode_datagram(error)
    assert pkt.error is None and pkt.inner is not None
    return pkt.inner


# -- quoted datagrams: what the ICMP tracker needs from the decoder ---------------

@pytest.mark.parametrize(("l4_bytes", "expected"), [
    (0, ("INVALID", None)), (2, ("INVALID", None)), (4, ("RELATED", "REPLY")),
    (8, ("RELATED", "REPLY")),
])
def test_quoted_udp_needs_only_its_ports(
        l4_bytes: int, expected: tuple[str | None, str | None]) -> None:
    query = b.udp(CLIENT, SERVER, 40000, 53, b"query")
    error = b.icmp_error(ROUTER, CLIENT, 3, 3, query, quote_len=20 + l4_bytes)
    inner = quoted_inner(error)
    assert inner.error is None  # a short layer-4 header is the tracker's call
    assert len(inner.data) - inner.l4_off == l4_bytes
    assert state(replay(query, error)[1]) == expected


def test_quoted_tcp_with_four_bytes_is_related() -> None:
    syn = b.tcp(CLIENT, SERVER, 40000, 80, "S", 1000)
    error = b.icmp_error(ROUTER, CLIENT, 3, 1, syn, quote_len=24)
    assert (quoted_inner(error).sport, quoted_inner(error).dport) == (40000, 80)
    assert state(replay(syn, error)[1]) == ("RELATED", "REPLY")


@pytest.mark.parametrize(("l4_bytes", "expected"), [
    (4, ("INVALID", None)), (8, ("RELATED", "REPLY")),
])
def test_quoted_icmp_needs_eight_bytes(
        l4_bytes: int, expected: tuple[str | None, str | None]) -> None:
    ping = b.icmp_echo(CLIENT, SERVER, 7, 1)
    error = b.icmp_error(ROUTER, CLIENT, 11, 0, ping, quote_len=20 + l4_bytes)
    assert quoted_inner(error).error is None
    assert state(replay(ping, error)[1]) == expected


def test_unusable_quoted_ip_header_sets_the_inner_error() -> None:
    query = b.udp(CLIENT, SERVER, 40000, 53, b"query")
    error = b.icmp_error(ROUTER, CLIENT, 3, 3, query, quote_len=12)
    assert quoted_inner(error).error is not None
    assert state(replay(query, error)[1]) == ("INVALID", None)


def test_quoted_fragments() -> None:
    """Only a non-first quoted fragment lacks the ports (ipv4_get_l4proto refuses it)."""
    datagram = b.udp(CLIENT, SERVER, 40000, 53, bytes(100), ident=0x77)
    first, later = b.fragment(datagram, 48)[:2]
    query = b.udp(CLIENT, SERVER, 40000, 53, b"query")
    about_first = b.icmp_error(ROUTER, CLIENT, 3, 3, first)
    about_later = b.icmp_error(ROUTER, CLIENT, 3, 3, later)
    inner_first, inner_later = quoted_inner(about_first), quoted_inner(about_later)
    assert inner_first.fragment is not None and inner_first.fragment.offset == 0
    assert inner_later.fragment is not None and inner_later.fragment.offset == 48
    assert inner_later.error is None
    assert [state(v) for v in replay(query, about_first, about_later)[1:]] == [
        ("RELATED", "REPLY"), ("INVALID", None)]


def test_quoted_ipv6_fragment() -> None:
    datagram = b.udp(CLIENT6, SERVER6, 40000, 53, bytes(100))
    later = b.fragment(datagram, 48, ident=9)[1]
    inner = quoted_inner(b.icmpv6_error(ROUTER6, CLIENT6, 1, 4, later))
    assert inner.fragment is not None and inner.fragment.offset == 48 and inner.error is None


def test_quoted_ipv6_without_next_header_is_left_to_the_tracker() -> None:
    quoted = b.ipv6(SERVER6, CLIENT6, 59, b"")
    inner = quoted_inner(b.icmpv6_error(ROUTER6, SERVER6, 1, 4, quoted))
    assert inner.proto == 59 and inner.error is None


# -- ICMPv6 redirect --------------------------------------------------------------------

def redirect(about: bytes, *, src: str = ROUTER_LL, option: int = 4) -> bytes:
    """A redirect for `about`: 40-byte message, then one option carrying the packet."""
    body = struct.pack("!I", 0) + ipaddress.IPv6Address(TARGET6).packed
    body += ipaddress.IPv6Address(SERVER6).packed
    padded = about + bytes(-len(about) & 7)
    body += struct.pack("!BB6x", option, 1 + len(padded) // 8) + padded
    return b.icmpv6(src, CLIENT6, 137, 0, body, hop_limit=255)


def test_redirect_quotes_the_packet_after_its_option_header() -> None:
    query = b.udp(CLIENT6, SERVER6, 40000, 53, b"query")
    pkt = decode_datagram(redirect(query))
    assert pkt.inner is not None and pkt.inner.error is None
    assert pkt.inner.data[:40] == query[:40]
    assert (pkt.inner.sport, pkt.inner.dport) == (40000, 53)
    assert state(replay(query, redirect(query))[1]) == ("RELATED", "REPLY")


def test_redirect_that_must_stay_invalid() -> None:
    query = b.udp(CLIENT6, SERVER6, 40000, 53, b"query")
    from_global = replay(query, redirect(query, src=ROUTER6))[1]
    other_option = redirect(query, option=1)
    assert decode_datagram(other_option).inner is None
    assert state(from_global) == ("INVALID", None)
    assert state(replay(query, other_option)[1]) == ("INVALID", None)


# -- GRE keys ----------------------------------------------------------------------------

GRE_HEADERS = [
    struct.pack("!BBH", 0, 0, 0x0800) + bytes(20),  # plain GRE
    struct.pack("!BBHI", 0x20, 0, 0x6558, 5) + bytes(20),  # key present, version 0
    struct.pack("!BBHHH", 0x30, 0x81, GRE_PPP, 12, 0x5566) + bytes(8),  # PPTP
    struct.pack("!BBHHH", 0x20, 0x01, GRE_PPP, 0, 0x0102),  # PPTP, no payload
    struct.pack("!BBH", 0x30, 0x81, GRE_PPP) + b"\x00\x00",  # PPTP cut before the call id
    struct.pack("!BBHHH", 0x30, 0x81, 0x0800, 0, 1),  # version 1 without PPP
    struct.pack("!BBHHH", 0, 0x02, GRE_PPP, 0, 3),  # version 2
]


# The keys gre_pkt_to_tuple takes from each header (None: no tuple, the packet is malformed).
GRE_KEYS = [(0, 0), (0, 0), (0, 0x5566), (0, 0x0102), (0, 0), None, (0, 0)]


@pytest.mark.parametrize(("header", "keys"), list(zip(GRE_HEADERS, GRE_KEYS, strict=True)))
def test_gre_ports_follow_gre_keys(header: bytes, keys: tuple[int, int] | None) -> None:
    pkt = decode_datagram(b.ipv4(CLIENT, SERVER, 47, header))
    if keys is None:
        assert pkt.error is not None and pkt.error.layer == "gre"
        return
    assert pkt.error is None and (pkt.sport, pkt.dport) == keys
    firewall = Firewall()
    firewall.process(pkt)
    (conn,) = firewall.connections()
    assert (conn.proto, conn.orig_sport, conn.orig_dport) == (47, *keys)


def test_quoted_gre_without_ppp_is_judged_by_the_tracker() -> None:
    gre = b.ipv4(CLIENT, SERVER, 47, GRE_HEADERS[5])
    error = b.icmp_error(ROUTER, CLIENT, 3, 1, gre, quote_len=28)
    assert quoted_inner(error).error is None
    verdict = replay(error)[0]
    assert verdict.ctstate == "INVALID" and "PPP" in verdict.reason


def test_errors_about_gre_flows_are_related() -> None:
    plain = b.ipv4(CLIENT, SERVER, 47, GRE_HEADERS[0])
    pptp = b.ipv4(CLIENT, SERVER, 47, GRE_HEADERS[2])
    for flow in (plain, pptp):
        error = b.icmp_error(ROUTER, CLIENT, 3, 1, flow)
        assert [state(v) for v in replay(flow, error)] == [("NEW", "ORIGINAL"),
                                                           ("RELATED", "REPLY")]


# -- the shared captures -----------------------------------------------------------------

SHARED_TRACES = Path(__file__).resolve().parents[2] / "shared" / "traces"
CAPTURE_NAMES = sorted(p.name for p in SHARED_TRACES.glob("*.pcap*")) or ["(no captures)"]
LIMIT = 20_000  # the 82k-packet loopback capture is cut here to keep the suite fast
ICMP_ERROR_TYPES = frozenset((3, 4, 5, 11, 12))
ICMPV6_UNTRACKED = frozenset((130, 131, 132, 133, 134, 135, 136, 143, 151, 152))


@dataclass
class Replayed:
    packets: list[Packet]
    records: list[dict[str, object]]
    frames: list[float]  # timestamps straight from the capture reader
    firewall: Firewall


@cache
def replayed(path: Path) -> Replayed:
    """One replay through the jsonl renderer `statewall replay --format jsonl` uses."""
    firewall = Firewall()
    packets = list(read_packets(path, LIMIT))
    out = b"".join(firewall.replay_file(path, "jsonl", LIMIT))
    records = [json.loads(line) for line in out.decode().splitlines()]
    with open_capture(path) as reader:
        frames = [frame.ts for frame, _ in zip(reader, range(LIMIT), strict=False)]
    return Replayed(packets, records, frames, firewall)


@pytest.fixture(params=CAPTURE_NAMES)
def capture(request: pytest.FixtureRequest, shared: Path) -> Replayed:
    path = shared / "traces" / request.param
    if not path.is_file():
        pytest.skip(f"{request.param} is not in {shared / 'traces'}")
    return replayed(path)


def is_icmp_error(pkt: Packet) -> bool:
    if pkt.proto == PROTO_ICMP:
        return pkt.icmp_type in ICMP_ERROR_TYPES
    return pkt.proto == PROTO_ICMPV6 and (pkt.icmp_type < 128 or pkt.icmp_type == 137)


def pairs(run: Replayed) -> Iterator[tuple[Packet, dict[str, object]]]:
    return zip(run.packets, run.records, strict=True)


def test_one_record_per_packet_in_order(capture: Replayed) -> None:
    assert len(capture.records) == len(capture.frames) > 0
    assert [r["index"] for r in capture.records] == list(range(len(capture.frames)))
    assert [r["ts"] for r in capture.records] == capture.frames


def test_packets_netfilter_never_tracks(capture: Replayed) -> None:
    """Non-IP frames pass untouched; broken IP headers die in ip_rcv; fragments are held."""
    for pkt, record in pairs(capture):
        if pkt.family == 0:
            assert (record["ctstate"], record["verdict"]) == (None, "ACCEPT")
        elif pkt.error is not None and pkt.error.layer in STACK_DROP_LAYERS:
            assert (record["ctstate"], record["verdict"]) == (None, "DROP")
        if record["verdict"] == "STOLEN":
            assert pkt.fragment is not None and record["ctstate"] is None


def test_connections_start_new_and_replies_are_never_new(capture: Replayed) -> None:
    seen: set[object] = set()
    for pkt, record in pairs(capture):
        if record["ctdir"] == "REPLY":
            assert record["ctstate"] in ("ESTABLISHED", "RELATED"), record
        if record["ctstate"] == "INVALID":
            assert record["ctdir"] is None and record["conn"] is None and record["reason"]
        conn = record["conn"]
        if conn is not None and conn not in seen and not is_icmp_error(pkt):
            seen.add(conn)
            assert (record["ctstate"], record["ctdir"]) == ("NEW", "ORIGINAL"), record


def test_directions_follow_the_first_packet(capture: Replayed) -> None:
    """TCP and UDP: the first packet's 4-tuple is ORIGINAL, its mirror image REPLY."""
    first: dict[object, tuple[int, int, int, int]] = {}
    for pkt, record in pairs(capture):
        conn = record["conn"]
        if (conn is None or pkt.proto not in (PROTO_TCP, PROTO_UDP) or pkt.fragment is not None
                or (pkt.src, pkt.sport) == (pkt.dst, pkt.dport)):
            continue
        flow = (pkt.src, pkt.sport, pkt.dst, pkt.dport)
        origin = first.setdefault(conn, flow)
        expected = "ORIGINAL" if flow == origin else "REPLY"
        assert flow in (origin, (origin[2], origin[3], origin[0], origin[1]))
        assert record["ctdir"] == expected, record


def test_a_fresh_syn_is_new(capture: Replayed) -> None:
    """The first SYN of a 4-tuple never seen before creates an entry (tcp_new)."""
    seen: set[tuple[int, int, int, int]] = set()
    for pkt, record in pairs(capture):
        if pkt.proto != PROTO_TCP or pkt.error is not None or pkt.family == 0:
            continue
        flow = (pkt.src, pkt.sport, pkt.dst, pkt.dport)
        fresh = flow not in seen and (pkt.dst, pkt.dport, pkt.src, pkt.sport) not in seen
        seen.add(flow)
        pure_syn = pkt.tcp_flags & (SYN | ACK | RST | FIN) == SYN
        good = l4_checksum_ok(pkt.family, pkt.src, pkt.dst, PROTO_TCP, pkt.data[pkt.l4_off:])
        if fresh and pure_syn and good and pkt.fragment is None:
            assert (record["ctstate"], record["ctdir"]) == ("NEW", "ORIGINAL"), record


def test_related_and_untracked_come_only_from_icmp(capture: Replayed) -> None:
    """Without a ruleset no helper is attached, so RELATED can only be an ICMP error."""
    for pkt, record in pairs(capture):
        if record["ctstate"] == "RELATED":
            assert is_icmp_error(pkt), record
        if record["ctstate"] == "UNTRACKED":
            assert pkt.proto == PROTO_ICMPV6 and pkt.icmp_type in ICMPV6_UNTRACKED, record


def test_assured_only_after_a_reply(capture: Replayed) -> None:
    for record in capture.records:
        status = record["status"]
        assert isinstance(status, list)
        if "ASSURED" in status:
            assert "SEEN_REPLY" in status, record


# Per capture: the (ctstate, ctdir, verdict) sequence the kernel gives it.
EXPECTED = {
    "tcp-handshake-only.pcapng": [("NEW", "ORIGINAL", "ACCEPT"), ("ESTABLISHED", "REPLY", "ACCEPT"),
                                  ("ESTABLISHED", "ORIGINAL", "ACCEPT")],
    "tcp-syn-rst-refused.pcapng": [("NEW", "ORIGINAL", "ACCEPT"),
                                   ("ESTABLISHED", "REPLY", "ACCEPT")],
    "tcp-teardown-fin.pcapng": [(  # a FIN cannot open an entry; the ACK after it is picked up
        "INVALID", None, "ACCEPT"), ("NEW", "ORIGINAL", "ACCEPT"), ("NEW", "ORIGINAL", "ACCEPT"),
        ("ESTABLISHED", "REPLY", "ACCEPT")],
    "tcp-out-of-window-data-crafted.pcap": [("NEW", "ORIGINAL", "ACCEPT"),
                                            ("ESTABLISHED", "REPLY", "ACCEPT"),
                                            ("INVALID", None, "ACCEPT")],
    "udp-dns-query-response.pcap": [("NEW", "ORIGINAL", "ACCEPT"),
                                    ("ESTABLISHED", "REPLY", "ACCEPT")],
    "udp-dns-responses-without-queries.pcapng": [("NEW", "ORIGINAL", "ACCEPT")] * 7,
    "ipv4-frag-icmp-echo.pcap": [(None, None, "STOLEN"), ("NEW", "ORIGINAL", "ACCEPT"),
                                 ("ESTABLISHED", "REPLY", "ACCEPT")],
    # Every IPv4 header checksum in this anonymised trace is wrong: ip_rcv_core drops them.
    "tcp-rst-closed-port-then-http.pcap": [(None, None, "DROP")] * 24,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_known_outcomes(shared: Path, name: str) -> None:
    run = replayed(shared / "traces" / name)
    assert [(r["ctstate"], r["ctdir"], r["verdict"]) for r in run.records] == EXPECTED[name]


def test_refused_connection_leaves_no_entry(shared: Path) -> None:
    """A RST as the only answer kills the entry at once (nf_conntrack_tcp_packet)."""
    run = replayed(shared / "traces" / "tcp-syn-rst-refused.pcapng")
    assert run.firewall.table_lines() == []


@pytest.mark.parametrize(("name", "message", "expected"), [
    ("icmp-time-exceeded-traceroute-icmp.pcapng", (PROTO_ICMP, 11), ("RELATED", "REPLY")),
    ("ipv6-mixed-dns-icmp6-errors-tcp.pcap", (PROTO_ICMPV6, 3), ("RELATED", "REPLY")),
    ("ipv6-mixed-dns-icmp6-errors-tcp.pcap", (PROTO_ICMPV6, 135), ("UNTRACKED", None)),
    ("ipv6-mixed-dns-icmp6-errors-tcp.pcap", (PROTO_ICMPV6, 136), ("UNTRACKED", None)),
])
def test_icmp_messages_in_captures(shared: Path, name: str, message: tuple[int, int],
                                   expected: tuple[str, str | None]) -> None:
    run = replayed(shared / "traces" / name)
    found = [(r["ctstate"], r["ctdir"]) for p, r in pairs(run)
             if (p.proto, p.icmp_type) == message]
    assert found and set(found) == {expected}
