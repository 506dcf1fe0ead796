"""`statewall conns`: one line per connection, on captures built here.

The counting rules the assertions rely on (which packets the kernel's
accounting counts, and that bytes are the datagram's length) are the
kernel's: tests/test_acct_kernel.py checks them against the live kernel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from statewall import builder as b
from statewall.capture import LINKTYPE_RAW
from statewall.capture.writer import write_pcap
from statewall.cli import EXIT_INPUT, main
from statewall.conns import ConnRecord, Flow, connection_records
from statewall.decode import decode_datagram
from statewall.engine import Firewall
from statewall.oracle.helper_scenarios import CLIENT, SERVER, Tcp, ftp_active
from statewall.oracle.scenarios import filter_rules
from statewall.rules.hooks import IptablesEngine, compile_text
from statewall.verdict import RuleRef

C, S = "10.99.1.1", "10.99.2.1"
C6, S6 = "fd99:1::1", "fd99:2::1"
T0 = 1_700_000_000.0
RULES = filter_rules("-m conntrack --ctstate INVALID -j DROP", "-p udp --dport 99 -j DROP")
README = Path(__file__).resolve().parents[1] / "README.md"


def timed(datagrams: Sequence[bytes], step: float = 0.001) -> list[tuple[float, bytes]]:
    return [(T0 + i * step, data) for i, data in enumerate(datagrams)]


def records(packets: Sequence[tuple[float, bytes]], rules: str | None = RULES) -> list[ConnRecord]:
    engine = None if rules is None else IptablesEngine(compile_text(rules, "t.rules", 4), None)
    firewall = Firewall(rules=engine, conn_log=True)
    for i, (ts, data) in enumerate(packets):
        firewall.process(decode_datagram(data, index=i, ts=ts))
    return connection_records(firewall)


def cli(tmp_path: Path, packets: Sequence[tuple[float, bytes]], *args: str,
        rules: str | None = RULES, command: str = "conns",
        capsys: pytest.CaptureFixture[str]) -> str:
    capture = tmp_path / "c.pcap"
    write_pcap(capture, packets, linktype=LINKTYPE_RAW)
    options = list(args)
    if rules is not None:
        (tmp_path / "t.rules").write_text(rules)
        options += ["--rules", str(tmp_path / "t.rules")]
    assert main([command, str(capture), *options]) == 0
    return capsys.readouterr().out


def web_session() -> list[bytes]:
    """A handshake, a request and its answer, a segment far outside the window, a FIN close."""
    tcp = Tcp(C, S, 40000, 80)
    packets = [*tcp.handshake(), tcp.send(CLIENT, b"GET / HTTP/1.0\r\n\r\n"),
               tcp.send(SERVER, b"HTTP/1.0 200 OK\r\n\r\nhello"),
               tcp.at(CLIENT, tcp.next[CLIENT] + 10_000_000, b"junk")]
    c, s = tcp.next
    return [*packets, b.tcp(C, S, 40000, 80, "FA", c, s, window=502),
            b.tcp(S, C, 80, 40000, "FA", s, c + 1, window=502),
            b.tcp(C, S, 40000, 80, "A", c + 1, s + 1, window=502)]


def test_a_tcp_session_from_handshake_to_time_wait() -> None:
    session = web_session()
    [conn] = records(timed(session))
    orig = [session[i] for i in (0, 2, 3, 6, 8)]
    reply = [session[i] for i in (1, 4, 7)]
    assert (conn.conn, conn.proto, conn.proto_name, conn.family) == (1, 6, "tcp", 4)
    assert conn.orig == Flow(C, S, sport=40000, dport=80)
    assert conn.reply == Flow(S, C, sport=80, dport=40000)
    assert (conn.ts, conn.last_ts, conn.duration) == (T0, T0 + 0.008, 0.008)
    # The segment outside the window is INVALID: the accounting skips it.
    assert (conn.orig_packets, conn.orig_bytes) == (5, sum(map(len, orig)))
    assert (conn.reply_packets, conn.reply_bytes) == (3, sum(map(len, reply)))
    assert conn.history == ("SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "LAST_ACK",
                            "TIME_WAIT")
    assert (conn.state, conn.history_truncated) == ("TIME_WAIT", False)
    assert conn.status == ("SEEN_REPLY", "ASSURED", "CONFIRMED")
    assert conn.verdicts == {"ACCEPT": 8, "DROP": 1}
    assert conn.first_drop is not None
    assert (conn.first_drop.index, conn.first_drop.verdict) == (5, "DROP")
    assert conn.first_drop.rule == RuleRef("filter", "FORWARD", 1)
    assert conn.first_drop.reason.startswith("SEQ beyond the receiver's window")
    assert (conn.end, conn.end_ts, conn.master, conn.helper) == (None, None, None, None)


def test_conn_is_the_number_the_per_packet_output_carries(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    packets = [*timed(web_session()),
               (T0 + 1, b.udp(C, S, 5353, 53, b"q")), (T0 + 1.1, b.udp(S, C, 53, 5353, b"a")),
               (T0 + 2, b.icmp_echo(C, S, 7, 1))]
    per_packet = [json.loads(line) for line in
                  cli(tmp_path, packets, "--format", "jsonl", command="replay",
                      capsys=capsys).splitlines()]
    logged = [json.loads(line) for line in
              cli(tmp_path, packets, "--format", "jsonl", capsys=capsys).splitlines()]
    by_conn: dict[int, list[int]] = {}
    for line in per_packet:
        if line["conn"] is not None:
            by_conn.setdefault(line["conn"], []).append(line["index"])
    assert sorted(by_conn) == [record["conn"] for record in logged] == [1, 2, 3]
    for record in logged:
        first = by_conn[record["conn"]][0]
        assert record["ts"] == per_packet[first]["ts"]


def test_expired_and_dropped_flows() -> None:
    got = records([(T0, b.udp(C, S, 5353, 53, b"q")), (T0 + 0.5, b.udp(S, C, 53, 5353, b"ab")),
                   (T0 + 1, b.udp(C, S, 5000, 99)),  # dropped by rule 2: never confirmed
                   (T0 + 40, b.udp(C, S, 5354, 53, b"q"))])
    assert [r.conn for r in got] == [1, 2]
    first, second = got
    assert (first.end, first.end_ts) == ("timeout", T0 + 0.5 + 30)
    assert (first.orig_packets, first.orig_bytes, first.reply_packets, first.reply_bytes) == (
        1, 29, 1, 30)
    assert (first.state, first.history, first.verdicts) == (None, (), {"ACCEPT": 2})
    assert first.status == ("SEEN_REPLY", "CONFIRMED")
    assert (second.end, second.ts, second.status) == (None, T0 + 40, ("CONFIRMED",))


def test_an_rst_that_kills_an_unreplied_entry() -> None:
    syn = b.tcp(C, S, 1001, 80, "S", 100)
    rst = b.tcp(S, C, 80, 1001, "RA", 0, 101)
    [conn] = records(timed([syn, rst]))
    assert (conn.end, conn.end_ts) == ("reset", T0 + 0.001)
    assert conn.history == ("SYN_SENT", "CLOSE")
    # Counted although it killed the entry, as nf_ct_kill_acct counts it;
    # and the entry died unreplied, as its DESTROY event shows.
    assert (conn.orig_packets, conn.reply_packets, conn.reply_bytes) == (1, 1, len(rst))
    assert conn.status == ("CONFIRMED",)
    assert conn.verdicts == {"ACCEPT": 2}


def test_icmp_tuples_and_an_error_about_a_flow() -> None:
    probe = b.udp(C, S, 40002, 9999, b"x")
    got = records(timed([b.icmp_echo(C, S, 7, 1), b.icmp_echo(S, C, 7, 1, reply=True), probe,
                         b.icmp_error(S, C, b.ICMP_DEST_UNREACH, 3, probe)]))
    echo, udp = got
    assert echo.orig == Flow(C, S, type=8, code=0, id=7)
    assert echo.reply == Flow(S, C, type=0, code=0, id=7)
    assert (echo.orig_packets, echo.reply_packets, echo.proto_name) == (1, 1, "icmp")
    # The error is RELATED to the UDP flow: its verdict counts there, its
    # bytes do not (the kernel's accounting skips errors).
    assert udp.verdicts == {"ACCEPT": 2}
    assert (udp.orig_packets, udp.reply_packets, udp.last_ts) == (1, 0, T0 + 0.003)


def test_an_expected_connection_names_its_master_and_helper() -> None:
    scenario = ftp_active(4, "PORT")
    control, data = records(timed(scenario.datagrams), scenario.rules_v4)
    assert (control.helper, control.master) == ("ftp", None)
    assert (data.master, data.master_helper, data.helper) == (control.conn, "ftp", None)
    assert data.orig.sport == 20 and "EXPECTED" in data.status
    assert data.history == ("SYN_SENT", "SYN_RECV", "ESTABLISHED")


def test_ipv6_and_the_text_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    packets = [*timed(web_session()), (T0 + 1, b.udp(C6, S6, 5353, 53, b"q")),
               (T0 + 2, b.icmp_echo(C, S, 7, 1))]
    lines = cli(tmp_path, packets, capsys=capsys).splitlines()
    assert len(lines) == 3
    assert re.match(r"conn 1 +0\.000000 +0\.008000s  tcp +10\.99\.1\.1:40000 > "
                    r"10\.99\.2\.1:80 +\| reply 10\.99\.2\.1:80 > 10\.99\.1\.1:40000 \| ", lines[0])
    assert "SYN_SENT>SYN_RECV>ESTABLISHED>FIN_WAIT>LAST_ACK>TIME_WAIT" in lines[0]
    assert "| ACCEPT 8, DROP 1 | live | first drop: #6 DROP by filter FORWARD #1: " in lines[0]
    assert "udp     [fd99:1::1]:5353 > [fd99:2::1]:53" in lines[1]
    assert re.search(r"icmp    10\.99\.1\.1 > 10\.99\.2\.1 type=8 code=0 id=7 +\| reply "
                     r"10\.99\.2\.1 > 10\.99\.1\.1 type=0 code=0 id=7 \| orig 1 pkts/28 B, "
                     r"reply 0 pkts/0 B \| \[CONFIRMED\] \| ACCEPT 1 \| live$", lines[2])
    # The columns line up: the flows start at the same place.
    assert len({line.index(" | reply ") for line in lines[:2]}) == 1


def test_tsv_has_a_header_and_zeek_like_columns(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    packets = [*timed(web_session()), (T0 + 2, b.icmp_echo(C, S, 7, 1))]
    header, tcp, icmp = (line.split("\t") for line in
                         cli(tmp_path, packets, "--format", "tsv", capsys=capsys).splitlines())
    assert header[:5] == ["conn", "ts", "last_ts", "duration", "proto"]
    assert len(tcp) == len(icmp) == len(header)
    row = dict(zip(header, tcp, strict=True))
    assert (row["orig_src"], row["orig_sport"], row["orig_dst"], row["orig_dport"]) == (
        C, "40000", S, "80")
    assert (row["ts"], row["duration"], row["icmp_id"]) == ("1700000000.000000", "0.008000", "-")
    assert row["history"] == "SYN_SENT>SYN_RECV>ESTABLISHED>FIN_WAIT>LAST_ACK>TIME_WAIT"
    assert (row["verdicts"], row["status"]) == ("ACCEPT:8,DROP:1", "SEEN_REPLY,ASSURED,CONFIRMED")
    assert (row["drop_index"], row["drop_table"], row["drop_chain"], row["drop_rule"]) == (
        "5", "filter", "FORWARD", "1")
    assert (row["helper"], row["master"], row["end"], row["end_ts"]) == ("-", "-", "-", "-")
    # ICMP: type and code where Zeek puts them, the identifier beside.
    row = dict(zip(header, icmp, strict=True))
    assert (row["orig_sport"], row["orig_dport"], row["reply_sport"], row["icmp_id"]) == (
        "8", "0", "0", "7")


def test_jsonl_fields_are_the_documented_ones(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = README.read_text()
    section = text[text.index("### The conns jsonl schema"):]
    section = section[:section.index("\n#", 1)]
    documented = re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE)
    out = cli(tmp_path, timed(web_session()), "--format", "jsonl", capsys=capsys)
    assert list(json.loads(out)) == documented


def test_the_log_must_be_asked_for() -> None:
    firewall = Firewall()
    firewall.process(decode_datagram(b.udp(C, S, 1, 2), index=0, ts=T0))
    with pytest.raises(ValueError, match="conn_log=True"):
        connection_records(firewall)


def test_a_broken_capture_still_lists_what_was_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = tmp_path / "cut.pcap"
    write_pcap(capture, [(T0, b.udp(C, S, 1, 2, b"q")), (T0 + 1, b.udp(C, S, 3, 4, b"q"))],
               linktype=LINKTYPE_RAW)
    capture.write_bytes(capture.read_bytes()[:-5])
    assert main(["conns", str(capture), "--format", "tsv"]) == EXIT_INPUT
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2  # the header and the packet that was read
    assert "cut.pcap" in captured.err
