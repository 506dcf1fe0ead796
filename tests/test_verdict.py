"""Per-packet verdict values: the summary line and the summary described on demand.

A verdict built with the packet in place of its summary must be
indistinguishable from one built with the text: same attribute, equality,
hash, repr and jsonl record, and still frozen.
"""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from statewall import builder as b
from statewall.decode import decode_datagram, decode_frame
from statewall.engine import Firewall
from statewall.packet import Packet
from statewall.verdict import PacketVerdict, RuleRef


def packet(datagram: bytes) -> Packet:
    return decode_datagram(datagram, index=4, ts=12.5)


def verdict(summary: str) -> PacketVerdict:
    return PacketVerdict(4, 12.5, "ACCEPT", "NEW", "ORIGINAL", ("CONFIRMED",),
                         RuleRef("filter", "FORWARD", 2), "SYN in NONE: NONE → SYN_SENT", summary,
                         proto=6, tcp_state="SYN_SENT", conn=1, notes=("note",))


SYN = b.tcp("192.0.2.1", "198.51.100.7", 40000, 80, "S", seq=1000, window=64240)


# -- the summary line (written by the core) --------------------------------------------

def summary(pkt: Packet) -> str:
    return Firewall().process(pkt).summary


def test_tcp_summary_names_endpoints_flags_and_numbers() -> None:
    data = b.tcp("192.0.2.1", "198.51.100.7", 40000, 80, "PA", seq=7, ack=9, window=502,
                 payload=b"hello")
    assert summary(packet(data)) == \
        "192.0.2.1:40000 > 198.51.100.7:80 TCP [PA] seq=7 ack=9 win=502 len=5"


def test_ipv6_udp_and_icmp_summaries() -> None:
    udp = b.udp("2001:db8::1", "2001:db8::2", 5353, 53, payload=b"abc")
    assert summary(packet(udp)) == "[2001:db8::1]:5353 > [2001:db8::2]:53 UDP len=3"
    echo = b.icmp_echo("192.0.2.1", "198.51.100.7", ident=77, seq=1)
    assert summary(packet(echo)) == "192.0.2.1 > 198.51.100.7 ICMP type=8 code=0 id=77"


def test_fragments_and_frames_that_are_not_ip() -> None:
    pieces = b.fragment(b.udp("192.0.2.1", "198.51.100.7", 1, 2, payload=bytes(40), ident=0x42),
                        24)
    assert summary(packet(pieces[0])).endswith(" UDP len=16 frag id=0x42 off=0+")
    assert summary(packet(pieces[1])) == "192.0.2.1 > 198.51.100.7 UDP frag id=0x42 off=24"
    arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + bytes(28)
    assert summary(decode_frame(0, 0.0, arp, 1)) == "non-IP frame"


def test_flag_letters_in_tcpdump_order() -> None:
    for flags, letters in (("SA", "SA"), ("FA", "FA"), ("SFRPAUEC", "SFRPAUEC")):
        data = b.tcp("192.0.2.1", "198.51.100.7", 1, 2, flags, seq=1)
        assert f" [{letters}] " in summary(packet(data))


def test_a_verdict_is_a_frozen_value() -> None:
    one = verdict("192.0.2.1:40000 > 198.51.100.7:80 TCP [S] seq=1000 ack=0 win=64240")
    assert pickle.loads(pickle.dumps(one)) == one
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.summary = "changed"  # type: ignore[misc]
    assert one.as_json()["conn"] == 1 and one.as_json()["summary"].endswith("win=64240")


def test_unknown_attributes_still_raise() -> None:
    with pytest.raises(AttributeError, match="sumary"):
        verdict("x").sumary  # type: ignore[attr-defined]  # noqa: B018
