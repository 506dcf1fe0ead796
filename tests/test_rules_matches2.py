"""hashlimit, connlimit, set/SET, physdev, owner, rpfilter, rt, sctp chunks, policy,
ULOG and TRACE: the kernel's semantics (xt_*.c, checked on the live 6.18 kernel in a
throwaway namespace where noted)."""

from __future__ import annotations

import re
import struct

import pytest
from rulewalk import CT_NEW, IPS_CONFIRMED, IPS_DYING, Decision, Entry, Rules, compile_text, walk

from statewall import builder
from statewall.checksum import internet_checksum
from statewall.decode import decode_datagram
from statewall.packet import Packet
from statewall.rules.errors import RulesetError
from statewall.rules.ext import RuleState
from statewall.rules.ipset import parse_ipset_save
from statewall.rules.lower import lower
from statewall.rules.matches.xt_rpfilter import NO_ROUTES

# `ipset save` output of the live kernel (ipset v7.17) after creating these sets.
IPSET_SAVE = ("create a hash:ip family inet hashsize 1024 maxelem 65536 timeout 0 counters "
              "comment bucketsize 12 initval 0x02ca8a52\n") + """\
add a 10.0.0.2 timeout 299 packets 0 bytes 0
add a 10.0.0.1 timeout 0 packets 0 bytes 0 comment "hi there"
create n hash:net family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0xb2d402fc
add n 192.168.1.1
add n 10.0.0.128/25 nomatch
add n 10.0.0.0/24
create p hash:ip,port family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x6a9f7e3b
add p 10.0.0.1,udp:53
add p 10.0.0.1,tcp:80
add p 10.0.0.3,gre:0
add p 10.0.0.1,icmp:echo-request
create np hash:net,port family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x49eebee9
add np 10.1.0.0/16,tcp:22
create ipi hash:ip,port,ip family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0xf8caa35f
add ipi 10.0.0.1,tcp:80,10.0.0.2
create bp bitmap:port range 0-1024
add bp 22
add bp 80
create six hash:net family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0x214b38b6
add six 2001:db8::/32
create hn hash:ip family inet hashsize 1024 maxelem 65536 netmask 24 bucketsize 12 initval 0xe9cd79f5
add hn 10.9.9.0
create l list:set size 8
add l a
add l n
"""


def state(**kw: object) -> RuleState:
    st = RuleState()
    st.sets.update(parse_ipset_save(IPSET_SAVE, "sets.save"))
    for key, value in kw.items():
        setattr(st, key, value)
    return st


def load(*lines: str, table: str = "filter", family: int = 4, st: RuleState | None = None,
         allow_unknown: bool = False) -> Rules:
    text = "\n".join([f"*{table}", *lines, "COMMIT", ""])
    return Rules.of(compile_text(text, family, allow_unknown, st or state()))


def run(rs: Rules, pkt: Packet, hook: str = "INPUT", table: str = "filter",
        now: float = 0.0, conn: Entry | None = None, iface_in: str | None = "eth0",
        iface_out: str | None = None, trace: bool = False,
        local_out: bool | None = None) -> Decision:
    decision = walk(rs.engine, table, hook, pkt, CT_NEW, conn, now, iface_in, iface_out,
                    trace=trace, local_out=local_out)
    assert decision is not None
    return decision


def rule_packets(rs: Rules, chain: str) -> list[int]:
    """The packets each rule of a filter chain counted, in rule order."""
    return [row[3] for row in rs.engine.counters() if row[:2] == ("filter", chain) and row[2]]


def udp(src: str = "10.0.0.9", dst: str = "10.0.0.1", sport: int = 4000, dport: int = 53,
        ts: float = 0.0) -> Packet:
    return decode_datagram(builder.udp(src, dst, sport, dport, b"x"), ts=ts)


def tcp(src: str = "10.0.0.9", dst: str = "10.0.0.1", dport: int = 80) -> Packet:
    return decode_datagram(builder.tcp(src, dst, 40000, dport, "S"))


# --- hashlimit ---------------------------------------------------------------------


def test_hashlimit_burst_then_limit_as_the_live_kernel_counted() -> None:
    # Live kernel: 5 back-to-back packets; upto 1/min burst 3 matched 3, above 1/min
    # burst 2 matched 3.
    rs = load(":INPUT ACCEPT [0:0]",
              "-A INPUT -p udp -m hashlimit --hashlimit-upto 1/min --hashlimit-burst 3 "
              "--hashlimit-mode srcip --hashlimit-name h1",
              "-A INPUT -p udp -m hashlimit --hashlimit-above 1/min --hashlimit-burst 2 "
              "--hashlimit-name h2")
    for _ in range(5):
        run(rs, udp())
    assert rule_packets(rs, "INPUT") == [3, 3]


def test_hashlimit_refills_by_elapsed_time_per_source_group() -> None:
    rs = load(":INPUT DROP [0:0]",
              "-A INPUT -m hashlimit --hashlimit-upto 1/sec --hashlimit-burst 1 "
              "--hashlimit-mode srcip --hashlimit-srcmask 24 --hashlimit-name g -j ACCEPT")
    assert run(rs, udp("10.0.0.9"), now=0.0).verdict == "ACCEPT"
    assert run(rs, udp("10.0.0.10"), now=0.1).verdict == "DROP"  # same /24 bucket
    assert run(rs, udp("10.0.1.10"), now=0.1).verdict == "ACCEPT"  # another group
    assert run(rs, udp("10.0.0.9"), now=1.2).verdict == "ACCEPT"  # refilled


def test_hashlimit_table_is_shared_by_name() -> None:
    rs = load(":INPUT ACCEPT [0:0]", ":X - [0:0]",
              "-A INPUT -m hashlimit --hashlimit-upto 1/min --hashlimit-burst 1 "
              "--hashlimit-name same -j X",
              "-A INPUT -m hashlimit --hashlimit-upto 1/min --hashlimit-burst 1 "
              "--hashlimit-name same -j DROP")
    assert run(rs, udp()).verdict == "ACCEPT"  # first rule took the only credit
    assert run(rs, udp()).verdict == "ACCEPT"  # second rule found the bucket empty


def test_hashlimit_full_table_drops_the_packet() -> None:
    rs = load(":INPUT ACCEPT [0:0]",
              "-A INPUT -m hashlimit --hashlimit-upto 10/sec --hashlimit-mode srcip "
              "--hashlimit-name t --hashlimit-htable-size 1 --hashlimit-htable-max 1")
    run(rs, udp("10.0.0.1"))
    decision = run(rs, udp("10.0.0.2"))
    assert decision.verdict == "DROP" and "is full" in decision.reason


def test_hashlimit_zero_expire_is_refused_like_the_kernel() -> None:
    with pytest.raises(RulesetError, match="must not be 0"):
        load("-A INPUT -m hashlimit --hashlimit-upto 1/s --hashlimit-name x "
             "--hashlimit-htable-expire 0 -j ACCEPT")


# --- connlimit ---------------------------------------------------------------------


def conn(src: int, sport: int, status: int = IPS_CONFIRMED, expires: float = 100.0) -> Entry:
    return Entry(4, 6, 0, (src, 0x0A000001, sport, 80), (0x0A000001, src, 80, sport), 0.0,
                 status, expires)


def test_connlimit_counts_live_connections_per_masked_source() -> None:
    rs = load(":INPUT ACCEPT [0:0]",
              "-A INPUT -p tcp -m connlimit --connlimit-above 2 --connlimit-mask 24 -j REJECT")
    first, second, third = conn(0x0A000009, 1), conn(0x0A00000A, 2), conn(0x0A00000B, 3)
    assert run(rs, tcp("10.0.0.9"), conn=first).verdict == "ACCEPT"
    assert run(rs, tcp("10.0.0.10"), conn=second).verdict == "ACCEPT"
    assert run(rs, tcp("10.0.0.11"), conn=third).verdict == "REJECT"  # 3 > 2 in 10.0.0/24
    second.status |= IPS_DYING  # removed from the table: no longer counted
    fourth = conn(0x0A00000C, 4)
    assert run(rs, tcp("10.0.0.12"), conn=fourth).verdict == "REJECT"  # first, third, fourth
    first.expires = 0.0
    assert run(rs, tcp("10.0.0.12"), conn=fourth).verdict == "ACCEPT"  # third, fourth


def test_connlimit_upto_and_unconfirmed_entries() -> None:
    rs = load(":INPUT DROP [0:0]",
              "-A INPUT -p tcp -m connlimit --connlimit-upto 1 -j ACCEPT")
    dropped = conn(0x0A000009, 1, status=0)  # first packet dropped: never confirmed
    assert run(rs, tcp(), conn=dropped).verdict == "ACCEPT"
    other = conn(0x0A000009, 2)
    assert run(rs, tcp(), conn=other).verdict == "ACCEPT"  # the unconfirmed one is gone


# --- set match and SET target ------------------------------------------------------


def test_ipset_save_loads_every_type() -> None:
    sets = parse_ipset_save(IPSET_SAVE, "s")
    assert [s.type_name for s in sets.values()] == [
        "hash:ip", "hash:net", "hash:ip,port", "hash:net,port", "hash:ip,port,ip",
        "bitmap:port", "hash:net", "hash:ip", "list:set"]
    assert sets["a"].counters and len(sets["a"].elements) == 2


def test_ipset_file_errors_name_the_line() -> None:
    with pytest.raises(RulesetError, match=r"^s:2: set type hash:mac is not supported"):
        parse_ipset_save("create a hash:ip\ncreate m hash:mac\n", "s")


def test_set_nomatch_and_return_nomatch_as_the_live_kernel() -> None:
    # Live kernel: 127.0.0.0/8 plus 127.0.0.0/24 nomatch; a packet to 127.0.0.1 did not
    # match `nets dst` and matched `nets dst --return-nomatch`.
    rs = load(":INPUT ACCEPT [0:0]",
              "-A INPUT -m set --match-set n dst -j DROP",
              "-A INPUT -m set --match-set n dst --return-nomatch -j REJECT")
    assert run(rs, udp(dst="10.0.0.130")).verdict == "REJECT"  # the /25 nomatch
    assert run(rs, udp(dst="10.0.0.5")).verdict == "DROP"  # the /24
    assert run(rs, udp(dst="10.0.1.5")).verdict == "ACCEPT"


def test_set_needs_a_flag_per_dimension() -> None:
    # Live kernel: hash:ip,port with `dst` alone never matched, `dst,dst` did.
    rs = load(":INPUT ACCEPT [0:0]",
              "-A INPUT -m set --match-set p dst -j DROP",
              "-A INPUT -m set --match-set p dst,src -j DROP",
              "-A INPUT -m set --match-set p dst,dst -j REJECT")
    assert run(rs, udp(dport=53)).verdict == "REJECT"
    assert run(rs, tcp(dport=53)).verdict == "ACCEPT"  # tcp:53 is not in the set


def test_set_icmp_port_is_type_and_code() -> None:
    rs = load(":INPUT ACCEPT [0:0]", "-A INPUT -m set --match-set p dst,dst -j DROP")
    echo = decode_datagram(builder.icmp_echo("10.0.0.9", "10.0.0.1", 1, 1))
    assert run(rs, echo).verdict == "DROP"


def test_set_list_netmask_bitmap_and_family() -> None:
    rs = load(":INPUT ACCEPT [0:0]",
              "-A INPUT -m set --match-set hn src -j DROP",
              "-A INPUT -m set --match-set bp dst -j REJECT",
              "-A INPUT -m set --match-set l src -j QUEUE",
              "-A INPUT -m set --match-set six src -j DROP")
    assert run(rs, udp("10.9.9.77", dport=9)).verdict == "DROP"
    assert run(rs, udp(dport=80)).verdict == "REJECT"
    assert run(rs, udp("10.0.0.2", dport=9)).verdict == "QUEUE"  # member a
    assert run(rs, udp("10.0.0.3", dport=9)).verdict == "QUEUE"  # member n (10.0.0.0/24)
    assert run(rs, udp("10.7.0.3", dport=9)).verdict == "ACCEPT"  # six is IPv6


def test_set_counters_update_before_the_counter_test() -> None:
    rs = load(":INPUT ACCEPT [0:0]",
              "-A INPUT -m set --match-set a src --packets-gt 1 -j DROP")
    assert run(rs, udp("10.0.0.1")).verdict == "ACCEPT"  # counter now 1
    assert run(rs, udp("10.0.0.1")).verdict == "DROP"  # counter now 2 > 1


def test_set_target_adds_and_deletes() -> None:
    st = state()
    st.sets.update(parse_ipset_save("create seen hash:ip\n", "x"))
    rs = load(":INPUT ACCEPT [0:0]",
              "-A INPUT -m set --match-set seen src -j DROP",
              "-A INPUT -p udp -m udp --dport 53 -j SET --add-set seen src",
              "-A INPUT -p udp -m udp --dport 54 -j SET --del-set seen src", st=st)
    assert run(rs, udp()).verdict == "ACCEPT"
    assert run(rs, udp(dport=9)).verdict == "DROP"
    # Each loaded ruleset owns its sets: this one starts with the element the first added.
    st2 = state()
    st2.sets.update(parse_ipset_save("create seen hash:ip\nadd seen 10.0.0.9\n", "x"))
    rs2 = load(":INPUT ACCEPT [0:0]",
               "-A INPUT -p udp -m udp --dport 54 -j SET --del-set seen src",
               "-A INPUT -m set --match-set seen src -j DROP", st=st2)
    assert run(rs2, udp(dport=9)).verdict == "DROP"
    assert run(rs2, udp(dport=54)).verdict == "ACCEPT"


def test_set_without_its_ipset_is_refused_or_unknown() -> None:
    with pytest.raises(RulesetError, match="set nope is not loaded"):
        load("-A INPUT -m set --match-set nope src -j DROP")
    rs = load(":INPUT ACCEPT [0:0]", "-A INPUT -m set --match-set nope src -j DROP",
              allow_unknown=True)
    assert run(rs, udp()).verdict == "UNKNOWN"


# --- physdev, owner, rpfilter, policy ----------------------------------------------


def test_physdev_on_a_router_matches_only_negated_options() -> None:
    rs = load(":INPUT ACCEPT [0:0]",
              "-A INPUT -m physdev --physdev-is-bridged -j DROP",
              "-A INPUT -m physdev ! --physdev-is-bridged ! --physdev-in eth0 -j REJECT")
    assert run(rs, udp()).verdict == "REJECT"


def test_physdev_out_in_output_is_refused_like_the_kernel() -> None:
    with pytest.raises(RulesetError, match="only supported in the FORWARD and POSTROUTING"):
        load("-A OUTPUT -m physdev --physdev-out eth0 -j ACCEPT")
    load("-A FORWARD -m physdev --physdev-out eth0 -j ACCEPT")  # the kernel accepts it


def test_owner_only_where_a_local_socket_can_exist() -> None:
    for where in ("-A INPUT", "-A FORWARD", "-t nat -A PREROUTING"):
        chain = where.split()[-1]
        with pytest.raises(RulesetError, match=f"owner match: used from hooks {chain}, but only "
                                               "usable from OUTPUT/POSTROUTING"):
            load(f"-A {chain} -m owner --uid-owner 0 -j ACCEPT",
                 table="nat" if "nat" in where else "filter")
    load("-A OUTPUT -m owner --uid-owner 0 -j ACCEPT")
    load("-A POSTROUTING -m owner ! --socket-exists -j ACCEPT", table="mangle")


@pytest.mark.parametrize(("options", "error"), [
    ("", "At least one of --uid-owner, --gid-owner or --socket-exists is required"),
    ("--uid-owner nosuch-user!", 'Bad value for "--uid-owner" option: "nosuch-user!"'),
    ("--uid-owner 4294967295", 'Bad value for "--uid-owner" option: "4294967295"'),
    ("--uid-owner 5-", 'Bad value for "--uid-owner" option: "5-"'),
    ("--uid-owner -5", 'Bad value for "--uid-owner" option: "-5"'),
    ("--gid-owner 5-3", "--gid-owner 5-3: the range is empty"),
    ("--suppl-groups --gid-owner 5", "you need to use --gid-owner first"),
    ("--uid-owner 5 --suppl-groups", "you need to use --gid-owner first"),
    ("--gid-owner 5 ! --suppl-groups", "unexpected ! flag before --suppl-groups"),
    ("--uid-owner 1 --uid-owner 2", "Only one `--uid-owner' allowed"),
])
def test_owner_options_refused_like_iptables_restore(options: str, error: str) -> None:
    # Each refused by iptables-restore 1.8.9 on Linux 6.18 (the empty range by the kernel).
    with pytest.raises(RulesetError, match=re.escape(error)):
        load(f"-A OUTPUT -m owner {options} -j ACCEPT")


def test_owner_accepts_what_iptables_restore_accepts() -> None:
    # Names are resolved by the firewall's own user database; numbers in C notation.
    rs = load("-A OUTPUT -m owner --uid-owner root ! --gid-owner 010-0x10 --suppl-groups "
              "-j ACCEPT", "-A OUTPUT -m owner --uid-owner +5:4294967294 ! --socket-exists "
              "-j ACCEPT")
    output = next(c for c in lower(rs.compiled).tables[0].chains if c.name == "OUTPUT")
    rules = output.rules
    assert [r.matches[0].to_dict() for r in rules] == [
        {"kind": "owner", "socket_exists": None, "uid": {"ids": None, "neg": False},
         "gid": {"ids": [8, 16], "neg": True}, "suppl_groups": True},
        {"kind": "owner", "socket_exists": True, "uid": {"ids": [5, 4294967294], "neg": False},
         "gid": None, "suppl_groups": False},
    ]


def test_owner_without_a_socket_matches_only_fully_negated_rules() -> None:
    rs = load(":POSTROUTING ACCEPT [0:0]",
              "-A POSTROUTING -p udp --dport 1 -m owner --uid-owner 0 -j DROP",
              "-A POSTROUTING -p udp --dport 2 -m owner ! --uid-owner 0 -j DROP",
              "-A POSTROUTING -p udp --dport 3 -m owner ! --gid-owner 0 --suppl-groups -j DROP",
              "-A POSTROUTING -p udp --dport 4 -m owner ! --socket-exists ! --uid-owner 1 "
              "! --gid-owner 2 -j DROP",
              table="mangle")
    forwarded = [run(rs, udp(dport=port), hook="POSTROUTING", table="mangle").verdict
                 for port in (1, 2, 3, 4)]
    assert forwarded == ["ACCEPT", "DROP", "ACCEPT", "DROP"]
    own = run(rs, udp(dport=2), hook="POSTROUTING", table="mangle", local_out=True)
    assert own.verdict == "UNKNOWN" and "which local socket" in own.reason


def test_rpfilter_strict_loose_and_no_route() -> None:
    nets = {"eth0": ((4, 0x0A000000, 0xFF000000),), "eth1": ((4, 0xC0A80000, 0xFFFF0000),)}
    st = state(iface_nets=nets)
    rs = load(":PREROUTING ACCEPT [0:0]",
              "-A PREROUTING -m rpfilter --invert -j DROP", table="raw", st=st)
    assert run(rs, udp("10.1.2.3"), hook="PREROUTING", table="raw").verdict == "ACCEPT"
    spoofed = run(rs, udp("192.168.1.1"), hook="PREROUTING", table="raw")
    assert spoofed.verdict == "DROP"
    no_route = run(rs, udp("8.8.8.8"), hook="PREROUTING", table="raw")
    assert no_route.verdict == "DROP"
    loose = load(":PREROUTING ACCEPT [0:0]",
                 "-A PREROUTING -m rpfilter --loose --invert -j DROP", table="raw", st=st)
    assert run(loose, udp("192.168.1.1"), hook="PREROUTING", table="raw").verdict == "ACCEPT"
    assert run(loose, udp("8.8.8.8"), hook="PREROUTING", table="raw").verdict == "DROP"


def test_rpfilter_without_routes_takes_every_interface_as_the_way_back() -> None:
    rs = load(":PREROUTING ACCEPT [0:0]",
              "-A PREROUTING -m rpfilter --invert -j DROP", table="raw")
    assert rs.compiled.notes == [f"t.rules:3: note: {NO_ROUTES}"]
    for iface in ("eth0", "eth1"):
        decision = run(rs, udp("8.8.8.8"), hook="PREROUTING", table="raw", iface_in=iface)
        assert decision.verdict == "ACCEPT"
    own = state(local_nets=((4, 0x0A000001, 0xFFFFFFFF),))
    local = load(":PREROUTING ACCEPT [0:0]",
                 "-A PREROUTING -m rpfilter --invert -j DROP", table="raw", st=own)
    assert local.compiled.notes
    assert run(local, udp("10.0.0.1"), hook="PREROUTING", table="raw").verdict == "DROP"


def test_policy_never_sees_ipsec() -> None:
    rs = load(":INPUT DROP [0:0]",
              "-A INPUT -m policy --dir in --pol ipsec -j REJECT",
              "-A INPUT -m policy --dir in --pol none -j ACCEPT")
    decision = run(rs, udp())
    assert decision.verdict == "ACCEPT" and any("no IPsec" in n for n in decision.notes)
    with pytest.raises(RulesetError, match="--dir out is only valid"):
        load("-A INPUT -m policy --dir out --pol none -j ACCEPT")


# --- rt and sctp -------------------------------------------------------------------


def routed(kind: int, segs: int, addrs: tuple[str, ...]) -> Packet:
    udp_seg = builder.udp_segment("2001:db8::1", "2001:db8::2", 1, 2)
    data = builder.ipv6("2001:db8::1", "2001:db8::2", 17, udp_seg,
                        ext_headers=[builder.routing(addrs, routing_type=kind,
                                                     segments_left=segs)])
    return decode_datagram(data)


def test_rt_type_segsleft_and_addresses() -> None:
    rs = load(":INPUT ACCEPT [0:0]",
              "-A INPUT -m rt --rt-type 0 --rt-segsleft 0 -j DROP",
              "-A INPUT -m rt --rt-type 2 --rt-0-addrs 2001:db8::9 -j REJECT",
              "-A INPUT -m rt ! --rt-type 2 -j QUEUE", family=6)
    assert run(rs, routed(0, 0, ("2001:db8::9",))).verdict == "DROP"
    assert run(rs, routed(0, 1, ("2001:db8::9",))).verdict == "QUEUE"
    assert run(rs, routed(2, 1, ("2001:db8::9",))).verdict == "ACCEPT"  # addrs need type 0
    plain = decode_datagram(builder.udp("2001:db8::1", "2001:db8::2", 1, 2))
    assert run(rs, plain).verdict == "ACCEPT"


def sctp(chunks: list[tuple[int, int, bytes]]) -> Packet:
    body = b""
    for kind, flags, value in chunks:
        chunk = struct.pack("!BBH", kind, flags, 4 + len(value)) + value
        body += chunk + b"\0" * (-len(chunk) & 3)
    segment = struct.pack("!HHII", 5000, 80, 1, 0) + body
    data = builder.ipv4("10.0.0.9", "10.0.0.1", 132, segment)
    assert internet_checksum(data[:20]) == 0
    return decode_datagram(data)


def test_sctp_chunk_types_any_all_only_with_flags() -> None:
    rs = load(":INPUT ACCEPT [0:0]",
              "-A INPUT -p sctp -m sctp --chunk-types only DATA:Be -j DROP",
              "-A INPUT -p sctp -m sctp --chunk-types all INIT,DATA -j REJECT",
              "-A INPUT -p sctp -m sctp --chunk-types any SACK -j QUEUE")
    assert run(rs, sctp([(0, 0x02, b"abcd")])).verdict == "DROP"  # B set, E clear
    assert run(rs, sctp([(0, 0x03, b"abcd")])).verdict == "ACCEPT"  # E set: only fails
    assert run(rs, sctp([(1, 0, b""), (0, 0x01, b"x")])).verdict == "REJECT"
    assert run(rs, sctp([(9, 0, b""), (3, 0, b"")])).verdict == "QUEUE"
    segment = struct.pack("!HHIIBBH", 5000, 80, 1, 0, 3, 0, 0)  # a chunk of length 0
    broken = decode_datagram(builder.ipv4("10.0.0.9", "10.0.0.1", 132, segment))
    dropped = run(rs, broken)
    assert dropped.verdict == "DROP" and dropped.reason.startswith("dropped by a match")


# --- ULOG and TRACE ----------------------------------------------------------------


def test_ulog_is_refused_as_the_kernel_does_since_3_17() -> None:
    with pytest.raises(RulesetError, match="ULOG was removed from Linux in 3.17"):
        load("-A INPUT -j ULOG --ulog-nlgroup 2")
    rs = load("-A INPUT -j ULOG --ulog-nlgroup 2", allow_unknown=True)
    assert run(rs, udp()).verdict == "UNKNOWN"


def test_trace_lines_follow_ip_tables_trace_packet() -> None:
    rs = load(":PREROUTING ACCEPT [0:0]",
              "-A PREROUTING -p tcp -j TRACE",
              "-A PREROUTING -p udp -j ACCEPT", table="raw")
    decision = run(rs, tcp(), hook="PREROUTING", table="raw")
    assert decision.nf_trace
    assert len(decision.trace) == 1  # the TRACE rule itself is not traced
    assert decision.trace[0].startswith(
        "TRACE: raw:PREROUTING:policy:3 IN=eth0 OUT= MAC= SRC=10.0.0.9 DST=10.0.0.1 ")
    assert "SEQ=0 ACK=0" in decision.trace[0]  # trace logs TCP sequence numbers
    flt = load(":INPUT ACCEPT [0:0]", ":U - [0:0]", "-A INPUT -j U", "-A INPUT -j ACCEPT",
               "-A U -p udp -j DROP")
    lines = run(flt, tcp(), trace=True).trace
    assert [line.split(" IN=")[0] for line in lines] == [
        "TRACE: filter:INPUT:rule:1", "TRACE: filter:U:return:2",
        "TRACE: filter:INPUT:policy:2"]
