"""Hostile payloads on helper connections, through the public API.

The FTP, IRC, TFTP and Amanda helpers parse whatever the connection
carries. Random and half-valid commands on an established control
connection (FTP, IRC) and random datagrams to the UDP helpers' ports
(TFTP, Amanda) must each give one record with a verdict and a reason, and
never an exception, whatever the helper makes of them.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from statewall import builder as b
from statewall.decode import decode_datagram
from statewall.engine import VERDICTS, Firewall
from statewall.oracle.helper_scenarios import Tcp

C, S = "192.0.2.10", "198.51.100.20"

# Bytes that steer the parsers: digits, separators and the commands' letters.
GRAMMAR = st.sampled_from(list(b"0123456789,.|()\r\n PORTEPRASVPRIVMSGDCCSENDCHAT227229\x01"))
COMMANDS = st.sampled_from([b"PORT ", b"EPRT |1|", b"EPRT |2|", b"227 Entering Passive Mode (",
                            b"229 Entering Extended Passive Mode (|||", b"PRIVMSG x :\x01DCC SEND ",
                            b"PRIVMSG x :\x01DCC CHAT chat ", b""])
PAYLOADS = st.tuples(COMMANDS, st.lists(GRAMMAR, max_size=60).map(bytes),
                     st.binary(max_size=20)).map(lambda parts: b"".join(parts))


def run(firewall: Firewall, datagrams: list[bytes]) -> None:
    for i, data in enumerate(datagrams):
        verdict = firewall.process(decode_datagram(data, index=i, ts=1.0 + i * 0.01))
        assert verdict.verdict in VERDICTS and verdict.reason


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([21, 6667]), st.lists(st.tuples(st.booleans(), PAYLOADS), max_size=8))
def test_control_connections_take_any_payload(port: int, lines: list[tuple[bool, bytes]]) -> None:
    ctl = Tcp(C, S, 40000, port)
    packets = ctl.handshake() + [ctl.send(1 if from_server else 0, payload or b"\r\n")
                                 for from_server, payload in lines]
    run(Firewall(auto_helpers=True), packets)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([69, 10080]), st.lists(st.binary(max_size=80), max_size=6))
def test_udp_helpers_take_any_datagram(port: int, payloads: list[bytes]) -> None:
    packets = []
    for i, payload in enumerate(payloads):
        packets.append(b.udp(C, S, 40000, port, payload))
        packets.append(b.udp(S, C, port, 40000, payload[::-1]) if i % 2 else
                       b.udp(S, C, 50000 + i, 40000, payload))
    run(Firewall(auto_helpers=True), packets)
