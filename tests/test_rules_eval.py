"""Walking checked rulesets in the core: ipt_do_table semantics and the matches' and
targets' kernel rules."""

from __future__ import annotations

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
    Decision,
    Entry,
    Rules,
    walk,
)
from rulewalk import load as load_rules

from statewall import builder
from statewall.decode import decode_datagram
from statewall.packet import Packet
from statewall.rules.errors import RulesetError


def load(*lines: str, table: str = "filter", family: int = 4,
         allow_unknown: bool = False) -> Rules:
    return load_rules(*lines, table=table, family=family, allow_unknown=allow_unknown)


def syn(sport: int = 40000, dport: int = 22, src: str = "10.0.0.1", flags: str = "S",
        ts: float = 0.0) -> Packet:
    return decode_datagram(builder.tcp(src, "10.0.0.2", sport, dport, flags, mss=1460), ts=ts)


def run(rs: Rules, pkt: Packet, ctinfo: int = CT_NEW, conn: Entry | None = None,
        hook: str = "FORWARD", table: str = "filter", now: float = 0.0,
        iface_in: str | None = "eth0", iface_out: str | None = "eth1") -> Decision:
    decision = walk(rs.engine, table, hook, pkt, ctinfo, conn, now, iface_in, iface_out)
    assert decision is not None
    return decision


def where(decision: Decision) -> tuple[str, str, int]:
    return decision.verdict, decision.rule.chain, decision.rule.number


def entry(status: int = IPS_CONFIRMED) -> Entry:
    return Entry(4, 6, 0, (0x0A000001, 0x0A000002, 40000, 22),
                 (0x0A000002, 0x0A000001, 22, 40000), 0.0, status, expires=100.0)


# --- the walk ----------------------------------------------------------------------


def test_jump_return_and_fall_off_the_end_of_a_user_chain() -> None:
    rs = load(":FORWARD DROP [0:0]", ":A - [0:0]", ":B - [0:0]",
              "-A FORWARD -j A", "-A FORWARD -p tcp -j ACCEPT",
              "-A A -p udp -j DROP", "-A A -j B", "-A A -p tcp -j RETURN",
              "-A B -p icmp -j DROP")
    assert where(run(rs, syn())) == ("ACCEPT", "FORWARD", 2)


def test_goto_does_not_come_back_to_the_caller() -> None:
    rs = load(":FORWARD DROP [0:0]", ":G - [0:0]", "-A FORWARD -g G",
              "-A FORWARD -j ACCEPT", "-A G -p udp -j ACCEPT")
    decision = run(rs, syn())
    assert where(decision) == ("DROP", "FORWARD", 0)
    assert decision.reason == "policy DROP of filter FORWARD"


def test_return_from_a_builtin_chain_applies_its_policy() -> None:
    rs = load(":FORWARD DROP [0:0]", "-A FORWARD -j RETURN", "-A FORWARD -j ACCEPT")
    assert where(run(rs, syn())) == ("DROP", "FORWARD", 0)


def test_non_terminating_targets_continue_and_counters_count() -> None:
    rs = load("-A FORWARD -j LOG", "-A FORWARD", "-A FORWARD -j DROP")
    pkt = syn()
    decision = run(rs, pkt)
    assert where(decision) == ("DROP", "FORWARD", 3)
    rules = [row[3:] for row in rs.engine.counters() if row[:2] == ("filter", "FORWARD")
             and row[2] > 0]
    assert rules == [(1, len(pkt.data))] * 3


def test_compile_detects_loops_and_missing_chains() -> None:
    with pytest.raises(RulesetError, match=r"^t.rules:6: loop detected in chains: A -> B -> A"):
        load(":A - [0:0]", ":B - [0:0]", "-A FORWARD -j A", "-A A -j B", "-A B -j A")
    with pytest.raises(RulesetError, match=r"^t.rules:2: Chain 'NOPE' does not exist$"):
        load("-A FORWARD -j NOPE")


def test_hook_restrictions_follow_jumps() -> None:
    with pytest.raises(RulesetError, match=r"^t.rules:4: REJECT target: used from hooks "
                                           r"PREROUTING, but only usable from INPUT/FORWARD"):
        load(":X - [0:0]", "-A PREROUTING -j X", "-A X -j REJECT", table="mangle")


def test_reject_records_the_reply_type_and_tcp_reset_needs_tcp() -> None:
    rs = load("-A FORWARD -p tcp -j REJECT --reject-with tcp-reset", "-A FORWARD -j REJECT")
    assert run(rs, syn()).reject_with == "tcp-reset"
    udp = decode_datagram(builder.udp("10.0.0.1", "10.0.0.2", 5000, 53))
    assert run(rs, udp).reject_with == "icmp-port-unreachable"
    with pytest.raises(RulesetError, match="TCP RST can only be used with -p tcp"):
        load("-A FORWARD -j REJECT --reject-with tcp-reset")


def test_unknown_rules_are_refused_or_undetermined() -> None:
    with pytest.raises(RulesetError, match="^t.rules:2: target ULOG: ULOG was removed"):
        load("-A OUTPUT -j ULOG")
    rs = load("-A OUTPUT -p udp -j ACCEPT", "-A OUTPUT -j ULOG", allow_unknown=True)
    assert where(run(rs, syn(), hook="OUTPUT")) == ("UNKNOWN", "OUTPUT", 2)
    assert [r.number for r in rs.compiled.unknown_rules] == [2]


def test_nat_targets_end_the_chain_and_hand_their_range_over() -> None:
    rs = load("-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 10.9.9.9:8080",
              table="nat")
    decision = run(rs, syn(dport=80), hook="PREROUTING", table="nat")
    assert decision.verdict == "ACCEPT"
    assert ("nat", "DNAT") in decision.effects
    assert decision.notes == ()
    with pytest.raises(RulesetError, match="DNAT target: only valid in the nat table"):
        load("-A FORWARD -j DNAT --to-destination 1.2.3.4")


# --- header and layer-4 matches -------------------------------------------------------


@pytest.mark.parametrize(("rule", "hit"), [
    ("-s 10.0.0.0/8 -d 10.0.0.2", True), ("! -s 10.0.0.0/8", False),
    ("-i eth+", True), ("-i eth", False), ("! -o eth1", False), ("-p 6", True),
    ("! -p tcp", False), ("-f", False), ("! -f", True),
    ("-p tcp --syn", True), ("-p tcp ! --syn", False),
    ("-p tcp --tcp-flags SYN,ACK SYN", True), ("-p tcp --tcp-flags ALL NONE", False),
    ("-p tcp --sport 1024: --dport 20:22", True), ("-p tcp ! --dport 22", False),
    ("-p tcp --tcp-option 2", True), ("-p tcp ! --tcp-option 2", False),
    ("-p tcp -m multiport --dports 80,443,20:25", True),
    ("-p tcp -m multiport ! --ports 22", False),
    ("-m length --length 40:44", True), ("-m ttl --ttl-lt 64", False),
    ("-m iprange --src-range 10.0.0.0-10.0.0.5", True),
    ("-p tcp -m tcpmss --mss 1400:1500", True),
])
def test_header_matches(rule: str, hit: bool) -> None:
    rs = load(f"-A FORWARD {rule} -j DROP")
    assert run(rs, syn()).verdict == ("DROP" if hit else "ACCEPT")


@pytest.mark.parametrize(("spec", "icmp_type", "code", "hit"), [
    ("echo-request", 8, 0, True), ("8", 8, 0, True), ("3/4", 3, 4, True), ("3/4", 3, 3, False),
    ("destination-unreachable", 3, 13, True), ("port-unreachable", 3, 1, False),
    ("any", 11, 0, True), ("Echo-Req", 8, 0, True),
])
def test_icmp_types(spec: str, icmp_type: int, code: int, hit: bool) -> None:
    rs = load(f"-A FORWARD -p icmp --icmp-type {spec} -j DROP")
    pkt = decode_datagram(builder.icmp("10.0.0.1", "10.0.0.2", icmp_type, code))
    assert run(rs, pkt).verdict == ("DROP" if hit else "ACCEPT")


# --- state and conntrack (conntrack-core spec section 4) ------------------------------


@pytest.mark.parametrize(("state", "ctinfo", "hit"), [
    ("NEW", CT_NEW, True), ("ESTABLISHED", CT_ESTABLISHED_REPLY, True),
    ("RELATED", CT_RELATED, True), ("INVALID", CT_INVALID, True),
    ("UNTRACKED", CT_UNTRACKED, True), ("NEW,ESTABLISHED", CT_INVALID, False),
    ("ESTABLISHED", CT_UNTRACKED, False),
])
def test_state_bits(state: str, ctinfo: int, hit: bool) -> None:
    conn = None if ctinfo in (CT_INVALID, CT_UNTRACKED) else entry()
    for match in ("-m state --state", "-m conntrack --ctstate"):
        rs = load(f"-A FORWARD {match} {state} -j DROP")
        assert run(rs, syn(), ctinfo, conn).verdict == ("DROP" if hit else "ACCEPT")


@pytest.mark.parametrize(("options", "hit"), [
    ("! --ctstate NEW", True), ("--ctstatus ASSURED", False), ("! --ctstatus ASSURED", False),
    ("--ctdir ORIGINAL", False), ("--ctproto tcp", False),
])
def test_conntrack_without_entry_matches_only_through_ctstate(options: str, hit: bool) -> None:
    rs = load(f"-A FORWARD -m conntrack {options} -j DROP")
    assert run(rs, syn(flags="SF"), CT_INVALID, None).verdict == ("DROP" if hit else "ACCEPT")


@pytest.mark.parametrize(("options", "ctinfo", "hit"), [
    ("--ctdir ORIGINAL", CT_ESTABLISHED, True), ("--ctdir REPLY", CT_ESTABLISHED, False),
    ("--ctdir REPLY", CT_ESTABLISHED_REPLY, True), ("--ctstatus NONE", CT_ESTABLISHED, False),
    ("! --ctstatus NONE", CT_ESTABLISHED, True), ("--ctstatus ASSURED", CT_ESTABLISHED, True),
    ("--ctorigsrc 10.0.0.0/24 --ctorigdstport 22", CT_ESTABLISHED, True),
    ("--ctreplsrcport 21:23 --ctproto 6", CT_ESTABLISHED, True),
    ("--ctexpire 90:100", CT_ESTABLISHED, True), ("--ctexpire 0:89", CT_ESTABLISHED, False),
])
def test_conntrack_entry_options(options: str, ctinfo: int, hit: bool) -> None:
    rs = load(f"-A FORWARD -m conntrack {options} -j DROP")
    conn = entry(IPS_CONFIRMED | IPS_ASSURED)
    assert run(rs, syn(), ctinfo, conn, now=0.5).verdict == ("DROP" if hit else "ACCEPT")


def test_unconfirmed_entry_expires_in_zero_seconds() -> None:
    rs = load("-A FORWARD -m conntrack --ctexpire 0:0 -j DROP")
    assert run(rs, syn(), CT_NEW, entry(0)).verdict == "DROP"


# --- stateful matches -----------------------------------------------------------------


def test_recent_ssh_guard_drops_the_tenth_new_connection_in_100_seconds() -> None:
    rs = load(":INPUT ACCEPT [0:0]",
              "-A INPUT -p tcp --dport 22 -m state --state NEW -m recent --set",
              "-A INPUT -p tcp --dport 22 -m state --state NEW -m recent --update "
              "--seconds 100 --hitcount 10 -j DROP")
    verdicts = [run(rs, syn(sport=40000 + i), hook="INPUT", now=float(i)).verdict
                for i in range(11)]
    assert verdicts == ["ACCEPT"] * 9 + ["DROP", "DROP"]
    # An established session is never counted (only NEW packets reach the rules' test).
    assert run(rs, syn(flags="A"), CT_ESTABLISHED, entry(), hook="INPUT",
               now=11.0).verdict == "ACCEPT"
    # Another source has its own entry.
    assert run(rs, syn(src="10.0.0.9"), hook="INPUT", now=12.0).verdict == "ACCEPT"


def test_recent_window_slides_with_packet_time() -> None:
    rs = load("-A FORWARD -m recent --set --name T",
              "-A FORWARD -m recent --rcheck --name T --seconds 10 --hitcount 2 -j DROP")
    assert run(rs, syn(), now=0.0).verdict == "ACCEPT"
    assert run(rs, syn(), now=5.0).verdict == "DROP"
    # At t=20 only the new stamp is inside the 10 s window.
    assert run(rs, syn(), now=20.0).verdict == "ACCEPT"


def test_recent_update_refreshes_only_when_it_matches_and_remove_forgets() -> None:
    rs = load("-A FORWARD -p udp -m recent --set --name U",
              "-A FORWARD -p tcp -m recent --update --name U --seconds 10 -j DROP",
              "-A FORWARD -p icmp -m recent --remove --name U")
    udp = decode_datagram(builder.udp("10.0.0.1", "10.0.0.2", 1, 2))
    icmp = decode_datagram(builder.icmp_echo("10.0.0.1", "10.0.0.2", 1, 1))
    run(rs, udp, now=0.0)
    assert run(rs, syn(), now=8.0).verdict == "DROP"  # refreshed at 8
    assert run(rs, syn(), now=17.0).verdict == "DROP"  # within 10 s of 8
    assert run(rs, syn(), now=40.0).verdict == "ACCEPT"
    run(rs, udp, now=41.0)
    run(rs, icmp, now=42.0)
    assert run(rs, syn(), now=43.0).verdict == "ACCEPT"


def test_recent_check_options_are_validated() -> None:
    with pytest.raises(RulesetError, match="--reap requires --seconds"):
        load("-A FORWARD -m recent --rcheck --reap")
    with pytest.raises(RulesetError, match="--set cannot be combined"):
        load("-A FORWARD -m recent --set --seconds 5")


def test_limit_allows_the_burst_then_the_rate() -> None:
    rs = load("-A FORWARD -m limit --limit 1/second --limit-burst 3 -j ACCEPT",
              "-A FORWARD -j DROP")
    at_zero = [run(rs, syn(), now=100.0).verdict for _ in range(4)]
    assert at_zero == ["ACCEPT"] * 3 + ["DROP"]
    assert run(rs, syn(), now=100.5).verdict == "DROP"
    assert run(rs, syn(), now=101.0).verdict == "ACCEPT"


def test_statistic_nth_matches_every_nth_packet_from_the_given_one() -> None:
    rs = load("-A FORWARD -m statistic --mode nth --every 3 --packet 1 -j DROP")
    assert [run(rs, syn()).verdict for _ in range(6)] == \
        ["ACCEPT", "DROP", "ACCEPT", "ACCEPT", "DROP", "ACCEPT"]


def test_mark_target_then_mark_match_in_the_same_walk() -> None:
    rs = load("-A FORWARD -j MARK --set-xmark 0x10/0xff", "-A FORWARD -j MARK --or-mark 0x1",
              "-A FORWARD -m mark --mark 0x11 -j DROP", table="mangle")
    decision = run(rs, syn(), table="mangle")
    assert decision.verdict == "DROP" and decision.mark == 0x11


def test_connmark_save_and_restore() -> None:
    conn = entry()
    rs = load("-A FORWARD -j MARK --set-mark 0x5", "-A FORWARD -j CONNMARK --save-mark",
              table="mangle")
    run(rs, syn(), CT_ESTABLISHED, conn, table="mangle")
    assert conn.mark == 5
    rs2 = load("-A FORWARD -j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xf",
               "-A FORWARD -m connmark --mark 5 -j ACCEPT", table="mangle")
    assert run(rs2, syn(), CT_ESTABLISHED, conn, table="mangle").mark == 5


def test_ct_target_effects_in_raw() -> None:
    rs = load("-A PREROUTING -p tcp --dport 21 -j CT --helper ftp",
              "-A PREROUTING -p tcp --dport 80 -j CT --notrack", table="raw")
    effects = run(rs, syn(dport=21), hook="PREROUTING", table="raw").effects
    assert effects == (("helper", "ftp"),)
    assert run(rs, syn(dport=80), hook="PREROUTING", table="raw").effects == (("notrack", True),)
    with pytest.raises(RulesetError, match="CT target: only valid in the raw table"):
        load("-A FORWARD -j CT --notrack")


def test_log_line_has_the_kernel_layout() -> None:
    rs = load('-A FORWARD -j LOG --log-prefix "fw: "')
    pkt = decode_datagram(builder.tcp("10.0.0.1", "10.0.0.2", 40000, 22, "S", seq=1,
                                      window=64240, ident=7, df=True))
    (line,) = run(rs, pkt).logs
    assert line == ("fw: IN=eth0 OUT=eth1 MAC= SRC=10.0.0.1 DST=10.0.0.2 LEN=40 TOS=0x00 "
                    "PREC=0x00 TTL=64 ID=7 DF PROTO=TCP SPT=40000 DPT=22 WINDOW=64240 "
                    "RES=0x00 SYN URGP=0 ")
