"""The IRC helper: DCC offers from the client, anti-spoofing, limits (helpers.md §2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_expect import C4, S4, Machine, Tcp, replay_capture

from statewall import builder

CLIENT = 172818433  # 10.77.0.1 as one decimal number


def irc(box: Machine) -> Tcp:
    ctl = Tcp(box, C4, S4, 40123, 6667)
    ctl.open(1.0)
    return ctl


def dports(box: Machine) -> list[int]:
    return [e.dport for e in box.exp.live(2.0)]


@pytest.mark.parametrize(("line", "port"), [
    (b"PRIVMSG bob :\1DCC SEND file.txt 172818433 5000 1234\1\r\n", 5000),
    (b"PRIVMSG bob :\1DCC CHAT chat 172818433 5001\1\r\n", 5001),
    (b"privmsg #c,bob :\1DCC SCHAT chat 172818433 5004\1\n", 5004),
    (b"  \r\nPRIVMSG bob :\1DCC SEND f 172818433   5013 1\1\r\n", 5013),
    (b"PRIVMSG bob :\1DCC MOVE f 172818433 5014 1\1\r\n", 5014),
    (b"PRIVMSG bob :\1DCC TSEND f 172818433 5015 1\1\r\n", 5015),
    (b"PRIVMSG bob :\1DCC SEND f 172818433 80 1\1\r\n", 80),  # no 1024 limit
    (b"PRIVMSG bob :\1DCC SEND f 172818433 70546 1\1\r\n", 5010),  # truncated to 16 bits
    (b"PRIVMSG bob :\1DCC FOO x 1 2 :\1DCC SEND f 172818433 5016 1\1\r\n", 5016),
])
def test_dcc_offers_that_give_an_expectation(line: bytes, port: int) -> None:
    box = Machine()
    seen = irc(box).client(line, 2.0)
    assert seen.accepted
    assert dports(box) == [port]
    assert box.listing(2.5) == {
        f"299 l3proto = 2 proto=6 src=0.0.0.0 dst=10.77.0.1 sport=0 dport={port} irc\n"}


@pytest.mark.parametrize("line", [
    b"PRIVMSG bob :\1DCC SEND f 172818441 5010 1\1\r\n",  # 10.77.0.9: forged
    b"PRIVMSG bob :\1DCC SEND f 172818433 0 1\1\r\n",  # port 0: forged
    b"PRIVMSG bob :\1DCC SEND f 172818433 5011\1",  # no newline
    b"PRIVMSG bob :\1DCC RESUME file.txt 5000 1000\1\r\n",
    b"PRIVMSG bob :\1DCC ACCEPT file.txt 5000 1000\1\r\n",
    b"NOTICE bob :\1DCC SEND f 172818433 5012 1\1\r\n",
    b"PRIVMSG bob :hello :\1DCC SEND f 172818433 5017 1\1\r\n",  # first ' :' is not a DCC
    b"PRIVMSG bob :\1dcc SEND f 172818433 5018 1\1\r\n",
    b"PRIVMSG bob :\1DCC send f 172818433 5019 1\1\r\n",
    b'PRIVMSG bob :\1DCC SEND "my file" 172818433 5020 1\1\r\n',  # address read as 0
    b"PRIVMSG bob :\1DCC SEND f 1 5000\1 :\1DCC SEND f 172818433 5001\1\n",  # stops at forged
])
def test_dcc_texts_that_give_nothing_and_pass(line: bytes) -> None:
    box = Machine()
    seen = irc(box).client(line, 2.0)
    assert seen.accepted and dports(box) == []


def test_spoofed_address_is_reported() -> None:
    box = Machine()
    seen = irc(box).client(b"PRIVMSG bob :\1DCC SEND f 172818441 5010 1\1\r\n", 2.0)
    assert "forged" in seen.reason and "10.77.0.9" in seen.reason


def test_only_the_first_offer_of_a_segment_counts() -> None:
    box = Machine()
    irc(box).client(b"PRIVMSG bob :\1DCC SEND a 172818433 5021 1\1\r\n"
                    b"PRIVMSG bob :\1DCC SEND b 172818433 5022 1\1\r\n", 2.0)
    assert dports(box) == [5021]


def test_offers_from_the_server_side_are_ignored() -> None:
    box = Machine()
    ctl = irc(box)
    ctl.server(b":x NOTICE y :hi\r\n", 1.5)
    ctl.server(b"PRIVMSG bob :\1DCC SEND f 172818434 5023 1\1\r\n", 2.0)
    assert dports(box) == []


def test_ninth_offer_evicts_the_oldest() -> None:
    box = Machine()
    ctl = irc(box)
    for n in range(9):
        ctl.client(b"PRIVMSG bob :\1DCC SEND f 172818433 %d 1\1\r\n" % (6000 + n), 2.0)
    assert dports(box) == list(range(6001, 6009))


def test_anyone_may_connect_to_the_offered_port_once() -> None:
    box = Machine()
    irc(box).client(b"PRIVMSG bob :\1DCC CHAT chat 172818433 5001\1\r\n", 2.0)
    assert box.send(builder.tcp("192.0.2.7", C4, 33000, 5001, "S"), 3.0).state == "RELATED"
    assert box.send(builder.tcp("192.0.2.8", C4, 33000, 5001, "S"), 3.0).state == "NEW"


def test_shared_capture_dcc_send_and_chat_are_related(shared: Path) -> None:
    first = replay_capture(shared / "traces" / "irc-dcc-send-and-chat.pcapng").first
    related = sorted(port for state, port in first.values() if state == "RELATED")
    assert related == [59130, 59214]  # the SEND and the CHAT offered by 10.0.0.7
