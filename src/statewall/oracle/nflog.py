"""A minimal nfnetlink_log (NFLOG) listener: the oracle's window on the kernel.

Observation rules send each packet's fate to one NFLOG group as a prefix
string ("sw:s:NEW:ORIGINAL", "sw:x:forwarded", ...). This module binds that
group on a NETLINK_NETFILTER socket and returns the prefixes in the order
the kernel emitted them. It asks for metadata only (no packet copy) and a
queue threshold of one, so every message is flushed as soon as it is logged
instead of being batched for up to a second (nfnetlink_log.c:
`nfulnl_log_packet`, `__nfulnl_flush`).

Wire format (include/uapi/linux/netfilter/nfnetlink_log.h): a netlink header,
`struct nfgenmsg` (family, version, group in network order), then
attributes; the prefix is NFULA_PREFIX, NUL-terminated.
"""

from __future__ import annotations

import socket
import struct

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET = NFNL_SUBSYS_ULOG << 8
NFULNL_MSG_CONFIG = NFNL_SUBSYS_ULOG << 8 | 1

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 2

NFULA_CFG_CMD = 1
NFULA_CFG_MODE = 2
NFULA_CFG_TIMEOUT = 4
NFULA_CFG_QTHRESH = 5
NFULNL_CFG_CMD_BIND = 1
NFULNL_COPY_META = 1
NFULA_PREFIX = 10

_NLMSGHDR = struct.Struct("=IHHII")
_NFGENMSG = struct.Struct("!BBH")
_NLATTR = struct.Struct("=HH")
_HEADERS = _NLMSGHDR.size + _NFGENMSG.size


class NflogError(RuntimeError):
    """The kernel refused the NFLOG configuration or sent something unreadable."""


def _attr(kind: int, payload: bytes) -> bytes:
    length = _NLATTR.size + len(payload)
    return _NLATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def _config_message(group: int, seq: int, attrs: bytes) -> bytes:
    body = _NFGENMSG.pack(socket.AF_UNSPEC, 0, group) + attrs
    header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), NFULNL_MSG_CONFIG,
                            NLM_F_REQUEST | NLM_F_ACK, seq, 0)
    return header + body


def _prefix_of(message: memoryview) -> str | None:
    """The NFULA_PREFIX of one NFULNL_MSG_PACKET message, if it has one."""
    offset = _HEADERS
    while offset + _NLATTR.size <= len(message):
        length, kind = _NLATTR.unpack_from(message, offset)
        if length < _NLATTR.size:
            raise NflogError(f"attribute of length {length} at byte {offset}")
        if kind & 0x3FFF == NFULA_PREFIX:
            raw = bytes(message[offset + _NLATTR.size : offset + length])
            return raw.split(b"\0", 1)[0].decode("ascii", "replace")
        offset += (length + 3) & ~3
    return None


class NflogListener:
    """One NFLOG group, bound on a socket of the network namespace it is created in."""

    def __init__(self, group: int, rcvbuf: int = 1 << 22) -> None:
        self.group = group
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self._sock.bind((0, 0))
            self._configure()
        except BaseException:
            self._sock.close()
            raise

    def _configure(self) -> None:
        mode = struct.pack("!IBx", 0, NFULNL_COPY_META)
        steps = (
            _attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND])),
            _attr(NFULA_CFG_MODE, mode),
            _attr(NFULA_CFG_QTHRESH, struct.pack("!I", 1)) + _attr(NFULA_CFG_TIMEOUT,
                                                                   struct.pack("!I", 1)),
        )
        for seq, attrs in enumerate(steps, 1):
            self._sock.send(_config_message(self.group, seq, attrs))
            self._expect_ack(seq)

    def _expect_ack(self, seq: int) -> None:
        self._sock.settimeout(2.0)
        data = self._sock.recv(65536)
        length, kind, _flags, got_seq, _pid = _NLMSGHDR.unpack_from(data)
        if kind != NLMSG_ERROR or got_seq != seq:
            raise NflogError(f"expected an ack for request {seq}, got message type {kind}")
        (errno,) = struct.unpack_from("=i", data, _NLMSGHDR.size)
        if errno:
            raise NflogError(f"NFLOG group {self.group} configuration step {seq} failed: "
                             f"errno {-errno}")

    def receive(self, timeout: float) -> list[str]:
        """Prefixes from the next datagram the kernel sends (empty on timeout)."""
        self._sock.settimeout(timeout)
        try:
            data = self._sock.recv(1 << 16)
        except TimeoutError:
            return []
        return self._parse(memoryview(data))

    def _parse(self, data: memoryview) -> list[str]:
        prefixes: list[str] = []
        offset = 0
        while offset + _NLMSGHDR.size <= len(data):
            length, kind = struct.unpack_from("=IH", data, offset)
            if length < _NLMSGHDR.size:
                raise NflogError(f"netlink message of length {length}")
            if kind == NFULNL_MSG_PACKET:
                prefix = _prefix_of(data[offset : offset + length])
                if prefix is not None:
                    prefixes.append(prefix)
            offset += (length + 3) & ~3
        return prefixes

    def close(self) -> None:
        self._sock.close()
