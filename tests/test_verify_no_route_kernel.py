"""`--iface` routes are the router's only routes: a destination none holds is unreachable.

The firewall holds 192.0.2.1/24 on `lan` and 203.0.113.1/24 on `wan`, and no default
route (no IPv6 route at all). A received datagram is routed after PREROUTING, by the
destination DNAT left it: one no route holds is dropped there by the kernel's routing
(ip_route_input_slow, ip6_route_input: no FORWARD, no POSTROUTING), its conntrack entry
never confirmed, so the flow's next packet is NEW again and the final table holds
nothing of it. What the firewall sends to such a destination never reaches OUTPUT: the
sending socket's route lookup fails first (ENETUNREACH). Through iptables-restore and
through nft alike, statewall must agree on every packet and on the final table; the
kernel's answers are pinned.
"""

from __future__ import annotations

import pytest
from test_verify_rulesets import kernel_answer

from statewall import builder as b
from statewall.oracle.verify import Datagram, VerifyResult, verify_datagrams
from statewall.topology import Topology, parse_iface

IFACES = ("lan=192.0.2.1/24", "wan=203.0.113.1/24")
PC, SERVER, NOWHERE = "192.0.2.10", "203.0.113.9", "198.51.100.7"
PC6, NOWHERE6 = "2001:db8:1::10", "2001:db8:2::9"
NEW_F, NEW_D = "NEW/ORIGINAL forwarded", "NEW/ORIGINAL dropped"
NOT_SENT = "- dropped"  # never seen by netfilter
NO_ROUTE = "dropped by routing: no route to the destination"
NO_ROUTE_SENT = "never sent: no route to the destination"

# DNAT in PREROUTING (before routing): a routed address leads nowhere, and an
# unrouted one is led to the server.
IPTABLES = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 203.0.113.20/32 -p tcp --dport 80 -j DNAT --to-destination 198.51.100.7
-A PREROUTING -d 198.51.100.50/32 -p tcp --dport 80 -j DNAT --to-destination 203.0.113.9
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate NEW -j ACCEPT
COMMIT
"""
NFT = """table ip nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 203.0.113.20 tcp dport 80 dnat to 198.51.100.7
		ip daddr 198.51.100.50 tcp dport 80 dnat to 203.0.113.9
	}
}
table inet filter {
	chain forward {
		type filter hook forward priority filter; policy accept;
		ct state new counter accept
	}
}
"""


def syn(src: str, dst: str, sport: int, dport: int = 80) -> bytes:
    return b.tcp(src, dst, sport, dport, "S", 7000, window=64240, mss=1460)


TRAFFIC: tuple[tuple[bytes, str], ...] = (
    (syn(PC, NOWHERE, 48000), NEW_D),  # no route holds 198.51.100.7
    (syn(PC, NOWHERE, 48000), NEW_D),  # never confirmed: NEW again
    (b.udp(PC, NOWHERE, 48001, 53, b"q"), NEW_D),
    (b.icmp_echo(PC, NOWHERE, 7, 1), NEW_D),
    (syn(PC, SERVER, 48002), NEW_F),  # wan's network holds the server
    (syn(PC, "203.0.113.20", 48003), NEW_D),  # DNAT to 198.51.100.7: no route
    (syn(PC, "198.51.100.50", 48004), NEW_F + f" as {PC}:48004 > {SERVER}:80"),  # DNAT: routed
    (syn(PC6, NOWHERE6, 48005), NEW_D),  # no IPv6 route at all
    # What the firewall sends itself: the socket finds no route, OUTPUT never sees it.
    (syn("192.0.2.1", NOWHERE, 48006), NOT_SENT),
    (syn("192.0.2.1", SERVER, 48007), "NEW/ORIGINAL sent"),
)


def _run(*, rules: str | None = None, nft: str | None = None) -> VerifyResult:
    machine = Topology.build((), [parse_iface(t) for t in IFACES])
    datagrams = [Datagram(n, d) for n, (d, _) in enumerate(TRAFFIC, 1)]
    return verify_datagrams(datagrams, rules, nft=nft, local=machine.local,
                            ifaces=machine.interfaces, addresses=machine.addresses)


@pytest.mark.kernel
@pytest.mark.parametrize("form", ["iptables", "nft"])
def test_a_destination_no_route_holds_dies_in_routing(kernel: None, made: list[str],
                                                       form: str) -> None:
    result = _run(rules=IPTABLES) if form == "iptables" else _run(nft=NFT)
    got = [kernel_answer(p, d) for p, (d, _) in zip(result.packets, TRAFFIC, strict=True)]
    assert got == [answer for _, answer in TRAFFIC], "the kernel changed"
    assert result.ok, (result.disagreements, result.table)
    # Only the three routed connections are in the table.
    assert len(result.table.kernel) == 3, result.table.kernel
    for number, (_, answer) in enumerate(TRAFFIC):
        verdict = result.packets[number].statewall
        if answer == NEW_D:
            assert verdict.rule is None and NO_ROUTE in verdict.reason, verdict.reason
        elif answer == NOT_SENT:
            assert verdict.ctstate is None and NO_ROUTE_SENT in verdict.reason, verdict.reason
