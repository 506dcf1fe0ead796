"""rpfilter against the live kernel: reverse-path lookups from the oracle's firewall.

Left alone, the oracle's firewall forwards by input interface and has no route a
lookup of its own could find (netns.py). Here it gets addresses and routes
(`KernelFirewall(routes=...)`) and statewall the same as its topology (`--iface`,
`--local`); then the same datagrams, each on one side, meet raw PREROUTING rules
that drop what an rpfilter variant accepts, one variant per destination port.
The raw table runs before conntrack, so the kernel's answer is whether
conntrack saw the datagram; statewall's is the verdict of the core walking the
same raw table for a datagram from that interface. Both must agree on every
datagram, and the kernel's own answers are pinned below, so the cases keep
showing what their names say.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from rulewalk import CT_NEW, Rules, compile_text, walk

from statewall import builder as b
from statewall.decode import decode_datagram
from statewall.oracle.kernel import KernelFirewall
from statewall.rules.hooks import rule_state_for
from statewall.topology import Topology, parse_networks

IFACES = ("swl", "swr")
DST4, DST6 = "198.51.100.1", "2001:db8:99::1"
# One rule per variant, by destination port; a rule drops what its match accepts.
VARIANTS = ("", "--loose", "--accept-local", "--loose --accept-local", "--invert",
            "--validmark")
RAW = ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
       "-A PREROUTING -p udp --dport 6 -j MARK --set-mark 7\n"
       + "".join(f"-A PREROUTING -p udp --dport {port} -m rpfilter {options} -j DROP\n"
                 for port, options in enumerate(VARIANTS, 1))
       + "COMMIT\n")


def kernel_and_statewall(routes: Sequence[str], topology: Topology,
                         sources: Sequence[str]) -> tuple[list[str], list[str]]:
    """Per source (`SRC` or `SRC>DST`) and side: one letter per variant, D where the
    match accepted the datagram, as the kernel and as statewall saw it."""
    rules = {family: Rules.of(compile_text(RAW, family, state=rule_state_for(topology)))
             for family in (4, 6)}
    kernel_rows, statewall_rows = [], []
    with KernelFirewall(RAW, RAW, firewall_ifs=IFACES, routes=routes) as kernel:
        for n, (source, side) in enumerate((s, side) for s in sources for side in (0, 1)):
            src, _, dst = source.partition(">")
            v6 = ":" in src
            kernel_row = statewall_row = ""
            for port in range(1, len(VARIANTS) + 1):
                data = b.udp(src, dst or (DST6 if v6 else DST4), 10000 + n, port, b"rp")
                seen = kernel.send(data, side)
                kernel_row += "-" if seen.ctstate is not None else "D"
                decision = walk(rules[6 if v6 else 4].engine, "raw", "PREROUTING",
                                decode_datagram(data), CT_NEW, iface_in=IFACES[side])
                assert decision is not None
                statewall_row += {"DROP": "D", "ACCEPT": "-"}.get(decision.verdict, "?")
            kernel_rows.append(f"{source} {IFACES[side]} {kernel_row}")
            statewall_rows.append(f"{source} {IFACES[side]} {statewall_row}")
    return kernel_rows, statewall_rows


# The firewall owns 10.20.1.254/24 on swl and 10.20.2.254/24 on swr (so 10.20.1.255
# and 10.20.2.255 are broadcast routes), 10.30.0.0/16 is routed through swl and
# 10.40.0.0/16 through both; the same in IPv6, whose subnet-router anycast addresses
# come with forwarding, and fe80::/64 leads to swl only. No default route.
ROUTES = ("addr add 10.20.1.254/24 dev swl", "addr add 10.20.2.254/24 dev swr",
          "route add 10.30.0.0/16 dev swl",
          "route add 10.40.0.0/16 nexthop dev swl nexthop dev swr",
          "addr add fd20:1::fe/64 dev swl nodad", "addr add fd20:2::fe/64 dev swr nodad",
          "route add fd30::/48 dev swl",
          "route add fd40::/48 dev swl", "route append fd40::/48 dev swr",
          "route add fe80::/64 dev swl")
TOPOLOGY = Topology(
    parse_networks(["10.20.1.254", "10.20.2.254", "fd20:1::fe", "fd20:2::fe"]),
    (("swl", parse_networks(["10.20.1.0/24", "10.30.0.0/16", "10.40.0.0/16", "fd20:1::/64",
                             "fd30::/48", "fd40::/48", "fe80::/64"])),
     ("swr", parse_networks(["10.20.2.0/24", "10.40.0.0/16", "fd20:2::/64", "fd40::/48"]))))
# Per source and side, the kernel's answer for each variant (VARIANTS order: strict,
# loose, accept-local, loose accept-local, invert, validmark with a mark set).
KERNEL = """\
10.20.1.7 swl DDDD-D
10.20.1.7 swr -D-DD-
10.20.2.7 swl -D-DD-
10.20.2.7 swr DDDD-D
10.30.5.5 swl DDDD-D
10.30.5.5 swr -D-DD-
10.40.5.5 swl DDDD-D
10.40.5.5 swr DDDD-D
8.8.8.8 swl ----D-
8.8.8.8 swr ----D-
10.20.1.254 swl --DDD-
10.20.1.254 swr ---DD-
10.20.2.254 swl ---DD-
10.20.2.254 swr --DDD-
10.20.1.255 swl ----D-
10.20.1.255 swr ----D-
10.20.1.0 swl DDDD-D
10.20.1.0 swr -D-DD-
127.0.0.5 swl ---DD-
127.0.0.5 swr ---DD-
224.0.0.5 swl ----D-
224.0.0.5 swr ----D-
0.0.0.0>255.255.255.255 swl DDDD-D
0.0.0.0>255.255.255.255 swr DDDD-D
0.0.0.0>198.51.100.1 swl ----D-
0.0.0.0>198.51.100.1 swr ----D-
fd20:1::7 swl DDDD-D
fd20:1::7 swr -D-DD-
fd30::5 swl DDDD-D
fd30::5 swr -D-DD-
fd40::5 swl DDDD-D
fd40::5 swr DDDD-D
2001:db8::5 swl ----D-
2001:db8::5 swr ----D-
fd20:1::fe swl --DDD-
fd20:1::fe swr --DDD-
fd20:1:: swl ----D-
fd20:1:: swr ----D-
fe80::5 swl DDDD-D
fe80::5 swr ----D-
""".splitlines()


@pytest.mark.kernel
def test_rpfilter_against_the_kernels_routes(kernel: None) -> None:
    """Connected, routed and multipath networks, no route, local, broadcast, anycast,
    loopback-range and link-local sources; DHCP's 0.0.0.0 to broadcast always passes."""
    sources = list(dict.fromkeys(row.split()[0] for row in KERNEL))
    kernel_rows, statewall_rows = kernel_and_statewall(ROUTES, TOPOLOGY, sources)
    assert kernel_rows == KERNEL
    assert statewall_rows == kernel_rows


@pytest.mark.kernel
def test_rpfilter_without_routes_is_a_default_route_through_every_interface(
        kernel: None) -> None:
    """statewall given no routes assumes a default route through every interface: in
    the kernel, a multipath default route (IPv4) or one per interface (IPv6)."""
    routes = ("route add default nexthop dev swl nexthop dev swr",
              "route add ::/0 dev swl", "route append ::/0 dev swr")
    sources = ["10.20.1.7", "8.8.8.8", "2001:db8::5", "fe80::5"]
    kernel_rows, statewall_rows = kernel_and_statewall(routes, Topology(), sources)
    assert kernel_rows == [f"{src} {iface} DDDD-D" for src in sources for iface in IFACES]
    assert statewall_rows == kernel_rows
