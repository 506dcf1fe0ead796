"""`verify --local/--iface`: the kernel's firewall as the host statewall models.

A real host ruleset (ufw on a server, from ../shared/rulesets, unchanged)
is loaded into the firewall namespace, which owns the server's addresses
(`--local`) and routes everything through `eth0` (`--iface`). Datagrams to
the server go PREROUTING → INPUT and are judged at INPUT's verdict; the
server's own datagrams are sent by the firewall itself (OUTPUT →
POSTROUTING). The kernel's answers are pinned, so the capture keeps
exercising what its comments say, and statewall must agree on every packet
and on the final table. Without `--iface` the same holds with the
addresses seen on each side as host routes; without `--rules` every policy
is ACCEPT.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from statewall import builder as b
from statewall.capture import write_pcap
from statewall.cli import main
from statewall.oracle.host import LOCAL_TO_LOCAL, NOT_SENT, SENT, wire
from statewall.oracle.verify import Datagram, verify_datagrams
from statewall.topology import parse_networks

HOST, CLIENT, WEB = "203.0.113.10", "198.51.100.7", "198.51.100.50"
HOST6, CLIENT6 = "2001:db8::10", "2001:db8:1::7"
UFW = "netnet-ufw-server1.v4"

IN_NEW, IN_NEW_D = "NEW/ORIGINAL local", "NEW/ORIGINAL dropped"
IN_EST_O, IN_EST_R = "ESTABLISHED/ORIGINAL local", "ESTABLISHED/REPLY local"
OUT_NEW, OUT_EST_O = "NEW/ORIGINAL sent", "ESTABLISHED/ORIGINAL sent"
OUT_EST_R = "ESTABLISHED/REPLY sent"


def host_traffic() -> list[tuple[bytes, str]]:
    """(datagram, the kernel's answer) for a server behind ufw."""
    return [
        (b.tcp(CLIENT, HOST, 40000, 22, "S", 100), IN_NEW),  # ufw-user-input: tcp 22
        (b.tcp(HOST, CLIENT, 22, 40000, "SA", 900, 101), OUT_EST_R),
        (b.tcp(CLIENT, HOST, 40000, 22, "A", 101, 901), IN_EST_O),
        (b.tcp(CLIENT, HOST, 40001, 23, "S", 100), IN_NEW_D),  # INPUT policy DROP
        (b.tcp(HOST, WEB, 50000, 443, "S", 1), OUT_NEW),  # ufw-track-output
        (b.tcp(WEB, HOST, 443, 50000, "SA", 5, 2), IN_EST_R),
        (b.tcp(HOST, WEB, 50000, 443, "A", 2, 6), OUT_EST_O),
        (b.udp(HOST, WEB, 5353, 53, b"q"), OUT_NEW),
        (b.udp(WEB, HOST, 53, 5353, b"a"), IN_EST_R),
        (b.icmp_echo(CLIENT, HOST, 7, 1), IN_NEW),  # ufw-before-input: echo request
        (b.icmp_echo(HOST, CLIENT, 7, 1, reply=True), OUT_EST_R),
        (b.udp(CLIENT, HOST, 5001, 5000, b"x"), IN_NEW_D),  # outside the multiport range
        (b.icmpv6_echo(CLIENT6, HOST6, 3, 1), IN_NEW),  # no IPv6 ruleset
        (b.icmpv6_echo(HOST6, CLIENT6, 3, 1, reply=True), OUT_EST_R),
        (b.udp(CLIENT, WEB, 1, 2, b"fw"), IN_NEW_D),  # forwarded: FORWARD policy DROP
    ]


def write_capture(path: Path, datagrams: list[bytes]) -> None:
    write_pcap(path, [(1.0 + i, b.ethernet(d)) for i, d in enumerate(datagrams)])


def test_the_firewall_sends_what_its_addresses_send_and_receives_the_rest() -> None:
    data = [b.udp(CLIENT, HOST, 1, 2), b.udp(HOST, CLIENT, 2, 1), b.udp(HOST, HOST, 3, 4),
            b.udp(CLIENT, WEB, 5, 6), b.udp(WEB, CLIENT, 6, 5)]
    ifaces = [("lan", parse_networks([f"{CLIENT}/32"])), ("wan", parse_networks(["0.0.0.0/0"]))]
    wiring = wire(data, parse_networks([HOST]), ifaces)
    assert wiring.firewall_ifs == ("lan", "wan")
    assert wiring.places == (0, SENT, NOT_SENT, 0, 1)
    assert wiring.routes == (f"route replace {CLIENT}/32 dev lan", "route replace 0.0.0.0/0 dev wan",
                             f"route add local {HOST}/32 dev wan table local",
                             f"rule add to {HOST}/32 lookup local pref 50",
                             # Routed by destination only: the router's rules go.
                             *(f"{family}rule del pref {pref}" for family in ("", "-6 ")
                               for pref in (100, 101)))
    alone = wire(data, parse_networks([HOST]), [])
    assert alone.firewall_ifs == ("swl", "swr")
    assert alone.topology.interfaces == (
        ("swl", parse_networks([f"{CLIENT}/32"])), ("swr", parse_networks([f"{WEB}/32"])))
    assert alone.routes[-2:] == (f"route add local {HOST}/32 dev lo table local",
                                 f"rule add to {HOST}/32 lookup local pref 50")


@pytest.mark.parametrize("argv, message", [
    (["--iface", "a=192.0.2.0/24", "--iface", "b=0.0.0.0/0", "--iface", "c=::/0"],
     "verify's firewall has two interfaces; --iface names 3"),
    (["--iface", "a-name-far-too-long=0.0.0.0/0"], "not a Linux interface name"),
    (["--iface", "wan"], "expected NAME=CIDR[,CIDR]"),
    (["--local", "192.0.2.300"], "does not appear to be an IPv4 or IPv6 network"),
])
def test_bad_local_or_iface_is_a_usage_error(tmp_path: Path, argv: list[str], message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    write_capture(tmp_path / "c.pcap", [b.udp(CLIENT, HOST, 1, 2)])
    with pytest.raises(SystemExit) as stopped:
        main(["verify", str(tmp_path / "c.pcap"), *argv])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.kernel
@pytest.mark.shared
def test_a_host_ruleset_against_the_kernel(kernel: None, shared: Path, made: list[str],
                                           tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    traffic = host_traffic()
    rules = (shared / "rulesets" / UFW).read_text()
    local = parse_networks([HOST, HOST6])
    result = verify_datagrams([Datagram(n, d) for n, (d, _) in enumerate(traffic, 1)], rules,
                              local=local, ifaces=[("eth0", parse_networks(["0.0.0.0/0",
                                                                             "::/0"]))])
    assert [p.kernel_answer() for p in result.packets] == [answer for _, answer in traffic]
    assert result.ok, (result.disagreements, result.table)
    assert len(result.table.kernel) == 5  # ssh, https, dns, both pings
    # The same from the command line, and without --iface: host routes per side.
    capture = tmp_path / "host.pcap"
    write_capture(capture, [d for d, _ in traffic] + [b.udp(HOST, HOST, 7, 8)])
    common = ["verify", str(capture), "--rules", str(shared / "rulesets" / UFW),
              "--local", HOST, "--local", HOST6]
    assert main([*common, "--iface", "eth0=0.0.0.0/0,::/0"]) == 0
    assert capsys.readouterr().out == (f"not compared: 1 packet (#16): {LOCAL_TO_LOCAL}\n"
                                       "15/15 packets agree, tables same\n")
    assert main(common) == 0
    assert capsys.readouterr().out.endswith("15/15 packets agree, tables same\n")


@pytest.mark.kernel
def test_verify_without_rules_is_all_accept(kernel: None, made: list[str], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    capture = tmp_path / "c.pcap"
    write_capture(capture, [b.tcp(CLIENT, WEB, 1000, 80, "S", 1),
                            b.tcp(WEB, CLIENT, 80, 1000, "SA", 9, 2),
                            b.tcp(CLIENT, WEB, 1000, 80, "A", 2, 10),
                            b.udp(CLIENT, HOST, 5, 53), b.udp(HOST, CLIENT, 53, 5)])
    assert main(["verify", str(capture)]) == 0
    assert capsys.readouterr().out == "5/5 packets agree, tables same\n"
    assert main(["verify", str(capture), "--local", HOST, "--format", "jsonl"]) == 0
    assert capsys.readouterr().out == ('{"type":"summary","agree":5,"compared":5,'
                                       '"not_compared":0,"tables":"same"}\n')
