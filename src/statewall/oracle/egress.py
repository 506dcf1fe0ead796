"""Did a forwarded (or sent) packet really leave the firewall? Watch the wire.

The kernel oracle logs "forwarded" from the security table's FORWARD chain
(priority 50). Conntrack helpers run later, at the confirm step in
POSTROUTING (priority INT_MAX, nf_confirm), and may still drop the packet: a
partial FTP command, an expectation that cannot be inserted. No iptables
rule can run after that, so the only proof that a packet was forwarded is a
frame arriving at the endpoint on the other side.

`EgressWatch` keeps one packet socket per endpoint namespace that sees only
incoming frames (PACKET_IGNORE_OUTGOING). A datagram counts as forwarded
when a frame with its source and destination addresses reaches the far
endpoint; the firewall's own chatter (IPv6 MLD reports) does not match.
Addresses, not whole bytes, are compared, so rules that rewrite TTL, MSS
or DSCP do not fool the check. With NAT the addresses that leave are the
translated ones: the caller names what it expects (statewall's answer), and
when another frame of the datagram's family and protocol arrives instead,
that frame is what the kernel sent (the comparison then shows the
difference). A packet the kernel logged as forwarded but that never arrives
within `timeout` was dropped at the confirm step; only those pay the wait.
"""

from __future__ import annotations

import select
import socket
import time
from dataclasses import replace
from types import TracebackType

from statewall.oracle import netns
from statewall.oracle.kernel import KernelObservation

ETH_P_ALL = 0x0003
SOL_PACKET = 263  # linux/socket.h
PACKET_IGNORE_OUTGOING = 23  # linux/if_packet.h, Linux 4.20+
FRAME_SIZE = 65536
ETH_HEADER = 14
ARRIVAL_TIMEOUT = 0.25


class EgressWatch:
    """Incoming-frame sockets on both endpoints of a `netns.Topology`; a context manager."""

    def __init__(self, topology: netns.Topology, timeout: float = ARRIVAL_TIMEOUT) -> None:
        self.timeout = timeout
        self._sockets: list[socket.socket] = []
        try:
            for side in (0, 1):
                with netns.entered(topology.endpoint(side)):
                    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                         socket.htons(ETH_P_ALL))
                self._sockets.append(sock)
                sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
                sock.bind((netns.ENDPOINT_IF, ETH_P_ALL))
                sock.setblocking(False)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> EgressWatch:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def forget(self) -> None:
        """Discard frames that arrived so far (call before injecting a datagram)."""
        for sock in self._sockets:
            _drain(sock)

    def confirm(self, observed: KernelObservation, datagram: bytes, side: int | None,
                expected: bytes | None = None) -> KernelObservation:
        """`observed` for `datagram` injected on `side`, "forwarded" only if it left by
        the other; side None: the firewall sent it, "sent" only if it left by either.
        `expected`: the address bytes it should leave with (default: its own); the
        frame that left is kept as `left_as`."""
        if observed.outcome not in ("forwarded", "sent"):
            return observed
        wanted = addresses(datagram) if expected is None else expected
        kind = _kind(datagram)
        watched = self._sockets if side is None else [self._sockets[1 - side]]
        other: bytes | None = None
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select(watched, [], [], left)
            for frame in (frame for sock in ready for frame in _drain(sock)):
                ip = frame[ETH_HEADER:]
                if addresses(ip) == wanted:
                    return replace(observed, left_as=ip)
                if other is None and _kind(ip) == kind:
                    other = ip
        if other is not None:
            return replace(observed, left_as=other)
        return replace(observed, outcome="dropped")

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()


def addresses(datagram: bytes) -> bytes:
    """The source and destination address bytes of an IP datagram (empty if not IP)."""
    version = datagram[0] >> 4 if datagram else 0
    if version == 4:
        return datagram[12:20]
    if version == 6:
        return datagram[8:40]
    return b""


def _kind(datagram: bytes) -> tuple[int, int]:
    """(IP version, protocol) of a datagram (the next header after an IPv6 header)."""
    version = datagram[0] >> 4 if datagram else 0
    if version == 4 and len(datagram) > 9:
        return 4, datagram[9]
    if version == 6 and len(datagram) > 6:
        return 6, datagram[6]
    return version, -1


def _drain(sock: socket.socket) -> list[bytes]:
    frames: list[bytes] = []
    while True:
        try:
            frames.append(sock.recv(FRAME_SIZE))
        except BlockingIOError:
            return frames
