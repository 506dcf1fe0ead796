"""Real nftables rulesets from ../shared/nft-rulesets, judged by statewall and the kernel.

The nft counterpart of test_verify_rulesets.py: each case loads the kernel's
listing of one shared ruleset (`NAME.nft`) with `nft -f` into the oracle's
firewall and into statewall (nftverify.NftSetup: interfaces renamed to `swl`,
where connections start, and `swr`; the firewall's addresses from `--iface`
texts), sends the same datagrams through both and requires agreement on
every packet and on the final conntrack table. The kernel's answers are
pinned, so a case keeps exercising what its name promises: an allowed port, a
refused one (reject), INVALID, ESTABLISHED replies, RELATED ICMP errors, a rate
limit.

The rulesets written for a host (tor-relay-server, docker-swarm-ipv6-host,
deb-sets-and-maps, the input side of nixos-nnf-zones and fw4-zones-policies)
are verified with the firewall holding the addresses the traffic is sent to:
what reaches them meets the input chain ("local"), what they answer leaves
through output ("sent").

Fitting, per ruleset:

* deb-overview: as listed, its one chain has no hook, so no packet ever meets
  it. The hooked variant puts it on forward (policy accept) and gives the
  example's bare selector lines the verdicts a workstation would attach
  (iif/oif accept, ct state invalid drop, established/related accept), without
  the blanket `counter drop` and `accept` that would end every packet before
  the rejects; bond0/eth0 are `swl`, bond1/eth1 `swr`.
* deb-sets-and-maps: `iif` needs its interfaces to exist when loaded, and the
  oracle's firewall has two. eth0 and eth1 stand together in every set, as
  do eth2 and eth3, so each pair is one side (eth0/eth1 `swl`, eth2/eth3
  `swr`). The example declares its named set and verdict map empty; the case
  fills them (`eth0` in local_ifs, `eth0 : jump input_1` and `eth2 : drop` in
  jump_map) so the lookups meet traffic.
* nixos-nnf-zones: zone `a` is `swl`. 1234:: is reached through `swr` as a
  route only (1234::/64): with an address in 1234::/64 the forwarding kernel
  would hold 1234:: as its subnet-router anycast address and deliver it.
* fw4-zones-policies: three zones, two interfaces: two cases, zone1 (accept)
  beside zone3 (reject) and zone2 (drop) beside zone1.

The limits (`limit rate 5/second`, burst 5) let the first five echo requests
through: the datagrams take a few milliseconds, far below one token (0.2 s).
Addresses are documentation ranges, or the ruleset's own (1.2.3.4, 1234::,
192.168.1.0/24 in nixos-nnf-zones), inside the oracle's namespaces only.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest
from nftverify import NftSetup, run_nft
from test_verify_rulesets import (
    EST_O,
    EST_R,
    INV_D,
    INV_F,
    NEW_D,
    NEW_F,
    REL_R,
    assert_agrees,
    handshake,
    kernel_answer,
    syn,
)

from statewall import builder as b
from statewall.oracle.verify import Datagram

# A host's answers: what reaches its addresses is "local", what it sends "sent".
NEW_L, EST_OL, INV_L = "NEW/ORIGINAL local", "ESTABLISHED/ORIGINAL local", "INVALID local"
EST_RS, REL_RS, NEW_S = "ESTABLISHED/REPLY sent", "RELATED/REPLY sent", "NEW/ORIGINAL sent"
REL_OL, REL_RL = "RELATED/ORIGINAL local", "RELATED/REPLY local"
EST_RL = "ESTABLISHED/REPLY local"
UNT_L, UNT_D = "UNTRACKED local", "UNTRACKED dropped"

HOST, CLIENT, HOST6, CLIENT6 = "192.0.2.1", "192.0.2.50", "2001:db8:1::1", "2001:db8:1::50"
OTHER_HOST, REMOTE, REMOTE6 = "198.51.100.1", "198.51.100.9", "2001:db8:2::9"
# The host's addresses on swl (its clients' side) and swr.
HOST_LEFT = "swl=192.0.2.1/24,2001:db8:1::1/64,fe80::1/64"
HOST_RIGHT = "swr=198.51.100.1/24,2001:db8:2::1/64"


@dataclass(frozen=True)
class NftCase:
    """Datagrams built for one nft ruleset and the kernel's answer to each."""

    name: str
    setup: NftSetup
    packets: tuple[tuple[bytes, str], ...]  # (datagram, kernel answer)


def limited(echoes: list[bytes]) -> list[tuple[bytes, str]]:
    """Echo requests under `limit rate 5/second` (burst 5): the first five pass."""
    return [(echo, NEW_L if n < 5 else NEW_D) for n, echo in enumerate(echoes)]


# --- deb-overview: the Debian example's selectors, verdicts and rejects -----------------------

OVERVIEW_IFS = {"eth0": "swl", "bond0": "swl", "eth1": "swr", "bond1": "swr"}
OVERVIEW = NftSetup("deb-overview", OVERVIEW_IFS, ifaces=(HOST_LEFT, HOST_RIGHT))
OVERVIEW_HOOKED = NftSetup("deb-overview", OVERVIEW_IFS, fixes=(
    ("chain overview_test_chain {\n",
     "chain overview_test_chain {\n\t\ttype filter hook forward priority filter; policy accept;\n"),
    ('iif "bond0" oif "bond1"\n', 'iif "bond0" oif "bond1" accept\n'),
    ("ct state invalid\n", "ct state invalid counter drop\n"),
    ("ct state established,related\n", "ct state established,related accept\n"),
    ("\t\tcounter packets 0 bytes 0 drop\n\t\taccept\n", ""),
), ifaces=(HOST_LEFT, HOST_RIGHT))


def overview_traffic() -> list[bytes]:
    web = handshake(CLIENT, REMOTE, 40000, 80)
    web6 = handshake(CLIENT6, REMOTE6, 40000, 443)
    dns = b.udp(CLIENT, REMOTE, 5000, 53, b"q")
    return [*web, syn(REMOTE, CLIENT, 40001, 22), *web6, syn(REMOTE6, CLIENT6, 40002, 22),
            dns, b.udp(REMOTE, CLIENT, 53, 5000, b"a"), b.icmp_error(REMOTE, CLIENT, 3, 3, dns),
            b.tcp(CLIENT, REMOTE, 40003, 80, "SA", 5, 6), b.tcp(REMOTE, CLIENT, 80, 40004, "SA", 5, 6),
            b.udp(REMOTE, CLIENT, 5001, 123, b"n"), b.icmpv6_echo(REMOTE6, CLIENT6, 3, 1),
            syn(CLIENT, "192.0.2.60", 40005, 80)]  # in and out of swl


def deb_overview_case() -> NftCase:
    """As listed: a chain without a hook filters nothing."""
    answers = [NEW_F, EST_R, EST_O, NEW_F, NEW_F, EST_R, EST_O, NEW_F, NEW_F, EST_R, REL_R,
               INV_F, INV_F, NEW_F, NEW_F, NEW_F]
    return NftCase("deb-overview", OVERVIEW, tuple(zip(overview_traffic(), answers,
                                                       strict=True)))


def deb_overview_hooked_case() -> NftCase:
    answers = [
        NEW_F, EST_R, EST_O,  # iif "bond0" oif "bond1" accept, then established
        NEW_D,  # from swr: counter reject (icmpx port-unreachable)
        NEW_F, EST_R, EST_O,  # IPv6 alike: iif/oif are families' own
        NEW_D,  # reject
        NEW_F, EST_R, REL_R,  # udp, its reply, an ICMP error about it: related accept
        INV_F,  # INVALID from swl: iif/oif accept comes first
        INV_D,  # INVALID from swr: ct state invalid counter drop
        NEW_D, NEW_D,  # udp and ICMPv6 from swr: reject
        NEW_D,  # iif "bond0" but oif is swl again: reject
    ]
    return NftCase("deb-overview hooked", OVERVIEW_HOOKED, tuple(zip(overview_traffic(), answers,
                                                                     strict=True)))


# --- deb-sets-and-maps: named sets and a verdict map of interface indexes ---------------------

SETS = NftSetup("deb-sets-and-maps", {"eth0": "swl", "eth1": "swl", "eth2": "swr", "eth3": "swr"},
                fixes=(("type iface_index\n\t}",
                        'type iface_index\n\t\telements = { "eth0" }\n\t}'),
                       ("type iface_index : verdict\n\t}",
                        'type iface_index : verdict\n\t\telements = { "eth0" : jump input_1, '
                        '"eth2" : drop }\n\t}')),
                ifaces=(HOST_LEFT, HOST_RIGHT))


def deb_sets_and_maps_case() -> NftCase:
    h, c, r = HOST, CLIENT, REMOTE
    ssh = handshake(c, h, 40000, 22)
    out = handshake(h, r, 40001, 80)
    return NftCase("deb-sets-and-maps", SETS, (
        (ssh[0], NEW_L), (ssh[1], EST_RS), (ssh[2], EST_OL),  # swl: counted, jump input_1
        (syn(c, h, 40002, 124), NEW_L),  # 123-125 in the port set: counted
        (b.udp(c, h, 5000, 53, b"q"), NEW_L),  # policy accept
        (syn(r, h, 40003, 22), NEW_D),  # swr (eth2): jump_map drop
        (out[0], NEW_S), (out[1], "ESTABLISHED/REPLY dropped"), (out[2], "ESTABLISHED/ORIGINAL sent"),
        (b.udp(h, r, 5001, 53, b"q"), NEW_S),
        (b.udp(r, h, 53, 5001, b"a"), "ESTABLISHED/REPLY dropped"),  # the map asks no state
        (b.tcp(c, h, 40005, 22, "SA", 5, 6), INV_L),  # nothing asks for the state
    ))


# --- tor-relay-server: ct state vmap, meta protocol vmap, limited ping ----------------------

TOR = NftSetup("tor-relay-server", ifaces=(HOST_LEFT,))


def tor_relay_server_case() -> NftCase:
    h, c, h6, c6 = HOST, CLIENT, HOST6, CLIENT6
    ssh = handshake(c, h, 40000, 22)
    dns6 = b.udp(h6, c6, 5000, 53, b"x")
    target = ipaddress.ip_address(h6).packed
    return NftCase("tor-relay-server", TOR, (
        (ssh[0], NEW_L), (ssh[1], EST_RS), (ssh[2], EST_OL),  # tcp dport {22, 80, 443}
        (syn(c, h, 40001, 23), NEW_D),  # policy drop
        (b.tcp(c, h, 40002, 22, "SA", 5, 6), INV_D),  # ct state vmap: invalid : drop
        *limited([b.icmp_echo(c, h, 7, n) for n in range(1, 8)]),  # input_ipv4's limit
        (b.icmp_echo(h, c, 7, 1, reply=True), EST_RS),
        (b.udp(c, h, 5000, 53, b"q"), NEW_D),
        *[(p, answer) for p, answer in zip(handshake(c6, h6, 40010, 443), (NEW_L, EST_RS, EST_OL),
                                           strict=True)],
        *limited([b.icmpv6_echo(c6, h6, 8, n) for n in range(1, 8)]),  # input_ipv6's limit
        (b.icmp_error(h, c, 3, 3, ssh[0]), REL_RS),
        # Neighbour discovery is untracked: no ct state key, input_ipv6 accepts it by type.
        (b.icmpv6(c6, h6, 135, 0, b"\0" * 4 + target), UNT_L),
        (b.icmpv6("fe80::5", "ff02::1", 134, 0, b"\x40\0\x07\x08" + b"\0" * 8), UNT_L),
        (b.icmpv6(c6, h6, 133, 0, b"\0" * 4), UNT_D),  # a router solicitation is not
        (b.icmpv6(c6, h6, 129, 0, b"\0\x05\0\x01"), INV_D),  # an echo reply nobody asked for
        (dns6, NEW_S), (b.icmpv6_error(c6, h6, 1, 4, dns6), REL_RL),  # related : accept
        (b.icmp(c, h, 13, 0, b"\0" * 4, b"\0" * 12), NEW_D),  # timestamp: not echo-request
        (b.tcp(c, h, 40021, 22, "F", 5, 0), INV_D),
        (b.ipv6(c6, h6, 6, b.tcp_segment(c6, h6, 40022, 22, "S", 1, window=1000),
                ext_headers=[b.destination_options()]), NEW_L),  # tcp dport past the header
    ))


# --- docker-swarm-ipv6-host: separate ip and ip6 tables, limits, counters -------------------

SWARM = NftSetup("docker-swarm-ipv6-host", ifaces=(HOST_LEFT,))


def docker_swarm_ipv6_host_case() -> NftCase:
    h, c, h6, c6 = HOST, CLIENT, HOST6, CLIENT6
    ssh = handshake(c, h, 40000, 22)
    ssh6 = handshake(c6, h6, 40000, 22)
    mdns = b.udp(h, c, 5353, 5353, b"o")
    return NftCase("docker-swarm-ipv6-host", SWARM, (
        (ssh[0], NEW_L), (ssh[1], EST_RS), (ssh[2], EST_OL),  # ip filter: tcp dport 22
        (syn(c, h, 40001, 80), NEW_L),  # tcp dport { 80, 443 }
        (syn(c, h, 40002, 8080), NEW_D),  # policy drop
        (b.udp(c, h, 547, 546, b"d"), NEW_D),  # dhcpv6 is the ip6 table's only
        *limited([b.icmp_echo(c, h, 7, n) for n in range(1, 8)]),  # INPUT_IPV4's limit
        (ssh6[0], NEW_L), (ssh6[1], EST_RS), (ssh6[2], EST_OL),  # ip6 filter: tcp dport 22
        (syn(c6, h6, 40003, 443), NEW_L), (syn(c6, h6, 40004, 2377), NEW_D),
        (b.udp("fe80::5", "fe80::1", 547, 546, b"d"), NEW_L),  # udp dport 546
        (b.udp(c6, h6, 5000, 53, b"q"), NEW_D),
        *limited([b.icmpv6_echo(c6, h6, 8, n) for n in range(1, 8)]),  # INPUT_IPV6's limit
        # Nothing drops INVALID: it goes on down the chain, to tcp dport 22 accept.
        (b.tcp(c, h, 40005, 22, "SA", 5, 6), INV_L), (b.tcp(c6, h6, 40005, 22, "SA", 5, 6), INV_L),
        (b.icmpv6_error(h6, c6, 1, 4, ssh6[0]), REL_RS),  # OUTPUT policy accept
        (b.icmp_error(c, h, 3, 3, ssh[1]), REL_OL),  # ct state established,related accept
        (mdns, NEW_S), (b.udp(c, h, 5353, 5353, b"p"), EST_RL),
    ))


# --- nixos-nnf-zones: zones by interface and by address, traverse chains ----------------------

NIXOS = NftSetup("nixos-nnf-zones", {"a": "swl"}, ifaces=(
    "swl=192.0.2.1/24,2001:db8:1::1/64,fe80::1/64",
    "swr=1.2.3.1/24,192.168.1.1/24,2001:db8:2::1/64,1234::/64"))


def nixos_nnf_zones_case() -> NftCase:
    a, a6, fw, fw6 = CLIENT, CLIENT6, HOST, HOST6
    target, target6, sub, outside = "1.2.3.4", "1234::", "192.168.1.7", "1.2.3.9"
    web = handshake(a, target, 41000, 42)
    return NftCase("nixos-nnf-zones", NIXOS, (
        (web[0], NEW_F), (web[1], EST_R), (web[2], EST_O),  # iifname "a": daddr 1.2.3.4 tcp 42
        (syn(a, target, 41001, 43), NEW_D),  # forward's counter drop
        *[(p, answer) for p, answer in zip(handshake(sub, target, 41002, 42),
                                           (NEW_F, EST_R, EST_O), strict=True)],  # saddr zone
        (syn(outside, target, 41003, 42), NEW_D),  # neither zone
        (syn(outside, a, 41004, 42), NEW_D),
        *[(p, answer) for p, answer in zip(handshake(a6, target6, 41005, 42),
                                           (NEW_F, EST_R, EST_O), strict=True)],  # 1234:: tcp 42
        (syn(a6, "1234::5", 41006, 42), NEW_D),
        *[(p, answer) for p, answer in zip(handshake(a, fw, 41007, 22),
                                           (NEW_L, EST_RS, EST_OL), strict=True)],  # input: 22
        (syn(a, fw, 41008, 80), NEW_D),  # input's counter drop
        (b.icmp_echo(a, fw, 3, 1), NEW_L),  # rule-icmp
        (b.icmp(a, fw, 9, 0, b"\0" * 4, b""), INV_D),  # a router advertisement is INVALID
        (b.icmp(a, fw, 13, 0, b"\0" * 4, b"\0" * 12), NEW_D),
        (b.icmpv6_echo(a6, fw6, 4, 1), NEW_L),
        (b.udp("fe80::5", "fe80::1", 547, 546, b"d"), NEW_L),  # rule-dhcpv6: link-local only
        (b.udp(a6, fw6, 547, 546, b"d"), NEW_D),
        (b.tcp(target, a, 42, 41009, "SA", 5, 6), INV_D),  # forward: ct state invalid drop
        (b.icmp_error(target, a, 3, 3, web[0]), REL_R),
        (b.tcp(a, fw, 41010, 22, "SA", 5, 6), INV_D),  # input: ct state invalid drop
        # `ip6 nexthdr` is the header's own field: behind an extension header it is not
        # ipv6-icmp, so rule-icmp's first rule misses (`icmpv6 type` alone would match).
        (b.icmpv6(a6, fw6, 128, 0, b"\0\x09\0\x01", ext_headers=[b.hop_by_hop()]), NEW_D),
        (b.ipv6(a6, target6, 6, b.tcp_segment(a6, target6, 41011, 42, "S", 1, window=1000),
                ext_headers=[b.destination_options()]), NEW_F),  # tcp dport: past it
    ))


# --- fw4-zones-policies: OpenWrt zones with accept, drop and reject policies -----------------

FW4_ZONE13 = NftSetup("fw4-zones-policies", {"zone1": "swl", "zone3": "swr"},
                      ifaces=(HOST_LEFT, HOST_RIGHT))
FW4_ZONE21 = NftSetup("fw4-zones-policies", {"zone2": "swl", "zone1": "swr"},
                      ifaces=(HOST_LEFT, HOST_RIGHT))


def fw4_zone1_zone3_case() -> NftCase:
    h, c, h2, r = HOST, CLIENT, OTHER_HOST, REMOTE
    ssh = handshake(c, h, 40000, 22)
    return NftCase("fw4-zones-policies zone1 zone3", FW4_ZONE13, (
        (ssh[0], NEW_L), (ssh[1], EST_RS), (ssh[2], EST_OL),  # accept_from_test1
        (b.udp(c, h, 5000, 53, b"q"), NEW_L), (b.icmpv6_echo(CLIENT6, HOST6, 3, 1), NEW_L),
        (syn(r, h2, 40001, 22), NEW_D),  # reject_from_test3: tcp reset
        (b.udp(r, h2, 5001, 53, b"q"), NEW_D),  # reject (port unreachable)
        (syn(c, r, 40002, 80), NEW_D),  # forward_test1 accepts only to zone1: policy drop
        (syn(r, c, 40003, 80), NEW_D),  # forward_test3 rejects only to zone3: policy drop
        (syn(h2, r, 40004, 80), NEW_D),  # output to zone3: reject_to_test3
        (b.udp(h2, r, 5002, 53, b"q"), NEW_D),
        (syn(h, c, 40005, 80), NEW_S),  # output to zone1: accept_to_test1
        (b.tcp(c, h, 40006, 22, "SA", 5, 6), INV_L),  # the vmap has no invalid key
        (b.icmp_error(h, c, 3, 3, ssh[0]), REL_RS),  # related : accept
    ))


def fw4_zone2_zone1_case() -> NftCase:
    h, c, h2, r = HOST, CLIENT, OTHER_HOST, REMOTE
    ssh = handshake(r, h2, 40011, 22)
    return NftCase("fw4-zones-policies zone2 zone1", FW4_ZONE21, (
        (syn(c, h, 40010, 22), NEW_D),  # drop_from_test2
        (b.udp(c, h, 5010, 53, b"q"), NEW_D),
        (ssh[0], NEW_L), (ssh[1], EST_RS), (ssh[2], EST_OL),  # zone1 on swr: accepted
        (syn(h, c, 40012, 80), NEW_D),  # drop_to_test2
        (syn(h2, r, 40013, 80), NEW_S),
        (syn(c, r, 40014, 80), NEW_D), (syn(r, c, 40015, 80), NEW_D),
    ))


CASES = [deb_overview_case, deb_overview_hooked_case, deb_sets_and_maps_case,
         tor_relay_server_case, docker_swarm_ipv6_host_case, nixos_nnf_zones_case,
         fw4_zone1_zone3_case, fw4_zone2_zone1_case]


@pytest.mark.kernel
@pytest.mark.shared
@pytest.mark.parametrize("make", CASES, ids=lambda m: m.__name__.removesuffix("_case"))
def test_nft_ruleset_case(kernel: None, shared: Path, make: object) -> None:
    assert callable(make)
    case: NftCase = make()
    datagrams = [Datagram(n, d) for n, (d, _) in enumerate(case.packets, 1)]
    result = run_nft(case.setup, shared, datagrams)
    assert not result.skipped, f"{case.name}: {result.skipped}"
    got = tuple(kernel_answer(p, d) for p, (d, _) in zip(result.packets, case.packets,
                                                         strict=True))
    assert got == tuple(answer for _, answer in case.packets), f"{case.name}: the kernel changed"
    assert_agrees(case.name, result)
