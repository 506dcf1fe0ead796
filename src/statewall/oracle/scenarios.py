"""Small captures built in code, each showing one thing conntrack decides.

Every scenario carries the kernel's own answer per datagram (as
`PacketComparison.kernel_answer()` spells it, e.g. "NEW/ORIGINAL forwarded")
and patterns its final `conntrack -L` must contain, so running one through
`verify` checks both that statewall agrees with the kernel and that the
scenario still exercises what its name says. The answers were read off the
live kernel (6.18) and agree with the spec files named in `about`.

The seed documents' examples (../shared/seed-examples.md) appear as the
`seed-*` scenarios, with their host rulesets moved to FORWARD: the seeds'
"host" is the client 10.20.1.1, its OUTPUT becomes `-s` and its INPUT `-d`.
The FTP examples attach the helper from the raw table as Linux 6.x wants;
their `--auto-helpers` variants and the other helpers (seed 7) are in
helper_scenarios.py, and the table size (seed 11) is a machine-wide knob the
oracle cannot set.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace

from statewall import builder as b
from statewall.oracle.normalise import normalise
from statewall.oracle.verify import (
    Datagram,
    VerifyResult,
    load_rule_engine,
    side_topology,
    verify_datagrams,
)

C4, S4, X4 = "10.20.1.1", "10.20.2.1", "10.20.3.1"
C6, S6 = "fd20:1::1", "fd20:2::1"

_HEAD = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD {policy} [0:0]\n:OUTPUT ACCEPT [0:0]\n"
STATEFUL = _HEAD.format(policy="ACCEPT") + (
    "-A FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n")
# Linux 6.x attaches helpers only on request, from the raw table, by the server's port.
_HELPERS_V4 = (("tcp", 21, "ftp"), ("tcp", 6667, "irc"), ("udp", 69, "tftp"),
               ("udp", 10080, "amanda"))
_HELPERS_V6 = tuple(h for h in _HELPERS_V4 if h[2] != "irc")  # IRC's helper is IPv4 only


def _helpers_raw(helpers: tuple[tuple[str, int, str], ...]) -> str:
    rules = "".join(f"-A PREROUTING -p {proto} --dport {port} -j CT --helper {name}\n"
                    for proto, port, name in helpers)
    return "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" + rules + "COMMIT\n"


STATEFUL_HELPERS_V4 = _helpers_raw(_HELPERS_V4) + STATEFUL
STATEFUL_HELPERS_V6 = _helpers_raw(_HELPERS_V6) + STATEFUL


def _helpers_nft() -> str:
    """The same machine as nftables writes it: ct helper objects, assigned by a
    prerouting chain after conntrack (nft's `ct helper set` acts on the entry)."""
    objects = "".join(f'\tct helper {name} {{\n\t\ttype "{name}" protocol {proto}\n'
                      f'\t\tl3proto {"ip" if name == "irc" else "inet"}\n\t}}\n\n'
                      for proto, _, name in _HELPERS_V4)
    sets = "".join(f'\t\t{"meta nfproto ipv4 " if name == "irc" else ""}{proto} dport {port} '
                   f'ct helper set "{name}"\n' for proto, port, name in _HELPERS_V4)
    return ("table inet helpers {\n" + objects
            + "\tchain prerouting {\n\t\ttype filter hook prerouting priority filter; "
            "policy accept;\n" + sets + "\t}\n\n"
            "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n"
            "\t\tct state invalid drop\n\t}\n}\n")


STATEFUL_HELPERS_NFT = _helpers_nft()


def filter_rules(*rules: str, policy: str = "ACCEPT", raw: tuple[str, ...] = ()) -> str:
    """An iptables-save text: FORWARD rules (and raw PREROUTING rules) in the filter table."""
    text = ""
    if raw:
        text = "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        text += "".join(f"-A PREROUTING {rule}\n" for rule in raw) + "COMMIT\n"
    text += _HEAD.format(policy=policy)
    return text + "".join(f"-A FORWARD {rule}\n" for rule in rules) + "COMMIT\n"


@dataclass(frozen=True)
class Scenario:
    """A capture, the rules it runs under, and what the kernel does with it."""

    name: str
    about: str
    datagrams: tuple[bytes, ...]
    expect: tuple[str, ...]  # the kernel's answer per datagram
    rules_v4: str | None = STATEFUL
    rules_v6: str | None = STATEFUL
    sysctls: tuple[tuple[str, int], ...] = ()
    table_has: tuple[str, ...] = field(default=())  # regexes each matching a kernel entry
    waits: tuple[tuple[int, float], ...] = ()  # (datagram number, seconds to pause before it)
    # (datagram number, regexes): right after that datagram the kernel's
    # `conntrack -L expect` has exactly one line per regex, each matching it.
    expect_seen: tuple[tuple[int, tuple[str, ...]], ...] = ()
    # statewall's own rules when they differ from the kernel's: the legacy
    # `--auto-helpers` mode needs no raw CT rules, the kernel does.
    statewall_rules: tuple[str | None, str | None] | None = None
    auto_helpers: bool = False


NEW_F, NEW_D = "NEW/ORIGINAL forwarded", "NEW/ORIGINAL dropped"
EST_O, EST_R = "ESTABLISHED/ORIGINAL forwarded", "ESTABLISHED/REPLY forwarded"
REL_R = "RELATED/REPLY forwarded"
INV_D, HELD = "INVALID dropped", "- held"
UNTR_F = "UNTRACKED forwarded"


# --- TCP ------------------------------------------------------------------------------


def _handshake(c: str, s: str, sport: int = 40000, dport: int = 80,
               isn_c: int = 1000, isn_s: int = 5000) -> list[bytes]:
    return [b.tcp(c, s, sport, dport, "S", isn_c, window=64240, mss=1460, wscale=7,
                  sack_perm=True),
            b.tcp(s, c, dport, sport, "SA", isn_s, isn_c + 1, window=65160, mss=1460,
                  wscale=7, sack_perm=True),
            b.tcp(c, s, sport, dport, "A", isn_c + 1, isn_s + 1, window=502)]


def _data(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, size: int,
          flags: str = "PA") -> bytes:
    return b.tcp(src, dst, sport, dport, flags, seq, ack, window=502, payload=b"d" * size)


def tcp_lifecycle() -> Scenario:
    request = _data(C4, S4, 40000, 80, 1001, 5001, 100)
    answer = _data(S4, C4, 80, 40000, 5001, 1101, 300)
    closing = [b.tcp(C4, S4, 40000, 80, "FA", 1101, 5301, window=502),
               b.tcp(S4, C4, 80, 40000, "FA", 5301, 1102, window=502),
               b.tcp(C4, S4, 40000, 80, "A", 1102, 5302, window=502)]
    return Scenario(
        "tcp-lifecycle", "handshake, data both ways, FIN teardown (tcp.md: state table)",
        (*_handshake(C4, S4), request, answer, *closing),
        (NEW_F, EST_R, EST_O, EST_O, EST_R, EST_O, EST_R, EST_O),
        table_has=(r"^tcp 6 1(19|20) TIME_WAIT src=10\.20\.1\.1 .* \[ASSURED\]$",))


def tcp_rst_in_window() -> Scenario:
    return Scenario(
        "tcp-rst-in-window", "a RST at the expected sequence number closes (CLOSE, 10 s)",
        (*_handshake(C4, S4, 40001), _data(C4, S4, 40001, 80, 1001, 5001, 10),
         b.tcp(S4, C4, 80, 40001, "RA", 5001, 1011, window=0)),
        (NEW_F, EST_R, EST_O, EST_O, EST_R),
        table_has=(r"^tcp 6 (9|10) CLOSE src=10\.20\.1\.1 ",))


def tcp_rst_out_of_window() -> Scenario:
    return Scenario(
        "tcp-rst-out-of-window", "a RST far outside the window is INVALID and changes nothing",
        (*_handshake(C4, S4, 40002), b.tcp(S4, C4, 80, 40002, "R", 900000, window=0),
         _data(C4, S4, 40002, 80, 1001, 5001, 10)),
        (NEW_F, EST_R, EST_O, INV_D, EST_O),
        table_has=(r"^tcp 6 (299|300) ESTABLISHED src=10\.20\.1\.1 .* \[ASSURED\]$",))


def tcp_retransmissions() -> Scenario:
    syn, synack, ack = _handshake(C4, S4, 40003)
    segment = _data(C4, S4, 40003, 80, 1001, 5001, 200)
    return Scenario(
        "tcp-retransmissions", "repeated SYN, SYN/ACK and data segments stay in their state",
        (syn, syn, synack, synack, ack, segment, segment, segment),
        (NEW_F, NEW_F, EST_R, EST_R, EST_O, EST_O, EST_O, EST_O))


def tcp_midstream(loose: int) -> Scenario:
    first = _data(C4, S4, 40004, 80, 7000, 9000, 50)
    reply = b.tcp(S4, C4, 80, 40004, "A", 9000, 7050, window=502)
    more = _data(C4, S4, 40004, 80, 7050, 9000, 50)
    if loose:
        expect: tuple[str, ...] = (NEW_F, EST_R, EST_O)
    else:
        expect = (INV_D, INV_D, INV_D)
    return Scenario(
        f"tcp-midstream-loose-{loose}",
        "picking up a connection without its handshake (tcp.md: nf_conntrack_tcp_loose)",
        (first, reply, more), expect, sysctls=(("nf_conntrack_tcp_loose", loose),))


def tcp_out_of_window(liberal: int) -> Scenario:
    beyond = _data(C4, S4, 40005, 80, 1001 + 10_000_000, 5001, 20)
    return Scenario(
        f"tcp-out-of-window-liberal-{liberal}",
        "data far beyond the receiver's window (tcp.md: tcp_in_window, be_liberal)",
        (*_handshake(C4, S4, 40005), beyond),
        (NEW_F, EST_R, EST_O, EST_O if liberal else INV_D),
        sysctls=(("nf_conntrack_tcp_be_liberal", liberal),))


def tcp_synack_first() -> Scenario:
    syn, synack, ack = _handshake(C4, S4, 40006)
    return Scenario(
        "tcp-synack-first", "a SYN/ACK with no SYN before it opens nothing",
        (synack, syn, synack, ack), (INV_D, NEW_F, EST_R, EST_O))


# --- UDP and ICMP -----------------------------------------------------------------------


def udp_exchange() -> Scenario:
    query = b.udp(C4, S4, 5353, 53, b"query")
    answer = b.udp(S4, C4, 53, 5353, b"answer")
    return Scenario(
        "udp-exchange", "UDP: NEW until a reply, then ESTABLISHED both ways; a quick "
        "exchange keeps the 30 s timeout and is not ASSURED (udp-icmp-generic.md)",
        (query, query, answer, query, answer, answer),
        (NEW_F, NEW_F, EST_R, EST_O, EST_R, EST_R),
        table_has=(r"^udp 17 (29|30) src=10\.20\.1\.1 [^[]*$",))


def udp_stream() -> Scenario:
    query = b.udp(C4, S4, 5004, 5004, b"rtp")
    answer = b.udp(S4, C4, 5004, 5004, b"rtp")
    return Scenario(
        "udp-stream", "UDP still active more than 2 s after its reply becomes a stream: "
        "ASSURED, 120 s timeout (nf_conntrack_proto_udp.c: udp_packet)",
        (query, answer, query, answer), (NEW_F, EST_R, EST_O, EST_R),
        table_has=(r"^udp 17 1(19|20) src=10\.20\.1\.1 .* \[ASSURED\]$",),
        waits=((3, 2.2),))


def icmp_echo() -> Scenario:
    request = b.icmp_echo(C4, S4, 77, 1)
    reply = b.icmp_echo(S4, C4, 77, 1, reply=True)
    stray = b.icmp_echo(S4, C4, 78, 1, reply=True)
    return Scenario(
        "icmp-echo", "echo request NEW, reply ESTABLISHED, unsolicited reply INVALID",
        (request, reply, stray), (NEW_F, EST_R, INV_D))


def icmp_errors() -> Scenario:
    query = b.udp(C4, S4, 6000, 53, b"q")
    unreachable = b.icmp_error(S4, C4, b.ICMP_DEST_UNREACH, 3, query)
    syn = _handshake(C4, S4, 40007)[0]
    host_down = b.icmp_error(X4, C4, b.ICMP_DEST_UNREACH, 1, syn)
    orphan = b.icmp_error(S4, C4, b.ICMP_DEST_UNREACH, 3, b.udp(C4, S4, 6001, 53, b"q"))
    return Scenario(
        "icmp-errors", "ICMP errors are RELATED to the flow they quote, INVALID otherwise",
        (query, unreachable, syn, host_down, orphan), (NEW_F, REL_R, NEW_F, REL_R, INV_D))


# --- fragments and IPv6 -----------------------------------------------------------------


def fragments_v4() -> Scenario:
    whole = b.udp(C4, S4, 4000, 53, bytes(range(256)) * 2, ident=0x4242)
    return Scenario(
        "fragments-ipv4", "fragments are held until the datagram is complete (defrag first)",
        (*b.fragment(whole, 208), b.udp(S4, C4, 53, 4000, b"ok")),
        (HELD, HELD, NEW_F, EST_R))


def ipv6_mixed() -> Scenario:
    whole = b.udp(C6, S6, 4001, 53, bytes(range(256)) * 2)
    query = b.udp(C6, S6, 4002, 53, b"q")
    return Scenario(
        "ipv6-mixed", "IPv6: TCP, ICMPv6 echo and error, fragments",
        (*_handshake(C6, S6, 40008), b.icmpv6_echo(C6, S6, 9, 1),
         b.icmpv6_echo(S6, C6, 9, 1, reply=True), query,
         b.icmpv6_error(S6, C6, b.ICMPV6_DEST_UNREACH, 4, query),
         *b.fragment(whole, 304, ident=0x77), b.udp(S6, C6, 53, 4001, b"ok")),
        (NEW_F, EST_R, EST_O, NEW_F, EST_R, NEW_F, REL_R, HELD, NEW_F, EST_R),
        table_has=(r"^tcp 6 43(1999|2000) ESTABLISHED src=fd20:1::1 .* \[ASSURED\]$",))


# --- where routing, not conntrack, decides -----------------------------------------------


LOCAL = "NEW/ORIGINAL local"


def routing_multicast() -> Scenario:
    """What a router does with broadcast, multicast and link-local traffic.

    Conntrack classifies every one of these in PREROUTING; routing then
    delivers some locally (confirming their entries in INPUT) and drops the
    rest before any filter hook, so their entries are never confirmed.
    """
    def udp(src: str, dst: str) -> bytes:
        return b.udp(src, dst, 1000, 2000, b"x")

    return Scenario(
        "routing-multicast",
        "limited broadcast and joined groups (224.0.0.1, ff02::1, ff02::2) are local; "
        "other multicast, link-local IPv6 and unspecified sources are dropped by routing; "
        "interface-local multicast never reaches conntrack",
        (udp(C4, "255.255.255.255"), udp("0.0.0.0", "255.255.255.255"), udp(C4, "224.0.0.1"),
         udp(C4, "224.0.0.251"), udp(C4, "239.255.255.250"), udp(C4, "10.20.2.255"),
         udp(C6, "ff02::1"), udp(C6, "ff02::2"), udp(C6, "ff02::c"), udp(C6, "ff05::1:3"),
         udp(C6, "ff01::1"), udp("fe80::1", S6), udp(C6, "fe80::2"), udp("::", S6)),
        (LOCAL, LOCAL, LOCAL, NEW_D, NEW_D, NEW_F, LOCAL, LOCAL, NEW_D, NEW_D, "- dropped",
         NEW_D, NEW_D, NEW_D))


# --- the seed documents' examples -------------------------------------------------------


def seed_stray_ack() -> Scenario:
    guard = filter_rules("-p tcp ! --syn -m state --state NEW -j DROP")
    stray = b.tcp(C4, S4, 40010, 22, "A", 100, 200, window=502)
    return Scenario(
        "seed-stray-ack", "seed 1: a bare ACK is NEW; the guard rule drops it, a SYN passes",
        (stray, *_handshake(C4, S4, 40011, 22)), (NEW_D, NEW_F, EST_R, EST_O),
        guard, None)


def seed_handshake_assured() -> Scenario:
    return Scenario(
        "seed-handshake-assured", "seed 2: ESTABLISHED after the SYN/ACK, ASSURED after the ACK",
        tuple(_handshake(C4, S4, 40012)), (NEW_F, EST_R, EST_O),
        table_has=(r"^tcp 6 43(1999|2000) ESTABLISHED src=10\.20\.1\.1 .* \[ASSURED\]$",))


def seed_timeouts() -> Scenario:
    fin = [b.tcp(C4, S4, 40013, 80, "FA", 1001, 5001, window=502),
           b.tcp(S4, C4, 80, 40013, "FA", 5001, 1002, window=502),
           b.tcp(C4, S4, 40013, 80, "A", 1002, 5002, window=502)]
    rst = b.tcp(C4, S4, 40014, 80, "R", 1001, window=0)
    return Scenario(
        "seed-timeouts", "seed 3: SYN_SENT 120 s; FIN ends in TIME_WAIT, RST in CLOSE",
        (*_handshake(C4, S4, 40013), *fin, *_handshake(C4, S4, 40014)[:2], rst,
         b.tcp(C4, S4, 40015, 80, "S", 1, window=64240)),
        (NEW_F, EST_R, EST_O, EST_O, EST_R, EST_O, NEW_F, EST_R, EST_O, NEW_F),
        table_has=(r"^tcp 6 1(19|20) TIME_WAIT .* sport=40013 ",
                   r"^tcp 6 (9|10) CLOSE .* sport=40014 ",
                   r"^tcp 6 1(19|20) SYN_SENT .* sport=40015 .*\[UNREPLIED\]"))


SEED_ICMP = filter_rules(
    f"-p icmp -s {C4} -m state --state NEW,ESTABLISHED,RELATED -j ACCEPT",
    f"-p icmp -d {C4} -m state --state ESTABLISHED,RELATED -j ACCEPT", policy="DROP")


def seed_icmp() -> Scenario:
    def timestamp(src: str, dst: str, kind: int) -> bytes:
        return b.icmp(src, dst, kind, 0, struct.pack("!HH", 5, 1), bytes(12))

    return Scenario(
        "seed-icmp", "seed 4: request/reply pairs only; replies pass only in answer",
        (b.icmp_echo(C4, S4, 1, 1), b.icmp_echo(S4, C4, 1, 1, reply=True),
         b.icmp_echo(S4, C4, 2, 1, reply=True), b.icmp_echo(S4, C4, 3, 1),
         timestamp(C4, S4, 13), timestamp(S4, C4, 14)),
        (NEW_F, EST_R, INV_D, NEW_D, NEW_F, EST_R), SEED_ICMP, None)


def _ftp_exchange(sport: int, *lines: bytes) -> list[bytes]:
    """An FTP control connection: handshake, then `lines` alternating server, client, ...

    The client's first line is never a data command: the kernel's helper parses
    a segment only when it starts right after a newline it has already seen in
    that direction (nf_conntrack_ftp.c: find_nl_seq), so the first line in each
    direction only teaches it where lines start.
    """
    packets = _handshake(C4, S4, sport, 21)
    seq = {C4: 1001, S4: 5001}
    for n, line in enumerate(lines):
        src, dst = (S4, C4) if n % 2 == 0 else (C4, S4)
        ports = (21, sport) if src == S4 else (sport, 21)
        packets.append(b.tcp(src, dst, *ports, "PA", seq[src], seq[dst], window=502,
                             payload=line))
        seq[src] += len(line)
    return packets


_FTP_CONTROL_RULES = (f"-p tcp -d {C4} --sport 21 -m state --state ESTABLISHED -j ACCEPT",
                      f"-p tcp -s {C4} --dport 21 -m state --state NEW,ESTABLISHED -j ACCEPT")
_FTP_HELPER = ("-p tcp --dport 21 -j CT --helper ftp",)
_CONTROL = (NEW_F, EST_R, EST_O, EST_R, EST_O, EST_R, EST_O, EST_R)
_LOGIN = (b"220 statewall\r\n", b"USER anonymous\r\n", b"230 welcome\r\n")


def _seed_ftp(name: str, about: str, filter_lines: tuple[str, ...], packets: list[bytes],
              auto_helpers: bool, *, table_has: tuple[str, ...] = (),
              expect_seen: tuple[tuple[int, tuple[str, ...]], ...] = ()) -> Scenario:
    """A seed's FTP example; with `auto_helpers`, statewall runs the seed's rules as
    written (legacy by-port assignment) and only the kernel gets the raw CT rule."""
    scenario = Scenario(name, about, tuple(packets),
                        (*_CONTROL, "RELATED/ORIGINAL forwarded", EST_R, EST_O),
                        filter_rules(*filter_lines, policy="DROP", raw=_FTP_HELPER), None,
                        table_has=table_has, expect_seen=expect_seen)
    if not auto_helpers:
        return scenario
    return replace(scenario, name=f"{name}-auto-helpers", auto_helpers=True,
                   statewall_rules=(filter_rules(*filter_lines, policy="DROP"), None))


def seed_ftp_active(auto_helpers: bool = False) -> Scenario:
    control = _ftp_exchange(40020, *_LOGIN, b"PORT 10,20,1,1,156,64\r\n", b"200 PORT ok\r\n")
    data = [b.tcp(S4, C4, 20, 40000, "S", 7000, window=64240),
            b.tcp(C4, S4, 40000, 20, "SA", 8000, 7001, window=64240),
            b.tcp(S4, C4, 20, 40000, "A", 7001, 8001, window=502)]
    return _seed_ftp(
        "seed-ftp-active", "seed 5: the PORT command makes the server's data connection "
        "from port 20 RELATED (helpers.md: nf_conntrack_ftp, CT --helper)",
        (*_FTP_CONTROL_RULES,
         f"-p tcp -d {C4} --sport 20 -m state --state ESTABLISHED,RELATED -j ACCEPT",
         f"-p tcp -s {C4} --dport 20 -m state --state ESTABLISHED -j ACCEPT"),
        [*control, *data], auto_helpers,
        table_has=(r"dport=21 .*\[ASSURED\] helper=ftp$",),
        expect_seen=((7, (r"^\d+ proto=6 src=10\.20\.2\.1 dst=10\.20\.1\.1 sport=0 "
                          r"dport=40000 .* helper=ftp$",)), (9, ())))


def seed_ftp_passive(auto_helpers: bool = False) -> Scenario:
    control = _ftp_exchange(40021, *_LOGIN, b"PASV\r\n",
                            b"227 Entering Passive Mode (10,20,2,1,200,10)\r\n")
    data = [b.tcp(C4, S4, 40031, 51210, "S", 7000, window=64240),
            b.tcp(S4, C4, 51210, 40031, "SA", 8000, 7001, window=64240),
            b.tcp(C4, S4, 40031, 51210, "A", 7001, 8001, window=502)]
    return _seed_ftp(
        "seed-ftp-passive", "seed 6: the 227 reply makes the client's data connection RELATED",
        (*_FTP_CONTROL_RULES,
         f"-p tcp -d {C4} --sport 1024: --dport 1024: -m state --state ESTABLISHED -j ACCEPT",
         f"-p tcp -s {C4} --sport 1024: --dport 1024: -m state --state ESTABLISHED,RELATED "
         "-j ACCEPT"),
        [*control, *data], auto_helpers,
        expect_seen=((8, (r"^\d+ proto=6 src=10\.20\.1\.1 dst=10\.20\.2\.1 sport=0 "
                          r"dport=51210 .* helper=ftp$",)), (9, ())))


def seed_notrack() -> Scenario:
    rules = filter_rules("-m state --state UNTRACKED -j ACCEPT",
                         "-m state --state INVALID -j DROP", "-p udp -j ACCEPT",
                         policy="DROP", raw=("-p tcp --dport 80 -j NOTRACK",
                                             "-p tcp --sport 80 -j NOTRACK"))
    syn, synack, ack = _handshake(C4, S4, 40016)
    error = b.icmp_error(X4, C4, b.ICMP_DEST_UNREACH, 1, syn)
    return Scenario(
        "seed-notrack", "seed 8: NOTRACK makes packets UNTRACKED; their ICMP errors match nothing",
        (syn, synack, ack, error), (UNTR_F, UNTR_F, UNTR_F, INV_D), rules, None)


def seed_invalid() -> Scenario:
    rules = filter_rules("-m state --state INVALID -j DROP")
    stray = b.icmp_error(S4, C4, b.ICMP_DEST_UNREACH, 3, b.udp(C4, S4, 7000, 53, b"q"))
    return Scenario(
        "seed-invalid", "seed 9: an ICMP error answering no known connection is INVALID",
        (stray,), (INV_D,), rules, None)


def seed_ssh_rate_limit() -> Scenario:
    rules = filter_rules(
        "-p tcp --dport 22 -m state --state NEW -m recent --set",
        "-p tcp --dport 22 -m state --state NEW -m recent --update --seconds 100 "
        "--hitcount 10 -j DROP")
    syns = tuple(b.tcp(C4, S4, 41000 + n, 22, "S", 1000, window=64240) for n in range(11))
    session = _handshake(C4, S4, 41000, 22)[1:]
    return Scenario(
        "seed-ssh-rate-limit", "seed 10: the tenth NEW SSH packet in 100 s is dropped; "
        "established sessions are never cut",
        (*syns, *session), (*(NEW_F,) * 9, NEW_D, NEW_D, EST_R, EST_O), rules, None)


def seed_restrictive_policy() -> Scenario:
    rules = filter_rules(f"-s {C4} -j ACCEPT", f"-d {C4} -m state --state ESTABLISHED -j ACCEPT",
                         policy="DROP")
    return Scenario(
        "seed-restrictive-policy", "seed 12: policy DROP, replies come back through ESTABLISHED",
        (*_handshake(C4, S4, 40017), b.tcp(S4, C4, 80, 40018, "S", 1, window=64240)),
        (NEW_F, EST_R, EST_O, NEW_D), rules, None)


# --- owner on forwarded packets -----------------------------------------------------------

# xt_owner asks for the sending socket; a forwarded packet has none. The kernel
# refuses the match outside OUTPUT and POSTROUTING, so forwarded packets meet it in
# POSTROUTING: each port's rule drops what its owner match accepts.
_OWNER_TESTS = ("--uid-owner 0", "! --uid-owner 0", "--socket-exists", "! --socket-exists",
                "! --uid-owner 0-1000 ! --gid-owner 0", "! --uid-owner 0 --gid-owner 0",
                "! --gid-owner 0 --suppl-groups",
                "! --socket-exists ! --uid-owner 5 ! --gid-owner root")
_OWNER_RULES = (
    "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
    ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:owned - [0:0]\n"
    "-A OUTPUT -m owner --uid-owner 0 -j ACCEPT\n-A POSTROUTING -p udp -j owned\n"
    + "".join(f"-A owned -p udp --dport {port} -m owner {test} -j DROP\n"
              for port, test in enumerate(_OWNER_TESTS, 1))
    + "COMMIT\n" + STATEFUL)


def owner_forwarded() -> Scenario:
    ports = range(1, len(_OWNER_TESTS) + 1)
    datagrams = (*(b.udp(C4, S4, 43000 + port, port, b"o") for port in ports),
                 *(b.udp(C6, S6, 43000 + port, port, b"o") for port in ports))
    # Only rules whose every test is negated match a packet without a socket.
    answers = (NEW_F, NEW_D, NEW_F, NEW_D, NEW_D, NEW_F, NEW_F, NEW_D)
    return Scenario(
        "owner-forwarded", "owner in POSTROUTING: a forwarded packet has no socket, so "
        "only fully negated tests match it (xt_owner.c: owner_mt)",
        datagrams, answers * 2, _OWNER_RULES, _OWNER_RULES)


def all_scenarios() -> list[Scenario]:
    """Every scenario, in a stable order."""
    return [
        tcp_lifecycle(), tcp_rst_in_window(), tcp_rst_out_of_window(),
        tcp_retransmissions(), tcp_midstream(1), tcp_midstream(0),
        tcp_out_of_window(0), tcp_out_of_window(1), tcp_synack_first(),
        udp_exchange(), udp_stream(), icmp_echo(), icmp_errors(),
        fragments_v4(), ipv6_mixed(), routing_multicast(),
        seed_stray_ack(), seed_handshake_assured(), seed_timeouts(), seed_icmp(),
        seed_ftp_active(), seed_ftp_passive(),
        seed_notrack(), seed_invalid(), seed_ssh_rate_limit(), seed_restrictive_policy(),
        owner_forwarded(),
    ]


def verify_scenario(scenario: Scenario) -> VerifyResult:
    """Run one scenario through the kernel and statewall, as `statewall verify` would."""
    datagrams = [Datagram(n, d) for n, d in enumerate(scenario.datagrams, 1)]
    engine = None
    if scenario.statewall_rules is not None:
        topology = side_topology(normalise(list(scenario.datagrams)))
        engine = load_rule_engine(*scenario.statewall_rules, topology=topology)
    return verify_datagrams(
        datagrams, scenario.rules_v4, scenario.rules_v6, dict(scenario.sysctls),
        waits=dict(scenario.waits), expect_after=[n for n, _ in scenario.expect_seen],
        rule_engine=engine, auto_helpers=scenario.auto_helpers)
