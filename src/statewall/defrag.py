"""Fragment reassembly before conntrack (nf_defrag_ipv4 / nf_defrag_ipv6).

How this works. Conntrack only ever sees whole datagrams: at priority -400,
before the raw table, the kernel collects fragments into queues keyed by
(source, destination, identification, protocol, defrag user) for IPv4
(net/ipv4/ip_fragment.c: `ip_find`) and (source, destination,
identification, defrag user, input interface) for IPv6
(net/ipv6/netfilter/nf_conntrack_reasm.c: `fq_find`). A queue lives from its
first fragment for ipfrag_time (IPv4) or nf_conntrack_frag6_timeout (IPv6)
seconds; the timer is not refreshed by later fragments.

Both families share the placement rules of `inet_frag_queue_insert`
(net/ipv4/inet_fragment.c): fragments appended at the tail form "runs"; a
fragment lying entirely inside an existing run is a duplicate and is dropped
while the queue lives on; any other overlap discards the whole datagram
(RFC 5722, applied to IPv4 too since Linux 4.19).

Where the families differ:

* IPv4 (`ip_frag_queue`) fails fast: an inconsistent end, a zero-length
  fragment or an overlap kills the queue. A fragment with MF set and a length
  not a multiple of 8 is silently cut down to a multiple of 8. ipfrag_max_dist
  counts fragments per source address; if more than that many arrived from
  the source since this queue's previous fragment, the queue is emptied and
  restarted (`ip_frag_too_far`, `ip_frag_reinit`). The reassembled header is
  the first fragment's (TTL, identification, options), with the total length,
  DF (set only when the largest fragment carried DF) and checksum rewritten.
* IPv6 (`nf_ct_frag6_queue`, `nf_ct_frag6_gather`) drops an inconsistent
  fragment but keeps the queue. A fragment with MF and a length not a
  multiple of 8 kills the queue and is then let through unreassembled (the
  -EPROTO path). A first fragment without its full layer-4 header
  (`ipv6frag_thdr_truncated`) is let through too. An atomic fragment (offset
  0, MF clear) goes through a queue that completes at once, so it comes out
  with its fragment header removed. The fragment header is removed from the
  reassembled datagram and the header before it takes over its next-header
  value.

Memory: every queue charges its size and every fragment its buffer's
`truesize` to the family's counter; while the counter is above ipfrag_high_thresh
/ nf_conntrack_frag6_high_thresh (`inet_frag_find`), every fragment, even one
for an existing queue, is dropped until timeouts free memory. Linux has had no
evictor since 4.17, so the low thresholds change nothing. The sizes used here
are estimates of a 64-bit kernel's (see `QUEUE_SIZE_V4` and `truesize`).
"""

from __future__ import annotations

import heapq
import ipaddress
from dataclasses import dataclass
from typing import Literal

from statewall.config import Sysctls
from statewall.decode import decode_datagram
from statewall.packet import (
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    FragmentInfo,
    Packet,
)

# Memory charged per queue: sizeof(struct ipq) (measured: /proc/net/sockstat "FRAG"
# grows by 200 for a new queue) and sizeof(struct frag_queue) (estimated).
QUEUE_SIZE_V4 = 200
QUEUE_SIZE_V6 = 184
# skb truesize by frame length, measured on Linux 6.18 for frames received on a
# veth: the skb head comes from a kmalloc bucket, so truesize moves in steps.
# Other drivers differ; these steps are an estimate for them.
TRUESIZE_STEPS = (
    (234, 832), (640, 1280), (1664, 2304), (3712, 4352), (4608, 8448), (9216, 9024),
)
MAX_DATAGRAM = 65535

# ECN codepoints seen in the fragments, one bit each (IPFRAG_ECN_*).
_ECN_NOT_ECT = 1
_ECN_CE = 8

Kind = Literal["pass", "queued", "complete", "dropped"]
# Queue identity: family, addresses, identification, then protocol/zone/interface.
Key = tuple[int | str | None, ...]


@dataclass(frozen=True, slots=True)
class DefragResult:
    """What the defrag hook did with one packet."""

    kind: Kind
    packet: Packet | None  # "pass": the packet itself; "complete": the reassembled datagram
    reason: str
    expired: tuple[int, ...] = ()  # fragments of queues that timed out before this packet


def truesize(datagram_len: int) -> int:
    """Estimated skb truesize of a fragment received in an Ethernet frame."""
    frame = datagram_len + 14
    for limit, size in TRUESIZE_STEPS:
        if frame <= limit:
            return size
    return 256 + (1 << (frame + 384 - 1).bit_length())


class _Queue:
    """One datagram being reassembled (struct inet_frag_queue)."""

    __slots__ = (
        "key", "family", "src", "ident", "deadline", "length", "meat", "first_in", "last_in",
        "runs", "tail_end", "frags", "ecn", "max_size", "max_df_size", "rid", "mem",
    )

    def __init__(self, key: Key, pkt: Packet, ident: int, deadline: float) -> None:
        self.key = key
        self.family = pkt.family
        self.src = pkt.src
        self.ident = ident
        self.deadline = deadline
        self.length = 0  # q.len: the datagram's payload length as far as known
        self.meat = 0  # bytes received
        self.first_in = False
        self.last_in = False
        self.runs: list[list[int]] = []  # [start, end] of each run, sorted
        self.tail_end = 0
        self.frags: list[tuple[int, bytes, Packet]] = []  # (offset, payload, fragment)
        self.ecn = 0
        self.max_size = 0
        self.max_df_size = 0
        self.rid = 0
        self.mem = 0

    def indices(self) -> tuple[int, ...]:
        return tuple(sorted(p.index for _, _, p in self.frags))

    def reinit(self, deadline: float) -> int:
        """Empty the queue and restart its timer (`ip_frag_reinit`); returns freed memory."""
        freed = self.mem - QUEUE_SIZE_V4
        self.mem = QUEUE_SIZE_V4
        self.deadline = deadline
        self.length = self.meat = self.ecn = self.tail_end = 0
        self.first_in = self.last_in = False
        self.runs = []
        self.frags = []
        self.max_size = self.max_df_size = 0
        return freed


DUP = 1
OVERLAP = 2


def _insert(q: _Queue, offset: int, end: int) -> int:
    """Place [offset, end) among the runs (`inet_frag_queue_insert`): 0, DUP or OVERLAP."""
    if not q.runs:
        q.runs.append([offset, end])
    elif q.tail_end < end:
        if offset < q.tail_end:
            return OVERLAP
        if offset == q.tail_end:
            q.runs[-1][1] = end
        else:
            q.runs.append([offset, end])
    else:
        at = 0
        for run in q.runs:
            if end <= run[0]:
                break
            if offset < run[1]:
                return DUP if run[0] <= offset and end <= run[1] else OVERLAP
            at += 1
        q.runs.insert(at, [offset, end])
    q.tail_end = max(q.tail_end, end)
    return 0


class Defragmenter:
    """The per-namespace fragment queues of both families, on the capture clock."""

    def __init__(self, cfg: Sysctls) -> None:
        self.cfg = cfg
        self._queues: dict[Key, _Queue] = {}
        self._timers: list[tuple[float, int, Key]] = []
        self._seq = 0
        self._mem = {4: 0, 6: 0}
        self._peer_rid: dict[int, int] = {}  # IPv4 source -> fragments seen (inet_peer.rid)

    @property
    def pending(self) -> int:
        """Queues currently waiting for fragments."""
        return len(self._queues)

    def memory(self, family: int) -> int:
        """Bytes charged to the family's fragment memory counter."""
        return self._mem[family]

    def push(self, pkt: Packet, now: float, zone: int = 0) -> DefragResult:
        """Feed one decoded packet at capture time `now` (PREROUTING defrag user, `zone`)."""
        expired = self.expire(now) if self._timers and self._timers[0][0] <= now else ()
        frag = pkt.fragment
        if frag is None or (pkt.error is not None and pkt.error.layer in _IP_LAYERS):
            return DefragResult("pass", pkt, "not a fragment", expired)
        if pkt.family == 4:
            kind, out, reason = self._push_v4(pkt, frag, now, zone)
        else:
            kind, out, reason = self._push_v6(pkt, frag, now, zone)
        return DefragResult(kind, out, reason, expired)

    def expire(self, now: float) -> tuple[int, ...]:
        """Drop queues whose timer ran out by `now`; the indices of their fragments."""
        gone: list[int] = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            deadline, _, key = heapq.heappop(timers)
            q = self._queues.get(key)
            if q is not None and q.deadline == deadline:
                gone.extend(q.indices())
                self._kill(q)
        return tuple(sorted(gone))

    # -- queue bookkeeping -------------------------------------------------

    def _find(self, key: Key, pkt: Packet, ident: int, now: float) -> _Queue | None:
        """Look up or create the queue (`inet_frag_find`); None when over the memory limit."""
        family = pkt.family
        cfg = self.cfg
        limit = cfg.ipfrag_high_thresh if family == 4 else cfg.nf_conntrack_frag6_high_thresh
        if limit == 0 or self._mem[family] > limit:
            return None
        q = self._queues.get(key)
        if q is None:
            timeout = self.cfg.ipfrag_time if family == 4 else self.cfg.nf_conntrack_frag6_timeout
            q = _Queue(key, pkt, ident, now + timeout)
            q.mem = QUEUE_SIZE_V4 if family == 4 else QUEUE_SIZE_V6
            self._mem[family] += q.mem
            self._queues[key] = q
            self._arm(q)
        return q

    def _arm(self, q: _Queue) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (q.deadline, self._seq, q.key))

    def _kill(self, q: _Queue) -> None:
        """Unhash the queue and release its memory (`inet_frag_kill` + destroy)."""
        if self._queues.get(q.key) is q:
            del self._queues[q.key]
        self._mem[q.family] -= q.mem
        q.mem = 0

    def _add(self, q: _Queue, offset: int, payload: bytes, pkt: Packet) -> None:
        q.frags.append((offset, payload, pkt))
        q.meat += len(payload)
        size = truesize(len(pkt.data))
        q.mem += size
        self._mem[q.family] += size
        q.ecn |= 1 << (pkt.tos & 3)
        if offset == 0:
            q.first_in = True

    def _discard(self, q: _Queue, why: str) -> tuple[Kind, Packet | None, str]:
        lost = q.indices()
        self._kill(q)
        also = f"; discarding queued fragments {_list(lost)}" if lost else ""
        return "dropped", None, f"dropped: {why}{also}"

    # -- IPv4 --------------------------------------------------------------

    def _push_v4(
        self, pkt: Packet, frag: FragmentInfo, now: float, zone: int
    ) -> tuple[Kind, Packet | None, str]:
        """`ip_defrag` + `ip_frag_queue`, kept in one piece so the checks read in kernel order."""
        key = (4, pkt.src, pkt.dst, frag.ident, pkt.proto, zone)
        q = self._find(key, pkt, frag.ident, now)
        if q is None:
            return "dropped", None, self._over_limit(4)
        restarted: tuple[int, ...] = ()
        if self._too_far(q):
            restarted = q.indices()
            self._mem[4] -= q.reinit(now + self.cfg.ipfrag_time)
            self._arm(q)
        ihl = frag.unfrag_len
        offset = frag.offset
        end = offset + len(pkt.data) - ihl
        if not frag.more:
            if end < q.length or (q.last_in and end != q.length):
                return self._discard(q, _end_clash(pkt, end, q.length))
            q.last_in = True
            q.length = end
        else:
            end &= ~7
            if end > q.length:
                if q.last_in:
                    return self._discard(q, f"fragment {_span(offset, end)} beyond the last "
                                            f"fragment's end {q.length}")
                q.length = end
        if end == offset:
            return self._discard(q, f"empty fragment at offset {offset}")
        placed = _insert(q, offset, end)
        if placed == OVERLAP:
            return self._discard(q, f"fragment {_span(offset, end)} overlaps queued data")
        if placed == DUP:
            return "dropped", None, (f"dropped: duplicate fragment {_span(offset, end)} of "
                                     f"{_datagram(q)}; the queue keeps the first copy")
        self._add(q, offset, pkt.data[ihl:ihl + end - offset], pkt)
        fragsize = end - offset + ihl
        q.max_size = max(q.max_size, fragsize)
        if pkt.data[6] & 0x40:
            q.max_df_size = max(q.max_df_size, fragsize)
        if q.first_in and q.last_in and q.meat == q.length:
            return self._reassemble_v4(q, pkt)
        note = ""
        if restarted:
            note = f" after an ipfrag_max_dist restart that discarded {_list(restarted)}"
        return "queued", None, f"queued for reassembly{note} ({_nth(q)})"

    def _too_far(self, q: _Queue) -> bool:
        """`ip_frag_too_far`: count fragments from this source between two of this queue."""
        limit = self.cfg.ipfrag_max_dist
        if not limit:
            return False
        count = self._peer_rid.get(q.src, 0) + 1
        self._peer_rid[q.src] = count
        start, q.rid = q.rid, count
        return bool(q.frags) and count - start > limit

    def _reassemble_v4(self, q: _Queue, last: Packet) -> tuple[Kind, Packet | None, str]:
        self._kill(q)
        ecn = _ecn_result(q.ecn)
        if ecn < 0:
            return "dropped", None, f"dropped: {_datagram(q)} mixes ECN-capable and not-ECT parts"
        q.frags.sort(key=lambda f: f[0])
        first = q.frags[0][2]
        ihl = first.fragment.unfrag_len if first.fragment else 20
        total = ihl + q.length
        if total > MAX_DATAGRAM:
            return "dropped", None, f"dropped: {_datagram(q)} would be {total} bytes (over 65535)"
        header = bytearray(first.data[:ihl])
        header[1] |= ecn
        header[2:4] = total.to_bytes(2, "big")
        header[6:8] = b"\x40\x00" if q.max_df_size == q.max_size else b"\x00\x00"
        header[10:12] = b"\x00\x00"
        header[10:12] = _header_checksum(header).to_bytes(2, "big")
        data = bytes(header) + b"".join(payload for _, payload, _ in q.frags)
        return "complete", _rebuilt(data, first, last), _done(q, total)

    # -- IPv6 --------------------------------------------------------------

    def _push_v6(
        self, pkt: Packet, frag: FragmentInfo, now: float, zone: int
    ) -> tuple[Kind, Packet | None, str]:
        """`nf_ct_frag6_gather` + `nf_ct_frag6_queue`, in kernel order like the IPv4 path."""
        data = pkt.data
        fhoff = frag.unfrag_len
        if data[4:6] == b"\x00\x00":
            return "pass", pkt, "jumbogram: no reassembly"
        if _thdr_truncated(pkt, frag):
            return "pass", pkt, ("first fragment lacks its full layer-4 header: passed "
                                 "unreassembled (RFC 8200 4.5)")
        key = (6, pkt.src, pkt.dst, frag.ident, zone, pkt.iface_in)
        q = self._find(key, pkt, frag.ident, now)
        if q is None:
            return "dropped", None, self._over_limit(6)
        offset = frag.offset
        end = offset + len(data) - fhoff - 8
        if end > MAX_DATAGRAM:
            return "dropped", None, f"dropped: fragment {_span(offset, end)} ends beyond 65535"
        if not frag.more:
            if end < q.length or (q.last_in and end != q.length):
                return "dropped", None, f"dropped: {_end_clash(pkt, end, q.length)} (queue kept)"
            q.last_in = True
            q.length = end
        else:
            if end & 7:
                lost = q.indices()
                self._kill(q)
                also = f"; discarded queued fragments {_list(lost)}" if lost else ""
                return "pass", pkt, (f"fragment with MF set and length {end - offset} not a "
                                     f"multiple of 8: passed unreassembled{also}")
            if end > q.length:
                if q.last_in:
                    return "dropped", None, (f"dropped: fragment {_span(offset, end)} beyond "
                                             f"the last fragment's end {q.length} (queue kept)")
                q.length = end
        if end == offset:
            return "dropped", None, f"dropped: empty fragment at offset {offset} (queue kept)"
        placed = _insert(q, offset, end)
        if placed == OVERLAP:
            return self._discard(q, f"fragment {_span(offset, end)} overlaps queued data")
        if placed == DUP:
            return "dropped", None, (f"dropped: duplicate fragment {_span(offset, end)} of "
                                     f"{_datagram(q)}; the queue keeps the first copy")
        self._add(q, offset, data[fhoff + 8:], pkt)
        if q.first_in and q.last_in and q.meat == q.length:
            return self._reassemble_v6(q, pkt)
        return "queued", None, f"queued for reassembly ({_nth(q)})"

    def _reassemble_v6(self, q: _Queue, last: Packet) -> tuple[Kind, Packet | None, str]:
        self._kill(q)
        ecn = _ecn_result(q.ecn)
        if ecn < 0:
            return "dropped", None, f"dropped: {_datagram(q)} mixes ECN-capable and not-ECT parts"
        q.frags.sort(key=lambda f: f[0])
        first = q.frags[0][2]
        fhoff = first.fragment.unfrag_len if first.fragment else 40
        plen = fhoff - 40 + q.length
        if plen > MAX_DATAGRAM:
            return "dropped", None, f"dropped: {_datagram(q)} payload would be {plen} bytes"
        header = bytearray(first.data[:fhoff])
        header[_next_header_at(first.data, fhoff)] = first.data[fhoff]
        header[4:6] = plen.to_bytes(2, "big")
        header[1] |= ecn << 4
        data = bytes(header) + b"".join(payload for _, payload, _ in q.frags)
        return "complete", _rebuilt(data, first, last), _done(q, len(data))

    def _over_limit(self, family: int) -> str:
        name = "ipfrag_high_thresh" if family == 4 else "nf_conntrack_frag6_high_thresh"
        limit = getattr(self.cfg, name)
        return f"dropped: fragment memory {self._mem[family]} bytes exceeds {name} {limit}"


_IP_LAYERS = frozenset(("link", "ip", "ipv4", "ipv6"))


def _thdr_truncated(pkt: Packet, frag: FragmentInfo) -> bool:
    """`ipv6frag_thdr_truncated`: a first fragment too short for its layer-4 header."""
    if frag.offset or (pkt.error is not None and pkt.error.layer == "ipv6-ext"):
        return False
    need = {PROTO_TCP: 20, PROTO_UDP: 8, PROTO_ICMPV6: 8}.get(pkt.proto, 1)
    return pkt.l4_off + need > len(pkt.data)


def _next_header_at(data: bytes, fhoff: int) -> int:
    """Offset of the next-header byte that names the fragment header."""
    at, pos, nexthdr = 6, 40, data[6]
    while pos < fhoff:
        at = pos
        hdrlen = (data[pos + 1] + 2) << 2 if nexthdr == 51 else (data[pos + 1] + 1) << 3
        nexthdr = data[pos]
        pos += hdrlen
    return at


def _ecn_result(seen: int) -> int:
    """ECN bits for the reassembled header, or -1 when the mix is invalid (RFC 3168 5.3)."""
    if seen & _ECN_NOT_ECT:
        return -1 if seen != _ECN_NOT_ECT else 0
    return 3 if seen & _ECN_CE else 0


def _header_checksum(header: bytearray) -> int:
    total = sum(int.from_bytes(header[i:i + 2], "big") for i in range(0, len(header), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _rebuilt(data: bytes, first: Packet, last: Packet) -> Packet:
    """The reassembled datagram as a new packet at the completing fragment's place."""
    out = decode_datagram(data, index=last.index, ts=last.ts)
    out.iface_in = last.iface_in
    out.iface_out = last.iface_out
    out.link_type = first.link_type
    out.link_src = first.link_src
    out.link_dst = first.link_dst
    out.pkt_type = first.pkt_type
    return out


def _addr(family: int, value: int) -> str:
    return str(ipaddress.IPv4Address(value) if family == 4 else ipaddress.IPv6Address(value))


def _datagram(q: _Queue) -> str:
    return f"datagram id 0x{q.ident:x} from {_addr(q.family, q.src)}"


def _nth(q: _Queue) -> str:
    return f"fragment {len(q.frags)} of {_datagram(q)}"


def _done(q: _Queue, size: int) -> str:
    return f"reassembled {_datagram(q)} from fragments {_list(q.indices())} ({size} bytes)"


def _span(offset: int, end: int) -> str:
    return f"[{offset}, {end})"


def _list(indices: tuple[int, ...]) -> str:
    return ", ".join(f"#{i}" for i in indices)


def _end_clash(pkt: Packet, end: int, known: int) -> str:
    return f"last fragment ends at {end} but the datagram is known to be {known} bytes"
