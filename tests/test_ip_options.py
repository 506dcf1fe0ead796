"""IPv4 options on the receive path (ip_rcv_finish → ip_rcv_options).

After PREROUTING and the routing decision, the kernel parses the options
of any header longer than 20 bytes. Options that do not parse are a header
error, and a source route (LSRR, SSRR) is refused unless
net.ipv4.conf.all.accept_source_route allows it; even then a router passes
only a loose route on (a strict route named another hop). Such a datagram
has been through raw, conntrack and mangle PREROUTING, so it has an entry,
but the entry dies unconfirmed: no FORWARD rule sees it and the table does
not list it.
"""

from __future__ import annotations

import pytest

from statewall import builder as b
from statewall.config import Sysctls
from statewall.decode import decode_datagram
from statewall.engine import Firewall
from statewall.oracle.verify import Datagram, verify_datagrams

C, S = "192.0.2.10", "198.51.100.20"
OPEN = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
HOP = bytes((198, 51, 100, 20))
LSRR = bytes((1, 0x83, 7, 4)) + HOP  # NOP, then a loose source route of one hop
SSRR = bytes((1, 0x89, 7, 4)) + HOP  # the same, strict
BAD_TIMESTAMP = bytes((0x44, 2, 5, 0))  # a timestamp option two bytes long: malformed
RECORD_ROUTE = bytes((7, 7, 4)) + bytes(4)  # parses, routes nothing


def udp(sport: int, options: bytes) -> bytes:
    segment = b.udp(C, S, sport, 53, b"q")[20:]
    return b.ipv4(C, S, 17, segment, options=options)


CASES = [udp(4000, b""), udp(4001, LSRR), udp(4002, SSRR), udp(4003, BAD_TIMESTAMP),
         udp(4004, RECORD_ROUTE)]


def replay(values: dict[str, int]) -> Firewall:
    firewall = Firewall(cfg=Sysctls().with_values(values))
    for i, data in enumerate(CASES):
        firewall.process(decode_datagram(data, index=i, ts=1.0 + i))
    return firewall


def test_source_routes_and_bad_options_die_after_prerouting() -> None:
    firewall = Firewall(cfg=Sysctls())
    verdicts = [firewall.process(decode_datagram(d, index=i, ts=1.0 + i))
                for i, d in enumerate(CASES)]
    assert [(v.ctstate, v.verdict) for v in verdicts] == [
        ("NEW", "ACCEPT"), ("NEW", "DROP"), ("NEW", "DROP"), ("NEW", "DROP"), ("NEW", "ACCEPT")]
    assert "loose source route (LSRR) refused" in verdicts[1].reason
    assert "strict source route (SSRR) refused" in verdicts[2].reason
    assert "bad IP options" in verdicts[3].reason
    assert all(v.conn is None for v in verdicts[1:4])  # never confirmed
    sports = sorted(c.orig_sport for c in firewall.connections())
    assert sports == [4000, 4004]


def test_an_allowed_loose_route_is_forwarded_a_strict_one_is_not() -> None:
    firewall = replay({"net.ipv4.conf.all.accept_source_route": 1})
    sports = sorted(c.orig_sport for c in firewall.connections())
    assert sports == [4000, 4001, 4004]


@pytest.mark.kernel
@pytest.mark.parametrize("values", [{}, {"net.ipv4.conf.all.accept_source_route": 1}])
def test_options_agree_with_the_kernel(kernel: None, values: dict[str, int]) -> None:
    result = verify_datagrams([Datagram(i + 1, d) for i, d in enumerate(CASES)], OPEN, None,
                              values)
    assert [p.differences for p in result.packets] == [()] * len(CASES)
    assert result.table.same, (result.table.only_kernel, result.table.only_statewall)
