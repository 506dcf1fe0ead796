"""Writes python_cases.txt: random fragment sequences run through statewall's
Python defragmenter (the specification), for the Rust port to replay.

Run from the repository root: PYTHONPATH=src python3 core/src/defrag/tests/data/python_cases.py
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

from statewall.config import Sysctls
from statewall.decode import decode_datagram
from statewall.defrag import Defragmenter

SRCS4 = (bytes([192, 0, 2, 1]), bytes([198, 51, 100, 7]))
DST4 = bytes([192, 0, 2, 2])
SRCS6 = (bytes.fromhex("20010db8000000000000000000000001"),
         bytes.fromhex("00000000000000000000ffff01020304"))
DST6 = bytes.fromhex("20010db8000000000000000000000002")


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def part(rng: random.Random, size: int) -> bytes:
    start = rng.randrange(256)
    # A first byte of 128 keeps ICMP/ICMPv6 decoding to an echo request.
    return bytes([128]) + bytes((start + i * 7) & 0xFF for i in range(1, size)) if size else b""


def frag4(rng: random.Random, plan: tuple[bytes, int, bool, int, int] | None = None) -> bytes:
    """A random IPv4 fragment, or the piece (body, offset, more, ident, source) of a plan."""
    size = rng.choice((0, 1, 7, 8, 13, 16, 24, 40, 48, rng.randrange(0, 200)))
    off = rng.randrange(0, 9) * 8 if rng.random() < 0.95 else rng.choice((65528, 32768))
    more = rng.random() < 0.6
    ident, src = rng.randrange(3), rng.choice(SRCS4)
    body = None
    if plan is not None:
        body, off, more, ident, srci = plan
        size, src = len(body), SRCS4[srci]
    options = rng.choice((b"", b"", b"", b"\x94\x04\x00\x00", b"\x01\x01\x01\x00\x01\x01\x01\x00"))
    ihl = 5 + len(options) // 4
    flags = off >> 3 | (0x2000 if more else 0) | (0x4000 if rng.random() < 0.3 else 0)
    if rng.random() < 0.03:
        flags &= 0x4000  # not a fragment at all
    tos = rng.choice((0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 0xB8) if plan else (0, 0, 1, 2, 3, 0xB8))
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos,
                      ihl * 4 + size, ident, flags, rng.randrange(1, 256),
                      1 if plan else rng.choice((1, 1, 17, 6)), 0, src, DST4) + options
    out = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + (body if body is not None
                                                               else part(rng, size))
    if rng.random() < 0.02:
        out = bytearray(out)
        out[10] ^= 1
        out = bytes(out)
    return out


def frag6(rng: random.Random, plan: tuple[bytes, int, bool, int, int] | None = None) -> bytes:
    """A random IPv6 fragment, or the piece (body, offset, more, ident, source) of a plan."""
    size = rng.choice((0, 1, 4, 7, 8, 13, 16, 24, 40, 48, rng.randrange(0, 200)))
    if rng.random() < 0.01:
        size = 1000
    off = rng.randrange(0, 9) * 8 if rng.random() < 0.95 else 65000 & ~7
    more = rng.random() < 0.6
    nexthdr = rng.choice((58, 58, 17, 6, 59))
    ident, src = rng.randrange(3), rng.choice(SRCS6)
    body = None
    if plan is not None:
        body, off, more, ident, srci = plan
        size, src, nexthdr = len(body), SRCS6[srci], 58
    fh = struct.pack("!BBHI", nexthdr, 0, off | int(more), ident)
    before, first_nh = rng.choice(((b"", 44), (b"", 44), (bytes([44, 0]) + bytes(6), 60),
                                   (bytes([44, 0]) + bytes(6), 0),
                                   (bytes([60, 0]) + bytes(6) + bytes([44, 0]) + bytes(6), 0),
                                   (bytes([44, 1]) + bytes(14), 60)))
    payload = before + fh + (body if body is not None else part(rng, size))
    if plan is None and rng.random() < 0.03:
        payload = fh[:4]  # a fragment header cut short
    tclass = rng.choice((0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 0xB8, 0xBB))
    return (struct.pack("!IHBB", 6 << 28 | tclass << 20 | rng.randrange(1 << 20), len(payload),
                        first_nh, 64) + src + DST6 + payload)


def plan(rng: random.Random) -> list[tuple[bytes, int, bool, int, int]]:
    """The pieces of one datagram, shuffled, some sent twice or cut badly."""
    length = rng.randrange(8, 160)
    body = part(rng, length)
    cuts = sorted(rng.sample(range(1, max(2, length // 8)), min(3, max(0, length // 8 - 1))))
    bounds = [0] + [c * 8 for c in cuts if rng.random() < 0.8] + [length]
    ident, src = rng.randrange(3), rng.randrange(2)
    pieces = [(body[a:b], a, b < length, ident, src) for a, b in zip(bounds, bounds[1:]) if a < b]
    if rng.random() < 0.2:
        pieces.append(rng.choice(pieces))
    if rng.random() < 0.1:
        a = rng.randrange(0, length) & ~7
        pieces.append((body[a:a + 16], a, a + 16 < length, ident, src))
    rng.shuffle(pieces)
    return pieces


def main() -> None:
    rng = random.Random(20261205)
    lines: list[str] = []
    for case in range(400):
        knobs = {}
        if rng.random() < 0.3:
            knobs["ipfrag_time"] = rng.choice((1, 5))
            knobs["nf_conntrack_frag6_timeout"] = rng.choice((1, 5))
        if rng.random() < 0.15:
            knobs["ipfrag_high_thresh"] = rng.choice((0, 2000, 3000, 6000))
            knobs["nf_conntrack_frag6_high_thresh"] = rng.choice((0, 2000, 3000, 6000))
        if rng.random() < 0.5:
            knobs["ipfrag_max_dist"] = rng.choice((0, 1, 2, 3))
        defrag = Defragmenter(Sysctls(**knobs))
        lines.append(f"case {case} " + " ".join(f"{k}={v}" for k, v in knobs.items()))
        now = 0.0
        queue: list[bytes] = []
        for index in range(1, rng.randrange(2, 40)):
            now += rng.choice((0.0, 0.0, 0.25, 0.5, 1.0, 2.5))
            if rng.random() < 0.05:
                gone = defrag.expire(now)
                lines.append(f"x {now!r} {','.join(map(str, gone)) or '-'}")
                continue
            if not queue and rng.random() < 0.5:
                build = frag4 if rng.random() < 0.5 else frag6
                queue = [build(rng, piece) for piece in plan(rng)]
            if queue and rng.random() < 0.8:
                data = queue.pop(0)
            else:
                data = frag4(rng) if rng.random() < 0.5 else frag6(rng)
            iface = rng.choice((None, None, "eth0", "eth1"))
            zone = rng.choice((0, 0, 0, 1))
            pkt = decode_datagram(data, index=index, ts=now)
            pkt.iface_in = iface
            res = defrag.push(pkt, now, zone)
            lines.append(f"p {index} {data.hex()} {now!r} {iface or '-'} {zone}")
            out = res.packet.data.hex() if res.kind == "complete" and res.packet else "-"
            lines.append(f"r {res.kind} {','.join(map(str, res.expired)) or '-'} {out} "
                         f"{res.reason}")
        lines.append(f"end {defrag.pending} {defrag.memory(4)} {defrag.memory(6)}")
    Path(__file__).with_name("python_cases.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
