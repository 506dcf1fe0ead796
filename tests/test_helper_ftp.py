"""The FTP helper: what the kernel parses, where, and what it drops.

Every expected value is a behaviour the spec (helpers.md §1) reports as
verified on the live kernel, or read from nf_conntrack_ftp.c where marked.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from test_expect import C4, C6, S4, S6, Machine, Tcp, replay_capture

from statewall import builder
from statewall.config import HelperParams


def control(box: Machine, family: int = 4, cport: int = 46182) -> Tcp:
    """A helped control connection after its first line in both directions."""
    c, s = (C4, S4) if family == 4 else (C6, S6)
    ctl = Tcp(box, c, s, cport, 21)
    ctl.open(1.0)
    ctl.server(b"220 hi\r\n", 1.0)
    ctl.client(b"USER a\r\n", 1.0)
    return ctl


def ports(box: Machine) -> list[tuple[str, str, int]]:
    return [(_text(e.family, e.src), _text(e.family, e.dst), e.dport) for e in box.exp.live(2.0)]


def _text(family: int, address: int) -> str:
    return str(ipaddress.ip_address(address)) if address else "*"


# -- the four commands (helpers.md §1.6) -----------------------------------------------


def test_active_port_expects_server_to_client_port() -> None:
    box = Machine()
    seen = control(box).client(b"PORT 10,77,0,1,156,64\r\n", 2.0)
    assert seen.accepted and "PORT command" in seen.reason
    assert ports(box) == [(S4, C4, 40000)]
    (exp,) = box.exp.live(2.0)
    assert exp.sport_mask == 0 and exp.expires == 302.0


def test_eprt_ipv4() -> None:
    box = Machine()
    control(box).client(b"EPRT |1|10.77.0.1|40010|\r\n", 2.0)
    assert ports(box) == [(S4, C4, 40010)]


def test_passive_227_expects_client_to_server_port_and_data_is_related() -> None:
    box = Machine()
    ctl = control(box)
    ctl.server(b"331 ok\r\n", 1.5)
    ctl.server(b"227 Entering Passive Mode (10,77,0,2,156,65).\r\n", 2.0)
    assert ports(box) == [(C4, S4, 40001)]
    syn = box.send(builder.tcp(C4, S4, 51000, 40001, "S"), 3.0)
    assert syn.state == "RELATED"


def test_epsv_229() -> None:
    box = Machine()
    control(box).server(b"229 Entering Extended Passive Mode (|||40002|)\r\n", 2.0)
    assert ports(box) == [(C4, S4, 40002)]


def test_ipv6_eprt_and_epsv() -> None:
    box = Machine()
    ctl = control(box, family=6)
    ctl.client(b"EPRT |2|fd77::1|40201|\r\n", 2.0)
    assert ports(box) == [(S6, C6, 40201)]
    assert box.listing(2.5) == {
        "299 l3proto = 10 proto=6 src=fd77:0000:0000:0000:0000:0000:0000:0002 "
        "dst=fd77:0000:0000:0000:0000:0000:0000:0001 sport=0 dport=40201 ftp\n"}
    ctl.server(b"229 (|||40210|)\r\n", 2.0)
    assert ports(box) == [(C6, S6, 40210)]  # max_expected 1: the EPRT one is evicted


@pytest.mark.parametrize(("command", "port"), [
    (b"EPRT |2|FD77::1|40202|\r\n", 40202),
    (b"EPRT |2|fd77:0:0:0:0:0:0:1|40203|\r\n", 40203),
    (b"PORT 253,119,0,0,157,0\r\n", 40192),  # overwrites the first 4 bytes only
])
def test_ipv6_address_forms_that_pass_the_check(command: bytes, port: int) -> None:
    box = Machine()
    control(box, family=6).client(command, 2.0)
    assert ports(box) == [(S6, C6, port)]


@pytest.mark.parametrize("command", [b"PORT 10,77,0,1,156,64\r\n",
                                     b"EPRT |2|::ffff:10.77.0.1|40204|\r\n"])
def test_ipv6_addresses_that_fail_the_check_are_accepted_without_expectation(
        command: bytes) -> None:
    box = Machine()
    seen = control(box, family=6).client(command, 2.0)
    assert seen.accepted and box.exp.live(2.0) == []


# -- where a command may start ------------------------------------------------------


def test_first_segment_of_a_direction_is_never_parsed() -> None:
    box = Machine()
    ctl = Tcp(box, C4, S4, 46182, 21)
    ctl.open(1.0)
    assert ctl.client(b"PORT 10,77,0,1,156,64\r\n", 2.0).accepted
    assert box.exp.live(2.0) == []
    ctl.client(b"PORT 10,77,0,1,156,64\r\n", 3.0)
    assert ports(box) == [(S4, C4, 40000)]


def test_command_must_start_the_segment() -> None:
    box = Machine()
    ctl = control(box)
    ctl.client(b"NOOP\r\nPORT 10,77,0,1,156,64\r\n", 2.0)
    ctl.client(b" PORT 10,77,0,1,156,64\r\n", 2.0)
    assert box.exp.live(2.0) == []
    ctl.client(b"PORT 10,77,0,1,156,65\r\nNOOP\r\n", 2.0)
    assert ports(box) == [(S4, C4, 40001)]


def test_segment_without_final_newline_pauses_parsing_until_resync() -> None:
    box = Machine()
    ctl = control(box)
    ctl.client(b"USER a", 2.0)
    ctl.client(b"PORT 10,77,0,1,156,64\r\n", 2.0)
    assert box.exp.live(2.0) == []  # not at a remembered position
    ctl.client(b"PORT 10,77,0,1,156,65\r\n", 2.0)
    assert ports(box) == [(S4, C4, 40001)]  # the previous one ended in \n


def test_command_split_across_segments_is_dropped_then_parsed_whole() -> None:
    box = Machine()
    ctl = control(box)
    first = ctl.client(b"PORT 10,77,0,1,15", 2.0, advance=False)
    assert not first.accepted and "PORT" in first.reason
    assert box.exp.live(2.0) == []
    # The sender retransmits from the same sequence number; now it is whole.
    assert ctl.client(b"PORT 10,77,0,1,156,64\r\n", 2.5).accepted
    assert ports(box) == [(S4, C4, 40000)]


def test_short_prefix_of_a_keyword_is_dropped() -> None:
    box = Machine()
    ctl = control(box)
    assert not ctl.client(b"PO", 2.0, advance=False).accepted
    assert not ctl.server(b"2", 2.0, advance=False).accepted
    assert ctl.client(b"NOOP\r\n", 2.0).accepted  # not a prefix: ordinary data


def test_drop_keeps_the_position_so_the_retransmission_is_parsed() -> None:
    box = Machine()
    ctl = control(box)
    assert not ctl.client(b"PORT garbage\r\n", 2.0).accepted
    ctl.cseq -= len(b"PORT garbage\r\n")  # the segment was dropped: the client resends
    assert ctl.client(b"PORT 10,77,0,1,156,64\r\n", 2.5).accepted
    assert ports(box) == [(S4, C4, 40000)]


# -- grammar details ---------------------------------------------------------------


@pytest.mark.parametrize("command", [
    b"PORT garbage\r\n", b"PORT 10,77,0,1,156,64\n", b"PORT  10,77,0,1,156,64\r\n",
    b"PORT 10,77,0,1,156,68 \r\n", b"PORT 10,77,0,1,156\r\n", b"PORTAL x\r\n", b"PORT\r\n",
    b"EPRT |2|fd77::1|40000|\r\n", b"EPRT |1|10.77.0.1|0|\r\n", b"EPRT  |1|10.77.0.1|4|\r\n",
])
def test_malformed_client_commands_are_dropped(command: bytes) -> None:
    box = Machine()
    seen = control(box).client(command, 2.0)
    assert not seen.accepted and seen.reason.startswith("dropped by the ftp helper")
    assert box.exp.live(2.0) == []


@pytest.mark.parametrize("reply", [
    b"227 no numbers\r\n", b"227 v2 (10,77,0,2,156,68)\r\n", b"227 10,77,0,2,156,67",
    b"229 no paren\r\n", b"229 (|||0|)\r\n", b"229 (||40004|)\r\n",
])
def test_malformed_server_replies_are_dropped(reply: bytes) -> None:
    box = Machine()
    assert not control(box).server(reply, 2.0).accepted


@pytest.mark.parametrize(("command", "port"), [
    (b"port 10,77,0,1,156,70\r\n", 40006),
    (b"Port 10,77,0,1,156,71\r\n", 40007),
    (b"PORT 10,77,0,1,300,1\r\n", 11265),  # numbers above 255 bleed into the next byte
    (b"PORT 10,77,0,1,0,0\r\n", 0),
    (b"PORT 010,077,000,001,156,69\r\n", 40005),
    (b"PORT 10,77,0,1,156,73\r", 40009),  # CR without LF is enough
    (b"EPRT |1|10.77.0.1|105537|\r\n", 40001),  # 16-bit port wraps
    (b"EPRT x1x10.77.0.1x40012x\r\n", 40012),
    (b"eprt |1|10.77.0.1|40013|\r\n", 40013),
    (b"EPRTX |1|10.77.0.1|40014|\r\n", 40014),
])
def test_client_grammar_corner_cases(command: bytes, port: int) -> None:
    box = Machine()
    assert control(box).client(command, 2.0).accepted
    assert ports(box) == [(S4, C4, port)]


@pytest.mark.parametrize(("reply", "port"), [
    (b"227 =10,77,0,2,156,66\r\n", 40002),
    (b"227 (10,77,0,2,156,71)\n", 40007),
    (b"229 Extended (!!!40003!)\r\n", 40003),
])
def test_server_grammar_corner_cases(reply: bytes, port: int) -> None:
    box = Machine()
    assert control(box).server(reply, 2.0).accepted
    assert ports(box) == [(C4, S4, port)]


def test_227_with_a_hyphen_is_not_a_match() -> None:
    box = Machine()
    assert control(box).server(b"227-multi (10,77,0,2,156,65)\r\n", 2.0).accepted
    assert box.exp.live(2.0) == []


# -- address check ------------------------------------------------------------------


@pytest.mark.parametrize("text", [b"PORT 10,77,0,9,156,64\r\n", b"EPRT |1|10.77.0.9|40000|\r\n"])
def test_third_party_address_is_accepted_without_expectation(text: bytes) -> None:
    box = Machine()
    seen = control(box).client(text, 2.0)
    assert seen.accepted and "10.77.0.9" in seen.reason and box.exp.live(2.0) == []


def test_third_party_227_is_accepted_without_expectation() -> None:
    box = Machine()
    assert control(box).server(b"227 (10,77,0,9,156,65)\r\n", 2.0).accepted
    assert box.exp.live(2.0) == []


def test_loose_expects_the_announced_address() -> None:
    box = Machine(params=HelperParams(ftp_loose=True))
    control(box).client(b"PORT 10,77,0,9,156,64\r\n", 2.0)
    assert ports(box) == [(S4, "10.77.0.9", 40000)]


# -- real captures --------------------------------------------------------------------


def replay(path: Path) -> tuple[Machine, list[str], dict[int, str]]:
    """Replay a shared capture; states per packet and the first state of every entry."""
    replayed = replay_capture(path)
    return replayed.box, replayed.states, {k: v[0] for k, v in replayed.first.items()}


@pytest.mark.parametrize(("name", "children"), [
    ("ftp-active-port-download-ipv4.pcap", 3),
    ("ftp-passive-pasv-download-ipv4.pcap", 3),
    ("ftp-pasv-and-port-internet-ipv4.pcap", 4),
    ("ftp-passive-pasv-lan-ppa.pcap", 1),
    ("ftp-epsv-retr-ipv4.pcap", 1),
    ("ftp-epsv-eprt-internet-ipv6.pcap", 5),
    ("ftp-all-data-cmds-pasv-port-ipv4.pcap", 14),
])
def test_shared_ftp_captures_data_connections_are_related(name: str, children: int,
                                                          shared: Path) -> None:
    box, _, first = replay(shared / "traces" / name)
    assert list(first.values()).count("RELATED") == children
    assert box.exp.stats.expect_new == children

