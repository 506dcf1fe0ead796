"""Write helper_oracle.txt: what statewall's Python parsers answer for random inputs.

Run from the repository root: PYTHONPATH=src python3 core/tests/data/gen_helper_oracle.py
The Rust test `helper_oracle` checks the core's parsers give the same answers.
Each line: function, tab, arguments (hex payload first), tab, answer.
"""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

from statewall.helpers.amanda import connect_ports
from statewall.helpers.ftp import parse_command, parse_ipv6
from statewall.helpers.irc import find_dcc

GRAMMAR = b"0123456789" * 4 + b",.|:()!x= \r\n\x00\x01afAF" * 3
FTP = [b"", b"P", b"PORT", b"PORT ", b"port ", b"EPRT", b"EPRT |1|", b"EPRT |2|", b"EPRT x1x",
       b"2", b"227", b"227 ", b"227 (", b"229 ", b"229 (|||", b"229 (!!!",
       b"PORT 10,77,0,1,", b"EPRT |2|fd77::", b"EPRT |2|::ffff:1.2."]
IRC = [b"", b"PRIVMSG ", b"PRIVMSG bob :\x01DCC ", b"PRIVMSG bob :\x01DCC SEND ",
       b"PRIVMSG bob :\x01DCC CHAT x ", b"  \r\nprivmsg a :\x01DCC TSEND f ",
       b"PRIVMSG bob :\x01DCC FOO x :\x01DCC SCHAT ", b"PRIVMSG bob :\x01DCC SEND f 172818433 "]
AMANDA = [b"", b"DATA ", b"MESG 1 INDEX ", b"STATE 0 DATA ", b"DATA 5 MESG "]
V6 = [b"", b"::", b"fd77::", b"1:2:3:4:5:6:", b"::ffff:", b"1::2:", b"abcd:"]


def noise(rng: random.Random, n: int) -> bytes:
    out = bytearray()
    for _ in range(rng.randrange(n)):
        out.append(rng.choice(GRAMMAR) if rng.random() < 0.9 else rng.randrange(256))
    return bytes(out)


def number(rng: random.Random) -> int:
    return rng.choice((rng.randrange(256), rng.randrange(70000), rng.randrange(1 << 33), 0))


def v6_text(rng: random.Random) -> str:
    words = [rng.choice((0, 0, rng.randrange(65536))) for _ in range(8)]
    text = str(ipaddress.IPv6Address(b"".join(w.to_bytes(2, "big") for w in words)))
    if rng.random() < 0.3:
        text = ipaddress.IPv6Address(text).exploded
    if rng.random() < 0.2:
        text = text.upper()
    return text


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((0, 0, 1, 2))):
        if not out:
            break
        at = rng.randrange(len(out))
        what = rng.randrange(3)
        if what == 0:
            out[at] = rng.choice(GRAMMAR)
        elif what == 1:
            del out[at]
        else:
            out.insert(at, rng.choice(GRAMMAR))
    return bytes(out)


def ftp_template(rng: random.Random) -> bytes:
    n = [number(rng) for _ in range(6)]
    d = rng.choice("|!x(")
    kind = rng.randrange(6)
    if kind == 0:
        text = "PORT " + ",".join(map(str, n)) + rng.choice(("\r\n", "\r", "\n", ""))
    elif kind == 1:
        text = f"EPRT {d}1{d}{n[0] % 300}.{n[1] % 300}.{n[2] % 256}.{n[3] % 256}{d}{n[4]}{d}\r\n"
    elif kind == 2:
        text = f"EPRT {d}2{d}{v6_text(rng)}{d}{n[4]}{d}\r\n"
    elif kind == 3:
        text = "227 Entering Passive Mode (" + ",".join(map(str, n)) + ").\r\n"
    elif kind == 4:
        text = f"229 Entering Extended Passive Mode ({d}{d}{d}{n[0]}{d})\r\n"
    else:
        text = f"EPRT {d}2{d}::ffff:{n[0] % 256}.{n[1] % 256}.{n[2] % 256}.{n[3] % 300}{d}{n[4]}{d}"
    return mutate(rng, text.encode())


def irc_template(rng: random.Random) -> bytes:
    kind = rng.choice(("SEND", "CHAT", "MOVE", "TSEND", "SCHAT", "RESUME", "send"))
    text = (f"{rng.choice(('', '  ', chr(13) + chr(10)))}{rng.choice(('PRIVMSG', 'privmsg', 'NOTICE'))} "
            f"bob :\1DCC {kind} {rng.choice(('f', 'file.txt', chr(34) + 'a b' + chr(34)))} "
            f"{number(rng)}{' ' * rng.randrange(3)} {number(rng)} {number(rng)}\1"
            f"{rng.choice((chr(13) + chr(10), chr(10), ''))}")
    return mutate(rng, text.encode())


def command(result: object) -> str:
    if result is None:
        return "N"
    if isinstance(result, str):
        return "P:" + result
    address = "-" if result.address is None else format(result.address, "x")
    return f"C:{result.description}|{address}|{result.port}|{int(result.full_address)}"


def main() -> None:
    rng = random.Random(20261205)
    lines = []
    for n in range(1400):
        data = ftp_template(rng) if n % 2 else rng.choice(FTP) + noise(rng, 40)
        direction, family = rng.randrange(2), rng.choice((4, 6))
        lines.append(f"ftp\t{data.hex()} {direction} {family}\t"
                     f"{command(parse_command(data, direction, family))}")
    for n in range(700):
        if n % 2:
            data = b"|" + mutate(rng, v6_text(rng).encode() + b"|")
        else:
            data = b"|" + rng.choice(V6) + noise(rng, 30)
        found = parse_ipv6(data, 1, 0x7C)
        answer = "N" if found is None else f"{found[0]:x} {found[1]}"
        lines.append(f"ipv6\t{data.hex()}\t{answer}")
    for n in range(900):
        data = irc_template(rng) if n % 2 else rng.choice(IRC) + noise(rng, 50)
        try:
            found = find_dcc(data)
            answer = "N" if found is None else f"{found[0]} {found[1]} {found[2]}"
        except IndexError:
            answer = "E"
        lines.append(f"irc\t{data.hex()}\t{answer}")
    for _ in range(400):
        data = rng.choice(AMANDA) + noise(rng, 30)
        answer = " ".join(f"{port}:{keyword}" for port, keyword in connect_ports(data))
        lines.append(f"amanda\t{data.hex()}\t{answer}")
    Path(__file__).with_name("helper_oracle.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
