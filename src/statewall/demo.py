"""The built-in capture behind `statewall demo`: every conntrack state in a few packets.

The packets are built in memory (no file is read), in the order a person
would tell the story: a TCP connection from handshake to TIME_WAIT with an
out-of-window segment in the middle, a stray ACK picked up mid-stream, a
malformed flag combination, a DNS exchange, a ping, a UDP packet answered
by ICMP port unreachable (RELATED), an ICMP error about nothing known
(INVALID), and a fragmented ping (STOLEN, then NEW on reassembly).
`--router` replays a home router's instead: masquerading and a port forward.
"""

from __future__ import annotations

from collections.abc import Iterator

from statewall import builder as b
from statewall.decode import decode_datagram
from statewall.packet import Packet

CLIENT = "192.0.2.10"
SERVER = "198.51.100.20"
RESOLVER = "198.51.100.53"
START = 1_700_000_000.0

# The embedded default: a router that lets its inside network (192.0.2.0/24)
# out, lets answers back in, and drops what conntrack calls INVALID.
DEMO_RULES = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -s 192.0.2.0/24 -p tcp --syn -m conntrack --ctstate NEW -j ACCEPT
-A FORWARD -s 192.0.2.0/24 -p udp -m conntrack --ctstate NEW -j ACCEPT
-A FORWARD -s 192.0.2.0/24 -p icmp --icmp-type echo-request -j ACCEPT
COMMIT
"""


def demo_datagrams() -> list[tuple[float, bytes]]:
    """(seconds after the start, IP datagram) pairs."""
    c_isn, s_isn = 1000, 5000
    dns_query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
    dns_answer = dns_query[:2] + b"\x81\x80" + dns_query[4:]
    stray_udp = b.udp(CLIENT, SERVER, 40002, 9999, payload=b"anyone there?")
    big_ping = b.icmp_echo(CLIENT, SERVER, 7, 1, payload=bytes(range(256)) * 8)
    return [
        (0.000, b.tcp(CLIENT, SERVER, 40000, 80, "S", c_isn, 0, mss=1460, wscale=7, sack_perm=True)),
        (0.010, b.tcp(SERVER, CLIENT, 80, 40000, "SA", s_isn, c_isn + 1, mss=1460, wscale=7,
                      sack_perm=True)),
        (0.011, b.tcp(CLIENT, SERVER, 40000, 80, "A", c_isn + 1, s_isn + 1, window=502)),
        (0.012, b.tcp(CLIENT, SERVER, 40000, 80, "PA", c_isn + 1, s_isn + 1, window=502,
                      payload=b"GET / HTTP/1.0\r\n\r\n")),
        (0.020, b.tcp(SERVER, CLIENT, 80, 40000, "PA", s_isn + 1, c_isn + 19, window=509,
                      payload=b"HTTP/1.0 200 OK\r\n\r\nhello")),
        (0.021, b.tcp(CLIENT, SERVER, 40000, 80, "A", c_isn + 19 + 10_000_000, s_isn + 25,
                      window=502, payload=b"far outside the window")),
        (0.030, b.tcp(CLIENT, SERVER, 40000, 80, "FA", c_isn + 19, s_isn + 25, window=502)),
        (0.040, b.tcp(SERVER, CLIENT, 80, 40000, "FA", s_isn + 25, c_isn + 20, window=509)),
        (0.041, b.tcp(CLIENT, SERVER, 40000, 80, "A", c_isn + 20, s_isn + 26, window=502)),
        (1.000, b.tcp("192.0.2.11", SERVER, 40001, 22, "A", 77777, 88888, window=1000)),
        (1.100, b.tcp("192.0.2.12", SERVER, 40003, 80, "SF", 1, 0)),
        (2.000, b.udp(CLIENT, RESOLVER, 53000, 53, payload=dns_query)),
        (2.020, b.udp(RESOLVER, CLIENT, 53, 53000, payload=dns_answer)),
        (3.000, b.icmp_echo(CLIENT, SERVER, 42, 1)),
        (3.010, b.icmp_echo(SERVER, CLIENT, 42, 1, reply=True)),
        (4.000, stray_udp),
        (4.001, b.icmp_error(SERVER, CLIENT, 3, 3, stray_udp)),
        (5.000, b.icmp_error("203.0.113.66", CLIENT, 3, 1,
                             b.udp(CLIENT, "203.0.113.99", 41000, 123, payload=b"ntp?"))),
        *((6.000 + i * 0.001, frag) for i, frag in enumerate(b.fragment(big_ping, 1024))),
    ]


# `statewall demo --router`: a home router. The LAN (192.168.1.0/24) goes out
# masqueraded behind the router's Internet address; port 8080 on that address
# is forwarded to a printer's web page on the LAN.
ROUTER_IFACES = (("lan", ("192.168.1.1/24",)), ("wan", ("203.0.113.1/24", "0.0.0.0/0")))
ROUTER_RULES = """\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i wan -p tcp --dport 8080 -j DNAT --to-destination 192.168.1.20:80
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A INPUT -i lan -j ACCEPT
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i lan -o wan -j ACCEPT
-A FORWARD -m conntrack --ctstate DNAT -j ACCEPT
COMMIT
"""
LAPTOP, PRINTER, WAN = "192.168.1.10", "192.168.1.20", "203.0.113.1"
WEB, VISITOR = "198.51.100.20", "198.51.100.99"


def router_datagrams() -> list[tuple[float, bytes]]:
    """The home router's capture, both interfaces: what arrives on each."""
    query = b"\x56\x78\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03com\x00\x00\x01\x00\x01"
    return [
        (0.000, b.udp(LAPTOP, RESOLVER, 53001, 53, payload=query)),
        (0.015, b.udp(RESOLVER, WAN, 53, 53001, payload=query[:2] + b"\x81\x80" + query[4:])),
        (0.100, b.tcp(LAPTOP, WEB, 40000, 443, "S", 1000)),
        (0.120, b.tcp(WEB, WAN, 443, 40000, "SA", 5000, 1001)),
        (0.121, b.tcp(LAPTOP, WEB, 40000, 443, "A", 1001, 5001)),
        (0.200, b.icmp_echo(LAPTOP, WEB, 9, 1)),
        (0.220, b.icmp_echo(WEB, WAN, 9, 1, reply=True)),
        (1.000, b.tcp(VISITOR, WAN, 51000, 8080, "S", 77)),
        (1.010, b.tcp(PRINTER, VISITOR, 80, 51000, "SA", 900, 78)),
        (1.030, b.tcp(VISITOR, WAN, 51000, 8080, "A", 78, 901)),
        (2.000, b.tcp(VISITOR, WAN, 51001, 22, "S", 5)),
    ]


def router_frames() -> Iterator[tuple[float, bytes]]:
    for offset, data in router_datagrams():
        yield START + offset, data


def demo_packets() -> Iterator[Packet]:
    for index, (offset, data) in enumerate(demo_datagrams()):
        yield decode_datagram(data, index=index, ts=START + offset)


def demo_frames() -> Iterator[tuple[float, bytes]]:
    """The demo as (timestamp, raw IP datagram) pairs, for a LINKTYPE_RAW capture."""
    for offset, data in demo_datagrams():
        yield START + offset, data
