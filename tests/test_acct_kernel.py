"""Accounting against the live kernel: `net.netfilter.nf_conntrack_acct=1`.

The same datagrams go through a firewall namespace and through statewall.
With the sysctl on both sides, `conntrack -L`, `/proc/net/nf_conntrack`
and the `conntrack -E` stream must match line for line, counters included.
With the sysctl off, `statewall conns` must still report the counters the
kernel keeps: the packets and bytes of every connection are compared with
the kernel's listing (live entries) and its DESTROY events (entries a
packet ended).

The datagrams cover what decides a count: packets a rule drops after
conntrack (counted), a retransmitted SYN before any reply and an ICMP error
about a flow (not counted), the RST that kills an unreplied entry
(counted), reassembled IPv4 and IPv6 datagrams (counted once, at their
whole length), an expected FTP data connection.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

import pytest

from statewall import builder as b
from statewall.config import Sysctls
from statewall.conns import ConnRecord, connection_records
from statewall.decode import decode_datagram
from statewall.engine import Firewall
from statewall.oracle.helper_scenarios import CLIENT, SERVER, Tcp, ftp_active
from statewall.oracle.kernel import KernelFirewall
from statewall.oracle.normalise import assign_sides, normalise
from statewall.oracle.scenarios import C4, C6, S4, S6, STATEFUL_HELPERS_V4, STATEFUL_HELPERS_V6
from statewall.oracle.verify import (
    FIREWALL_IFS,
    Datagram,
    compare_tables,
    load_rule_engine,
    side_topology,
)
from statewall.oracle.verify_events import verify_events

ACCT = {"nf_conntrack_acct": 1}
# An established query too big for the rules is dropped after conntrack,
# which has counted it by then.
BIG_QUERY = ("-A FORWARD -p udp --dport 53 -m conntrack --ctstate ESTABLISHED "
             "-m length --length 300:65535 -j DROP\n")


def _with_rule(rules: str, rule: str) -> str:
    """`rules` (the filter table last) with `rule` appended to it."""
    head, _, _ = rules.rpartition("COMMIT\n")
    return head + rule + "COMMIT\n"


RULES_V4 = _with_rule(STATEFUL_HELPERS_V4, BIG_QUERY)
RULES_V6 = _with_rule(STATEFUL_HELPERS_V6, BIG_QUERY)


def datagrams() -> list[bytes]:
    query = b.udp(C4, S4, 5353, 53, b"q")
    web = Tcp(C4, S4, 40000, 80)
    handshake = web.handshake()
    syn = b.tcp(C4, S4, 41000, 80, "S", 100)
    big = b.udp(C4, S4, 5400, 53, b"x" * 1200)
    big6 = b.udp(C6, S6, 5400, 53, b"y" * 1200)
    return [
        query, query, b.icmp_error(S4, C4, b.ICMP_DEST_UNREACH, 3, query),
        b.udp(S4, C4, 53, 5353, b"abcdef"),
        b.udp(C4, S4, 5353, 53, b"z" * 400),  # established, dropped by the length rule
        handshake[0], *handshake,  # the SYN is sent twice
        web.send(CLIENT, b"GET / HTTP/1.0\r\n\r\n"), web.send(SERVER, b"HTTP/1.0 200 OK\r\n"),
        syn, b.tcp(S4, C4, 80, 41000, "RA", 0, 101),  # RST kills the unreplied entry
        *b.fragment(big, 512), b.udp(S4, C4, 53, 5400, b"ok"),
        *b.fragment(big6, 512, ident=9), b.udp(S6, C6, 53, 5400, b"ok"),
        b.icmpv6_echo(C6, S6, 3, 1), b.icmpv6_echo(S6, C6, 3, 1, reply=True),
        *ftp_active(4, "PORT").datagrams,
    ]


def _listing_key(line: str, timeout_at: int) -> tuple[str, int]:
    """A listing line without its timeout and reference count, and the timeout."""
    words = line.split()
    kept = [w for i, w in enumerate(words) if i != timeout_at and not w.startswith("use=")]
    return " ".join(kept), int(words[timeout_at])


def _same_listing(kernel: Sequence[str], ours: Sequence[str], timeout_at: int) -> None:
    left = sorted(_listing_key(line, timeout_at) for line in kernel)
    right = sorted(_listing_key(line.rstrip("\n"), timeout_at) for line in ours)
    assert [key for key, _ in left] == [key for key, _ in right]
    assert all(abs(a - b) <= 1 for (_, a), (_, b) in zip(left, right, strict=True))


COUNTERS = re.compile(r"src=(\S+) dst=(\S+) (?:sport=(\d+) dport=(\d+)|type=(\d+) code=\d+ id=(\d+)) "
                      r"packets=(\d+) bytes=(\d+) (?:\[UNREPLIED\] )?src=\S+ dst=\S+ "
                      r"(?:sport=\d+ dport=\d+|type=\d+ code=\d+ id=\d+) packets=(\d+) bytes=(\d+)")


def _kernel_counters(line: str) -> tuple[tuple[str, str, int], tuple[int, int, int, int]]:
    """(orig src, dst, sport or ICMP id) and the four counters of a listing or event line."""
    found = COUNTERS.search(line)
    assert found is not None, line
    src, dst, sport, _dport, _type, ident, *counts = found.groups()
    port = int(sport if sport is not None else ident)
    op, ob, rp, rb = (int(n) for n in counts)
    return (src, dst, port), (op, ob, rp, rb)


def _record_counters(record: ConnRecord) -> tuple[tuple[str, str, int], tuple[int, int, int, int]]:
    port = record.orig.sport if record.orig.sport is not None else record.orig.id
    assert port is not None
    return ((record.orig.src, record.orig.dst, port),
            (record.orig_packets, record.orig_bytes, record.reply_packets, record.reply_bytes))


@pytest.mark.kernel
def test_listings_and_conns_count_as_the_kernel_does(kernel: None, made: list[str]) -> None:
    fixed = normalise(datagrams())
    topology = side_topology(fixed)
    engine = load_rule_engine(RULES_V4, RULES_V6, topology=topology)
    listed = Firewall(cfg=Sysctls().with_values(ACCT), rules=engine, topology=topology)
    logged = Firewall(rules=load_rule_engine(RULES_V4, RULES_V6, topology=topology),
                      topology=topology, conn_log=True)
    with KernelFirewall(RULES_V4, RULES_V6, ACCT, watch_events=True,
                        firewall_ifs=FIREWALL_IFS) as fw:
        for number, (data, side) in enumerate(zip(fixed, assign_sides(fixed), strict=True)):
            observed = fw.send(data, side)
            for machine in (listed, logged):
                pkt = decode_datagram(data, index=number, ts=observed.sent_at)
                pkt.iface_in = FIREWALL_IFS[side]
                verdict = machine.process(pkt)
                assert verdict.ctstate == observed.ctstate, (number, verdict, observed)
        before = time.time()
        conntrack_l, proc = fw.conntrack_list(), fw.proc_conntrack()
        at = (before + time.time()) / 2
        events = fw.events()
    assert conntrack_l and all(" packets=" in line for line in conntrack_l)
    table = compare_tables(conntrack_l, [line.rstrip("\n") for line in
                                         listed.table_lines(at, "conntrack",
                                                            live_at=max(at, listed.now))])
    assert (table.only_kernel, table.only_statewall) == ((), ())
    _same_listing(proc, listed.table_lines(at, "proc", live_at=max(at, listed.now)), 4)

    # conns, counting without the sysctl, against the kernel's counters.
    records = connection_records(logged)
    live = dict(_record_counters(r) for r in records if r.end is None)
    assert live == dict(_kernel_counters(line) for line in conntrack_l)
    destroyed = [line for line in events if "[DESTROY]" in line]
    ended = [r for r in records if r.end is not None]
    assert [r.end for r in ended] == ["reset"] and len(destroyed) == 1
    assert dict(_record_counters(r) for r in ended) == dict(map(_kernel_counters, destroyed))
    retransmitted = next(r for r in records if r.orig.sport == 40000)
    assert retransmitted.verdicts == {"ACCEPT": 6}  # both SYNs passed; one was counted
    assert retransmitted.orig_packets == 3


@pytest.mark.kernel
def test_destroy_events_carry_the_counters(kernel: None, made: list[str]) -> None:
    result = verify_events([Datagram(n, d) for n, d in enumerate(datagrams(), 1)],
                           RULES_V4, RULES_V6, ACCT, expectations=False)
    assert result.same, result.mismatches[:3]
    assert any(line.startswith("[DESTROY]") and " packets=1 bytes=40 " in line
               for line in result.kernel)
