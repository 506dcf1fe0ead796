"""UDP and UDP-Lite trackers (net/netfilter/nf_conntrack_proto_udp.c).

Neither protocol has states: an entry only carries status bits and one of
two timeouts. What differs is when the long "stream" timeout and ASSURED
apply:

* UDP (`nf_conntrack_udp_packet`): a reply must already have been seen *and*
  the entry must be more than 2 s old. The first reply itself never counts,
  because the core sets SEEN_REPLY only after the tracker has run.
* UDP-Lite (`nf_conntrack_udplite_packet`) kept the older rule: any packet
  after the first reply gets the stream timeout and ASSURED at once.

Validation (`udp_error`, `udplite_error`) runs before the lookup; in the
kernel it runs at the top of the packet function, but nothing changes state
before it, so the verdicts are the same.
"""

from __future__ import annotations

from statewall.checksum import internet_checksum, l4_checksum_ok, pseudo_header_sum
from statewall.config import Sysctls
from statewall.conntrack.conn import IPS_ASSURED, IPS_SEEN_REPLY, REPLY, Conn
from statewall.conntrack.l4proto import ACCEPT, L4Tracker
from statewall.packet import PROTO_UDP, PROTO_UDPLITE, Packet

UDP_HEADER_LEN = 8
# A replied UDP flow is a "stream" only once it has lived longer than this
# (the kernel stores created + 2 s as `stream_ts` and compares strictly).
UDP_STREAM_AGE = 2.0

_UNREPLIED = "UDP: no reply seen yet (nf_conntrack_udp_timeout)"
_FIRST_REPLY = "UDP: first reply; streams start with the next packet (nf_conntrack_udp_timeout)"
_YOUNG = "UDP: replied but not older than 2 s (nf_conntrack_udp_timeout)"
_STREAM = "UDP: stream, replied and older than 2 s (nf_conntrack_udp_timeout_stream, ASSURED)"
_LITE_UNREPLIED = "UDP-Lite: no reply seen yet (nf_conntrack_udp_timeout)"
_LITE_FIRST_REPLY = "UDP-Lite: first reply; ASSURED from the next packet (nf_conntrack_udp_timeout)"
_LITE_STREAM = "UDP-Lite: replied (nf_conntrack_udp_timeout_stream, ASSURED)"


def udp_error(pkt: Packet, cfg: Sysctls, in_prerouting: bool) -> str | None:
    """Header length, length field and (at PREROUTING) checksum, as `udp_error`."""
    data = pkt.data
    off = pkt.l4_off
    available = len(data) - off
    if available < UDP_HEADER_LEN:
        return f"INVALID: UDP short packet ({available} bytes, header needs 8)"
    length = data[off + 4] << 8 | data[off + 5]
    if length > available or length < UDP_HEADER_LEN:
        return (
            f"INVALID: UDP truncated/malformed packet (length field {length}, "
            f"{available} bytes present)"
        )
    if not (data[off + 6] | data[off + 7]):
        # Checksum 0 means "none" and is accepted unchecked, for IPv6 too.
        return None
    if (
        in_prerouting
        and cfg.nf_conntrack_checksum
        and not l4_checksum_ok(pkt.family, pkt.src, pkt.dst, PROTO_UDP, data[off:])
    ):
        return "INVALID: UDP bad checksum"
    return None


def udplite_error(pkt: Packet, cfg: Sysctls, in_prerouting: bool) -> str | None:
    """`udplite_error` including 6.18's checksum quirk (see `udplite_checksum_ok`)."""
    return _udplite_error(pkt, cfg, in_prerouting, True)


def udplite_error_rfc3828(pkt: Packet, cfg: Sysctls, in_prerouting: bool) -> str | None:
    """`udplite_error` with the checksum computed as RFC 3828 defines it."""
    return _udplite_error(pkt, cfg, in_prerouting, False)


def _udplite_error(pkt: Packet, cfg: Sysctls, in_prerouting: bool, quirk: bool) -> str | None:
    data = pkt.data
    off = pkt.l4_off
    available = len(data) - off
    if available < UDP_HEADER_LEN:
        return f"INVALID: UDP-Lite short packet ({available} bytes, header needs 8)"
    coverage = data[off + 4] << 8 | data[off + 5]
    if coverage == 0:
        coverage = available
    elif coverage < UDP_HEADER_LEN or coverage > available:
        return (
            f"INVALID: UDP-Lite invalid checksum coverage ({coverage}, "
            f"{available} bytes present)"
        )
    if not (data[off + 6] | data[off + 7]):
        return "INVALID: UDP-Lite checksum missing (UDP-Lite requires one)"
    if (
        in_prerouting
        and cfg.nf_conntrack_checksum
        and not udplite_checksum_ok(pkt, coverage, quirk)
    ):
        return "INVALID: UDP-Lite bad checksum"
    return None


def udplite_checksum_ok(pkt: Packet, coverage: int, kernel_6_18_quirk: bool = True) -> bool:
    """Verify the UDP-Lite checksum over its first `coverage` bytes.

    Linux 6.18 asks for the partial checksum with protocol UDP (17) instead of
    UDP-Lite (136); on IPv4 the helper also swaps the length and protocol
    arguments, and the protocol slot only holds a byte. So the kernel accepts
    IPv4 segments summed with "protocol" = length mod 256 and "length" = 17,
    IPv6 segments summed with next-header 17, and rejects correct ones. With
    `kernel_6_18_quirk` false the RFC 3828 pseudo-header (protocol 136) is used.
    """
    off = pkt.l4_off
    segment_len = len(pkt.data) - off
    if not kernel_6_18_quirk:
        seed = pseudo_header_sum(pkt.family, pkt.src, pkt.dst, PROTO_UDPLITE, segment_len)
    elif pkt.family == 4:
        seed = pseudo_header_sum(4, pkt.src, pkt.dst, segment_len & 0xFF, PROTO_UDP)
    else:
        seed = pseudo_header_sum(6, pkt.src, pkt.dst, PROTO_UDP, segment_len)
    return internet_checksum(pkt.data[off:off + coverage], seed) == 0


def udp_new(conn: Conn, pkt: Packet, cfg: Sysctls) -> str | None:
    """Any valid UDP datagram may start a flow."""
    return None


def udp_packet(
    conn: Conn, pkt: Packet, direction: int, ctinfo: int, now: float, cfg: Sysctls
) -> tuple[int, str]:
    status = conn.status
    if not status & IPS_SEEN_REPLY:
        conn.set_timeout(now, cfg.nf_conntrack_udp_timeout)
        return ACCEPT, _FIRST_REPLY if direction == REPLY else _UNREPLIED
    if now <= conn.created + UDP_STREAM_AGE:
        conn.set_timeout(now, cfg.nf_conntrack_udp_timeout)
        return ACCEPT, _YOUNG
    conn.set_timeout(now, cfg.nf_conntrack_udp_timeout_stream)
    conn.status = status | IPS_ASSURED
    return ACCEPT, _STREAM


def udplite_packet(
    conn: Conn, pkt: Packet, direction: int, ctinfo: int, now: float, cfg: Sysctls
) -> tuple[int, str]:
    status = conn.status
    if not status & IPS_SEEN_REPLY:
        conn.set_timeout(now, cfg.nf_conntrack_udp_timeout)
        return ACCEPT, _LITE_FIRST_REPLY if direction == REPLY else _LITE_UNREPLIED
    conn.set_timeout(now, cfg.nf_conntrack_udp_timeout_stream)
    conn.status = status | IPS_ASSURED
    return ACCEPT, _LITE_STREAM


UDP_TRACKER = L4Tracker(
    name="udp", proto=PROTO_UDP, error=udp_error, new=udp_new, packet=udp_packet
)

# Verdict-for-verdict with Linux 6.18, including its UDP-Lite checksum bug.
UDPLITE_TRACKER = L4Tracker(
    name="udplite", proto=PROTO_UDPLITE, error=udplite_error, new=udp_new, packet=udplite_packet
)

# The same tracker verifying checksums as RFC 3828 says (what a fixed kernel does).
UDPLITE_TRACKER_RFC3828 = L4Tracker(
    name="udplite", proto=PROTO_UDPLITE, error=udplite_error_rfc3828, new=udp_new,
    packet=udplite_packet,
)
