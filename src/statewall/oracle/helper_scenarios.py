"""Scenarios for RELATED: helpers, expectations, and the rules that use them.

Each one is a capture built in code that a conntrack helper reads (FTP, IRC,
TFTP, Amanda), with the kernel's answers per datagram and, at the moments
that matter, the kernel's expectation table (`expect_seen`): right after
the announcement, after the data connection consumed it, after the master
died. `verify` compares statewall's expectation tables with the kernel's at
those moments and at the end, so these scenarios prove the expectation
machinery, not just the RELATED label.

Helpers are attached the Linux 6.x way, from the raw table (`CT --helper`),
except in the `*-auto-helpers` variants: statewall runs the seed's rules as
written with `--auto-helpers` (the pre-4.7 assignment by port), while the
kernel, which has no automatic assignment any more, gets the same rules plus
the one raw rule that attaches the helper explicitly. Both must agree.

The FTP helper parses a segment only where an earlier one of the same
direction ended with a newline (helpers.md §1.2), so every FTP session logs
in before it sends a command.

Expectation expiry (300 s for FTP/IRC/TFTP, 180 s for Amanda, fixed by
read-only module parameters) does not fit a test's time budget; it is
tested with statewall alone against expectations.md §7.
"""

from __future__ import annotations

import ipaddress

from statewall import builder as b
from statewall.oracle.scenarios import (
    C4,
    C6,
    EST_O,
    EST_R,
    INV_D,
    NEW_D,
    NEW_F,
    REL_R,
    S4,
    S6,
    STATEFUL_HELPERS_V4,
    STATEFUL_HELPERS_V6,
    UNTR_F,
    X4,
    Scenario,
    filter_rules,
    seed_ftp_active,
    seed_ftp_passive,
)

REL_O, REL_D = "RELATED/ORIGINAL forwarded", "RELATED/ORIGINAL dropped"
REL_RD = "RELATED/REPLY dropped"
EST_OD, EST_RD = "ESTABLISHED/ORIGINAL dropped", "ESTABLISHED/REPLY dropped"
CLIENT, SERVER = 0, 1
LOGIN = ((SERVER, b"220 statewall FTP ready\r\n"), (CLIENT, b"USER anonymous\r\n"),
         (SERVER, b"331 Guest login ok, send your e-mail as password\r\n"),
         (CLIENT, b"PASS guest@example.org\r\n"), (SERVER, b"230 Guest login ok\r\n"))
LOGIN_ANSWERS = (EST_R, EST_O, EST_R, EST_O, EST_R)
HANDSHAKE_ANSWERS = (NEW_F, EST_R, EST_O)


class Tcp:
    """Both byte streams of one TCP connection, for writing segments in order.

    Sequence numbers start from realistic initial values and advance by
    each payload, so the kernel's window tracking accepts every segment.
    """

    def __init__(self, client: str, server: str, cport: int, sport: int,
                 isn_c: int = 0x5A3C_91E2, isn_s: int = 0xC0DE_4F1B) -> None:
        self.addr = (client, server)
        self.port = (cport, sport)
        self.isn = (isn_c, isn_s)
        self.next = [isn_c + 1, isn_s + 1]

    def handshake(self) -> list[bytes]:
        c, s = self.addr
        cp, sp = self.port
        isn_c, isn_s = self.isn
        return [b.tcp(c, s, cp, sp, "S", isn_c, window=64240, mss=1460, wscale=7,
                      sack_perm=True),
                b.tcp(s, c, sp, cp, "SA", isn_s, isn_c + 1, window=65160, mss=1460, wscale=7,
                      sack_perm=True),
                b.tcp(c, s, cp, sp, "A", isn_c + 1, isn_s + 1, window=502)]

    def at(self, side: int, seq: int, payload: bytes = b"", flags: str = "PA") -> bytes:
        """A segment from `side` at `seq` (a retransmission), not moving the stream on."""
        other = 1 - side
        return b.tcp(self.addr[side], self.addr[other], self.port[side], self.port[other],
                     flags, seq & 0xFFFFFFFF, self.next[other] & 0xFFFFFFFF, window=502,
                     payload=payload)

    def send(self, side: int, payload: bytes, flags: str = "PA") -> bytes:
        segment = self.at(side, self.next[side], payload, flags)
        self.next[side] += len(payload)
        return segment

    def talk(self, lines: tuple[tuple[int, bytes], ...]) -> list[bytes]:
        return [self.send(side, line) for side, line in lines]

    def rst(self, side: int) -> bytes:
        other = 1 - side
        return b.tcp(self.addr[side], self.addr[other], self.port[side], self.port[other],
                     "R", self.next[side] & 0xFFFFFFFF, window=0)


def expectation(src: str, dst: str, dport: int, helper: str, proto: int = 6) -> str:
    """A regex for one `conntrack -L expect` line (src "0.0.0.0": anyone)."""
    def esc(text: str) -> str:
        return text.replace(".", r"\.")

    return (rf"^\d+ proto={proto} src={esc(src)} dst={esc(dst)} sport=0 dport={dport} "
            rf".* helper={helper}$")


def _ftp_login(ctl: Tcp) -> list[bytes]:
    return [*ctl.handshake(), *ctl.talk(LOGIN)]


CONTROL_ANSWERS = (*HANDSHAKE_ANSWERS, *LOGIN_ANSWERS)
N_CONTROL = len(CONTROL_ANSWERS)


def _family_rules(family: int) -> tuple[str | None, str | None]:
    return (STATEFUL_HELPERS_V4, None) if family == 4 else (None, STATEFUL_HELPERS_V6)


# --- FTP: the four announcements, both families ------------------------------------------


def _words(address: str) -> str:
    """An address as PORT and 227 write it: four decimal bytes (IPv6: its first four)."""
    packed = ipaddress.ip_address(address).packed[:4]
    return ",".join(str(byte) for byte in packed)


def _announce(kind: str, address: str, port: int) -> bytes:
    family = 2 if ":" in address else 1
    text = {
        "PORT": f"PORT {_words(address)},{port >> 8},{port & 0xFF}\r\n",
        "EPRT": f"EPRT |{family}|{address}|{port}|\r\n",
        "227": f"227 Entering Passive Mode ({_words(address)},{port >> 8},{port & 0xFF}).\r\n",
        "229": f"229 Entering Extended Passive Mode (|||{port}|)\r\n",
    }[kind]
    return text.encode()


def _hosts(family: int) -> tuple[str, str]:
    return (C4, S4) if family == 4 else (C6, S6)


def ftp_active(family: int, command: str) -> Scenario:
    """PORT / EPRT: the server's data connection from port 20 is RELATED (helpers.md §1)."""
    client, server = _hosts(family)
    ctl = Tcp(client, server, 40100, 21)
    port = 40000 + family
    packets = [*_ftp_login(ctl), ctl.send(CLIENT, _announce(command, client, port)),
               ctl.send(SERVER, f"200 {command} command successful\r\n".encode()),
               *Tcp(server, client, 20, port, 0x1111_2222, 0x3333_4444).handshake()]
    announced = N_CONTROL + 1
    return Scenario(
        f"ftp-active-{command.lower()}-ipv{family}",
        f"active FTP over IPv{family}: {command} gives 'server, any port -> client:{port}'; "
        "the data SYN consumes it and is RELATED",
        tuple(packets), (*CONTROL_ANSWERS, EST_O, EST_R, REL_O, EST_R, EST_O),
        *_family_rules(family),
        expect_seen=((announced, (expectation(server, client, port, "ftp"),)),
                     (announced + 2, ())))


def ftp_passive(family: int, reply: str) -> Scenario:
    """227 / 229: the client's data connection to the announced port is RELATED."""
    client, server = _hosts(family)
    ctl = Tcp(client, server, 40200, 21)
    port = 50000 + family
    command = b"PASV\r\n" if reply == "227" else b"EPSV\r\n"
    packets = [*_ftp_login(ctl), ctl.send(CLIENT, command),
               ctl.send(SERVER, _announce(reply, server, port)),
               *Tcp(client, server, 40300, port, 0x0BAD_CAFE, 0x7777_0001).handshake()]
    announced = N_CONTROL + 2
    return Scenario(
        f"ftp-passive-{reply}-ipv{family}",
        f"passive FTP over IPv{family}: the {reply} reply gives 'client, any port -> "
        f"server:{port}'; the client's data SYN is RELATED",
        tuple(packets), (*CONTROL_ANSWERS, EST_O, EST_R, REL_O, EST_R, EST_O),
        *_family_rules(family),
        expect_seen=((announced, (expectation(client, server, port, "ftp"),)),
                     (announced + 1, ())))


# --- FTP: what the helper refuses or forgets -----------------------------------------------


def ftp_third_party() -> Scenario:
    """loose=0: a PORT naming another host passes but expects nothing (helpers.md §1.5)."""
    ctl = Tcp(C4, S4, 40110, 21)
    packets = [*_ftp_login(ctl), ctl.send(CLIENT, _announce("PORT", X4, 40010)),
               ctl.send(SERVER, b"200 PORT command successful\r\n"),
               b.tcp(S4, X4, 20, 40010, "S", 0x2222_0000, window=64240)]
    return Scenario(
        "ftp-port-third-party",
        "PORT naming a third host (FXP): accepted, no expectation; the server's SYN to "
        "that host is NEW",
        tuple(packets), (*CONTROL_ANSWERS, EST_O, EST_R, NEW_F), STATEFUL_HELPERS_V4, None,
        expect_seen=((N_CONTROL + 1, ()),))


def ftp_split_command() -> Scenario:
    """A PORT cut in two: the first half is dropped (a partial match), the second is not
    parsed (it does not start after a newline); the retransmitted whole command works."""
    ctl = Tcp(C4, S4, 40120, 21)
    login = _ftp_login(ctl)
    start = ctl.next[CLIENT]
    whole = _announce("PORT", C4, 40020)
    first, second = ctl.send(CLIENT, whole[:15]), ctl.send(CLIENT, whole[15:])
    packets = [*login, first, second, ctl.at(CLIENT, start, whole),
               ctl.send(SERVER, b"200 PORT command successful\r\n"),
               b.tcp(S4, C4, 20, 40020, "S", 0x2222_1000, window=64240)]
    n = N_CONTROL
    return Scenario(
        "ftp-split-command",
        "a command split across two segments: the helper drops the first part, skips the "
        "second, and parses the retransmission of the whole line",
        tuple(packets), (*CONTROL_ANSWERS, EST_OD, EST_O, EST_O, EST_R, REL_O),
        STATEFUL_HELPERS_V4, None,
        expect_seen=((n + 2, ()), (n + 3, (expectation(S4, C4, 40020, "ftp"),))))


def ftp_malformed() -> Scenario:
    """A recognised command whose argument does not parse: the helper drops it, and its
    retransmission too (helpers.md §1.3)."""
    ctl = Tcp(C4, S4, 40130, 21)
    login = _ftp_login(ctl)
    start = ctl.next[CLIENT]
    bad = b"PORT 1,2,3\r\n"
    packets = [*login, ctl.send(CLIENT, bad), ctl.at(CLIENT, start, bad)]
    return Scenario(
        "ftp-malformed-command", "PORT with three numbers is dropped by the helper",
        tuple(packets), (*CONTROL_ANSWERS, EST_OD, EST_OD), STATEFUL_HELPERS_V4, None,
        expect_seen=((N_CONTROL + 2, ()),))


def ftp_consumed() -> Scenario:
    """An expectation is used once: a second connection to the same port is NEW."""
    ctl = Tcp(C4, S4, 40140, 21)
    packets = [*_ftp_login(ctl), ctl.send(CLIENT, _announce("PORT", C4, 40030)),
               ctl.send(SERVER, b"200 PORT command successful\r\n"),
               *Tcp(S4, C4, 20, 40030, 0x1234_0000, 0x5678_0000).handshake(),
               b.tcp(S4, C4, 2020, 40030, "S", 0x9999_0000, window=64240)]
    return Scenario(
        "ftp-expectation-consumed",
        "the data SYN consumes the expectation; another SYN to the same port is NEW",
        tuple(packets), (*CONTROL_ANSWERS, EST_O, EST_R, REL_O, EST_R, EST_O, NEW_F),
        STATEFUL_HELPERS_V4, None, expect_seen=((N_CONTROL + 3, ()),))


def ftp_limit() -> Scenario:
    """max_expected is 1 for FTP: a second PORT evicts the first (expectations.md §5)."""
    ctl = Tcp(C4, S4, 40150, 21)
    packets = [*_ftp_login(ctl), ctl.send(CLIENT, _announce("PORT", C4, 40040)),
               ctl.send(SERVER, b"200 PORT command successful\r\n"),
               ctl.send(CLIENT, _announce("PORT", C4, 40041)),
               ctl.send(SERVER, b"200 PORT command successful\r\n"),
               b.tcp(S4, C4, 20, 40040, "S", 0x4444_0000, window=64240),
               b.tcp(S4, C4, 20, 40041, "S", 0x4444_1000, window=64240)]
    n = N_CONTROL
    return Scenario(
        "ftp-expect-limit", "a second PORT replaces the first: only its port is RELATED",
        tuple(packets), (*CONTROL_ANSWERS, EST_O, EST_R, EST_O, EST_R, NEW_F, REL_O),
        STATEFUL_HELPERS_V4, None,
        expect_seen=((n + 1, (expectation(S4, C4, 40040, "ftp"),)),
                     (n + 3, (expectation(S4, C4, 40041, "ftp"),))))


def ftp_master_death() -> Scenario:
    """The master's expectations die with it, not with its RST (expectations.md §8).

    An RST only moves the control entry to CLOSE (10 s), and its expectation
    stays usable. A new SYN from the same client port reopens the tuple: the
    old entry is destroyed (tcp_packet's reopen path), taking the expectation
    along, so the announced data connection is NEW.
    """
    ctl = Tcp(C4, S4, 40160, 21)
    packets = [*_ftp_login(ctl), ctl.send(CLIENT, _announce("PORT", C4, 40050)),
               ctl.rst(CLIENT), b.tcp(C4, S4, 40160, 21, "S", 0x0F0F_0000, window=64240),
               b.tcp(S4, C4, 20, 40050, "S", 0x5555_0000, window=64240)]
    n = N_CONTROL
    seen = (expectation(S4, C4, 40050, "ftp"),)
    return Scenario(
        "ftp-master-death", "RST on the control connection keeps the expectation; reopening "
        "the control tuple destroys the master and its expectation: the data SYN is NEW",
        tuple(packets), (*CONTROL_ANSWERS, EST_O, EST_O, NEW_F, NEW_F), STATEFUL_HELPERS_V4,
        None, expect_seen=((n + 1, seen), (n + 2, seen), (n + 3, ())))


def ftp_clash() -> Scenario:
    """Two control connections announcing the same port: the second expectation clashes
    with the first, and the helper drops the packet that carried it (expectations.md §5)."""
    first, second = Tcp(C4, S4, 40210, 21), Tcp(C4, S4, 40211, 21, 0x1357_0000, 0x2468_0000)
    reply = _announce("227", S4, 40065)
    packets = [*_ftp_login(first), *_ftp_login(second), first.send(CLIENT, b"PASV\r\n"),
               first.send(SERVER, reply), second.send(CLIENT, b"PASV\r\n"),
               second.send(SERVER, reply)]
    n = 2 * N_CONTROL
    return Scenario(
        "ftp-expectation-clash", "the same 227 reply on a second control connection clashes: "
        "the helper drops it, one expectation remains",
        tuple(packets), (*CONTROL_ANSWERS, *CONTROL_ANSWERS, EST_O, EST_R, EST_O, EST_RD),
        STATEFUL_HELPERS_V4, None,
        expect_seen=((n + 4, (expectation(C4, S4, 40065, "ftp"),)),))


def ftp_related_dropped() -> Scenario:
    """An expectation is consumed before the filter runs: a dropped RELATED SYN uses it up,
    and its retransmission is NEW (expectations.md §6)."""
    rules = filter_rules("-m conntrack --ctstate INVALID -j DROP",
                         "-p tcp -m conntrack --ctstate RELATED -j DROP",
                         raw=("-p tcp --dport 21 -j CT --helper ftp",))
    ctl = Tcp(C4, S4, 40220, 21)
    syn = b.tcp(S4, C4, 20, 40090, "S", 0x3030_0000, window=64240)
    packets = [*_ftp_login(ctl), ctl.send(CLIENT, _announce("PORT", C4, 40090)),
               ctl.send(SERVER, b"200 PORT command successful\r\n"), syn, syn]
    n = N_CONTROL
    return Scenario(
        "ftp-related-dropped", "the filter drops the RELATED data SYN; the expectation is gone "
        "anyway and the retransmitted SYN is NEW",
        tuple(packets), (*CONTROL_ANSWERS, EST_O, EST_R, REL_D, NEW_F), rules, None,
        expect_seen=((n + 1, (expectation(S4, C4, 40090, "ftp"),)), (n + 3, ())))


# --- the other helpers ------------------------------------------------------------------


def _decimal(address: str) -> int:
    return int(ipaddress.IPv4Address(address))


def irc_dcc() -> Scenario:
    """DCC SEND: anyone may connect to the client's port; a spoofed address expects nothing."""
    ctl = Tcp(C4, S4, 45000, 6667)
    offer = f"PRIVMSG bob :\x01DCC SEND report.pdf {_decimal(C4)} 5000 123456\x01\r\n"
    spoof = f"PRIVMSG bob :\x01DCC SEND evil.bin {_decimal(X4)} 5001 1\x01\r\n"
    packets = [*ctl.handshake(), ctl.send(CLIENT, b"NICK alice\r\n"),
               ctl.send(CLIENT, b"USER alice 0 * :Alice\r\n"),
               ctl.send(SERVER, b":irc.example.org 001 alice :Welcome\r\n"),
               ctl.send(CLIENT, offer.encode()), ctl.send(CLIENT, spoof.encode()),
               *Tcp(X4, C4, 41000, 5000, 0x6666_0000, 0x7777_0000).handshake(),
               b.tcp(X4, C4, 41001, 5001, "S", 0x6666_1000, window=64240)]
    seen = (expectation("0.0.0.0", C4, 5000, "irc"),)
    return Scenario(
        "irc-dcc", "IRC DCC SEND with the client's own address opens RELATED; one naming "
        "another address is forged and opens nothing (helpers.md §2)",
        tuple(packets),
        (*HANDSHAKE_ANSWERS, EST_O, EST_O, EST_R, EST_O, EST_O, REL_O, EST_R, EST_O, NEW_F),
        STATEFUL_HELPERS_V4, None, expect_seen=((7, seen), (8, seen), (9, ())))


def irc_dcc_limit() -> Scenario:
    """Eight DCC offers per IRC connection: the ninth evicts the oldest (helpers.md §2.3)."""
    ctl = Tcp(C4, S4, 45010, 6667)
    offers = [ctl.send(CLIENT, f"PRIVMSG bob :\x01DCC CHAT chat {_decimal(C4)} {6000 + n}"
                               "\x01\r\n".encode()) for n in range(9)]
    packets = [*ctl.handshake(), ctl.send(CLIENT, b"NICK alice\r\n"), *offers,
               b.tcp(X4, C4, 41010, 6000, "S", 0x6060_0000, window=64240),
               b.tcp(X4, C4, 41011, 6001, "S", 0x6060_1000, window=64240)]
    seen = tuple(expectation("0.0.0.0", C4, 6000 + n, "irc") for n in range(1, 9))
    return Scenario(
        "irc-dcc-limit", "nine DCC CHAT offers leave eight expectations, the first is evicted",
        tuple(packets), (*HANDSHAKE_ANSWERS, *(EST_O,) * 10, NEW_F, REL_O),
        STATEFUL_HELPERS_V4, None, expect_seen=((13, seen),))


def _tftp(kind: int, family: int) -> list[bytes]:
    client, server = _hosts(family)
    block = bytes(range(256)) * 2
    request = b.udp(client, server, 1069, 69, bytes((0, kind)) + b"report.txt\0octet\0")

    def data(src: str, dst: str, sport: int, dport: int, number: int, body: bytes) -> bytes:
        return b.udp(src, dst, sport, dport, bytes((0, 3, 0, number)) + body)

    def ack(src: str, dst: str, sport: int, dport: int, number: int) -> bytes:
        return b.udp(src, dst, sport, dport, bytes((0, 4, 0, number)))

    if kind == 1:
        return [request, data(server, client, 50000, 1069, 1, block),
                ack(client, server, 1069, 50000, 1), data(server, client, 50000, 1069, 2, b"end"),
                ack(client, server, 1069, 50000, 2)]
    return [request, ack(server, client, 50000, 1069, 0),
            data(client, server, 1069, 50000, 1, block), ack(server, client, 50000, 1069, 1)]


def tftp(kind: int, family: int) -> Scenario:
    """RRQ / WRQ: the server answers from a fresh port; that flow is RELATED (helpers.md §3)."""
    client, server = _hosts(family)
    name = "read" if kind == 1 else "write"
    packets = _tftp(kind, family)
    answers = (NEW_F, REL_O, EST_R, EST_O, EST_R)[:len(packets)]
    return Scenario(
        f"tftp-{name}-ipv{family}",
        f"TFTP {name} over IPv{family}: the request expects 'server, any port -> "
        "client:1069'; the master stays UNREPLIED",
        tuple(packets), answers, *_family_rules(family),
        expect_seen=((1, (expectation(server, client, 1069, "tftp", 17),)), (2, ())))


def amanda() -> Scenario:
    """The client daemon's CONNECT reply announces TCP ports to the backup server."""
    request = b.udp(C4, S4, 850, 10080,
                    b"Amanda 2.6 REQ HANDLE 000-65637373 SEQ 1\nSERVICE sendbackup\n")
    reply = b.udp(S4, C4, 10080, 850,
                  b"Amanda 2.6 REP HANDLE 000-65637373 SEQ 1\n"
                  b"CONNECT DATA 50100 MESG 50101 INDEX 50102\nOPTIONS features=ff;\n")
    packets = [request, reply, *Tcp(C4, S4, 40400, 50100, 0x0A0A_0000, 0x0B0B_0000).handshake()]
    seen = tuple(expectation(C4, S4, port, "amanda") for port in (50100, 50101, 50102))
    return Scenario(
        "amanda-connect",
        "Amanda: the reply's CONNECT line expects three TCP ports (180 s) and pushes the "
        "master to 300 s (helpers.md §4)",
        tuple(packets), (NEW_F, EST_R, REL_O, EST_R, EST_O), STATEFUL_HELPERS_V4, None,
        table_has=(r"^udp 17 (299|300) src=10\.20\.1\.1 dst=10\.20\.2\.1 sport=850 ",),
        expect_seen=((2, seen), (3, seen[1:])))


# --- NOTRACK, -m helper ------------------------------------------------------------------


def _active_session(sport: int, port: int) -> list[bytes]:
    ctl = Tcp(C4, S4, sport, 21)
    return [*_ftp_login(ctl), ctl.send(CLIENT, _announce("PORT", C4, port)),
            ctl.send(SERVER, b"200 PORT command successful\r\n"),
            *Tcp(S4, C4, 20, port, 0x2020_0000, 0x4040_0000).handshake()]


def notrack_control() -> Scenario:
    """An untracked control connection has no entry, hence no helper and no RELATED."""
    raw = ("-p tcp --dport 21 -j CT --notrack", "-p tcp --sport 21 -j NOTRACK",
           "-p tcp --dport 21 -j CT --helper ftp")
    return Scenario(
        "ftp-notrack-control",
        "NOTRACK / CT --notrack on the control connection: UNTRACKED, the later CT --helper "
        "rule does nothing (the first CT/NOTRACK wins), the data SYN is NEW",
        tuple(_active_session(40170, 40060)),
        (*(UNTR_F,) * (N_CONTROL + 2), NEW_F, EST_R, EST_O),
        filter_rules("-m conntrack --ctstate INVALID -j DROP", raw=raw), None,
        expect_seen=((N_CONTROL + 1, ()),))


def notrack_data() -> Scenario:
    """An untracked data connection never looks for its expectation, which stays."""
    raw = ("-p tcp --dport 21 -j CT --helper ftp", "-p tcp --sport 20 -j NOTRACK",
           "-p tcp --dport 20 -j NOTRACK")
    return Scenario(
        "ftp-notrack-data",
        "NOTRACK on the data connection: UNTRACKED, and the expectation stays listed "
        "(expectations.md §11)",
        tuple(_active_session(40180, 40070)), (*CONTROL_ANSWERS, EST_O, EST_R, *(UNTR_F,) * 3),
        filter_rules("-m conntrack --ctstate INVALID -j DROP", raw=raw), None,
        expect_seen=((N_CONTROL + 3, (expectation(S4, C4, 40070, "ftp"),)),))


def helper_match() -> Scenario:
    """`-m helper --helper ftp` matches the children of an FTP master, not the master."""
    rules = filter_rules(
        "-m conntrack --ctstate ESTABLISHED -j ACCEPT", "-m helper --helper ftp -j ACCEPT",
        "-p tcp --dport 21 -m conntrack --ctstate NEW -j ACCEPT",
        "-m conntrack --ctstate NEW,RELATED -j DROP", policy="DROP",
        raw=("-p tcp --dport 21 -j CT --helper ftp",))
    session = _active_session(40190, 40080)
    control_segment = session[N_CONTROL]  # the PORT command, quoted by an ICMP error
    packets = [*session, b.tcp(S4, C4, 20, 40081, "S", 0x8080_0000, window=64240),
               b.icmp_error(S4, C4, b.ICMP_DEST_UNREACH, 3, control_segment)]
    return Scenario(
        "ftp-helper-match",
        "FORWARD accepts `-m helper --helper ftp` and drops other NEW/RELATED: the data "
        "connection passes, an unexpected SYN and an ICMP error about the control "
        "connection (RELATED, but not a child) are dropped",
        tuple(packets), (*CONTROL_ANSWERS, EST_O, EST_R, REL_O, EST_R, EST_O, NEW_D, REL_RD),
        rules, None, expect_seen=((N_CONTROL + 1, (expectation(S4, C4, 40080, "ftp"),)),))


def icmp_about_child() -> Scenario:
    """An ICMP error quoting an expected (RELATED) connection relates to that child."""
    session = _active_session(40200, 40090)
    data_syn = session[-3]
    packets = [*session, b.icmp_error(C4, S4, b.ICMP_DEST_UNREACH, 3, data_syn)]
    return Scenario(
        "ftp-icmp-about-child",
        "an ICMP port unreachable from the client about the data connection's SYN is "
        "RELATED (reply direction) to the child, as for any tracked connection",
        tuple(packets), (*CONTROL_ANSWERS, EST_O, EST_R, REL_O, EST_R, EST_O, REL_R),
        filter_rules("-m conntrack --ctstate INVALID -j DROP",
                     raw=("-p tcp --dport 21 -j CT --helper ftp",)), None,
        expect_seen=((N_CONTROL + 1, (expectation(S4, C4, 40090, "ftp"),)),))


def icmp_about_untracked() -> Scenario:
    """An ICMP error quoting an untracked connection finds no entry: INVALID."""
    raw = ("-p tcp --dport 21 -j CT --helper ftp", "-p tcp --sport 20 -j NOTRACK",
           "-p tcp --dport 20 -j NOTRACK")
    session = _active_session(40210, 40100)
    data_syn = session[-3]
    packets = [*session, b.icmp_error(C4, S4, b.ICMP_DEST_UNREACH, 3, data_syn)]
    return Scenario(
        "ftp-icmp-about-untracked",
        "the data connection is NOTRACKed, so an ICMP error about it quotes nothing "
        "conntrack knows: INVALID (RELATED needs an entry)",
        tuple(packets), (*CONTROL_ANSWERS, EST_O, EST_R, *(UNTR_F,) * 3, INV_D),
        filter_rules("-m conntrack --ctstate INVALID -j DROP", raw=raw), None)


def helper_scenarios() -> list[Scenario]:
    """Every helper scenario, in a stable order."""
    return [
        *(ftp_active(family, command) for family in (4, 6) for command in ("PORT", "EPRT")),
        *(ftp_passive(family, reply) for family in (4, 6) for reply in ("227", "229")),
        ftp_third_party(), ftp_split_command(), ftp_malformed(), ftp_consumed(), ftp_limit(),
        ftp_master_death(), ftp_clash(), ftp_related_dropped(),
        irc_dcc(), irc_dcc_limit(), tftp(1, 4), tftp(2, 4), tftp(1, 6), amanda(),
        notrack_control(), notrack_data(), helper_match(), icmp_about_child(),
        icmp_about_untracked(),
        seed_ftp_active(auto_helpers=True), seed_ftp_passive(auto_helpers=True),
    ]
