"""Generate the benchmark capture: >= 1,000,000 packets over >= 100,000 connections.

Each TCP connection is a full life: handshake, a request and a response,
their ACKs, and a FIN teardown (10 packets); every fifth connection slot also
carries a DNS query and answer over UDP. Connections overlap (a new one
starts every 100 microseconds and lives 5 ms), so the table holds many at
once, and every one ends in TIME_WAIT so all of them are still tracked at
the end: peak memory divided by the table size is the cost of one entry.
No two connections share a client port and a server (nor two DNS queries a
client port), so behind a masquerading router every connection keeps its port.

With --nat-reply-to ADDRESS the same connections cross a masquerading
router: the clients' packets as they arrive on its LAN side, the servers'
packets as they arrive on its WAN side, addressed to ADDRESS (the router's
WAN address) at the client's port. bench/run.py replays this capture through
the stateful ruleset plus MASQUERADE and the plain one through the ruleset
alone, to measure what NAT costs per packet.

With --flood N it writes instead N TCP SYNs from distinct endpoints within a
few seconds, none answered: every one leaves an entry (SYN_SENT, 120 s), so
the table grows by one entry per packet. bench/run.py uses it to measure
memory per tracked connection, and at the default nf_conntrack_max, that
memory stays flat however long the flood.

Usage: python bench/generate.py [--connections N] [--nat-reply-to ADDRESS] [--flood N]
                                [--out FILE]
"""

from __future__ import annotations

import argparse
import heapq
import ipaddress
from collections.abc import Iterator
from pathlib import Path

from statewall import builder as b
from statewall.capture.writer import write_pcap

START = 1_700_000_000.0


def client_address(n: int) -> str:
    return str(ipaddress.IPv4Address(int(ipaddress.IPv4Address("10.0.0.0")) + 1 + n // 50))


def connection(n: int, reply_to: str | None = None) -> list[tuple[float, bytes]]:
    """Connection `n`'s packets; the servers' go to `reply_to` when given
    (masqueraded), else to the client."""
    client = client_address(n)
    # The server shifts each time the port wraps: (port, server) stays unique.
    server = f"198.51.100.{1 + (n + n // 60000) % 200}"
    sport, t0 = 1024 + n % 60000, START + n * 0.0001
    to_client = reply_to or client
    c, s = 1_000_000 + n, 9_000_000 + n
    request, response = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 200
    packets = [
        (0.0, b.tcp(client, server, sport, 80, "S", c, 0, window=64240, mss=1460, wscale=7,
                    sack_perm=True)),
        (0.0005, b.tcp(server, to_client, 80, sport, "SA", s, c + 1, window=65160, mss=1460,
                       wscale=7, sack_perm=True)),
        (0.0010, b.tcp(client, server, sport, 80, "A", c + 1, s + 1, window=502)),
        (0.0011, b.tcp(client, server, sport, 80, "PA", c + 1, s + 1, window=502, payload=request)),
        (0.0020, b.tcp(server, to_client, 80, sport, "A", s + 1, c + 1 + len(request), window=509)),
        (0.0021, b.tcp(server, to_client, 80, sport, "PA", s + 1, c + 1 + len(request), window=509,
                       payload=response)),
        (0.0030, b.tcp(client, server, sport, 80, "A", c + 1 + len(request),
                       s + 1 + len(response), window=502)),
        (0.0040, b.tcp(client, server, sport, 80, "FA", c + 1 + len(request),
                       s + 1 + len(response), window=502)),
        (0.0045, b.tcp(server, to_client, 80, sport, "FA", s + 1 + len(response),
                       c + 2 + len(request), window=509)),
        (0.0050, b.tcp(client, server, sport, 80, "A", c + 2 + len(request),
                       s + 2 + len(response), window=502)),
    ]
    if n % 5 == 0:
        dns_port = 20000 + (n // 5) % 40000
        query = (n % 65536).to_bytes(2, "big") + b"\x01\x00\x00\x01" + bytes(6) + b"\x01x\x00\x00\x01\x00\x01"
        packets.append((0.0002, b.udp(client, "198.51.100.253", dns_port, 53,
                                      payload=query)))
        packets.append((0.0007, b.udp("198.51.100.253", to_client, 53, dns_port,
                                      payload=query)))
    return [(t0 + dt, b.ethernet(data)) for dt, data in packets]


def frames(connections: int, reply_to: str | None = None) -> Iterator[tuple[float, bytes]]:
    """All packets in time order, built lazily (a heap of the open connections)."""
    heap: list[tuple[float, int, int, bytes]] = []
    seq = 0
    for n in range(connections):
        for ts, frame in connection(n, reply_to):
            heapq.heappush(heap, (ts, seq, n, frame))
            seq += 1
        horizon = START + (n + 1) * 0.0001
        while heap and heap[0][0] < horizon:
            ts, _, _, frame = heapq.heappop(heap)
            yield ts, frame
    while heap:
        ts, _, _, frame = heapq.heappop(heap)
        yield ts, frame


def flood(count: int) -> Iterator[tuple[float, bytes]]:
    """`count` unanswered SYNs, 5 microseconds apart, each from a new endpoint."""
    for n in range(count):
        client = str(ipaddress.IPv4Address(int(ipaddress.IPv4Address("10.0.0.0")) + 1 + n // 60000))
        syn = b.tcp(client, "198.51.100.80", 1024 + n % 60000, 80, "S", 1000 + n, 0, window=64240)
        yield START + n * 0.000005, b.ethernet(syn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=100_000)
    parser.add_argument("--nat-reply-to", metavar="ADDRESS",
                        help="the servers' packets go to ADDRESS, as behind a masquerading router")
    parser.add_argument("--flood", type=int, metavar="N", help="N unanswered SYNs instead")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "bench.pcap")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    count = 0

    def counted() -> Iterator[tuple[float, bytes]]:
        nonlocal count
        source = flood(args.flood) if args.flood else frames(args.connections, args.nat_reply_to)
        for item in source:
            count += 1
            yield item

    write_pcap(args.out, counted())
    if args.flood:
        print(f"{args.out}: {count} SYNs, one new entry each")
        return
    print(f"{args.out}: {count} packets, {args.connections} TCP connections "
          f"(+{(args.connections + 4) // 5} UDP)")


if __name__ == "__main__":
    main()
