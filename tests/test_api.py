"""The library's front door: `import statewall`, `load_firewall` and `replay`."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

import statewall
from statewall import builder as b
from statewall.capture import LINKTYPE_RAW, write_pcap
from statewall.cli import main

START = 1_700_000_000.0
HOST = "192.0.2.1"
CLIENT = "198.51.100.7"

HOST_RULES = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A INPUT -p udp -m addrtype --dst-type LOCAL -m udp --dport 53 -j ACCEPT
COMMIT
"""


def mixed_frames() -> list[tuple[float, bytes]]:
    """TCP, UDP, ICMP, IPv6 and a fragmented UDP datagram (its later fragment has no ports)."""
    big = b.udp(CLIENT, HOST, 5000, 53, b"x" * 64)
    frames = [
        b.tcp(CLIENT, HOST, 40000, 22, "S", seq=1),
        b.udp(CLIENT, HOST, 40001, 53, b"query"),
        b.udp(HOST, CLIENT, 53, 40001, b"answer"),
        b.icmp_echo(CLIENT, HOST, 7, 1),
        b.icmpv6_echo("2001:db8::7", "2001:db8::1", 7, 1),
        *b.fragment(big, 32),
    ]
    return [(START + i / 10, frame) for i, frame in enumerate(frames)]


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "mixed.pcap"
    write_pcap(path, mixed_frames(), linktype=LINKTYPE_RAW)
    return path


@pytest.fixture
def host_rules(tmp_path: Path) -> Path:
    path = tmp_path / "host.v4"
    path.write_text(HOST_RULES)
    return path


def test_public_names_resolve() -> None:
    for name in statewall.__all__:
        assert getattr(statewall, name) is not None, name
    assert "replay" in dir(statewall)
    with pytest.raises(AttributeError):
        statewall.no_such_name  # noqa: B018


def test_records_are_the_jsonl_records(capture: Path, host_rules: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    run = statewall.replay(capture, rules=host_rules, local=[HOST])
    records = [packet.as_json() for packet in run]
    assert main(["replay", str(capture), "--rules", str(host_rules), "--local", HOST,
                 "--format", "jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert records == lines
    by_frame = {r["frame"]: r for r in records}
    assert (by_frame[1]["src"], by_frame[1]["sport"], by_frame[1]["dport"]) == (CLIENT, 40000, 22)
    assert by_frame[4]["sport"] is None and by_frame[4]["dst"] == HOST  # ICMP: no ports
    assert by_frame[5]["src"] == "2001:db8::7"
    later = [r for r in records if r["frame"] > 6]
    assert later and all(r["sport"] is None and r["src"] == CLIENT for r in later)


def test_topology_is_given_once(capture: Path, host_rules: Path) -> None:
    """`local` both routes the packet to INPUT and makes addrtype's LOCAL true, as on a
    Linux host whose address it is: the query is accepted by INPUT rule 2."""
    run = statewall.replay(capture, rules=host_rules, local=ipaddress.ip_address(HOST))
    query = [p for p in run][1]
    assert (query.verdict, query.rule) == ("ACCEPT", statewall.RuleRef("filter", "INPUT", 2, 6))
    ssh = statewall.replay(capture, rules=host_rules, local=[HOST]).__iter__().__next__()
    assert (ssh.verdict, str(ssh.rule)) == ("DROP", "filter INPUT policy")
    routed = next(iter(statewall.replay(capture, rules=host_rules)))
    assert str(routed.rule) == "filter FORWARD policy"  # no local address: a router


def test_results_after_the_capture(capture: Path, host_rules: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    options = {"rules": host_rules, "local": [HOST]}
    run = statewall.replay(capture, events=True, **options)
    summary = run.summary  # without iterating: the whole capture runs first
    assert summary.packets == len(mixed_frames())
    assert main(["replay", str(capture), "--rules", str(host_rules), "--local", HOST,
                 "--summary-only"]) == 0
    printed = capsys.readouterr().out
    assert printed == "\n".join(summary.lines) + "\n" + (
        "hint: 1 IPv6 packet met no IPv6 ruleset and passed unfiltered: give the "
        "ip6tables-save file with --rules6\n")
    assert sum(summary.verdicts.values()) == summary.packets
    assert main(["table", str(capture), "--rules", str(host_rules), "--local", HOST]) == 0
    assert run.table() == capsys.readouterr().out.splitlines(keepends=True)
    assert main(["events", str(capture), "--rules", str(host_rules), "--local", HOST]) == 0
    assert [e.line(False) for e in run.events()] == capsys.readouterr().out.splitlines()
    assert {c.conn for c in run.connections()} <= {p.conn for p in statewall.replay(
        capture, **options)}


def test_connections_give_addresses_as_text_like_the_packets(capture: Path) -> None:
    run = statewall.replay(capture, local=[HOST])
    packets = list(run)
    by_conn = {p.conn: (p.src, p.dst) for p in packets if p.ctdir == "ORIGINAL"}
    entries = run.connections()
    assert {c.family for c in entries} == {4, 6}
    for entry in entries:
        assert (entry.orig_src, entry.orig_dst) == by_conn[entry.conn]
        assert (entry.reply_src, entry.reply_dst) == (entry.orig_dst, entry.orig_src)
    assert ("2001:db8::7", "2001:db8::1") in {(c.orig_src, c.orig_dst) for c in entries}


def test_one_firewall_for_several_captures(capture: Path) -> None:
    firewall = statewall.load_firewall(sysctls={"net.netfilter.nf_conntrack_udp_timeout": 5})
    first = statewall.replay(capture, firewall, limit=3)
    assert len(list(first)) == 3
    assert firewall.connections()[0].conn == 1
    with pytest.raises(RuntimeError, match="iterated once"):
        list(first)


def test_bad_calls_say_what_is_wrong(capture: Path) -> None:
    firewall = statewall.load_firewall()
    with pytest.raises(TypeError, match="not both"):
        statewall.replay(capture, firewall, local=[HOST])
    with pytest.raises(ValueError, match="limit -1"):
        statewall.replay(capture, limit=-1)
    with pytest.raises(ValueError, match="events were not recorded"):
        statewall.replay(capture).events()
    with pytest.raises(statewall.SysctlError, match="unknown sysctl"):
        statewall.load_firewall(sysctls={"nf_conntrack_tcp_lose": 1})
    with pytest.raises(ValueError):
        statewall.load_firewall(local=["not-an-address"])
