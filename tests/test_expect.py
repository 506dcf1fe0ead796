"""Expectations: insertion, limits, matching, consumption, expiry, removal, listings.

Expected values come from the spec (expectations.md), whose "verified" facts
were observed on the live 6.18 kernel in network namespaces. The small
`Machine` below plays a host with conntrack, raw-table `CT --helper` rules
and no filter rules; the helper tests import it too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ctharness import IPS_EXPECTED, IPS_SEEN_REPLY, LiveConn
from ctharness import Machine as Host

from statewall import builder
from statewall.capture import open_capture
from statewall.config import HelperParams, Sysctls
from statewall.decode import decode_frame
from statewall.engine import ExpectedConnection
from statewall.rules.hooks import IptablesEngine, compile_text
from statewall.verdict import PacketVerdict

C4, S4 = "10.77.0.1", "10.77.0.2"
C6, S6 = "fd77::1", "fd77::2"

# The raw-table rules of the spec's setup: -p P --dport N -j CT --helper NAME.
CT_HELPER_RULES = ("-A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp",
                   "-A PREROUTING -p tcp -m tcp --dport 6667 -j CT --helper irc",
                   "-A PREROUTING -p udp -m udp --dport 69 -j CT --helper tftp",
                   "-A PREROUTING -p udp -m udp --dport 10080 -j CT --helper amanda")


def ruleset(family: int, extra: Sequence[str]) -> str:
    """The raw table's CT --helper rules, then `extra` lines (`*table` starts a table)."""
    lines = ["*raw", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [r for r in CT_HELPER_RULES if family == 4 or "irc" not in r]
    lines.append("COMMIT")
    table: list[str] = []
    for line in extra:
        if line.startswith("*"):
            if table:
                lines += [*table, "COMMIT"]
            table = [line]
        else:
            table.append(line)
    if table:
        lines += [*table, "COMMIT"]
    return "\n".join(lines) + "\n"


@dataclass
class Seen:
    """What happened to one packet."""

    state: str
    accepted: bool
    reason: str
    verdict: PacketVerdict
    conn: LiveConn | None


@dataclass(frozen=True)
class Exp:
    """One expectation, as the listings show it."""

    family: int
    proto: int
    src: int
    dst: int
    sport: int
    dport: int
    sport_mask: int  # 0: any source port
    helper: str
    expires: float
    timeout: int  # whole seconds left at the listing's time


class Expectations:
    """The machine's expectation table, read through its listings and counters."""

    def __init__(self, box: Machine) -> None:
        self.box = box

    def live(self, now: float) -> list[Exp]:
        """The expectations alive at `now`."""
        fw = self.box.host.firewall
        masks = [int(m) for m in re.findall(r" mask-dst=\S+ sport=(\d+) ",
                                           " ".join(fw.expectation_lines(now, "conntrack")))]
        found: list[ExpectedConnection] = fw.expectations(now)
        assert len(masks) == len(found)
        return [Exp(e.family, e.proto, e.src, e.dst, e.sport, e.dport, mask, e.helper,
                    e.expires, e.timeout) for e, mask in zip(found, masks, strict=True)]

    @property
    def count(self) -> int:
        return len(self.box.host.firewall.expectations(self.box.host.now))

    @property
    def stats(self) -> Stats:
        return Stats(self.box.host.firewall.stats()["expect_new"])

    def related_reason(self, conn: LiveConn) -> str:
        """Why the entry's first packet was RELATED (the expectation it matched)."""
        return self.box.first_reasons[conn.conn_id].split("; ")[0]


@dataclass(frozen=True)
class Stats:
    expect_new: int  # expectations that became connections


def _helper_word(verdict: PacketVerdict) -> str:
    """What the helper said about the packet, else the packet's reason: a helper's drop
    ends the reason ("...; dropped by the ftp helper: ..."), its word on an accepted
    packet is a note."""
    dropped = [part for part in verdict.reason.split("; ") if part.startswith("dropped by")]
    if verdict.verdict != "ACCEPT" and dropped:
        return dropped[-1]
    return "; ".join(verdict.notes) or verdict.reason


class Machine:
    """conntrack + helpers, as a host whose only rules are raw-table CT --helper rules
    (and `rules`: more lines, each table started by its `*table` line)."""

    def __init__(self, cfg: Sysctls | None = None, params: HelperParams | None = None,
                 rules: Sequence[str] = ()) -> None:
        self.cfg = cfg or Sysctls()
        engine = IptablesEngine(compile_text(ruleset(4, rules), "helpers.rules", 4),
                                compile_text(ruleset(6, rules), "helpers6.rules", 6))
        self.host = Host(self.cfg, helper_params=params, events=True, rules=engine)
        self.exp = Expectations(self)
        self.first_reasons: dict[int, str] = {}

    @property
    def index(self) -> int:
        return self.host.index

    @index.setter
    def index(self, value: int) -> None:
        self.host.index = value

    @property
    def events(self) -> list[tuple[str, int]]:
        """The expectation events so far: (NEW or DESTROY, the expected port)."""
        found = []
        for event in self.host.events:
            if event.expectation:
                dport = re.search(r" dport=(\d+) ", event.body)
                assert dport is not None
                found.append((event.kind, int(dport.group(1))))
        return found

    def send(self, raw: bytes, now: float) -> Seen:
        """One datagram through the hooks (PREROUTING ... the confirm step)."""
        step = self.host.step(raw, now)
        verdict = step.verdict
        if step.conn is not None:
            self.first_reasons.setdefault(step.conn.conn_id, verdict.reason)
        return Seen(verdict.ctstate or "", verdict.verdict == "ACCEPT", _helper_word(verdict),
                    verdict, step.conn)

    def advance(self, now: float) -> None:
        """Let time pass: entries and expectations due by `now` go."""
        self.host.advance(now)

    def listing(self, now: float) -> set[str]:
        return set(self.host.expectation_lines(now, "proc"))


class Tcp:
    """One TCP connection between two endpoints, with consistent sequence numbers."""

    def __init__(self, box: Machine, client: str, server: str, cport: int, sport: int) -> None:
        self.box, self.c, self.s, self.cport, self.sport = box, client, server, cport, sport
        self.cseq, self.sseq = 1000, 50000

    def open(self, now: float) -> list[Seen]:
        syn = self.box.send(builder.tcp(self.c, self.s, self.cport, self.sport, "S",
                                        seq=self.cseq - 1), now)
        synack = self.box.send(builder.tcp(self.s, self.c, self.sport, self.cport, "SA",
                                           seq=self.sseq - 1, ack=self.cseq), now)
        ack = self.client(b"", now)
        return [syn, synack, ack]

    def client(self, data: bytes, now: float, advance: bool = True) -> Seen:
        flags = "PA" if data else "A"
        seen = self.box.send(builder.tcp(self.c, self.s, self.cport, self.sport, flags,
                                         seq=self.cseq, ack=self.sseq, payload=data), now)
        if advance:
            self.cseq += len(data)
        return seen

    def server(self, data: bytes, now: float, advance: bool = True) -> Seen:
        flags = "PA" if data else "A"
        seen = self.box.send(builder.tcp(self.s, self.c, self.sport, self.cport, flags,
                                         seq=self.sseq, ack=self.cseq, payload=data), now)
        if advance:
            self.sseq += len(data)
        return seen


@dataclass
class CaptureReplay:
    """A shared capture replayed through a Machine (every packet must be accepted)."""

    box: Machine
    states: list[str]  # each packet's ctstate
    first: dict[int, tuple[str, int]]  # per entry: its first ctstate and original dport


def replay_capture(path: Path) -> CaptureReplay:
    replayed = CaptureReplay(Machine(), [], {})
    box = replayed.box
    with open_capture(path) as capture:
        for frame in capture:
            pkt = decode_frame(frame.index, frame.ts, frame.data, frame.linktype, frame.iface)
            box.index = pkt.index
            seen = box.send(pkt.data, pkt.ts)
            replayed.states.append(seen.state)
            if seen.conn is not None and seen.conn.conn_id not in replayed.first:
                replayed.first[seen.conn.conn_id] = (seen.state, seen.conn.orig_dport)
            assert seen.accepted, seen.reason
    return replayed


def ftp_with_port(box: Machine, now: float, port_cmd: bytes = b"PORT 10,77,0,1,156,64\r\n",
                  cport: int = 46182) -> Tcp:
    """An FTP control connection whose client announced `port_cmd` after a first line."""
    ctl = Tcp(box, C4, S4, cport, 21)
    ctl.open(now)
    ctl.client(b"USER a\r\n", now)
    ctl.client(port_cmd, now)
    return ctl


def data_syn(box: Machine, now: float, sport: int = 20, dport: int = 40000) -> Seen:
    return box.send(builder.tcp(S4, C4, sport, dport, "S", seq=7000), now)


# -- listings (verified lines) -----------------------------------------------------------


def test_proc_and_conntrack_lines_of_an_ftp_expectation() -> None:
    box = Machine()
    ftp_with_port(box, 100.0)
    fw = box.host.firewall
    assert fw.expectation_lines(100.5, "proc") == [
        "299 l3proto = 2 proto=6 src=10.77.0.2 dst=10.77.0.1 sport=0 dport=40000 ftp\n"]
    (line,) = fw.expectation_lines(100.5, "conntrack")
    assert line.rstrip("\n") == (
        "299 proto=6 src=10.77.0.2 dst=10.77.0.1 sport=0 dport=40000 mask-src=255.255.255.255 "
        "mask-dst=255.255.255.255 sport=0 dport=65535 master-src=10.77.0.1 master-dst=10.77.0.2 "
        "sport=46182 dport=21 class=0 helper=ftp")
    (event,) = [e for e in box.host.events if e.expectation]
    assert event.line().startswith("    [NEW] 300 proto=6 ")


def test_ipv6_proc_line_is_fully_expanded() -> None:
    box = Machine()
    box.send(builder.udp(C6, S6, 12348, 69, b"\x00\x01f\x00octet\x00"), 5.0)
    assert box.listing(5.2) == {
        "299 l3proto = 10 proto=17 src=fd77:0000:0000:0000:0000:0000:0000:0002 "
        "dst=fd77:0000:0000:0000:0000:0000:0000:0001 sport=0 dport=12348 tftp\n"}


# -- matching and consumption ------------------------------------------------------------


def test_child_is_related_until_the_reply_then_established() -> None:
    box = Machine()
    ftp_with_port(box, 1.0)
    syn = data_syn(box, 2.0)
    retransmitted = data_syn(box, 2.5)
    synack = box.send(builder.tcp(C4, S4, 40000, 20, "SA", seq=900, ack=7001), 3.0)
    ack = box.send(builder.tcp(S4, C4, 20, 40000, "A", seq=7001, ack=901), 3.0)
    assert [syn.state, retransmitted.state, synack.state, ack.state] == [
        "RELATED", "RELATED", "ESTABLISHED", "ESTABLISHED"]
    child = ack.conn
    assert child is not None and child.status & IPS_EXPECTED and child.status & IPS_SEEN_REPLY
    assert child.helper is None  # FTP children get no helper (verified)
    # What -m helper --helper ftp compares: the master's helper, for the child only.
    assert child.master is not None and child.master.helper == "ftp"
    assert child.master.master is None  # never the control connection
    assert box.exp.live(3.0) == []
    reason = box.exp.related_reason(child)
    assert reason == ("RELATED: expected by ftp control 10.77.0.1:46182 → 10.77.0.2:21, "
                      "PORT command in packet #5")  # SYN, SYN/ACK, ACK, USER, PORT


def test_a_consumed_expectation_does_not_match_a_second_connection() -> None:
    box = Machine()
    ftp_with_port(box, 1.0)
    assert data_syn(box, 2.0, sport=20).state == "RELATED"
    assert data_syn(box, 2.0, sport=21000).state == "NEW"
    assert box.exp.stats.expect_new == 1


def test_expectation_is_consumed_even_when_the_first_packet_is_dropped() -> None:
    box = Machine(rules=("*filter", ":FORWARD ACCEPT [0:0]",
                         "-A FORWARD -m conntrack --ctstate RELATED -j DROP"))
    ftp_with_port(box, 1.0)
    first = box.send(builder.tcp(S4, C4, 20, 40000, "S", seq=7000), 2.0)
    assert first.state == "RELATED" and not first.accepted
    again = data_syn(box, 3.0)
    assert again.state == "NEW"  # verified: the retransmitted SYN is NEW, no master
    assert again.conn is not None and again.conn.master is None


def test_source_must_match_unless_masked_and_destination_always() -> None:
    box = Machine()
    ftp_with_port(box, 1.0)
    # FTP expects the server's address exactly, any source port.
    assert box.send(builder.tcp("10.77.0.9", C4, 20, 40000, "S"), 2.0).state == "NEW"
    assert box.send(builder.tcp(S4, C4, 20, 40001, "S"), 2.0).state == "NEW"
    assert box.send(builder.tcp(S4, C4, 33333, 40000, "S"), 2.0).state == "RELATED"


def test_master_mark_is_copied_to_the_child() -> None:
    # CONNMARK on the control connection (verified: data mark=7).
    box = Machine(rules=("*mangle", ":FORWARD ACCEPT [0:0]",
                         "-A FORWARD -p tcp -m tcp --dport 21 -j CONNMARK --set-mark 0x7"))
    ctl = ftp_with_port(box, 1.0)
    master = ctl.client(b"", 1.0).conn
    assert master is not None and master.mark == 7
    child = data_syn(box, 2.0).conn
    assert child is not None and child.mark == 7 and child.master is master


# -- lifetime ----------------------------------------------------------------------------


def test_expiry_is_fixed_at_creation_and_not_refreshed_by_master_traffic() -> None:
    box = Machine()
    ctl = ftp_with_port(box, 1000.0)
    ctl.client(b"NOOP\r\n", 1200.0)
    ctl.server(b"200 ok\r\n", 1200.0)
    (exp,) = box.exp.live(1299.0)
    assert exp.timeout == 1
    assert data_syn(box, 1299.5).state == "RELATED"


def test_expired_expectation_no_longer_matches() -> None:
    box = Machine()
    ftp_with_port(box, 1000.0)
    # Beyond the live kernel's timer slack (up to ~16 s for 300 s timeouts).
    assert box.exp.live(1320.0) == []
    assert data_syn(box, 1320.0).state == "NEW"
    assert ("DESTROY", 40000) in box.events


def test_master_death_removes_its_expectations_but_not_its_children() -> None:
    box = Machine()
    ctl = ftp_with_port(box, 1.0)
    child = data_syn(box, 2.0).conn
    ctl.client(b"PORT 10,77,0,1,156,65\r\n", 3.0)
    master = ctl.client(b"", 3.0).conn
    assert master is not None and child is not None
    assert len(box.exp.live(3.0)) == 1
    # The master dies: a reset leaves it 10 s (CLOSE), then it times out at 13 s.
    box.send(builder.tcp(C4, S4, 46182, 21, "R", seq=ctl.cseq), 3.0)
    box.advance(14.0)
    assert master.gone
    assert box.exp.live(14.0) == [] and box.events[-1] == ("DESTROY", 40001)
    assert not child.gone


# -- limits ------------------------------------------------------------------------------


def test_second_port_evicts_the_first_max_expected_1() -> None:
    box = Machine()
    ctl = ftp_with_port(box, 1.0)
    ctl.client(b"PORT 10,77,0,1,156,65\r\n", 2.0)
    assert box.events == [("NEW", 40000), ("DESTROY", 40000), ("NEW", 40001)]
    assert box.listing(2.5) == {
        "299 l3proto = 2 proto=6 src=10.77.0.2 dst=10.77.0.1 sport=0 dport=40001 ftp\n"}


def test_retransmitted_command_replaces_the_identical_expectation() -> None:
    box = Machine()
    ctl = ftp_with_port(box, 1.0)
    ctl.cseq -= len(b"PORT 10,77,0,1,156,64\r\n")
    ctl.client(b"PORT 10,77,0,1,156,64\r\n", 100.0)
    assert box.events == [("NEW", 40000), ("DESTROY", 40000), ("NEW", 40000)]
    (exp,) = box.exp.live(100.0)
    assert exp.expires == 400.0


def test_same_announcement_from_another_master_clashes_and_is_dropped() -> None:
    box = Machine()
    replies = []
    for cport in (46001, 46002):
        ctl = Tcp(box, C4, S4, cport, 21)
        ctl.open(1.0)
        ctl.server(b"220 hi\r\n", 1.0)
        replies.append(ctl.server(b"227 Entering Passive Mode (10,77,0,2,156,65).\r\n", 2.0))
    assert replies[0].accepted
    assert not replies[1].accepted and "clashes" in replies[1].reason
    assert len(box.exp.live(2.0)) == 1


def test_expect_max_refuses_and_the_request_is_dropped_with_its_entry() -> None:
    box = Machine(cfg=Sysctls(nf_conntrack_expect_max=3))
    seen = [box.send(builder.udp(C4, S4, 20000 + i, 69, b"\x00\x01f\x00octet\x00"), 1.0)
            for i in range(5)]
    assert [s.accepted for s in seen] == [True, True, True, False, False]
    assert "expectation table full" in seen[3].reason
    assert box.exp.count == 3 and box.host.firewall.count == 3


def test_expect_max_counts_after_eviction() -> None:
    """Step 3 (eviction) happens before step 4 (the cap), so a replacement fits."""
    box = Machine(cfg=Sysctls(nf_conntrack_expect_max=1))
    ctl = ftp_with_port(box, 1.0)
    assert ctl.client(b"PORT 10,77,0,1,156,65\r\n", 2.0).accepted
    assert [e.dport for e in box.exp.live(2.0)] == [40001]
