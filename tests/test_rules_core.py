"""The core's rule walker: rules lowered to plain data (statewall.rules.lower), loaded
by `_core.RuleEngine` and walked with packets built here, on stateful matches over
time, and every shared ruleset lowered and loaded.

The walks of the scenarios below (verdict, rule, reason, mark, effects, log and
trace lines, the entry's mark after CONNMARK) and the counters at the end of
each are pinned in data/rule_walks.json, one decision per distinct outcome and
the walks as indices into them, in the order the scenarios make them.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rulewalk import (
    CT_ESTABLISHED,
    CT_ESTABLISHED_REPLY,
    CT_INVALID,
    CT_NEW,
    CT_RELATED,
    CT_UNTRACKED,
    IPS_ASSURED,
    IPS_CONFIRMED,
    IPS_DST_NAT,
    Decision,
    Entry,
    compile_text,
    engine_of,
    walk,
)

from statewall import builder
from statewall._core import RuleEngine
from statewall.decode import decode_datagram
from statewall.packet import Packet
from statewall.rules.compile import CompiledRuleset, compile_ruleset
from statewall.rules.ext import RuleState
from statewall.rules.lower import compile_for_core, lower
from statewall.rules.parser import parse_ruleset

SHARED = Path(os.environ.get("STATEWALL_SHARED", Path(__file__).resolve().parents[2] / "shared"))
RULESETS = SHARED / "rulesets"
TRACES = SHARED / "traces"
RULESET_FILES = sorted(p.name for p in RULESETS.glob("*") if p.name != "SOURCES.md") \
    if RULESETS.is_dir() else []
CAPTURES = sorted(p for p in TRACES.glob("*.pcap*")) if TRACES.is_dir() else []
IN_CI = os.environ.get("CI", "").lower() == "true"

HOOKS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")
RECORDED = json.loads((Path(__file__).parent / "data" / "rule_walks.json").read_text())


def load(*lines: str, table: str = "filter", family: int = 4) -> CompiledRuleset:
    return compile_text("\n".join([f"*{table}", *lines, "COMMIT", ""]), family)


def as_recorded(decision: Decision, conn: Entry | None) -> dict[str, Any]:
    """A decision in the form data/rule_walks.json keeps it."""
    rule = decision.rule
    value = {
        "verdict": decision.verdict, "rule": [rule.table, rule.chain, rule.number, rule.line],
        "reason": decision.reason, "mark": decision.mark, "reject_with": decision.reject_with,
        "queue_num": decision.queue_num, "logs": list(decision.logs),
        "effects": [[kind, v] for kind, v in decision.effects], "notes": list(decision.notes),
        "trace": list(decision.trace), "nf_trace": decision.nf_trace,
        "entry_mark": None if conn is None else conn.mark,
    }
    loaded: dict[str, Any] = json.loads(json.dumps(value))
    return loaded


class Recorded:
    """One ruleset walked in the core, each walk checked against the recorded one."""

    def __init__(self, compiled: CompiledRuleset, name: str) -> None:
        self.compiled = compiled
        self.lowered = lower(compiled)
        self.core = RuleEngine(self.lowered.to_json())
        recorded = RECORDED[name]
        self.decisions = recorded["decisions"]
        self.walks = iter(recorded["walks"])
        self.counters = [tuple(row) for row in recorded["counters"]]
        self.step = 0

    def run(self, pkt: Packet, ctinfo: int = CT_NEW, conn: Entry | None = None,
            hook: str = "FORWARD", table: str = "filter", now: float = 0.0,
            iface_in: str | None = "eth0", iface_out: str | None = "eth1", mark: int = 0,
            trace: bool = False) -> Decision | None:
        decision = walk(self.core, table, hook, pkt, ctinfo, conn, now, iface_in, iface_out,
                        mark, trace)
        self.step += 1
        expected = next(self.walks, None)
        assert expected is not None, f"walk {self.step}: more walks than recorded"
        where = (f"walk {self.step}: {table} {hook} ctinfo {ctinfo} entry {conn} now {now} "
                 f"in {iface_in} out {iface_out} mark {mark}: {pkt.data.hex()}")
        if expected < 0:
            assert decision is None, where
        else:
            assert decision is not None, where
            assert as_recorded(decision, conn) == self.decisions[expected], where
        return decision

    def finish(self) -> None:
        """Every recorded walk was made, and the counters are the recorded ones."""
        assert next(self.walks, None) is None, "fewer walks than recorded"
        assert self.core.counters() == self.counters


def syn(sport: int = 40000, dport: int = 22, src: str = "10.0.0.1", flags: str = "S",
        ts: float = 0.0) -> Packet:
    return decode_datagram(builder.tcp(src, "10.0.0.2", sport, dport, flags, mss=1460), ts=ts)


def udp(dport: int = 53, src: str = "10.0.0.1", ttl: int = 64) -> Packet:
    return decode_datagram(builder.udp(src, "10.0.0.2", 5353, dport, b"x" * 10, ttl=ttl))


def entry(status: int = IPS_CONFIRMED, mark: int = 0) -> Entry:
    return Entry(4, 6, 0, (0x0A000001, 0x0A000002, 40000, 22),
                 (0x0A000002, 0x0A000001, 22, 40000), 0.0, status, expires=100.0, mark=mark)


def packets() -> Iterator[Packet]:
    yield syn()
    yield syn(dport=80, flags="SA")
    yield syn(dport=443, src="192.168.1.7", flags="A")
    yield syn(sport=1024, dport=25, flags="FA")
    yield udp()
    yield udp(dport=123, src="172.16.0.1", ttl=1)
    yield decode_datagram(builder.icmp_echo("10.0.0.1", "10.0.0.2", 7, 1))
    yield decode_datagram(builder.icmp("10.0.0.9", "10.0.0.2", 3, 3, payload=b"q" * 28))
    quoted = builder.udp("10.0.0.2", "10.0.0.1", 53, 5353, b"")
    yield decode_datagram(builder.icmp_error("10.0.0.9", "10.0.0.2", 3, 1, quoted))
    yield decode_datagram(builder.tcp("10.0.0.1", "255.255.255.255", 1, 2, "S"))


# --- rulesets exercising every match and target the core evaluates -------------------

STATEFUL = (
    ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]", ":LOGDROP - [0:0]",
    ":tcp_in - [0:0]",
    "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "-A FORWARD -m conntrack --ctstate INVALID -j LOGDROP",
    "-A FORWARD -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j tcp_in",
    "-A FORWARD -p udp -m multiport --dports 53,123,5000:5010 -j ACCEPT",
    "-A FORWARD -p icmp -m icmp --icmp-type echo-request -m limit --limit 2/sec "
    "--limit-burst 3 -j ACCEPT",
    "-A FORWARD -p icmp -m icmp --icmp-type 3/3 -j ACCEPT",
    "-A FORWARD -m state --state NEW -m mark --mark 0x1/0xff -j ACCEPT",
    "-A FORWARD -j LOGDROP",
    "-A LOGDROP -m limit --limit 5/min -j LOG --log-prefix \"drop: \" --log-tcp-sequence "
    "--log-tcp-options --log-ip-options",
    "-A LOGDROP -j DROP",
    "-A tcp_in -s 192.168.0.0/16 -p tcp -m tcp --dport 443 -j REJECT --reject-with tcp-reset",
    "-A tcp_in -p tcp -m tcp ! --dport 22 -j RETURN",
    "-A tcp_in -i eth+ ! -o lo -p tcp -m comment --comment ssh -j ACCEPT",
)

VARIETY = [
    STATEFUL,
    (":FORWARD ACCEPT [0:0]", ":m - [0:0]",
     "-A FORWARD -j MARK --set-xmark 0x5/0xff", "-A FORWARD -m mark ! --mark 0x5 -j DROP",
     "-A FORWARD -g m", "-A FORWARD -j DROP",
     "-A m -p tcp -m tcp --tcp-option 2 -j MARK --or-mark 0x100",
     "-A m -m length --length 0:60 -j LOG", "-A m -m ttl --ttl-lt 5 -j DROP",
     "-A m -m iprange --src-range 10.0.0.0-10.0.0.5 -j NFQUEUE --queue-num 3 --queue-bypass",
     "-A m -m pkttype --pkt-type broadcast -j REJECT",
     "-A m -m mac --mac-source 00:11:22:33:44:55 -j ACCEPT",
     "-A m -m conntrack --ctorigdst 10.0.0.2 --ctdir ORIGINAL --ctexpire 10:200 -j ACCEPT",
     "-A m -m conntrack --ctstatus ASSURED --ctproto tcp --ctrepldstport 40000 -j ACCEPT",
     "-A m -m helper --helper ftp -j ACCEPT", "-A m -p udp -m udp --sport 5353 -j DROP"),
    (":FORWARD ACCEPT [0:0]",
     "-A FORWARD -j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xff",
     "-A FORWARD -m connmark --mark 0x7 -j ACCEPT",
     "-A FORWARD -p tcp -j CONNMARK --set-mark 0x7",
     "-A FORWARD -j CONNMARK --save-mark",
     "-A FORWARD -m connmark --mark 0x7 -j DROP",
     "-A FORWARD -m conntrack --ctstate DNAT -j ACCEPT"),
]


@pytest.mark.parametrize("number", range(len(VARIETY)))
def test_builder_packets_give_the_recorded_decisions(number: int) -> None:
    pair = Recorded(load(*VARIETY[number]), f"variety-{number}")
    assert not pair.lowered.not_ported
    states = (CT_NEW, CT_ESTABLISHED, CT_RELATED, CT_ESTABLISHED_REPLY, CT_INVALID, CT_UNTRACKED)
    for n, pkt in enumerate(packets()):
        for ctinfo in states:
            for conn in (None, entry(), entry(IPS_CONFIRMED | IPS_ASSURED | IPS_DST_NAT, 7)):
                pair.run(pkt, ctinfo, conn, now=n * 0.3, mark=n % 2)
                pair.run(pkt, ctinfo, conn, hook="FORWARD", iface_in="lo", iface_out=None,
                         now=n * 0.3)
    pair.finish()


STATEFUL_MATCHES = (
    ":INPUT ACCEPT [0:0]",
    "-A INPUT -m addrtype --dst-type BROADCAST -j DROP",
    "-A INPUT -m addrtype --src-type LOCAL --limit-iface-in -j LOG --log-prefix local",
    "-A INPUT -m addrtype ! --dst-type LOCAL -j REJECT",
    "-A INPUT -p tcp -m tcp --dport 22 -m recent --set --name ssh --rsource",
    "-A INPUT -p tcp -m tcp --dport 22 -m recent --update --seconds 60 --hitcount 3 "
    "--rttl --name ssh --rsource -j DROP",
    "-A INPUT -p tcp -m recent --rcheck --seconds 5 --reap --name ssh -j LOG",
    "-A INPUT -p udp -m recent --remove --name ssh",
    "-A INPUT -p udp -m statistic --mode random --probability 0.3 -j DROP",
    "-A INPUT -p udp -m statistic --mode nth --every 3 --packet 1 -j LOG",
    "-A INPUT -p icmp -m hashlimit --hashlimit-upto 1/sec --hashlimit-burst 2 "
    "--hashlimit-mode srcip --hashlimit-name ping -j ACCEPT",
    "-A INPUT -p tcp -m hashlimit --hashlimit-above 100kb/s --hashlimit-mode srcip,dstport "
    "--hashlimit-name bytes --hashlimit-htable-max 2 -j DROP",
    "-A INPUT -p tcp -m hashlimit --hashlimit-upto 2/sec --hashlimit-rate-match "
    "--hashlimit-mode dstip --hashlimit-name rate -j ACCEPT",
    "-A INPUT -m nfacct --nfacct-name x -m physdev ! --physdev-is-bridged -j LOG",
    "-A INPUT -m policy --dir in --pol ipsec -j ACCEPT",
    "-A INPUT -m policy --dir in --pol none -j DROP",
)


def test_stateful_matches_over_time_give_the_recorded_decisions() -> None:
    ruleset = parse_ruleset("\n".join(["*filter", *STATEFUL_MATCHES, "COMMIT", ""]),
                            "t.rules", 4)
    state = RuleState(seed=7, local_nets=((4, 0x0A000002, 0xFFFFFFFF),),
                      iface_nets={"eth0": ((4, 0x0A000000, 0xFFFFFF00),)})
    pair = Recorded(compile_ruleset(ruleset, state), "stateful-matches")
    assert not pair.lowered.not_ported
    srcs = ("10.0.0.1", "10.0.0.3", "10.0.0.2", "192.168.1.1")
    step = 0
    for now in (0.0, 0.1, 0.2, 0.7, 1.0, 1.5, 3.0, 30.0, 61.0, 400.0):
        for src in srcs:
            step += 1
            for pkt in (syn(src=src, dport=22), syn(src=src, dport=80 + step % 3),
                        udp(src=src), decode_datagram(builder.icmp_echo(src, "10.0.0.2", 1, 1))):
                pair.run(pkt, hook="INPUT", iface_out=None, now=now)
                pair.run(pkt, hook="INPUT", iface_in="eth1", iface_out=None, now=now)
    dst = decode_datagram(builder.udp("10.0.0.1", "10.0.0.255", 1, 2, b""))
    pair.run(dst, hook="INPUT", iface_out=None, now=500.0)
    pair.finish()


MORE_MATCHES = (
    ":INPUT ACCEPT [0:0]",
    "-A INPUT -m dscp --dscp-class EF -j LOG --log-prefix ef",
    "-A INPUT -m tos --tos minimize-delay -j LOG --log-prefix lowdelay",
    "-A INPUT -p tcp -m ecn --ecn-tcp-ece ! --ecn-tcp-cwr -j LOG --log-prefix ece",
    "-A INPUT -p tcp -m tcpmss --mss 1400:1500 -j LOG --log-prefix mss",
    "-A INPUT -m connbytes --connbytes 2: --connbytes-dir both --connbytes-mode packets "
    "-j LOG --log-prefix bytes",
    "-A INPUT -p tcp -m connlimit --connlimit-above 2 --connlimit-mask 24 -j REJECT",
    "-A INPUT -p tcp -m connlimit --connlimit-upto 1 --connlimit-daddr -j ACCEPT",
    "-A INPUT -m string --algo bm --string GET --from 40 -j DROP",
)


def test_more_matches_and_connlimit_over_connections() -> None:
    pair = Recorded(load(*MORE_MATCHES), "more-matches")
    assert not pair.lowered.not_ported
    conns = [Entry(4, 6, 0, (0x0A000001 + n % 2, 0x0A000002, 40000 + n, 22),
                   (0x0A000002, 0x0A000001 + n % 2, 22, 40000 + n), 0.0, IPS_CONFIRMED,
                   expires=10.0 * (n + 1))
             for n in range(6)]
    payload = builder.tcp("10.0.0.1", "10.0.0.2", 1, 80, "PA", payload=b"GET / HTTP/1.0")
    for now in (0.0, 5.0, 15.0, 35.0, 100.0):
        for n, conn in enumerate(conns):
            if now > 20 and n == 1:
                conn.status |= 1 << 9  # IPS_DYING
            for pkt in (syn(sport=40000 + n, src=f"10.0.0.{1 + n % 2}", flags="SE"),
                        decode_datagram(builder.tcp("10.0.0.1", "10.0.0.2", 1, 2, "S",
                                                    mss=1460, tos=0xB8)),
                        decode_datagram(payload), udp()):
                pair.run(pkt, CT_NEW, conn, hook="INPUT", iface_out=None, now=now)
                pair.run(pkt, CT_INVALID, None, hook="INPUT", iface_out=None, now=now)
    pair.finish()


IPSETS = """create hosts hash:ip family inet counters
add hosts 10.0.0.1 packets 0 bytes 0
create nets hash:net family inet
add nets 10.0.0.0/24
add nets 10.0.0.3/32 nomatch
create svc hash:ip,port family inet
add svc 10.0.0.2,tcp:22
create low bitmap:port range 0-1024
add low 53
create seen hash:ip family inet timeout 5
create all list:set
add all seen
add all nets
"""


def test_ipsets_and_the_set_target_over_time() -> None:
    from statewall.rules.ipset import parse_ipset_save

    text = "\n".join(["*filter", ":INPUT ACCEPT [0:0]",
                      "-A INPUT -m set --match-set hosts src --packets-gt 2 -j DROP",
                      "-A INPUT -m set --match-set nets src --return-nomatch -j LOG",
                      "-A INPUT -m set ! --match-set nets src -j SET --add-set seen src "
                      "--exist",
                      "-A INPUT -m set --match-set svc dst,dst -j ACCEPT",
                      "-A INPUT -m set --match-set low dst -j SET --del-set seen src",
                      "-A INPUT -m set --match-set all src -j LOG --log-prefix all",
                      "-A INPUT -p icmp -j SET --add-set seen src --timeout 2",
                      "COMMIT", ""])
    sets = parse_ipset_save(IPSETS)
    compiled = compile_ruleset(parse_ruleset(text, "t.rules", 4), RuleState(sets=sets))
    pair = Recorded(compiled, "ipsets")
    assert not pair.lowered.not_ported
    for now in (0.0, 1.0, 2.5, 4.0, 9.0, 20.0):
        for src in ("10.0.0.1", "10.0.0.3", "192.168.0.9", "172.16.0.1"):
            for pkt in (syn(src=src), udp(src=src),
                        decode_datagram(builder.icmp_echo(src, "10.0.0.2", 1, 1))):
                pair.run(pkt, hook="INPUT", iface_out=None, now=now)
    pair.finish()


def test_rpfilter_against_the_interface_routes() -> None:
    ruleset = parse_ruleset("*raw\n:PREROUTING ACCEPT [0:0]\n"
                            "-A PREROUTING -m rpfilter --invert -j DROP\n"
                            "-A PREROUTING -m rpfilter --loose --accept-local -j ACCEPT\n"
                            "COMMIT\n", "t.rules", 4)
    state = RuleState(local_nets=((4, 0x0A000002, 0xFFFFFFFF),),
                      iface_nets={"eth0": ((4, 0x0A000000, 0xFFFFFF00),),
                                  "eth1": ((4, 0xC0A80000, 0xFFFF0000),)})
    pair = Recorded(compile_ruleset(ruleset, state), "rpfilter")
    for pkt in packets():
        for iface in ("eth0", "eth1", "lo"):
            pair.run(pkt, hook="PREROUTING", table="raw", iface_in=iface, iface_out=None)
    pair.finish()


def test_a_jump_of_the_capture_clock_costs_the_core_nothing() -> None:
    """Packets at t=0 and t=1.7e9: the gap is applied at once, not stepped through
    garbage-collection interval by interval."""
    import time

    compiled = compile_text("\n".join([
        "*filter", ":INPUT ACCEPT [0:0]",
        "-A INPUT -m hashlimit --hashlimit-upto 1/sec --hashlimit-burst 1 "
        "--hashlimit-mode srcip --hashlimit-name h -j LOG",
        "-A INPUT -m limit --limit 1/hour --limit-burst 1 -j LOG",
        "-A INPUT -m recent --update --seconds 1 --name r",
        "-A INPUT -m recent --set --name r",
        "-A INPUT -p tcp -m connlimit --connlimit-above 5 -j DROP",
        "COMMIT", ""]))
    core = engine_of(compiled)
    started = time.monotonic()
    decisions = [walk(core, "filter", "INPUT", syn(), CT_NEW, entry(), now)
                 for now in (0.0, 1.0, 1.7e9, 1.7e9 + 1)]
    assert time.monotonic() - started < 5
    assert [len(d.logs) for d in decisions if d is not None] == [2, 1, 2, 1]


def test_raw_table_effects_and_trace_lines() -> None:
    pair = Recorded(load(":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
                     "-A PREROUTING -p udp -j CT --notrack",
                     "-A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp --zone 3",
                     "-A PREROUTING -p tcp -j TRACE", "-A PREROUTING -p icmp -j NOTRACK",
                     "-A PREROUTING -p tcp -j ACCEPT", table="raw"), "raw-effects")
    for pkt in packets():
        decision = pair.run(pkt, hook="PREROUTING", table="raw")
        assert decision is not None
    decision = pair.run(syn(dport=21), hook="PREROUTING", table="raw")
    assert decision is not None and decision.nf_trace and decision.trace
    assert ("helper", "ftp") in decision.effects
    assert pair.run(syn(), hook="INPUT", table="raw") is None
    pair.finish()


def test_nat_and_mangle_effects() -> None:
    pair = Recorded(compile_text("\n".join((
        "*nat", ":PREROUTING ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]",
        "-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.9.9.9:8080",
        "-A POSTROUTING -o eth1 -j MASQUERADE", "COMMIT",
        "*mangle", ":FORWARD ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]",
        "-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu",
        "-A POSTROUTING -p udp -j CHECKSUM --checksum-fill",
        "-A POSTROUTING -j DSCP --set-dscp 10", "-A POSTROUTING -j TOS --set-tos 0x10/0x3f",
        "-A POSTROUTING -j TTL --ttl-set 9", "COMMIT", ""))), "nat-mangle")
    for pkt in packets():
        pair.run(pkt, hook="PREROUTING", table="nat")
        pair.run(pkt, hook="POSTROUTING", table="nat")
        pair.run(pkt, hook="FORWARD", table="mangle")
        pair.run(pkt, hook="POSTROUTING", table="mangle")
    pair.finish()


def test_ipv6_ruleset_and_log_lines() -> None:
    pair = Recorded(load(":INPUT DROP [0:0]",
                     "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type echo-request -j LOG",
                     "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type echo-request -j ACCEPT",
                     "-A INPUT -s 2001:db8::/32 -m hl --hl-eq 64 -j LOG --log-prefix v6",
                     "-A INPUT -d 2001:db8::2 -p tcp -j ACCEPT", family=6), "ipv6")
    pkts = [
        decode_datagram(builder.icmpv6_echo("2001:db8::1", "2001:db8::2", 1, 1)),
        decode_datagram(builder.tcp("2001:db8::1", "2001:db8::2", 1, 22, "S")),
        decode_datagram(builder.udp("2001:db8:0:0:1::1", "::1", 1, 22, b"")),
    ]
    for pkt in pkts:
        decision = pair.run(pkt, hook="INPUT", iface_out=None)
        assert decision is not None
    assert pair.core.family == 6
    pair.finish()


def test_undetermined_rules() -> None:
    compiled = compile_text("*filter\n:OUTPUT ACCEPT [0:0]\n"
                            "-A OUTPUT -p tcp -m owner --uid-owner 0 -j DROP\n"
                            "-A OUTPUT -p udp -j ULOG\nCOMMIT\n", allow_unknown=True)
    pair = Recorded(compiled, "undetermined")
    for pkt in packets():
        decision = pair.run(pkt, hook="OUTPUT")
        assert decision is not None
    pair.finish()


def test_lowered_rulesets_are_plain_values() -> None:
    compiled = load(*STATEFUL)
    lowered = lower(compiled)
    assert pickle.loads(pickle.dumps(lowered)) == lowered
    assert lower(compiled) == lowered
    data = json.loads(lowered.to_json())
    first = data["tables"][0]["chains"][1]["rules"][0]
    assert first["matches"][0]["kind"] == "conntrack"
    assert first["target"] == {"kind": "verdict", "verdict": "ACCEPT"}
    assert first["text"] == "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    assert "LoweredRule(" in repr(lowered.tables[0].chains[1].rules[0])


def test_bad_data_names_file_and_line() -> None:
    data = json.loads(lower(load(":INPUT ACCEPT [0:0]", ":a - [0:0]", ":b - [0:0]",
                                 "-A INPUT -j a", "-A a -j b", "-A b -j ACCEPT")).to_json())
    chains = data["tables"][0]["chains"]
    names = [c["name"] for c in chains]
    chains[names.index("b")]["rules"][0]["target"] = {"kind": "jump", "chain": names.index("a")}
    with pytest.raises(ValueError, match=r"^t\.rules:7: loop detected in chains: a -> b -> a$"):
        RuleEngine(json.dumps(data))
    with pytest.raises(ValueError, match="bad ruleset data"):
        RuleEngine("{}")


def test_ten_thousand_nested_chains_load_and_walk_in_the_core() -> None:
    depth = 10_000
    lines = [":INPUT DROP [0:0]"] + [f":c{i} - [0:0]" for i in range(depth)]
    lines += ["-A INPUT -j c0"] + [f"-A c{i} -j c{i + 1}" for i in range(depth - 1)]
    lines += [f"-A c{depth - 1} -p tcp -j ACCEPT"]
    text = "\n".join(["*filter", *lines, "COMMIT", ""])
    compiled = compile_for_core(parse_ruleset(text, "deep.rules", 4))
    core = engine_of(compiled)
    decision = walk(core, "filter", "INPUT", syn(), CT_NEW, None, 0.0)
    assert decision is not None and decision.verdict == "ACCEPT"
    assert decision.rule.chain == f"c{depth - 1}"
    decision = walk(core, "filter", "INPUT", udp(), CT_NEW, None, 0.0)
    assert decision is not None and decision.reason == "policy DROP of filter INPUT"


# --- the shared rulesets and captures ------------------------------------------------


def _shared(what: Path) -> None:
    if not what.is_dir():
        if IN_CI:
            pytest.fail(f"required under CI but unavailable: shared data at {what}")
        pytest.skip(f"shared data not found at {what} (set STATEWALL_SHARED to use another)")


def _shared_compiled(name: str) -> CompiledRuleset:
    import test_rules_shared as shared

    from statewall.rules.ipset import parse_ipset_save
    sets = parse_ipset_save(shared.IPSETS[name]) if name in shared.IPSETS else {}
    saved = shared.RULESETS
    shared.RULESETS = RULESETS  # the same fix-ups, read from where this run finds the files
    try:
        text = shared.text_of(name)
    finally:
        shared.RULESETS = saved
    family_of = shared.family_of
    ruleset = parse_ruleset(text, name, family_of(name), allow_unknown=True)
    return compile_ruleset(ruleset, RuleState(sets=dict(sets)), allow_unknown=True)


BROKEN = "iptables_semantics-parser-test.v4"


# The parser torture file is refused by iptables itself (test_rules_shared pins that).
LOADABLE = [name for name in RULESET_FILES if name != BROKEN]


@pytest.mark.parametrize("name", LOADABLE or ["(none)"])
def test_every_shared_ruleset_lowers_and_loads_in_the_core(name: str) -> None:
    _shared(RULESETS)
    compiled = _shared_compiled(name)
    lowered = lower(compiled)
    engine = RuleEngine(lowered.to_json())
    assert engine.family == compiled.source.family
