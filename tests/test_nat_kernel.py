"""NAT against the live kernel: the nat table kept, the firewall holding its
interfaces' addresses, and every packet that leaves compared with statewall's
translation (addresses and ports), besides ctstate, direction and fate; the
final tables compared with their reply tuples.

Each scenario is a small capture built here, replayed by `verify` through a
two-interface router (`lan`, `wan`) whose `--iface` options give it an
address on each side.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from conftest import nat_table

from statewall import builder as b
from statewall.demo import ROUTER_RULES
from statewall.oracle.verify import Datagram, VerifyResult, load_rule_engine, verify_datagrams
from statewall.topology import Topology

LAN_IF, WAN_IF = "lan=192.168.1.1/24", "wan=203.0.113.1/24,0.0.0.0/0"
LAN6_IF, WAN6_IF = "lan=2001:db8:1::1/64", "wan=2001:db8:2::1/64,::/0"
CLIENT, CLIENT2, PRINTER = "192.168.1.10", "192.168.1.11", "192.168.1.20"
SERVER, OUTSIDER = "198.51.100.20", "198.51.100.99"
WAN = "203.0.113.1"
CLIENT6, WAN6, SERVER6 = "2001:db8:1::10", "2001:db8:2::1", "2001:db8:9::20"

# The home router's filter table (statewall demo --router): out from the LAN, back
# in when established or related, and what a port forward lets in.
FILTER = ROUTER_RULES[ROUTER_RULES.index("*filter"):]


def nat(*rules: str) -> str:
    return nat_table(*rules) + FILTER


def run(rules: str, traffic: Sequence[bytes], ifaces: Sequence[str] = (LAN_IF, WAN_IF),
        v6: bool = False) -> VerifyResult:
    machine = Topology.build((), [(t.partition("=")[0], t.partition("=")[2].split(","))
                                  for t in ifaces])
    datagrams = [Datagram(n, d) for n, d in enumerate(traffic, 1)]
    result = verify_datagrams(datagrams, None if v6 else rules, rules if v6 else None,
                              local=machine.local, ifaces=machine.interfaces,
                              addresses=machine.addresses)
    assert result.ok, ([(p.number, p.differences, p.kernel_answer(), p.statewall_answer())
                        for p in result.disagreements], result.table)
    return result


def leaves(result: VerifyResult, number: int) -> tuple[str | None, ...]:
    """Where statewall says packet `number` went (which the kernel confirmed)."""
    v = result.packets[number - 1].statewall
    out = v.leaves
    return (out.src, out.dst, out.sport, out.dport) if out else (v.src, v.dst, v.sport, v.dport)


@pytest.mark.kernel
def test_a_home_router_masquerades_tcp_udp_and_pings(kernel: None, made: list[str]) -> None:
    result = run(nat("-A POSTROUTING -o wan -j MASQUERADE"), [
        b.tcp(CLIENT, SERVER, 40000, 80, "S", 100),
        b.tcp(SERVER, WAN, 80, 40000, "SA", 500, 101),
        b.tcp(CLIENT, SERVER, 40000, 80, "A", 101, 501),
        b.udp(CLIENT, SERVER, 5353, 53, b"query"),
        b.udp(SERVER, WAN, 53, 5353, b"answer"),
        b.icmp_echo(CLIENT, SERVER, 7, 1),
        b.icmp_echo(SERVER, WAN, 7, 1, reply=True),
        b.udp(CLIENT, SERVER, 5354, 9999, b"x"),
        # The server's port unreachable about it, sent to the router's address.
        b.icmp_error(SERVER, WAN, 3, 3, b.udp(WAN, SERVER, 5354, 9999, b"x")),
        b.tcp(OUTSIDER, WAN, 1234, 22, "S", 7),  # to the router itself: INPUT drops it
    ])
    assert leaves(result, 1) == (WAN, SERVER, 40000, 80)
    assert leaves(result, 2) == (SERVER, CLIENT, 80, 40000)
    assert leaves(result, 6)[:2] == (WAN, SERVER)
    assert leaves(result, 9)[:2] == (SERVER, CLIENT)
    assert result.packets[9].kernel.outcome == "dropped"
    assert any(f"dst={WAN}" in line for line in result.table.kernel)


@pytest.mark.kernel
def test_a_port_forward_to_another_port(kernel: None, made: list[str]) -> None:
    result = run(nat(f"-A PREROUTING -i wan -p tcp --dport 8080 -j DNAT "
                     f"--to-destination {PRINTER}:80"), [
        b.tcp(OUTSIDER, WAN, 5555, 8080, "S", 9),
        b.tcp(PRINTER, OUTSIDER, 80, 5555, "SA", 70, 10),
        b.tcp(OUTSIDER, WAN, 5555, 8080, "A", 10, 71),
        b.tcp(OUTSIDER, WAN, 5556, 8081, "S", 9),  # not forwarded: INPUT drops it
    ])
    assert leaves(result, 1) == (OUTSIDER, PRINTER, 5555, 80)
    assert leaves(result, 2) == (WAN, OUTSIDER, 8080, 5555)
    assert result.packets[3].kernel.outcome == "dropped"


@pytest.mark.kernel
def test_snat_to_a_pool_picks_the_kernels_address(kernel: None, made: list[str]) -> None:
    clients = [f"192.168.1.{n}" for n in range(10, 22)]
    # Distinct source ports: a clash would move a port at random (differently each run).
    traffic = [b.udp(c, SERVER, 6000 + i, 53, b"q") for i, c in enumerate(clients)]
    for rule in ("-A POSTROUTING -o wan -j SNAT --to-source 203.0.113.10-203.0.113.14",
                 "-A POSTROUTING -o wan -j SNAT --to-source 203.0.113.10-203.0.113.14 "
                 "--persistent"):
        result = run(nat(rule), traffic)
        chosen = {leaves(result, n)[0] for n in range(1, len(clients) + 1)}
        assert len(chosen) > 1  # the hash spreads the clients over the pool


@pytest.mark.kernel
def test_netmap_maps_a_network_onto_another(kernel: None, made: list[str]) -> None:
    result = run(nat("-A PREROUTING -i wan -d 203.0.113.0/24 -j NETMAP --to 192.168.1.0/24",
                     "-A POSTROUTING -o wan -s 192.168.1.0/24 -j NETMAP --to 203.0.113.0/24"), [
        b.tcp(OUTSIDER, "203.0.113.20", 5555, 80, "S", 9),
        b.tcp(PRINTER, OUTSIDER, 80, 5555, "SA", 70, 10),
        b.udp(CLIENT, SERVER, 7000, 53, b"q"),
    ])
    assert leaves(result, 1)[:2] == (OUTSIDER, PRINTER)
    assert leaves(result, 3)[:2] == ("203.0.113.10", SERVER)


@pytest.mark.kernel
def test_redirect_to_a_local_port(kernel: None, made: list[str]) -> None:
    result = run(nat("-A PREROUTING -i lan -p tcp --dport 80 -j REDIRECT --to-ports 3128"), [
        b.tcp(CLIENT, SERVER, 40000, 80, "S", 100),
        b.tcp("192.168.1.1", CLIENT, 3128, 40000, "SA", 500, 101),  # the proxy answers
        b.tcp(CLIENT, SERVER, 40000, 80, "A", 101, 501),
    ])
    assert [p.kernel.outcome for p in result.packets] == ["local", "sent", "local"]
    assert leaves(result, 2) == (SERVER, CLIENT, 80, 40000)


@pytest.mark.kernel
def test_ipv6_masquerade_and_port_forward(kernel: None, made: list[str]) -> None:
    rules = nat("-A PREROUTING -i wan -p tcp --dport 8080 -j DNAT "
                "--to-destination [2001:db8:1::20]:80",
                "-A POSTROUTING -o wan -j MASQUERADE")
    result = run(rules, [
        b.tcp(CLIENT6, SERVER6, 40000, 443, "S", 100),
        b.tcp(SERVER6, WAN6, 443, 40000, "SA", 500, 101),
        b.icmpv6_echo(CLIENT6, SERVER6, 9, 1),
        b.icmpv6_echo(SERVER6, WAN6, 9, 1, reply=True),
        b.tcp(SERVER6, WAN6, 5555, 8080, "S", 9),
        b.tcp("2001:db8:1::20", SERVER6, 80, 5555, "SA", 70, 10),
    ], ifaces=(LAN6_IF, WAN6_IF), v6=True)
    assert leaves(result, 1)[:2] == (WAN6, SERVER6)
    assert leaves(result, 5)[:2] == (SERVER6, "2001:db8:1::20")


@pytest.mark.kernel
def test_a_different_translation_is_a_disagreement(kernel: None, made: list[str]) -> None:
    """The comparison sees the addresses that leave: statewall told to SNAT to another
    address than the kernel's MASQUERADE picks disagrees on exactly that."""
    machine = Topology.build((), [("lan", ["192.168.1.1/24"]),
                                  ("wan", ["203.0.113.1/24", "0.0.0.0/0"])])
    ours = load_rule_engine(nat("-A POSTROUTING -o wan -j SNAT --to-source 203.0.113.2"),
                            None, topology=machine)
    result = verify_datagrams([Datagram(1, b.udp(CLIENT, SERVER, 5353, 53, b"q"))],
                              nat("-A POSTROUTING -o wan -j MASQUERADE"), rule_engine=ours,
                              local=machine.local, ifaces=machine.interfaces,
                              addresses=machine.addresses)
    (packet,) = result.packets
    assert packet.differences == ("translation",)
    assert packet.kernel_answer() == f"NEW/ORIGINAL forwarded as {WAN}:5353 > {SERVER}:53"
    assert packet.statewall_answer() == f"NEW/ORIGINAL ACCEPT as 203.0.113.2:5353 > {SERVER}:53"


@pytest.mark.kernel
def test_the_router_demo_is_the_kernels(kernel: None, made: list[str]) -> None:
    from statewall.demo import ROUTER_IFACES, router_datagrams

    result = run(ROUTER_RULES, [data for _, data in router_datagrams()],
                 ifaces=[f"{name}={','.join(nets)}" for name, nets in ROUTER_IFACES])
    assert len(result.table.kernel) == 4


@pytest.mark.kernel
def test_a_pool_with_one_port_runs_out(kernel: None, made: list[str]) -> None:
    """One address, one port: the second connection to the same server finds every
    tuple taken and is dropped when conntrack inserts it (insert_failed); to another
    server the same port is free again."""
    result = run(nat("-A POSTROUTING -o wan -p tcp -j SNAT --to-source 203.0.113.1:1024"), [
        b.tcp(CLIENT, SERVER, 40000, 80, "S", 1),
        b.tcp(CLIENT2, SERVER, 40001, 80, "S", 1),
        b.tcp(CLIENT2, OUTSIDER, 40001, 80, "S", 1),
        b.tcp(SERVER, WAN, 80, 1024, "SA", 9, 2),
    ])
    assert [p.kernel.outcome for p in result.packets] == [
        "forwarded", "dropped", "forwarded", "forwarded"]
    assert leaves(result, 3) == (WAN, OUTSIDER, 1024, 80)
    assert leaves(result, 4) == (SERVER, CLIENT, 80, 40000)


@pytest.mark.kernel
def test_hairpin_nat(kernel: None, made: list[str]) -> None:
    """A LAN client reaches the LAN printer through the router's public address: DNAT
    sends it back out of the LAN interface, and masquerading it there makes the
    printer answer the router, not the client directly."""
    result = run(nat(f"-A PREROUTING -d {WAN} -p tcp --dport 8080 -j DNAT "
                     f"--to-destination {PRINTER}:80",
                     f"-A POSTROUTING -s 192.168.1.0/24 -d {PRINTER} -p tcp --dport 80 "
                     "-j MASQUERADE",
                     "-A POSTROUTING -o wan -j MASQUERADE").replace(
                         "-A FORWARD -i lan -o wan -j ACCEPT",
                         "-A FORWARD -i lan -j ACCEPT"), [
        b.tcp(CLIENT, WAN, 40000, 8080, "S", 1),
        b.tcp(PRINTER, "192.168.1.1", 80, 40000, "SA", 9, 2),
        b.tcp(CLIENT, WAN, 40000, 8080, "A", 2, 10),
    ])
    assert leaves(result, 1) == ("192.168.1.1", PRINTER, 40000, 80)
    assert leaves(result, 2) == (WAN, CLIENT, 8080, 40000)


@pytest.mark.kernel
def test_an_icmp_error_from_behind_a_port_forward(kernel: None, made: list[str]) -> None:
    """The forwarded-to host's port unreachable leaves from the router's address, its
    quoted packet addressed as the outsider sent it."""
    quoted = b.udp(OUTSIDER, PRINTER, 7000, 5000, b"x")
    result = run(nat(f"-A PREROUTING -i wan -p udp --dport 5000 -j DNAT "
                     f"--to-destination {PRINTER}"), [
        b.udp(OUTSIDER, WAN, 7000, 5000, b"x"),
        b.icmp_error(PRINTER, OUTSIDER, 3, 3, quoted),
    ])
    assert result.packets[1].statewall.ctstate == "RELATED"
    assert leaves(result, 2)[:2] == (WAN, OUTSIDER)


HOST = "203.0.113.10"


@pytest.mark.kernel
def test_nat_of_what_the_firewall_sends_and_receives(kernel: None, made: list[str]) -> None:
    """DNAT in OUTPUT re-routes the firewall's own packet; SNAT in INPUT changes the
    source local sockets see, and the answer is translated back in OUTPUT."""
    rules = nat(f"-A OUTPUT -p tcp -d {SERVER} --dport 80 -j DNAT "
                f"--to-destination {OUTSIDER}:8080",
                "-A INPUT -s 198.51.100.7 -j SNAT --to-source 198.51.100.77")
    rules = rules.replace(":OUTPUT ACCEPT [0:0]\n-A INPUT",
                          ":OUTPUT ACCEPT [0:0]\n-A INPUT -p udp -j ACCEPT\n-A INPUT", 1)
    result = run(rules, [
        b.tcp(HOST, SERVER, 50000, 80, "S", 1),
        b.tcp(OUTSIDER, HOST, 8080, 50000, "SA", 9, 2),
        b.udp("198.51.100.7", HOST, 6000, 53, b"q"),
        b.udp(HOST, "198.51.100.77", 53, 6000, b"a"),
    ], ifaces=(LAN_IF, f"wan={HOST}/24,0.0.0.0/0"))
    assert [p.kernel.outcome for p in result.packets] == ["sent", "local", "local", "sent"]
    assert leaves(result, 1) == (HOST, OUTSIDER, 50000, 8080)
    assert leaves(result, 4) == (HOST, "198.51.100.7", 53, 6000)


def test_bytes_that_differ_beyond_forwarding_are_a_disagreement() -> None:
    """What forwarding changes (TTL and the header checksum) is set aside; a
    checksum NAT got wrong is not."""
    from statewall.oracle.kernel import KernelObservation
    from statewall.oracle.verify import compare_packet
    from statewall.verdict import Leaves, NatStep, PacketVerdict

    sent = b.udp(WAN, SERVER, 5353, 53, b"q")
    forwarded = b.udp(WAN, SERVER, 5353, 53, b"q", ttl=63)
    verdict = PacketVerdict(0, 1.0, "ACCEPT", "NEW", "ORIGINAL", (), None, "", "", 17,
                            src=CLIENT, dst=SERVER, sport=5353, dport=53,
                            nat=(NatStep("MASQUERADE", f"{CLIENT}:5353", f"{WAN}:5353"),),
                            leaves=Leaves(WAN, SERVER, 5353, 53))
    kernel = KernelObservation(1.0, "NEW", "ORIGINAL", "forwarded", "FORWARD", forwarded)
    assert compare_packet(1, kernel, verdict, sent).differences == ()
    broken = sent[:26] + bytes([sent[26] ^ 1]) + sent[27:]  # the UDP checksum
    assert compare_packet(1, kernel, verdict, broken).differences == ("bytes",)


@pytest.mark.kernel
def test_masquerade_picks_the_uplink_address_for_the_destination(kernel: None,
                                                                  made: list[str]) -> None:
    """An uplink with several addresses: IPv4 takes the first primary address whose
    subnet holds the next hop (203.0.113.2/24 is secondary to 203.0.113.1/24), else
    the first; IPv6 the address sharing the longest prefix with the destination,
    the one added last among equals."""
    rules = nat("-A POSTROUTING -o wan -j MASQUERADE")
    wan = "wan=203.0.113.1/24,203.0.113.2/24,198.51.100.129/25,198.51.100.254/24,0.0.0.0/0"
    result = run(rules, [b.udp(CLIENT, dst, 6000 + n, 53, b"q") for n, dst in enumerate(
        ("198.51.100.30", "198.51.100.200", "192.0.2.7", "203.0.113.77"))],
        ifaces=(LAN_IF, wan))
    assert [leaves(result, n)[0] for n in (1, 2, 3, 4)] == [
        "198.51.100.254", "198.51.100.129", "203.0.113.1", "203.0.113.1"]
    for order, tie in ((("2001:db8:2::1/64", "2001:db8:3::1/64"), "2001:db8:3::1"),
                       (("2001:db8:3::1/64", "2001:db8:2::1/64"), "2001:db8:2::1")):
        result = run(rules, [b.udp(CLIENT6, "2001:db8:2::20", 6000, 53, b"q"),
                             b.udp(CLIENT6, "2001:db8:9::20", 6001, 53, b"q")],
                     ifaces=(LAN6_IF, f"wan={','.join(order)},::/0"), v6=True)
        assert [leaves(result, 1)[0], leaves(result, 2)[0]] == ["2001:db8:2::1", tie]


@pytest.mark.kernel
def test_the_router_demos_events_are_the_kernels(kernel: None, made: list[str]) -> None:
    """`conntrack -E` of a masquerading, port-forwarding router: the NEW events
    already carry the translated reply tuples."""
    from statewall.demo import ROUTER_IFACES, router_datagrams
    from statewall.oracle.verify_events import verify_events

    machine = Topology.build((), ROUTER_IFACES)
    result = verify_events([Datagram(n, d) for n, (_, d) in enumerate(router_datagrams(), 1)],
                           ROUTER_RULES, local=machine.local, ifaces=machine.interfaces,
                           addresses=machine.addresses)
    assert result.same, result.mismatches
    assert any("[NEW]" in line and f"dst={WAN} sport=443" in line for line in result.kernel)


@pytest.mark.kernel
def test_a_port_forward_to_a_range_takes_the_lowest_free_port(kernel: None,
                                                              made: list[str]) -> None:
    """The kernel searches a DNAT port range from its bottom: every connection
    gets 8000 unless its tuple is taken, when the next port is tried (the same
    client port through two forwarded ports clashes on 8000, then has 8001)."""
    rules = nat(*(f"-A PREROUTING -i wan -p tcp --dport {port} -j DNAT "
                  f"--to-destination {PRINTER}:8000-8010" for port in (8080, 8081)))
    result = run(rules, [
        b.tcp(OUTSIDER, WAN, 5555, 8080, "S", 9),
        b.tcp("198.51.100.98", WAN, 5555, 8080, "S", 9),
        b.tcp(OUTSIDER, WAN, 5555, 8081, "S", 9),
        b.tcp(OUTSIDER, WAN, 5556, 8081, "S", 9),
    ])
    assert [leaves(result, n)[3] for n in (1, 2, 3, 4)] == [8000, 8000, 8001, 8000]
    assert not any(step.random for p in result.packets for step in p.statewall.nat)
