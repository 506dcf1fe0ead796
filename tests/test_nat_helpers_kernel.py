"""NAT helpers against the live kernel: FTP, TFTP, IRC and Amanda through a masquerading
router whose raw table attaches the helpers.

A translated control connection's announcement names an address the peer
cannot reach; the kernel rewrites it to the router's address (and a free
port), expects the data connection there, and translates that connection
like its master. `verify` compares ctstates, fates, the addresses and ports
that leave and the expectation tables; these tests also read the bytes the
kernel really sent (`left_as`): the rewritten payload, and the later
segments' sequence numbers shifted by the length the rewrite added, which
statewall's reason must name.

The captures are what the router sees: the LAN client's segments in its own
numbering, the server's addressed to the router and numbered from what it
received (the rewritten stream).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import pytest
from conftest import nat_table

from statewall import builder as b
from statewall.oracle.verify import Datagram, VerifyResult, verify_datagrams
from statewall.topology import Topology

LAN_IF, WAN_IF = "lan=192.0.2.1/24", "wan=203.0.113.1/24,0.0.0.0/0"
LAN6_IF, WAN6_IF = "lan=2001:db8:1::1/64", "wan=2001:db8:2::1/64,::/0"
CLIENT, SERVER, PEER, WAN = "192.0.2.10", "198.51.100.20", "198.51.100.30", "203.0.113.1"
CLIENT6, SERVER6, WAN6 = "2001:db8:1::10", "2001:db8:9::20", "2001:db8:2::1"

RAW = """*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p tcp --dport 21 -j CT --helper ftp
-A PREROUTING -p tcp --dport 6667 -j CT --helper irc
-A PREROUTING -p udp --dport 69 -j CT --helper tftp
-A PREROUTING -p udp --dport 10080 -j CT --helper amanda
COMMIT
"""
NAT = nat_table("-A POSTROUTING -o wan -j MASQUERADE")
FILTER = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i lan -o wan -j ACCEPT
COMMIT
"""
RULES = RAW + NAT + FILTER
RULES6 = RULES.replace("-A PREROUTING -p tcp --dport 6667 -j CT --helper irc\n", "")


class Stream:
    """One TCP connection through the router: the client (LAN side) numbers its
    bytes from `isn_c`, the server (WAN side) from `isn_s`; `shift` is how much
    longer the router made the client's stream, so the server's acks count
    `shift` more than the client sent."""

    def __init__(self, client: str, server: str, seen_as: str, cport: int, sport: int,
                 isn_c: int = 0x1000_0000, isn_s: int = 0x7000_0000) -> None:
        self.client, self.server, self.seen_as = client, server, seen_as
        self.cport, self.sport = cport, sport
        self.isn = (isn_c, isn_s)
        self.next_c, self.next_s = isn_c + 1, isn_s + 1
        self.shift = 0

    def handshake(self) -> list[bytes]:
        isn_c, isn_s = self.isn
        return [b.tcp(self.client, self.server, self.cport, self.sport, "S", isn_c,
                      window=64240),
                b.tcp(self.server, self.seen_as, self.sport, self.cport, "SA", isn_s,
                      isn_c + 1, window=65160),
                b.tcp(self.client, self.server, self.cport, self.sport, "A", isn_c + 1,
                      isn_s + 1, window=502)]

    def client_says(self, text: bytes) -> bytes:
        segment = b.tcp(self.client, self.server, self.cport, self.sport, "PA",
                        self.next_c, self.next_s, window=502, payload=text)
        self.next_c += len(text)
        return segment

    def server_says(self, text: bytes, sack: Sequence[tuple[int, int]] = ()) -> bytes:
        """`sack`: blocks of the client's stream, counted as the server received it."""
        segment = b.tcp(self.server, self.seen_as, self.sport, self.cport, "PA",
                        self.next_s, (self.next_c + self.shift) & 0xFFFFFFFF, window=502,
                        sack=sack, payload=text)
        self.next_s += len(text)
        return segment


def run(traffic: Sequence[bytes], expect_after: Iterable[int] = (), v6: bool = False,
        ) -> VerifyResult:
    ifaces = (LAN6_IF, WAN6_IF) if v6 else (LAN_IF, WAN_IF)
    machine = Topology.build((), [(t.partition("=")[0], t.partition("=")[2].split(","))
                                  for t in ifaces])
    datagrams = [Datagram(n, d) for n, d in enumerate(traffic, 1)]
    result = verify_datagrams(datagrams, None if v6 else RULES, RULES6 if v6 else None,
                              local=machine.local, ifaces=machine.interfaces,
                              addresses=machine.addresses, expect_after=expect_after)
    assert result.ok, ([(p.number, p.differences, p.kernel_answer(), p.statewall_answer())
                        for p in result.disagreements], result.table, result.expectations)
    return result


def sent(result: VerifyResult, number: int) -> bytes:
    """The datagram the kernel sent for packet `number`."""
    left = result.packets[number - 1].kernel.left_as
    assert left is not None, f"packet {number} did not leave"
    return left


def tcp_fields(datagram: bytes) -> tuple[int, int, bytes]:
    """(seq, ack, payload) of an IPv4 or IPv6 TCP datagram."""
    l4 = (datagram[0] & 0x0F) * 4 if datagram[0] >> 4 == 4 else 40
    seq, ack = struct.unpack("!II", datagram[l4 + 4:l4 + 12])
    return seq, ack, datagram[l4 + (datagram[l4 + 12] >> 4) * 4:]


def reason(result: VerifyResult, number: int) -> str:
    return result.packets[number - 1].statewall.reason


def states(result: VerifyResult) -> list[str]:
    return [p.statewall.ctstate for p in result.packets]


@pytest.mark.kernel
def test_active_ftp_port_is_rewritten_and_the_stream_shifted(kernel: None,
                                                             made: list[str]) -> None:
    ctl = Stream(CLIENT, SERVER, WAN, 40100, 21)
    traffic = [*ctl.handshake(), ctl.server_says(b"220 ready\r\n"),
               ctl.client_says(b"USER anonymous\r\n"), ctl.server_says(b"331 go on\r\n"),
               ctl.client_says(b"PORT 192,0,2,10,156,64\r\n")]
    ported = len(traffic)
    # The router wrote its own address, one character longer.
    ctl.shift = 1
    traffic += [ctl.server_says(b"200 PORT command successful\r\n"),
                b.tcp(SERVER, WAN, 20, 40000, "S", 0x3333_0000, window=64240),
                b.tcp(CLIENT, SERVER, 40000, 20, "SA", 0x4444_0000, 0x3333_0001,
                      window=64240),
                b.tcp(SERVER, WAN, 20, 40000, "A", 0x3333_0001, 0x4444_0001, window=502),
                ctl.client_says(b"QUIT\r\n")]
    # The server also holds bytes the client sent later (a SACK block, server's count).
    block = (ctl.next_c + 1 + 100, ctl.next_c + 1 + 200)
    traffic.append(ctl.server_says(b"221 bye\r\n", sack=[block]))
    result = run(traffic, expect_after=[ported])
    assert states(result)[ported:ported + 4] == ["ESTABLISHED", "RELATED", "ESTABLISHED",
                                                 "ESTABLISHED"]
    seq, _, payload = tcp_fields(sent(result, ported))
    assert payload == b"PORT 203,0,113,1,156,64\r\n"
    assert "PORT rewritten to 203,0,113,1,156,64" in reason(result, ported)
    # The data connection reaches the client's own address and port.
    assert tcp_fields(sent(result, ported + 2))[:2] == (0x3333_0000, 0)
    quit_seq, _, _ = tcp_fields(sent(result, ported + 5))
    assert quit_seq == ctl.next_c - len(b"QUIT\r\n") + 1
    assert f"seq {quit_seq - 1} → {quit_seq}" in reason(result, ported + 5)
    _, bye_ack, _ = tcp_fields(sent(result, ported + 6))
    assert bye_ack == ctl.next_c
    assert f"ack {bye_ack + 1} → {bye_ack}" in reason(result, ported + 6)
    # The SACK block is moved back to the client's numbering too.
    bye = sent(result, ported + 6)
    assert struct.unpack("!II", bye[20 + 24:20 + 32]) == (block[0] - 1, block[1] - 1)
    assert "SACK edges moved back: 2" in reason(result, ported + 6)
    assert seq == tcp_fields(traffic[ported - 1])[0]


@pytest.mark.kernel
def test_passive_ftp_data_connection_is_masqueraded(kernel: None, made: list[str]) -> None:
    ctl = Stream(CLIENT, SERVER, WAN, 40200, 21)
    traffic = [*ctl.handshake(), ctl.server_says(b"220 ready\r\n"),
               ctl.client_says(b"PASV\r\n"),
               ctl.server_says(b"227 Entering Passive Mode (198,51,100,20,195,81).\r\n")]
    announced = len(traffic)
    traffic += [b.tcp(CLIENT, SERVER, 40300, 50001, "S", 0x0BAD_CAFE, window=64240),
                b.tcp(SERVER, WAN, 50001, 40300, "SA", 0x7777_0001, 0x0BAD_CAFF,
                      window=64240),
                ctl.client_says(b"LIST\r\n"), ctl.server_says(b"150 here\r\n")]
    result = run(traffic, expect_after=[announced])
    assert states(result)[announced] == "RELATED"
    # The server's own address and port, rewritten to the same text: no shift.
    assert tcp_fields(sent(result, announced))[2].endswith(b"(198,51,100,20,195,81).\r\n")
    assert "227 rewritten to 198,51,100,20,195,81" in reason(result, announced)
    assert "sequence adjusted" not in reason(result, announced + 3)


@pytest.mark.kernel
def test_epsv_and_eprt_over_ipv6(kernel: None, made: list[str]) -> None:
    ctl = Stream(CLIENT6, SERVER6, WAN6, 40400, 21)
    traffic = [*ctl.handshake(), ctl.server_says(b"220 ready\r\n"),
               ctl.client_says(b"EPSV\r\n"),
               ctl.server_says(b"229 Entering Extended Passive Mode (|||50002|)\r\n")]
    epsv = len(traffic)
    traffic += [b.tcp(CLIENT6, SERVER6, 40500, 50002, "S", 0x0BAD_CAFE, window=64240),
                ctl.client_says(f"EPRT |2|{CLIENT6}|40001|\r\n".encode())]
    eprt = len(traffic)
    ctl.shift = len("2001:0db8:0002:0000:0000:0000:0000:0001") - len(CLIENT6)
    traffic += [ctl.server_says(b"200 ok\r\n"),
                b.tcp(SERVER6, WAN6, 20, 40001, "S", 0x3333_0000, window=64240),
                ctl.client_says(b"QUIT\r\n")]
    result = run(traffic, expect_after=[eprt], v6=True)
    assert states(result)[epsv] == "RELATED"
    assert states(result)[eprt + 1] == "RELATED"
    assert tcp_fields(sent(result, eprt))[2] == (
        b"EPRT |2|2001:0db8:0002:0000:0000:0000:0000:0001|40001|\r\n")
    quit_seq, _, _ = tcp_fields(sent(result, eprt + 3))
    assert quit_seq == ctl.next_c - len(b"QUIT\r\n") + ctl.shift


@pytest.mark.kernel
def test_tftp_answer_from_a_new_port_reaches_the_client(kernel: None,
                                                        made: list[str]) -> None:
    traffic = [b.udp(CLIENT, SERVER, 5000, 69, b"\x00\x01file\x00octet\x00"),
               b.udp(SERVER, WAN, 3000, 5000, b"\x00\x03\x00\x01data"),
               b.udp(CLIENT, SERVER, 5000, 3000, b"\x00\x04\x00\x01")]
    result = run(traffic, expect_after=[1])
    assert states(result) == ["NEW", "RELATED", "ESTABLISHED"]
    assert result.packets[1].statewall.leaves is not None
    assert sent(result, 2)[16:20] == bytes([192, 0, 2, 10])
    assert any("translated like its master" in note for note in result.packets[0].statewall.notes)


@pytest.mark.kernel
def test_irc_dcc_offer_names_the_router(kernel: None, made: list[str]) -> None:
    ctl = Stream(CLIENT, SERVER, WAN, 40600, 6667)
    address = int.from_bytes(bytes([192, 0, 2, 10]), "big")
    offer = f"PRIVMSG bob :\x01DCC SEND file {address} 5000 42\x01\n".encode()
    traffic = [*ctl.handshake(), ctl.client_says(offer)]
    offered = len(traffic)
    ctl.shift = len(str(int.from_bytes(bytes([203, 0, 113, 1]), "big"))) - len(str(address))
    traffic += [ctl.server_says(b":server NOTICE x\r\n"),
                b.tcp(PEER, WAN, 6000, 5000, "S", 0x5555_0000, window=64240),
                ctl.client_says(b"PING x\r\n")]
    result = run(traffic, expect_after=[offered])
    wan_number = int.from_bytes(bytes([203, 0, 113, 1]), "big")
    assert tcp_fields(sent(result, offered))[2] == (
        f"PRIVMSG bob :\x01DCC SEND file {wan_number} 5000 42\x01\n".encode())
    assert states(result)[offered + 1] == "RELATED"
    # The connection follows its master: it seems to come from where the
    # client's packets go, the IRC server, whoever the peer is.
    leaves = result.packets[offered + 1].statewall.leaves
    assert leaves is not None
    assert (leaves.src, leaves.dst, leaves.sport, leaves.dport) == (SERVER, CLIENT, 6000, 5000)
    assert [e.listing.kernel for e in result.expectations][0] != ()


@pytest.mark.kernel
def test_amanda_connect_ports_expect_the_masqueraded_client(kernel: None,
                                                            made: list[str]) -> None:
    reply = b"Amanda 2.6 REP HANDLE 000-1 SEQ 1\nCONNECT DATA 50000 MESG 50001 INDEX 50002\n"
    traffic = [b.udp(CLIENT, SERVER, 850, 10080, b"Amanda 2.6 REQ HANDLE 000-1 SEQ 1\n"),
               b.udp(SERVER, WAN, 10080, 850, reply),
               b.tcp(CLIENT, SERVER, 41000, 50001, "S", 0x2222_0000, window=64240),
               b.tcp(SERVER, WAN, 50001, 41000, "SA", 0x6666_0000, 0x2222_0001,
                     window=64240)]
    result = run(traffic, expect_after=[2])
    assert states(result) == ["NEW", "ESTABLISHED", "RELATED", "ESTABLISHED"]
    # The ports named were free: the same text, three expectations.
    assert sent(result, 2)[28:] == reply
    assert len(result.expectations[0].listing.kernel) == 3
    assert reason(result, 2).count("rewritten to 5000") == 3
    leaves = result.packets[2].statewall.leaves
    assert leaves is not None and (leaves.src, leaves.dst) == (WAN, SERVER)
