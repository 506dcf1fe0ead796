"""sctp match (xt_sctp.c: sctp_mt, match_packet): ports and chunk types.

`--chunk-types {all|any|only} LIST` walks every chunk of the packet (each
padded to 4 bytes). `any`: some listed chunk is present; `all`: every listed
chunk is present; `only`: no chunk outside the list. A listed chunk may carry
flag conditions (`DATA:Be`: upper case means the flag set, lower case clear);
a chunk whose flags fail them does not count as present (`only`: fails). A
chunk of length 0 makes the kernel drop the packet.
"""

from __future__ import annotations

from statewall.rules.context import PacketContext
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, MatchFn, OptSpec
from statewall.rules.matches.xt_tcpudp import PORT_OPTIONS, _ports

CHUNKS = {
    "DATA": 0, "INIT": 1, "INIT_ACK": 2, "SACK": 3, "HEARTBEAT": 4, "HEARTBEAT_ACK": 5,
    "ABORT": 6, "SHUTDOWN": 7, "SHUTDOWN_ACK": 8, "ERROR": 9, "COOKIE_ECHO": 10,
    "COOKIE_ACK": 11, "ECN_ECNE": 12, "ECN_CWR": 13, "SHUTDOWN_COMPLETE": 14,
    "I_DATA": 64, "RE_CONFIG": 130, "PAD": 132, "ASCONF": 193, "ASCONF_ACK": 128,
    "FORWARD_TSN": 192, "I_FORWARD_TSN": 194,
}
FLAG_BITS = {"I": 3, "U": 2, "B": 1, "E": 0, "T": 0}

Flags = dict[int, tuple[int, int]]  # chunk type -> (mask, required value)


def parse_chunks(kind: str, text: str) -> tuple[str, frozenset[int], Flags]:
    if kind.lower() not in ("all", "any", "only"):
        raise OptionError(f"sctp: --chunk-types: match type `{kind}' is not all, any or only")
    types: set[int] = set()
    flags: Flags = {}
    for item in text.split(","):
        name, _, flag_text = item.partition(":")
        if name.upper() == "ALL":
            types.update(range(256))
            continue
        if name.upper() == "NONE":
            continue
        if name.upper() not in CHUNKS:
            raise OptionError(f"Unknown sctp chunk `{name}'")
        chunk = CHUNKS[name.upper()]
        types.add(chunk)
        if flag_text:
            mask = value = 0
            for char in flag_text:
                bit = FLAG_BITS.get(char.upper())
                if bit is None:
                    raise OptionError(f"Invalid sctp chunk flag `{char}'")
                mask |= 1 << bit
                value |= (1 << bit) if char.isupper() else 0
            flags[chunk] = (mask, value)
    return kind.lower(), frozenset(types), flags


def chunks_match(ctx: PacketContext, kind: str, types: frozenset[int], flags: Flags) -> bool:
    pkt = ctx.pkt
    data, end = pkt.data, min(len(pkt.data), pkt.ip_len)
    missing = set(types) if kind == "all" else set()
    at = pkt.l4_off + 12
    while True:
        if at + 4 > end or data[at + 2:at + 4] == b"\0\0":
            ctx.hotdrop = "SCTP chunk header truncated or of length 0"
            return False
        chunk, chunk_flags = data[at], data[at + 1]
        mask, value = flags.get(chunk, (0, 0))
        ok = chunk_flags & mask == value
        if chunk in types:
            if kind == "any" and ok:
                return True
            if kind == "all" and ok:
                missing.discard(chunk)
            if kind == "only" and not ok:
                return False
        elif kind == "only":
            return False
        at += (int.from_bytes(data[at + 2:at + 4], "big") + 3) & ~3
        if at >= end:
            break
    return not missing if kind == "all" else kind == "only"


def build_sctp(args: BuildArgs) -> MatchFn:
    ports = _ports(args)
    option = args.get("--chunk-types")
    if option is None:
        return ports
    kind, types, flags = parse_chunks(option.values[0], option.values[1])
    negated = option.negated

    def match(ctx: PacketContext) -> bool:
        return ports(ctx) and chunks_match(ctx, kind, types, flags) != negated

    return match


SCTP = MatchExt("sctp", PORT_OPTIONS + (OptSpec("--chunk-types", nargs=2),), build_sctp,
                proto=132)
