"""Write helper_scenarios.txt: random helper traffic through statewall's Python host.

Run from the repository root: PYTHONPATH=src python3 core/tests/data/gen_helper_scenarios.py
It drives the `Machine` of tests/test_expect.py (the Python conntrack core,
raw-table CT --helper rules, the helpers and the expectation table) with
FTP, IRC, TFTP and Amanda control traffic and data connections, and records
every datagram with what happened to it. The Rust test `helper_scenarios`
replays the datagrams through the core's table and helpers.

Lines: `reset`; `pkt` now proto src dst sport dport flags seq ack payload-hex;
`out` state accepted reason related-reason; `ev` the expectation events of
the step (sorted); `list` the /proc listing after it (sorted, joined by |), or `same` when
it did not change.
Before each datagram both sides reap the entries that timed out.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, "tests")

from test_expect import C4, S4, Machine  # noqa: E402

from statewall import builder  # noqa: E402
from statewall.packet import PROTO_TCP  # noqa: E402

CLIENT_DEC = 172818433  # 10.77.0.1


class Recorder:
    def __init__(self, box: Machine, lines: list[str]) -> None:
        self.box, self.lines, self.now = box, lines, 1000.0
        self.listing = ""

    def send(self, proto: int, src: str, dst: str, sport: int, dport: int, payload: bytes = b"",
             flags: str = "", seq: int = 0, ack: int = 0):
        box = self.box
        box.table.expire(self.now)
        before = len(box.events)
        if proto == PROTO_TCP:
            raw = builder.tcp(src, dst, sport, dport, flags, seq=seq, ack=ack, payload=payload)
        else:
            raw = builder.udp(src, dst, sport, dport, payload)
        seen = box.send(raw, self.now)
        related = ""
        if seen.state == "RELATED" and seen.conn is not None:
            related = box.exp.related_reason(seen.conn) or ""
        self.lines.append(f"pkt\t{self.now!r}\t{proto}\t{src}\t{dst}\t{sport}\t{dport}\t{flags}\t"
                          f"{seq}\t{ack}\t{payload.hex()}")
        self.lines.append(f"out\t{seen.state}\t{int(seen.accepted)}\t{seen.reason}\t{related}")
        events = sorted(f"{k}:{p}" for k, p in box.events[before:])
        self.lines.append("ev\t" + " ".join(events))
        listing = "|".join(sorted(line.rstrip("\n") for line in box.listing(self.now)))
        self.lines.append("same" if listing == self.listing else "list\t" + listing)
        self.listing = listing
        return seen


class Control:
    """A TCP control connection with consistent sequence numbers."""

    def __init__(self, rec: Recorder, client: str, server: str, cport: int, sport: int) -> None:
        self.rec, self.c, self.s, self.cport, self.sport = rec, client, server, cport, sport
        self.cseq, self.sseq = 1000, 50000
        rec.send(PROTO_TCP, client, server, cport, sport, flags="S", seq=self.cseq - 1)
        rec.send(PROTO_TCP, server, client, sport, cport, flags="SA", seq=self.sseq - 1, ack=self.cseq)
        self.client(b"")

    def client(self, data: bytes, advance: bool = True) -> None:
        """A client segment, acknowledged by the server (no data is left in
        flight: the unacknowledged-data timeout is not what is tested here)."""
        self.rec.send(PROTO_TCP, self.c, self.s, self.cport, self.sport, data, "PA" if data else "A",
                      self.cseq, self.sseq)
        if advance:
            self.cseq += len(data)
            if data:
                self.rec.send(PROTO_TCP, self.s, self.c, self.sport, self.cport, b"", "A",
                              self.sseq, self.cseq)

    def server(self, data: bytes, advance: bool = True) -> None:
        self.rec.send(PROTO_TCP, self.s, self.c, self.sport, self.cport, data, "PA" if data else "A",
                      self.sseq, self.cseq)
        if advance:
            self.sseq += len(data)
            if data:
                self.rec.send(PROTO_TCP, self.c, self.s, self.cport, self.sport, b"", "A",
                              self.cseq, self.sseq)


def ftp_client_line(rng: random.Random) -> bytes:
    port = rng.choice((rng.randrange(40000, 40012), rng.randrange(65536)))
    hi, lo = port >> 8, port & 255
    host = rng.choice(("10,77,0,1", "10,77,0,1", "10,77,0,9"))
    return rng.choice((
        f"PORT {host},{hi},{lo}\r\n", f"EPRT |1|{host.replace(',', '.')}|{port}|\r\n",
        "NOOP\r\n", "PORT garbage\r\n", f"PORT {host},{hi}", "PO", "RETR f\r\n",
        f"PORT {host},{hi},{lo}\r\nNOOP\r\n",
    )).encode()


def ftp_server_line(rng: random.Random) -> bytes:
    port = rng.choice((rng.randrange(40000, 40012), rng.randrange(65536)))
    host = rng.choice(("10,77,0,2", "10,77,0,2", "10,77,0,9"))
    return rng.choice((
        f"227 Entering Passive Mode ({host},{port >> 8},{port & 255}).\r\n",
        f"229 Entering Extended Passive Mode (|||{port}|)\r\n", "200 ok\r\n", "229 (||1|)\r\n",
        "150 here\r\n", "227 nothing\r\n",
    )).encode()


def irc_line(rng: random.Random) -> bytes:
    port = rng.choice((rng.randrange(5000, 5012), rng.randrange(65536)))
    address = rng.choice((CLIENT_DEC, CLIENT_DEC, CLIENT_DEC + 8))
    kind = rng.choice(("SEND f", "CHAT chat", "RESUME f"))
    return rng.choice((
        f"PRIVMSG bob :\1DCC {kind} {address} {port} 1\1\r\n", "PRIVMSG bob :hello\r\n",
        f"PRIVMSG bob :\1DCC {kind} {address} {port}\1",
    )).encode()


def scenario(rng: random.Random, lines: list[str]) -> None:
    lines.append("reset")
    rec = Recorder(Machine(), lines)
    controls: list[Control] = []
    ircs: list[Control] = []
    next_port = [30000]

    def fresh() -> int:
        next_port[0] += 1
        return next_port[0]

    for _ in range(100):
        rec.now += rng.choice((0.1, 0.5, 1.0, 3.0, 7.0, 20.0, 150.0, 320.0))
        what = rng.randrange(10)
        if what == 0 or not controls:
            ctl = Control(rec, C4, S4, fresh(), 21)
            ctl.server(b"220 hi\r\n")
            ctl.client(b"USER a\r\n")
            controls.append(ctl)
        elif what == 1:
            ctl = rng.choice(controls)
            line = ftp_client_line(rng)
            if line.endswith(b"\n"):
                ctl.client(line)
            else:  # dropped as partial, then sent again whole
                ctl.client(line, advance=False)
                ctl.client(b"PORT 10,77,0,1,156,70\r\n")
        elif what == 2:
            rng.choice(controls).server(ftp_server_line(rng))
        elif what == 3:
            if not ircs:
                ircs.append(Control(rec, C4, S4, fresh(), 6667))
            rng.choice(ircs).client(irc_line(rng))
        elif what == 4:
            rec.send(17, C4, S4, rng.randrange(12340, 12346), 69,
                     rng.choice((b"\0\1f\0octet\0", b"\0\2f\0octet\0", b"\0\3\0\1")))
        elif what == 5:
            cport = rng.randrange(850, 853)
            rec.send(17, C4, S4, cport, 10080, b"Amanda 2.6 REQ HANDLE 000\n")
            rec.send(17, S4, C4, 10080, cport,
                     f"CONNECT DATA {rng.randrange(50000, 50006)} MESG {rng.randrange(50000, 50006)}\n"
                     .encode())
        else:
            live = rec.box.exp.live(rec.now)
            if live and rng.random() < 0.8:
                exp = rng.choice(live)
                src = S4 if exp.dst == int.from_bytes(bytes((10, 77, 0, 1)), "big") else C4
                dst = C4 if src == S4 else S4
                if exp.proto == PROTO_TCP:
                    rec.send(PROTO_TCP, src, dst, fresh(), exp.dport, flags="S", seq=7000)
                else:
                    rec.send(17, src, dst, fresh(), exp.dport, b"\0\3\0\1")
            else:
                rec.send(PROTO_TCP, S4, C4, fresh(), rng.randrange(40000, 40012), flags="S", seq=7000)


def main() -> None:
    rng = random.Random(51205)
    lines: list[str] = []
    for _ in range(10):
        scenario(rng, lines)
    Path(__file__).with_name("helper_scenarios.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
