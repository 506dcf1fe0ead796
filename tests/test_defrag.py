"""Defragmentation before conntrack (nf_defrag_ipv4 / nf_defrag_ipv6).

Every behaviour asserted here was also observed on Linux 6.18: fragments sent
through a veth into a namespace with a conntrack rule, outcomes read from
`conntrack -L`, the mangle PREROUTING counters (which see only reassembled
datagrams) and the FRAG line of /proc/net/sockstat. `test_kernel_agrees`
repeats a few of those runs when the machine allows it.

Fragments go through a firewall; what defragmentation did to each shows in its
verdict: a queued fragment is STOLEN ("queued for reassembly"), a discarded
one DROPped with defragmentation's reason, and the fragment that completes a
datagram carries the reassembled datagram on through conntrack.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statewall.capture import LINKTYPE_RAW, open_capture
from statewall.config import Sysctls
from statewall.decode import decode_datagram, decode_frame
from statewall.engine import Firewall
from statewall.verdict import PacketVerdict

SRC4 = bytes([192, 0, 2, 1])
DST4 = bytes([192, 0, 2, 2])
SRC6 = bytes.fromhex("20010db8000000000000000000000001")
DST6 = bytes.fromhex("20010db8000000000000000000000002")


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo4(ident: int, size: int) -> bytes:
    msg = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + bytes((i * 7) & 0xFF for i in range(size - 8))
    return msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]


def echo6(ident: int, size: int, src: bytes = SRC6, dst: bytes = DST6) -> bytes:
    body = bytes((i * 5) & 0xFF for i in range(size - 8))
    msg = struct.pack("!BBHHH", 128, 0, 0, ident, 1) + body
    pseudo = src + dst + struct.pack("!IxxxB", len(msg), 58)
    return msg[:2] + struct.pack("!H", csum(pseudo + msg)) + msg[4:]


def frag4(part: bytes, ipid: int, off: int, more: bool, *, ttl: int = 64, tos: int = 0,
          df: bool = False, proto: int = 1, options: bytes = b"", src: bytes = SRC4) -> bytes:
    ihl = 5 + len(options) // 4
    fo = off >> 3 | (0x2000 if more else 0) | (0x4000 if df else 0)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, ihl * 4 + len(part), ipid, fo, ttl,
                      proto, 0, src, DST4) + options
    return hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + part


def frag6(part: bytes, ident: int, off: int, more: bool, *, nexthdr: int = 58, tclass: int = 0,
          before: bytes = b"") -> bytes:
    """IPv6 + optional extension headers `before` (chained to 44) + fragment header + part."""
    fh = struct.pack("!BBHI", nexthdr, 0, off | int(more), ident)
    first_nh = 60 if before else 44
    payload = before + fh + part
    return (struct.pack("!IHBB", 6 << 28 | tclass << 20, len(payload), first_nh, 64)
            + SRC6 + DST6 + payload)


REASSEMBLED = "(datagram reassembled from fragments"


@dataclass(frozen=True)
class Result:
    """What defragmentation did with one datagram: queued it, dropped it, completed a
    datagram with it, or let it pass as it was."""

    kind: str  # queued, dropped, complete, pass
    verdict: PacketVerdict

    @property
    def reason(self) -> str:
        return self.verdict.reason


def kind_of(verdict: PacketVerdict) -> str:
    if verdict.verdict == "STOLEN" and verdict.reason.startswith("queued for reassembly"):
        return "queued"
    if verdict.verdict == "DROP" and verdict.reason.startswith("dropped:"):
        return "dropped"
    return "complete" if REASSEMBLED in verdict.reason else "pass"


class Feed:
    """Push datagrams with increasing indices through one firewall."""

    def __init__(self, cfg: Sysctls | None = None) -> None:
        self.firewall = Firewall(cfg or Sysctls())
        self.index = 0

    def push(self, datagram: bytes, now: float = 0.0, iface: str | None = None) -> Result:
        self.index += 1
        if iface is None:
            pkt = decode_datagram(datagram, index=self.index, ts=now)
        else:
            pkt = decode_frame(self.index, now, datagram, LINKTYPE_RAW, iface)
        verdict = self.firewall.process(pkt)
        return Result(kind_of(verdict), verdict)

    def run(self, datagrams: list[bytes]) -> list[str]:
        return [self.push(d).kind for d in datagrams]


def whole(result: Result) -> PacketVerdict:
    """The verdict of the fragment that completed a datagram (a valid ICMP echo is NEW)."""
    assert result.kind == "complete", result.reason
    return result.verdict


# -- IPv4 -------------------------------------------------------------------

def test_two_fragments_reassemble_to_the_original_message() -> None:
    msg = echo4(100, 32)
    feed = Feed()
    first = feed.push(frag4(msg[:16], 0x1C46, 0, True))
    assert first.kind == "queued" and first.verdict.ctstate is None
    assert first.reason == "queued for reassembly (fragment 1 of datagram id 0x1c46 from 192.0.2.1)"
    done = whole(feed.push(frag4(msg[16:], 0x1C46, 16, False), now=0.5))
    assert (done.index, done.ts, done.ctstate) == (2, 0.5, "NEW")  # the echo request, whole


def test_out_of_order_fragments() -> None:
    msg = echo4(101, 40)
    feed = Feed()
    kinds = feed.run([frag4(msg[24:], 9, 24, False), frag4(msg[8:24], 9, 8, True),
                      frag4(msg[:8], 9, 0, True)])
    assert kinds == ["queued", "queued", "complete"]


def test_header_comes_from_the_first_fragment() -> None:
    msg = echo4(102, 32)
    options = b"\x94\x04\x00\x00"  # router alert
    feed = Feed()
    feed.push(frag4(msg[16:], 7, 16, False, ttl=9))
    assert whole(feed.push(frag4(msg[:16], 7, 0, True, ttl=200, options=options))).ctstate \
        == "NEW"


def test_df_kept_only_when_the_largest_fragment_had_it() -> None:
    msg = echo4(103, 40)
    big_df = Feed().run([frag4(msg[:32], 1, 0, True, df=True), frag4(msg[32:], 1, 32, False)])
    small_df = Feed().run([frag4(msg[:32], 1, 0, True), frag4(msg[32:], 1, 32, False, df=True)])
    assert big_df[-1] == "complete" and small_df[-1] == "complete"


def test_overlap_discards_the_whole_datagram() -> None:
    msg = echo4(104, 32)
    feed = Feed()
    feed.push(frag4(msg[:16], 2, 0, True))
    res = feed.push(frag4(msg[8:24], 2, 8, True))
    assert res.kind == "dropped" and "overlaps" in res.reason and "#1" in res.reason
    assert feed.push(frag4(msg[16:], 2, 16, False)).kind == "queued"  # a fresh queue


def test_exact_duplicate_is_dropped_and_the_queue_lives_on() -> None:
    msg = echo4(105, 32)
    kinds = Feed().run([frag4(msg[:16], 3, 0, True), frag4(msg[:16], 3, 0, True),
                        frag4(msg[16:], 3, 16, False)])
    assert kinds == ["queued", "dropped", "complete"]


def test_duplicate_inside_a_run_of_appended_fragments() -> None:
    msg = echo4(106, 32)
    kinds = Feed().run([frag4(msg[:8], 4, 0, True), frag4(msg[8:16], 4, 8, True),
                        frag4(msg[:16], 4, 0, True), frag4(msg[16:], 4, 16, False)])
    assert kinds == ["queued", "queued", "dropped", "complete"]


def test_fragment_spanning_two_separate_runs_is_an_overlap() -> None:
    msg = echo4(107, 32)
    kinds = Feed().run([frag4(msg[16:], 5, 16, False), frag4(msg[8:16], 5, 8, True),
                        frag4(msg[:16], 5, 0, True), frag4(msg[:8], 5, 0, True)])
    assert kinds == ["queued", "queued", "dropped", "queued"]


def test_ipv4_inconsistent_last_fragment_kills_the_queue() -> None:
    msg = echo4(108, 32)
    kinds = Feed().run([frag4(msg[8:24], 6, 8, True), frag4(msg[8:16], 6, 8, False),
                        frag4(msg[:8], 6, 0, True), frag4(msg[24:], 6, 24, False)])
    assert kinds == ["queued", "dropped", "queued", "queued"]


def test_ipv4_empty_fragment_kills_the_queue() -> None:
    msg = echo4(109, 32)
    kinds = Feed().run([frag4(msg[:16], 8, 0, True), frag4(b"", 8, 16, True),
                        frag4(msg[16:], 8, 16, False)])
    assert kinds == ["queued", "dropped", "queued"]


def test_ipv4_more_fragments_length_is_cut_to_a_multiple_of_8() -> None:
    msg = echo4(110, 32)
    feed = Feed()
    assert feed.push(frag4(msg[:13], 10, 0, True)).kind == "queued"
    assert whole(feed.push(frag4(msg[8:], 10, 8, False))).ctstate == "NEW"


def test_ipfrag_max_dist_restarts_a_stale_queue() -> None:
    for between, expect in ((63, "complete"), (64, "queued")):
        msg = echo4(111, 32)
        feed = Feed()
        feed.push(frag4(msg[:16], 11, 0, True))
        for i in range(between):
            feed.push(frag4(bytes(8), 1000 + i, 0, True))
        res = feed.push(frag4(msg[16:], 11, 16, False))
        assert res.kind == expect, between
    assert "ipfrag_max_dist restart that discarded #1" in res.reason


def test_ipfrag_max_dist_counts_per_source_and_zero_disables() -> None:
    msg = echo4(112, 32)
    for cfg, src in ((Sysctls(), bytes([192, 0, 2, 99])), (Sysctls(ipfrag_max_dist=0), SRC4)):
        feed = Feed(cfg)
        feed.push(frag4(msg[:16], 12, 0, True))
        for i in range(100):
            feed.push(frag4(bytes(8), 2000 + i, 0, True, src=src))
        assert feed.push(frag4(msg[16:], 12, 16, False)).kind == "complete"


def test_queues_are_keyed_by_protocol() -> None:
    msg = echo4(113, 32)
    kinds = Feed().run([frag4(msg[:16], 13, 0, True), frag4(msg[16:], 13, 16, False, proto=17)])
    assert kinds == ["queued", "queued"]


def test_ecn_not_ect_mixed_with_ect_is_dropped() -> None:
    msg = echo4(114, 32)
    kinds = Feed().run([frag4(msg[:16], 14, 0, True), frag4(msg[16:], 14, 16, False, tos=2)])
    assert kinds == ["queued", "dropped"]
    feed = Feed()
    feed.push(frag4(msg[:16], 15, 0, True, tos=2))
    assert whole(feed.push(frag4(msg[16:], 15, 16, False, tos=3))).ctstate == "NEW"  # CE + ECT


def test_oversize_reassembly_is_refused() -> None:
    feed = Feed()
    assert feed.push(frag4(bytes(65000), 17, 0, True)).kind == "queued"
    res = feed.push(frag4(bytes(1000), 17, 65000, False))
    assert res.kind == "dropped" and "over 65535" in res.reason


def test_ipv4_timeout_runs_from_the_first_fragment() -> None:
    msg = echo4(115, 48)
    feed = Feed()
    feed.push(frag4(msg[:16], 18, 0, True), now=100.0)
    assert feed.push(frag4(msg[16:32], 18, 16, True), now=129.0).kind == "queued"
    res = feed.push(frag4(msg[32:], 18, 32, False), now=130.0)
    assert res.kind == "queued"  # the first two expired at 130 s: a new queue


def test_ipv6_timeout_is_nf_conntrack_frag6_timeout() -> None:
    msg = echo6(116, 32)
    for last, kind in ((4.9, "complete"), (5.0, "queued")):  # expired at 5 s: a new queue
        feed = Feed(Sysctls(nf_conntrack_frag6_timeout=5))
        feed.push(frag6(msg[:16], 19, 0, True), now=0.0)
        assert feed.push(frag6(msg[16:], 19, 16, False), now=last).kind == kind


def test_memory_over_high_thresh_drops_every_fragment() -> None:
    cfg = Sysctls(ipfrag_low_thresh=1000, ipfrag_high_thresh=3000)
    msg = echo4(117, 32)
    feed = Feed(cfg)
    feed.push(frag4(msg[:16], 20, 0, True))  # 1032 bytes: 200 for the queue, 832 for the skb
    feed.push(frag4(bytes(16), 21, 0, True))
    assert feed.push(frag4(msg[16:], 20, 16, False)).kind == "complete"
    feed.push(frag4(msg[:16], 22, 0, True))
    feed.push(frag4(bytes(16), 23, 0, True))  # 3096 bytes queued
    res = feed.push(frag4(msg[16:], 22, 16, False))
    assert res.kind == "dropped" and "ipfrag_high_thresh 3000" in res.reason


def test_non_fragments_and_broken_headers_pass() -> None:
    feed = Feed()
    plain = feed.push(frag4(echo4(1, 16), 30, 0, False))
    assert plain.kind == "pass" and plain.verdict.index == 1
    bad = bytearray(frag4(bytes(16), 31, 0, True))
    bad[10] ^= 1
    assert feed.push(bytes(bad)).kind == "pass"


# -- IPv6 -------------------------------------------------------------------

def test_ipv6_reassembly_removes_the_fragment_header() -> None:
    msg = echo6(200, 40)
    feed = Feed()
    feed.push(frag6(msg[16:], 0xCDE00817, 16, False))
    done = whole(feed.push(frag6(msg[:16], 0xCDE00817, 0, True, tclass=0)))
    assert done.ctstate == "NEW"  # an echo request whose ICMPv6 checksum verifies


def test_ipv6_extension_header_before_fragment_header_takes_next_header() -> None:
    msg = echo6(201, 32)
    dest = bytes([44, 0]) + bytes(6)
    feed = Feed()
    feed.push(frag6(msg[:16], 22, 0, True, before=dest))
    assert whole(feed.push(frag6(msg[16:], 22, 16, False, before=dest))).ctstate == "NEW"


def test_ipv6_atomic_fragment_completes_at_once_without_its_header() -> None:
    msg = echo6(202, 32)
    assert whole(Feed().push(frag6(msg, 23, 0, False))).ctstate == "NEW"


def test_ipv6_overlap_and_duplicate() -> None:
    msg = echo6(203, 32)
    assert Feed().run([frag6(msg[:16], 24, 0, True), frag6(msg[8:24], 24, 8, True),
                       frag6(msg[16:], 24, 16, False)]) == ["queued", "dropped", "queued"]
    assert Feed().run([frag6(msg[:16], 25, 0, True), frag6(msg[:16], 25, 0, True),
                       frag6(msg[16:], 25, 16, False)]) == ["queued", "dropped", "complete"]


def test_ipv6_inconsistent_last_fragment_keeps_the_queue() -> None:
    msg = echo6(204, 32)
    kinds = Feed().run([frag6(msg[8:24], 26, 8, True), frag6(msg[8:16], 26, 8, False),
                        frag6(msg[:8], 26, 0, True), frag6(msg[24:], 26, 24, False)])
    assert kinds == ["queued", "dropped", "queued", "complete"]


def test_ipv6_empty_fragment_keeps_the_queue() -> None:
    msg = echo6(205, 32)
    kinds = Feed().run([frag6(msg[:16], 27, 0, True), frag6(b"", 27, 16, True),
                        frag6(msg[16:], 27, 16, False)])
    assert kinds == ["queued", "dropped", "complete"]


def test_ipv6_more_fragments_not_multiple_of_8_passes_and_kills_the_queue() -> None:
    msg = echo6(206, 40)
    feed = Feed()
    feed.push(frag6(msg[:16], 28, 0, True))
    res = feed.push(frag6(msg[16:21], 28, 16, True))
    assert res.kind == "pass" and "fragment reached conntrack unreassembled" in res.reason
    assert feed.push(frag6(msg[16:], 28, 16, False)).kind == "queued"


def test_ipv6_first_fragment_without_full_layer4_header_passes() -> None:
    res = Feed().push(frag6(echo6(207, 32)[:4], 29, 0, True))
    assert res.kind == "pass"


def test_ipv6_fragment_ending_beyond_65535_is_dropped() -> None:
    res = Feed().push(frag6(bytes(1000), 30, 65000, False))
    assert res.kind == "dropped" and "65535" in res.reason


def test_ipv6_queues_are_keyed_by_input_interface() -> None:
    msg = echo6(208, 32)
    feed = Feed()
    feed.push(frag6(msg[:16], 31, 0, True), iface="eth0")
    assert feed.push(frag6(msg[16:], 31, 16, False), iface="eth1").kind == "queued"
    assert feed.push(frag6(msg[16:], 31, 16, False), iface="eth0").kind == "complete"


# -- shared captures ----------------------------------------------------------

@pytest.mark.shared
@pytest.mark.parametrize(("name", "datagrams"), [("ipv4-frag-icmp-echo.pcap", 1),
                                                 ("ipv6-frag-icmp6-echo.pcapng", 10),
                                                 ("ip-frag-dns-udp-ipv4-ipv6.pcap", 7)])
def test_shared_fragment_traces(name: str, datagrams: int, shared: Path) -> None:
    firewall = Firewall(Sysctls())
    complete: list[PacketVerdict] = []
    with open_capture(shared / "traces" / name) as frames:
        packets = [decode_frame(f.index, f.ts, f.data, f.linktype, f.iface) for f in frames]
    for pkt in packets:
        verdict = firewall.process(pkt)
        assert kind_of(verdict) in ("pass", "queued", "complete"), verdict.reason
        if kind_of(verdict) == "complete":
            complete.append(verdict)
    assert len(complete) == datagrams
    # Each reassembled datagram is whole: conntrack verified its layer-4 checksum.
    assert all(v.ctstate in ("NEW", "ESTABLISHED") for v in complete), complete


# -- the live kernel ------------------------------------------------------------

_SENDER = """
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for line in sys.stdin:
    s.send(bytes.fromhex(line.strip()))
    time.sleep(0.002)
"""

def _sh(cmd: str, check: bool = True) -> str:
    return subprocess.run(cmd, shell=True, check=check, capture_output=True, text=True).stdout


@pytest.mark.kernel
def test_kernel_agrees(kernel: None) -> None:
    """Replay IPv4 fragment scenarios through a real namespace and compare outcomes."""
    tag = f"swdf{os.getpid()}"
    sender, receiver = tag + "a", tag + "b"
    scenarios = {
        300: lambda m: [(m[:16], 0, True), (m[:16], 0, True), (m[16:], 16, False)],
        301: lambda m: [(m[:16], 0, True), (m[8:24], 8, True), (m[16:], 16, False)],
        302: lambda m: [(m[8:24], 8, True), (m[8:16], 8, False), (m[:8], 0, True),
                        (m[24:], 24, False)],
        303: lambda m: [(m[:13], 0, True), (m[8:], 8, False)],
    }
    try:
        _sh(f"ip netns add {sender} && ip netns add {receiver}")
        _sh(f"ip link add va netns {sender} type veth peer name vb netns {receiver}")
        _sh(f"ip -n {sender} link set va up && ip -n {receiver} link set vb up")
        _sh(f"ip -n {receiver} addr add 192.0.2.2/24 dev vb")
        _sh(f"ip netns exec {receiver} iptables -A INPUT -m conntrack --ctstate NEW")
        mac_b = bytes.fromhex(_sh(f"ip -n {receiver} -br link show vb").split()[2].replace(":", ""))
        lines = []
        for ident, build in scenarios.items():
            for part, off, more in build(echo4(ident, 32)):
                lines.append((mac_b + bytes(6) + b"\x08\x00" + frag4(part, ident, off, more)).hex())
        subprocess.run(f"ip netns exec {sender} {sys.executable} -c '{_SENDER}' va", shell=True,
                       input="\n".join(lines) + "\n", text=True, check=True)
        time.sleep(0.3)
        table = _sh(f"ip netns exec {receiver} conntrack -L -p icmp", check=False)
    finally:
        _sh(f"ip netns del {sender}", check=False)
        _sh(f"ip netns del {receiver}", check=False)
    for ident, build in scenarios.items():
        feed = Feed()
        kinds = feed.run([frag4(p, ident, o, m) for p, o, m in build(echo4(ident, 32))])
        assert (kinds[-1] == "complete") == (f"id={ident} " in table), ident


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 3), st.integers(0, 40),
                          st.integers(0, 48), st.booleans(), st.integers(0, 3)), max_size=25))
def test_random_fragments_never_raise(
    steps: list[tuple[int, int, int, int, bool, int]],
) -> None:
    feed = Feed(Sysctls(ipfrag_max_dist=3))
    for family, ident, off8, size, more, tos in steps:
        part = bytes(range(size))
        if family == 0:
            res = feed.push(frag4(part, ident, off8 * 8, more, tos=tos), now=float(len(steps)))
        else:
            res = feed.push(frag6(part, ident, off8 * 8, more, tclass=tos), now=0.0)
        assert res.kind in ("pass", "queued", "complete", "dropped") and res.reason
