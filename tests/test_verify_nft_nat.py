"""Shared nftables rulesets that translate, judged by statewall and the live kernel alike.

Each case loads one kernel listing from ../shared/nft-rulesets (fitted by
nftverify: interfaces renamed, `swl` where connections start and `swr` the
other side; the firewall's addresses given as `--iface` texts, which is what
masquerade takes and where the routes lead) with `nft -f` into the oracle's
firewall and into statewall, sends the same datagrams through both and requires
agreement on every packet's ctstate, direction and fate, on the addresses and
ports it leaves with and on the final conntrack table, as the iptables NAT cases
of test_verify_rulesets.py do. The kernel's own answers are pinned too (`as
SRC:SPORT > DST:DPORT` where the packet left translated), so a case keeps
exercising the rules its comments name. Replies are addressed to the translated
addresses, as the peer sees them.

Choices the kernel draws at random (numgen random, a masquerade whose source port
is taken, `masquerade fully-random`) are never asked: only single-endpoint services
(kube-proxy's `numgen random mod 1`) and free ports; kube-proxy's masquerade is asked
in a fitted copy without `fully-random`.

Packets are built in code; addresses come from the rulesets themselves or from
the documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from nftverify import NftSetup, run_nft
from test_nat_helpers_kernel import Stream
from test_verify_rulesets import (
    EST_O,
    EST_R,
    INV_D,
    NEW_D,
    NEW_F,
    NEW_L,
    REL_R,
    as_,
    assert_agrees,
    handshake,
    kernel_answer,
    syn,
)

from statewall import builder as b
from statewall.oracle.verify import Datagram, verify_datagrams
from statewall.topology import Topology, parse_iface

UPLINK = "203.0.113.1"  # the uplink address of every router here that masquerades
UPLINK_IF = f"swr={UPLINK}/24,0.0.0.0/0"
WEB = "198.51.100.30"
NEW_LD = "NEW/ORIGINAL dropped"


@dataclass(frozen=True)
class NftCase:
    """Datagrams built for one nft ruleset and the kernel's answer to each."""

    name: str
    setup: NftSetup
    packets: tuple[tuple[bytes, str], ...]  # (datagram, kernel answer)


# --- a home router (br0 wired, wbr0 wireless, wan0 the uplink) --------------------------------

WIRELESS = NftSetup("wireless-router", {"br0": "swl", "wan0": "swr"},
                    ifaces=("swl=192.0.2.1/24", UPLINK_IF))
PC, ROUTER = "192.0.2.10", "192.0.2.1"


def wireless_router_case() -> NftCase:
    up = UPLINK
    web = handshake(PC, WEB, 40000, 80, reply=(WEB, up, 80, 40000))
    dns = b.udp(PC, WEB, 40001, 53, b"q")
    ssh = handshake(PC, ROUTER, 40002, 22)
    echoes = [(b.icmp_echo(PC, ROUTER, 100 + n, 1), NEW_L if n < 5 else NEW_LD)
              for n in range(7)]
    return NftCase("wireless-router", WIRELESS, (
        # forward: iifname "br0" accept; postrouting: iifname br0 oifname wan0 masquerade
        (web[0], as_(NEW_F, up, WEB, 40000, 80)), (web[1], as_(EST_R, WEB, PC, 80, 40000)),
        (web[2], as_(EST_O, up, WEB, 40000, 80)),
        (dns, as_(NEW_F, up, WEB, 40001, 53)),
        (b.udp(WEB, up, 53, 40001, b"a"), as_(EST_R, WEB, PC, 53, 40001)),
        (b.icmp_error(WEB, up, 3, 3, b.udp(up, WEB, 40001, 53, b"q")), as_(REL_R, WEB, PC)),
        # input: iifname vmap "br0" : jump in_wired; ip protocol . th dport vmap tcp . 22
        (ssh[0], NEW_L), (ssh[1], "ESTABLISHED/REPLY sent"), (ssh[2], "ESTABLISHED/ORIGINAL local"),
        (syn(PC, ROUTER, 40003, 23), NEW_LD),  # in_wired returns: counter, policy drop
        (b.udp(PC, ROUTER, 40004, 53, b"q"), NEW_L), (b.udp(PC, ROUTER, 40005, 123, b"t"), NEW_L),
        (syn(PC, ROUTER, 40006, 53), NEW_L), (b.udp(PC, ROUTER, 40007, 161, b"s"), NEW_LD),
        # icmp type echo-request limit rate 5/second: a burst of 5, then policy drop
        *echoes,
        (syn(WEB, up, 40008, 22), NEW_LD),  # iifname wan0: no vmap entry, policy drop
        (syn(WEB, PC, 40009, 22), NEW_D),  # forward from wan0: policy drop
        (b.tcp(WEB, up, 80, 40010, "SA", 5, 6), INV_D),  # ct state vmap invalid : drop
    ))


# --- a Raspberry Pi access point (wlan0 its clients, wlan1 the uplink) --------------------------

# 192.0.2.0/24 is routed to the clients' side too: a source there, outside the Pi's own
# 192.168.4.0/24, enters on wlan0 and meets the "Wifi-Alert" drop.
PI = NftSetup("pi-access-point", {"wlan0": "swl", "wlan1": "swr"},
              ifaces=("swl=192.168.4.1/24,192.0.2.0/24", UPLINK_IF))
PHONE, PI_ADDR, STRANGER = "192.168.4.10", "192.168.4.1", "192.0.2.99"


def pi_access_point_case() -> NftCase:
    up = UPLINK
    web = handshake(PHONE, WEB, 41000, 443, reply=(WEB, up, 443, 41000))
    ssh = handshake(PHONE, PI_ADDR, 41001, 22)
    return NftCase("pi-access-point", PI, (
        # forward: iifname wlan0 oifname wlan1 accept; ip nat: oifname wlan1 masquerade
        (web[0], as_(NEW_F, up, WEB, 41000, 443)), (web[1], as_(EST_R, WEB, PHONE, 443, 41000)),
        (web[2], as_(EST_O, up, WEB, 41000, 443)),
        (b.udp(PHONE, WEB, 41002, 53, b"q"), as_(NEW_F, up, WEB, 41002, 53)),
        (b.udp(WEB, up, 53, 41002, b"a"), as_(EST_R, WEB, PHONE, 53, 41002)),
        (b.icmp_echo(PHONE, WEB, 3, 1), as_(NEW_F, up, WEB)),
        (b.icmp_echo(WEB, up, 3, 1, reply=True), as_(EST_R, WEB, PHONE)),
        # input: iifname wlan0 tcp dport 22 log prefix "SSH-Attempt: " accept
        (ssh[0], NEW_L), (ssh[1], "ESTABLISHED/REPLY sent"), (ssh[2], "ESTABLISHED/ORIGINAL local"),
        (b.udp(PHONE, PI_ADDR, 41003, 53, b"q"), NEW_L),  # ip saddr 192.168.4.0/24 udp 53
        (b.udp(STRANGER, PI_ADDR, 41004, 53, b"q"), NEW_LD),  # log prefix "Wifi-Alert: " drop
        (b.icmp_echo(STRANGER, PI_ADDR, 4, 1), NEW_L),  # icmp echo-request comes first
        (syn(PHONE, PI_ADDR, 41005, 80), NEW_L),  # input policy accept
        (syn(WEB, up, 41006, 80), NEW_L),  # from wlan1: policy accept
        # forward: wlan1 -> wlan0 is accepted only ESTABLISHED, but the policy accepts
        (syn(WEB, PHONE, 41007, 22), NEW_F),
    ))


# --- Debian's NAT example: dnat and snat through maps -------------------------------------

# No interface is named. The clients' side routes the map's source networks; the map's
# targets (1.1.1.1, 2.2.2.2, 3.3.3.3) lie beyond the uplink.
DEB_NAT = NftSetup("deb-nat", ifaces=(
    "swl=192.168.1.254/24,192.168.2.0/24,192.168.3.0/24", UPLINK_IF))


def deb_nat_case() -> NftCase:
    up, one, two = UPLINK, "192.168.1.1", "192.168.2.2"
    web = handshake(one, WEB, 42000, 80, reply=(WEB, "1.1.1.1", 80, 42000))
    fwd = handshake(WEB, up, 42001, 1000, reply=("1.1.1.1", WEB, 1234, 42001))
    return NftCase("deb-nat", DEB_NAT, (
        # postrouting: snat to ip saddr map { 192.168.1.1 : 1.1.1.1, ... }
        (web[0], as_(NEW_F, "1.1.1.1", WEB, 42000, 80)),
        (web[1], as_(EST_R, WEB, one, 80, 42000)),
        (web[2], as_(EST_O, "1.1.1.1", WEB, 42000, 80)),
        (b.udp(two, WEB, 42002, 53, b"q"), as_(NEW_F, "2.2.2.2", WEB, 42002, 53)),
        (b.udp(WEB, "2.2.2.2", 53, 42002, b"a"), as_(EST_R, WEB, two, 53, 42002)),
        (syn("192.168.1.50", WEB, 42003, 80), NEW_F),  # not in the map: no translation
        # prerouting: dnat to tcp dport map { 1000 : 1.1.1.1, ... }:tcp dport map { 1000 : 1234 }
        (fwd[0], as_(NEW_F, WEB, "1.1.1.1", 42001, 1234)),
        (fwd[1], as_(EST_R, up, WEB, 1000, 42001)),
        (fwd[2], as_(EST_O, WEB, "1.1.1.1", 42001, 1234)),
        (syn("192.168.1.50", up, 42004, 3000), as_(NEW_F, "192.168.1.50", "3.3.3.3", 42004,
                                                   3456)),
        (syn(WEB, up, 42005, 4000), NEW_L),  # no map entry: the firewall's own port
        (b.udp(WEB, up, 42006, 1000, b"u"), NEW_L),  # tcp dport: udp is not translated
    ))


# --- Docker's bridge driver on nftables (br-dummy 192.168.0.0/24, a port published) ------

DOCKER = NftSetup("docker-bridge-snat-ip", {"br-dummy": "swl"},
                  ifaces=("swl=192.168.0.1/24", UPLINK_IF))
CONTAINER, OTHER = "192.168.0.2", "192.168.0.3"


def docker_bridge_snat_ip_case() -> NftCase:
    up, c = UPLINK, CONTAINER
    pub = handshake(WEB, up, 43000, 8080, reply=(c, WEB, 80, 43000))
    out = handshake(c, WEB, 43001, 443, reply=(WEB, "192.168.123.0", 443, 43001))
    return NftCase("docker-bridge-snat-ip", DOCKER, (
        # nat-PREROUTING: fib daddr type local; iifname != br-dummy tcp dport 8080 dnat
        (pub[0], as_(NEW_F, WEB, c, 43000, 80)),  # filter-forward-in: daddr .2 tcp 80
        (pub[1], as_(EST_R, up, WEB, 8080, 43000)),
        (pub[2], as_(EST_O, WEB, c, 43000, 80)),
        # nat-postrouting-out__br-dummy: snat to 192.168.123.0
        (out[0], as_(NEW_F, "192.168.123.0", WEB, 43001, 443)),
        (out[1], as_(EST_R, WEB, c, 443, 43001)),
        (out[2], as_(EST_O, "192.168.123.0", WEB, 43001, 443)),
        (syn(WEB, c, 43002, 80), "- dropped"),  # raw-PREROUTING: DROP DIRECT ACCESS
        (syn(WEB, OTHER, 43003, 22), NEW_D),  # UNPUBLISHED PORT DROP
        (syn(WEB, up, 43004, 8081), NEW_L),  # nothing published there
        # nat-OUTPUT: the host's own connection elsewhere is not fib daddr type local
        # (the host asking its own published port would not leave it: not injectable)
        (syn(up, WEB, 43005, 8080), "NEW/ORIGINAL sent"),
        (b.icmp_echo(c, WEB, 6, 1), as_(NEW_F, "192.168.123.0", WEB)),
        (b.icmp_echo(WEB, "192.168.123.0", 6, 1, reply=True), as_(EST_R, WEB, c)),
    ))


# --- Debian's ct helper example: helper objects assigned in input -------------------------

# The firewall is the server (the chain hooks input), on the clients' side. As listed the
# example assigns helpers but accepts nothing new: the first packet of a control
# connection gets its helper and dies by the policy, so nothing is ever expected.
HELPERS_IFACES = ("swl=192.0.2.1/24", UPLINK_IF)
HELPERS = NftSetup("deb-ct-helpers", ifaces=HELPERS_IFACES)
# The fitted case accepts the control connections after the helpers are set.
HELPERS_OPEN = NftSetup("deb-ct-helpers", ifaces=HELPERS_IFACES, fixes=((
    'ct helper set udp dport map { 69 : "tftp-69", 5060 : "sip-5060" }\n',
    'ct helper set udp dport map { 69 : "tftp-69", 5060 : "sip-5060" }\n'
    "\t\ttcp dport 21 accept\n\t\tudp dport 69 accept\n"),))
SERVER = "192.0.2.1"


def deb_ct_helpers_case() -> NftCase:
    return NftCase("deb-ct-helpers", HELPERS, (
        (syn(PC, SERVER, 44000, 21), NEW_LD),  # ct helper set "ftp-standard"; policy drop
        (b.tcp(SERVER, PC, 21, 44000, "SA", 9000, 7001), "INVALID sent"),  # no connection
        (b.udp(PC, SERVER, 44001, 69, b"\x00\x01f\x00octet\x00"), NEW_LD),  # tftp-69
        (b.udp(SERVER, PC, 3000, 44001, b"\x00\x03\x00\x01d"), "NEW/ORIGINAL sent"),
    ))


# --- kube-proxy in nftables mode (pods 10.0.0.0/8 and outside clients on swl, the service
# endpoints 10.180.0.0/16 on swr) -----------------------------------------------------------

# The node holds 192.168.0.2 (its nodeport-ips) on swl; 203.0.113.0/24 holds the sources
# that svc5's LoadBalancerSourceRanges (203.0.113.0/25) let through. No interface is named.
KUBE_IFACES = ("swl=192.0.2.1/24,192.168.0.2/24,203.0.113.0/24,10.0.0.0/8",
               "swr=10.180.0.254/16,0.0.0.0/0")
KUBE = NftSetup("kube-proxy-nftables", ifaces=KUBE_IFACES)
# Masquerade is `fully-random`: the kernel draws every masqueraded source port. The
# fitted variant masquerades without it, so the marked connections' ports can be asked.
KUBE_MASQ = NftSetup("kube-proxy-nftables", ifaces=KUBE_IFACES,
                     fixes=(("masquerade fully-random", "masquerade"),))
POD, OUTSIDER, NODE, LB_CLIENT = "10.1.0.5", "192.0.2.50", "192.168.0.2", "203.0.113.10"
KUBE_SNAT = "10.180.0.254"  # swr's address: where masquerade leads


def kube_proxy_case() -> NftCase:
    """What needs no masquerade: pods (10.0.0.0/8) are never marked."""
    svc1 = handshake(POD, "172.30.0.41", 45000, 80, reply=("10.180.0.1", POD, 80, 45000))
    ext = handshake(POD, "1.2.3.4", 45001, 80, reply=("10.180.0.2", POD, 80, 45001))
    return NftCase("kube-proxy-nftables", KUBE, (
        # services: ip daddr . meta l4proto . th dport vmap @service-ips; numgen random
        # mod 1 picks the one endpoint; masquerading: mark & 0x4000 == 0 return
        (svc1[0], as_(NEW_F, POD, "10.180.0.1", 45000, 80)),
        (svc1[1], as_(EST_R, "172.30.0.41", POD, 80, 45000)),
        (svc1[2], as_(EST_O, POD, "10.180.0.1", 45000, 80)),
        # external-42NFTM6N: ip saddr 10.0.0.0/8 goto service-42NFTM6N (short-circuit)
        (ext[0], as_(NEW_F, POD, "10.180.0.2", 45001, 80)),
        (ext[1], as_(EST_R, "1.2.3.4", POD, 80, 45001)),
        (syn(POD, "172.30.0.46", 45002, 80), NEW_D),  # no-endpoint-services: reject-chain
        (syn(POD, "172.30.0.41", 45003, 443), NEW_D),  # cluster-ips-check: reject
        (syn(POD, "172.30.0.99", 45004, 80), NEW_D),  # unallocated ClusterIP: drop
        (b.udp(POD, "172.30.0.41", 45005, 80, b"u"), NEW_D),  # udp: no service, reject
        # filter-prerouting-pre-dnat: firewall-ips 5.6.7.8 . tcp . 80 from outside
        # LoadBalancerSourceRanges: drop before any DNAT
        (syn(OUTSIDER, "5.6.7.8", 45006, 80), NEW_LD),
        # filter-input: nodeport-endpoints-check, tcp . 3001 : drop (external-42NFTM6N
        # neither short-circuits nor translates a non-pod, non-local source)
        (syn(OUTSIDER, NODE, 45007, 3001), NEW_LD),
        (syn(OUTSIDER, NODE, 45008, 3009), NEW_L),  # no such nodeport: input accepts
    ))


def kube_proxy_masquerade_case() -> NftCase:
    """The marked connections: mark-for-masquerade (meta mark | 0x4000), then
    masquerading clears the bit (meta mark ^ 0x4000) and masquerades."""
    snat = KUBE_SNAT
    svc1 = handshake(OUTSIDER, "172.30.0.41", 46000, 80, reply=("10.180.0.1", snat, 80, 46000))
    node = handshake(OUTSIDER, NODE, 46001, 3003, reply=("10.180.0.3", snat, 80, 46001))
    lb = handshake(LB_CLIENT, "5.6.7.8", 46002, 80, reply=("10.180.0.3", snat, 80, 46002))
    return NftCase("kube-proxy-nftables masquerade", KUBE_MASQ, (
        # service-ULMVA6XW: ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump
        # mark-for-masquerade; endpoint: dnat to 10.180.0.1:80; postrouting: masquerade
        (svc1[0], as_(NEW_F, snat, "10.180.0.1", 46000, 80)),
        (svc1[1], as_(EST_R, "172.30.0.41", OUTSIDER, 80, 46000)),
        (svc1[2], as_(EST_O, snat, "10.180.0.1", 46000, 80)),
        # service-nodeports tcp . 3003: external-4AT6LBPK marks, its endpoint translates
        (node[0], as_(NEW_F, snat, "10.180.0.3", 46001, 80)),
        (node[1], as_(EST_R, NODE, OUTSIDER, 3003, 46001)),
        # firewall-ips lets 203.0.113.0/25 through; svc5's endpoint adds the source to
        # its affinity set and translates
        (lb[0], as_(NEW_F, snat, "10.180.0.3", 46002, 80)),
        (lb[1], as_(EST_R, "5.6.7.8", LB_CLIENT, 80, 46002)),
        # the same client again: ip saddr @affinity-... goto its endpoint
        (syn(LB_CLIENT, "5.6.7.8", 46003, 80), as_(NEW_F, snat, "10.180.0.3", 46003, 80)),
        # the node's own connection to a ClusterIP: nat-output services, masquerade
        (syn("192.0.2.1", "172.30.0.42", 46004, 80),
         as_("NEW/ORIGINAL sent", snat, "10.180.0.2", 46004, 80)),
        (syn(POD, "172.30.0.41", 46005, 80), as_(NEW_F, POD, "10.180.0.1", 46005, 80)),
    ))


# --- OpenWrt fw4 zone masquerade (zone1 on swl, zone3 on swr) -----------------------------

# zone1 accepts and masquerades IPv4, zone3 rejects and masquerades both families. Traffic
# between the two zones is never forwarded (each zone's forward chain accepts only towards
# itself), so what is masqueraded is what the router sends, and what it forwards within
# zone1 (in and out of swl).
FW4_MASQ = NftSetup("fw4-zones-masq", {"zone1": "swl", "zone3": "swr"},
                    ifaces=("swl=192.0.2.1/24,2001:db8:1::1/64",
                            "swr=203.0.113.1/24,2001:db8:2::1/64,0.0.0.0/0,::/0"))
LAN_A, LAN_B, FAR = "192.0.2.10", "192.0.2.20", "198.51.100.9"


def fw4_zones_masq_case() -> NftCase:
    r1, r3 = "192.0.2.1", "203.0.113.1"
    out = handshake(r3, LAN_A, 47000, 80, reply=(LAN_A, r1, 80, 47000))
    within = handshake(LAN_A, LAN_B, 47001, 22, reply=(LAN_B, r1, 22, 47001))
    return NftCase("fw4-zones-masq", FW4_MASQ, (
        # output: oifname zone1 jump output_test1 (accept); srcnat_test1: meta nfproto
        # ipv4 masquerade, so the router's zone3 address leaves as its zone1 address
        (out[0], as_("NEW/ORIGINAL sent", r1, LAN_A, 47000, 80)),
        (out[1], "ESTABLISHED/REPLY local"),  # delivered to 203.0.113.1 (not observed)
        (out[2], as_("ESTABLISHED/ORIGINAL sent", r1, LAN_A, 47000, 80)),
        # IPv6 to zone1: accepted, never masqueraded (ipv4 only)
        (syn("2001:db8:2::1", "2001:db8:1::10", 47002, 80), "NEW/ORIGINAL sent"),
        # forward within zone1: accept_to_test1, then masquerade to the router's address
        (within[0], as_(NEW_F, r1, LAN_B, 47001, 22)),
        (within[1], as_(EST_R, LAN_B, LAN_A, 22, 47001)),
        (within[2], as_(EST_O, r1, LAN_B, 47001, 22)),
        # zone1 to zone3: forward_test1 accepts only towards zone1, policy drop
        (syn(LAN_A, FAR, 47003, 80), NEW_D),
        # zone3 towards the router or through it: handle_reject
        (syn(FAR, r3, 47004, 22), "NEW/ORIGINAL dropped"),
        (b.udp(FAR, r3, 47005, 53, b"q"), "NEW/ORIGINAL dropped"),
        (syn(FAR, LAN_A, 47006, 80), NEW_D),
        # output to zone3: reject_to_test3
        (syn(r3, FAR, 47007, 80), "NEW/ORIGINAL dropped"),
        (syn(LAN_A, r1, 47008, 22), "NEW/ORIGINAL local"),  # input from zone1: accept
    ))


CASES = [wireless_router_case, pi_access_point_case, deb_nat_case,
         docker_bridge_snat_ip_case, deb_ct_helpers_case, kube_proxy_case,
         kube_proxy_masquerade_case, fw4_zones_masq_case]


@pytest.mark.kernel
@pytest.mark.shared
@pytest.mark.parametrize("make", CASES, ids=lambda m: m.__name__.removesuffix("_case"))
def test_nft_nat_case(kernel: None, shared: Path, make: object) -> None:
    assert callable(make)
    case: NftCase = make()
    datagrams = [Datagram(n, d) for n, (d, _) in enumerate(case.packets, 1)]
    result = run_nft(case.setup, shared, datagrams)
    got = tuple(kernel_answer(p, d) for p, (d, _) in zip(result.packets, case.packets,
                                                         strict=True))
    assert got == tuple(answer for _, answer in case.packets), f"{case.name}: the kernel changed"
    assert_agrees(case.name, result)


@pytest.mark.kernel
@pytest.mark.shared
def test_deb_ct_helpers_ftp_passive_and_active(kernel: None, shared: Path) -> None:
    """ftp-standard on an accepted control connection to the firewall: the 227 it
    answers PASV with and the PORT the client sends are expected, and both data
    connections are RELATED (input: ct state established,related accept)."""
    ctl = Stream(PC, SERVER, PC, 44100, 21)
    traffic = [*ctl.handshake(), ctl.server_says(b"220 ready\r\n"),
               ctl.client_says(b"PASV\r\n"),
               ctl.server_says(b"227 Entering Passive Mode (192,0,2,1,195,81).\r\n")]
    pasv = len(traffic)
    traffic += [b.tcp(PC, SERVER, 44101, 50001, "S", 0x0BAD_CAFE, window=64240),
                b.tcp(SERVER, PC, 50001, 44101, "SA", 0x7777_0001, 0x0BAD_CAFF, window=64240),
                ctl.client_says(b"PORT 192,0,2,10,172,69\r\n")]
    port = len(traffic)
    traffic += [ctl.server_says(b"200 PORT command successful\r\n"),
                b.tcp(SERVER, PC, 20, 44101, "S", 0x3333_0000, window=64240),
                b.tcp(PC, SERVER, 44101, 20, "SA", 0x4444_0000, 0x3333_0001, window=64240),
                b.tcp(PC, SERVER, 44102, 50002, "S", 0x0BAD_CAFE, window=64240),
                b.udp(PC, SERVER, 44103, 69, b"\x00\x01f\x00octet\x00"),
                b.udp(SERVER, PC, 3000, 44103, b"\x00\x03\x00\x01d"),
                b.udp(PC, SERVER, 44103, 3000, b"\x00\x04\x00\x01")]
    machine = Topology.build((), [parse_iface(t) for t in HELPERS_OPEN.ifaces])
    result = verify_datagrams([Datagram(n, d) for n, d in enumerate(traffic, 1)], None,
                              nft=HELPERS_OPEN.text(shared), local=machine.local,
                              ifaces=machine.interfaces, addresses=machine.addresses,
                              expect_after=[pasv, port])
    est_r, est_o = "ESTABLISHED/REPLY sent", "ESTABLISHED/ORIGINAL local"
    assert [p.kernel_answer() for p in result.packets] == [
        NEW_L, est_r, est_o, est_r, est_o, est_r,  # tcp dport 21 ct helper set; accept
        "RELATED/ORIGINAL local", est_r,  # to the port the 227 named
        est_o, est_r,  # PORT 192,0,2,10,172,69: 44101
        "RELATED/ORIGINAL sent", "ESTABLISHED/REPLY local",  # from port 20 to it
        NEW_LD,  # a port nobody named: policy drop
        NEW_L, "RELATED/ORIGINAL sent", "ESTABLISHED/REPLY local",  # tftp-69 via the map
    ], "the kernel changed"
    assert [len(e.listing.kernel) for e in result.expectations] == [1, 1, 0]
    assert_agrees("deb-ct-helpers ftp", result)
    assert result.expectations_same, result.expectations
