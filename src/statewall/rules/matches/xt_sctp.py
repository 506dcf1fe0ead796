"""sctp match (xt_sctp.c: sctp_mt, match_packet): ports and chunk types.

`--chunk-types {all|any|only} LIST` walks every chunk of the packet (each
padded to 4 bytes). `any`: some listed chunk is present; `all`: every listed
chunk is present; `only`: no chunk outside the list. A listed chunk may carry
flag conditions (`DATA:Be`: upper case means the flag set, lower case clear);
a chunk whose flags fail them does not count as present (`only`: fails). A
chunk of length 0 makes the kernel drop the packet.
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, MatchExt, OptSpec
from statewall.rules.matches.xt_tcpudp import PORT_OPTIONS, check_ports

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


def check_sctp(args: BuildArgs) -> None:
    check_ports(args)
    option = args.get("--chunk-types")
    if option is not None:
        parse_chunks(option.values[0], option.values[1])


SCTP = MatchExt("sctp", PORT_OPTIONS + (OptSpec("--chunk-types", nargs=2),), check_sctp,
                proto=132)
