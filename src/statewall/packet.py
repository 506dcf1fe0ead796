"""The decoded packet: the one value that flows from decoding through defrag,
connection tracking and rule matching.

It is a plain slotted class rather than a dataclass so that the hot path
allocates one small object per packet and reads fields without indirection.
Addresses are integers (32 or 128 bits): they hash fast, mask fast for
`-s 10.0.0.0/8` style matches and pack into table keys.

Field conventions mirror the kernel's view of a packet after defragmentation:
`data` is the whole IP datagram (header included), `l4_off` is where the
layer-4 header starts, `payload_off` where the layer-4 payload starts.
"""

from __future__ import annotations

from typing import NamedTuple

# TCP flag bits as they sit in byte 13 of the header.
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_GRE = 47
PROTO_ICMPV6 = 58
PROTO_SCTP = 132
PROTO_UDPLITE = 136


class DecodeError(Exception):
    """A packet that cannot be decoded, with the layer and byte offset at fault.

    This is the single error decoding may raise (design principle 5): callers
    turn it into an INVALID packet carrying `str(error)` as the reason.
    """

    def __init__(self, layer: str, offset: int, cause: str) -> None:
        super().__init__(f"{layer} at byte {offset}: {cause}")
        self.layer = layer
        self.offset = offset
        self.cause = cause


class TcpOptions(NamedTuple):
    """The TCP options conntrack's window tracking reads (kernel: tcp_options, tcp_sack)."""

    mss: int | None = None
    wscale: int | None = None  # shift count as sent (the kernel caps it at 14)
    sack_perm: bool = False
    sack_blocks: tuple[tuple[int, int], ...] = ()  # (left edge, right edge)
    timestamp: tuple[int, int] | None = None  # (TSval, TSecr)


class FragmentInfo(NamedTuple):
    """Where a fragment sits in its datagram (IPv4 header fields or the IPv6 fragment header)."""

    ident: int
    offset: int  # byte offset of this fragment's payload in the datagram's payload
    more: bool  # MF flag
    next_proto: int  # protocol of the datagram payload (IPv6: from the fragment header)
    unfrag_len: int  # length of the headers that precede the fragmentable part


class Packet:
    """One IP datagram as conntrack and the rules see it.

    `error` is set (and most layer-4 fields left at their zero defaults) when
    the packet could not be fully decoded: conntrack will treat it as INVALID
    with that reason. `fragment` is set for a datagram that is only a piece of a
    larger one; the defragmenter consumes those and emits the reassembled
    datagram as a new Packet. `inner` holds the datagram an ICMP or ICMPv6
    error quotes, decoded leniently (it is usually truncated).
    """

    __slots__ = (
        "index", "ts", "data", "family", "src", "dst", "proto", "ttl", "tos",
        "ip_len", "ip_id", "l4_off", "payload_off", "sport", "dport",
        "tcp_flags", "seq", "ack", "window", "tcp_options", "icmp_type",
        "icmp_code", "icmp_id", "fragment", "error", "iface_in", "iface_out",
        "link_src", "link_dst", "link_type", "frame_len", "pkt_type", "inner", "frame",
    )

    index: int
    ts: float
    data: bytes
    family: int
    src: int
    dst: int
    proto: int
    ttl: int
    tos: int
    ip_len: int
    ip_id: int
    l4_off: int
    payload_off: int
    sport: int
    dport: int
    tcp_flags: int
    seq: int
    ack: int
    window: int
    tcp_options: TcpOptions | None
    icmp_type: int
    icmp_code: int
    icmp_id: int
    fragment: FragmentInfo | None
    error: DecodeError | None
    iface_in: str | None
    iface_out: str | None
    link_src: bytes | None
    link_dst: bytes | None
    link_type: int
    frame_len: int
    pkt_type: str
    inner: Packet | None
    frame: bytes | None  # the captured frame it was decoded from (None: built by hand)

    def __init__(self, index: int = 0, ts: float = 0.0, data: bytes = b"", family: int = 4) -> None:
        self.index = index
        self.ts = ts
        self.data = data
        self.family = family
        self.src = 0
        self.dst = 0
        self.proto = 0
        self.ttl = 0
        self.tos = 0
        self.ip_len = len(data)
        self.ip_id = 0
        self.l4_off = 0
        self.payload_off = 0
        self.sport = 0
        self.dport = 0
        self.tcp_flags = 0
        self.seq = 0
        self.ack = 0
        self.window = 0
        self.tcp_options = None
        self.icmp_type = 0
        self.icmp_code = 0
        self.icmp_id = 0
        self.fragment = None
        self.error = None
        self.iface_in = None
        self.iface_out = None
        self.link_src = None
        self.link_dst = None
        self.link_type = 0
        self.frame_len = len(data)
        self.pkt_type = "host"
        self.inner = None
        self.frame = None

    @property
    def payload(self) -> bytes:
        """The layer-4 payload (what helpers parse)."""
        return self.data[self.payload_off:]

    @property
    def payload_len(self) -> int:
        return len(self.data) - self.payload_off

    def __repr__(self) -> str:
        return (
            f"Packet(#{self.index} v{self.family} proto={self.proto} "
            f"{self.src:x}:{self.sport} > {self.dst:x}:{self.dport} error={self.error})"
        )
