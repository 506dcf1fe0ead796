"""Parsing and printing iptables-restore text, checked against what iptables-restore does."""

from __future__ import annotations

import subprocess

import pytest

from statewall.rules.errors import RulesetError
from statewall.rules.model import Address, Match, Option, Target
from statewall.rules.parser import parse_ruleset
from statewall.rules.save import format_ruleset


def filter_table(*lines: str, family: int = 4) -> str:
    return "\n".join(["*filter", *lines, "COMMIT", ""])


def rules_of(text: str, chain: str = "INPUT", family: int = 4) -> list:  # type: ignore[type-arg]
    ruleset = parse_ruleset(text, "rules.v4", family)
    table = ruleset.table("filter")
    assert table is not None
    found = table.chain(chain)
    assert found is not None
    return list(found.rules)


def test_builtin_chains_exist_without_declaration_and_policy_lines_apply() -> None:
    ruleset = parse_ruleset(filter_table(":FORWARD DROP [12:3400]", "-P OUTPUT DROP"))
    table = ruleset.table("filter")
    assert table is not None
    assert [(c.name, c.policy, c.counters) for c in table.chains] == [
        ("INPUT", "ACCEPT", (0, 0)), ("FORWARD", "DROP", (12, 3400)), ("OUTPUT", "DROP", (0, 0))]


def test_insert_with_and_without_index_orders_rules_as_iptables_restore() -> None:
    text = filter_table(
        '-A FORWARD -m comment --comment "rule 4" -j ACCEPT',
        '-I FORWARD 1 -m comment --comment "rule 1" -j ACCEPT',
        '-I FORWARD 2 -m comment --comment "rule 2" -j ACCEPT',
        '-I FORWARD 3 -m comment --comment "rule 3" -j ACCEPT',
        '-I FORWARD -m comment --comment "rule 0" -j ACCEPT',
    )
    comments = [r.matches[0].options[0].values[0] for r in rules_of(text, "FORWARD")]
    assert comments == ["rule 0", "rule 1", "rule 2", "rule 3", "rule 4"]


def test_insert_beyond_the_end_is_refused() -> None:
    with pytest.raises(RulesetError, match=r"^rules.v4:2: Index of insertion too big$"):
        parse_ruleset(filter_table("-I INPUT 2 -j ACCEPT"), "rules.v4")


def test_counters_in_both_spellings() -> None:
    rules = rules_of(filter_table("[13:37] -A INPUT -j ACCEPT", "-A INPUT -c 5 6 -j DROP"))
    assert [r.counters for r in rules] == [(13, 37), (5, 6)]


def test_family_prefixed_lines_apply_only_to_their_family() -> None:
    text = filter_table("-A INPUT -j ACCEPT", "-4 -A INPUT -j DROP", "-6 -A INPUT -j REJECT")
    assert [r.target.name for r in rules_of(text)] == ["ACCEPT", "DROP"]
    assert [r.target.name for r in rules_of(text, family=6)] == ["ACCEPT", "REJECT"]


def test_quoted_comment_with_escapes_and_blanks() -> None:
    text = filter_table(r'-A INPUT -m comment --comment "a \" b\\ c \x" -j ACCEPT')
    (rule,) = rules_of(text)
    assert rule.matches == (Match("comment", (Option("--comment", False, ('a " b\\ c x',)),)),)


def test_negation_before_base_and_match_options() -> None:
    (rule,) = rules_of(filter_table("-A INPUT ! -s 10.0.0.0/8 -p tcp -m tcp ! --dport 22"))
    assert rule.src == Address(0x0A000000, 0xFF000000) and rule.src_neg
    assert rule.matches[0].options == (Option("--dport", True, ("22",)),)


def test_negation_after_the_option_is_refused_as_iptables_1_8_does() -> None:
    # iptables 1.8.9: "invalid port/service `!' specified"; statewall stops at the stray 22.
    with pytest.raises(RulesetError, match=r"^rules.v4:2: Bad argument `22'$"):
        parse_ruleset(filter_table("-A INPUT -p tcp --dport ! 22"), "rules.v4")


def test_double_negation_is_refused() -> None:
    with pytest.raises(RulesetError, match="multiple consecutive ! not allowed"):
        parse_ruleset(filter_table("-A INPUT ! ! -s 1.2.3.4"))


def test_protocol_names_any_case_and_numbers() -> None:
    rules = rules_of(filter_table("-A INPUT -p TCP", "-A INPUT -p 17", "-A INPUT -p ipv6-icmp",
                                  "-A INPUT -p ALL"))
    assert [r.proto for r in rules] == [6, 17, 58, 0]


def test_implicit_protocol_match_is_made_explicit() -> None:
    (rule,) = rules_of(filter_table("-A INPUT -p tcp --dport 22 -j ACCEPT"))
    assert rule.matches == (Match("tcp", (Option("--dport", False, ("22",)),)),)
    assert "-p tcp -m tcp --dport 22 -j ACCEPT" in format_ruleset(parse_ruleset(
        filter_table("-A INPUT -p tcp --dport 22 -j ACCEPT")))


def test_zero_network_matches_everything_and_is_not_printed() -> None:
    (rule,) = rules_of(filter_table("-A INPUT -s 0/0 -d 10/8 -j ACCEPT"))
    assert rule.src is None and rule.dst == Address(0x0A000000, 0xFF000000)


def test_ipv6_non_contiguous_masks_print_as_masks() -> None:
    text = filter_table("-A FORWARD -s feed:c0ff::babe:f00/ffff::ffff:0",
                        "-A FORWARD -d feed:babe::1/32")
    printed = format_ruleset(parse_ruleset(text, family=6))
    assert "-A FORWARD -s feed::babe:0/ffff::ffff:0" in printed
    assert "-A FORWARD -d feed:babe::/32" in printed


def test_several_addresses_make_several_rules() -> None:
    rules = rules_of(filter_table("-A INPUT -s 1.1.1.1,2.2.2.2 -j ACCEPT"))
    assert [r.src.addr for r in rules] == [0x01010101, 0x02020202]


def test_crlf_line_endings_are_accepted() -> None:
    rules = rules_of("*filter\r\n:INPUT DROP [0:0]\r\n-A INPUT -j ACCEPT\r\nCOMMIT\r\n")
    assert len(rules) == 1


def test_option_prefix_is_accepted_as_getopt_does() -> None:
    ruleset = parse_ruleset("*nat\n-A PREROUTING -p tcp --dport 80 -j DNAT --to 10.0.0.1\n"
                            "COMMIT\n")
    table = ruleset.table("nat")
    assert table is not None
    rule = table.chains[0].rules[0]
    assert rule.target == Target("DNAT", (Option("--to-destination", False, ("10.0.0.1",)),))


@pytest.mark.parametrize(("line", "message"), [
    ("-A INPUT -p tcp --frob 1", "rules.v4:2: unknown option --frob for match tcp"),
    ("-A INPUT -m tcp -p tcp --frob 1", "rules.v4:2: unknown option --frob for match tcp"),
    ("-A INPUT -m foo", "rules.v4:2: Couldn't load match `foo'"),
    ("-A INPUT -p foo", 'rules.v4:2: unknown protocol "foo" specified'),
    ("-A INPUT -i eth0 -i eth1", "rules.v4:2: multiple -i flags not allowed"),
    ("-A INPUT -p tcp --dport", 'rules.v4:2: option "--dport" requires an argument'),
    ("-A NOPE -j ACCEPT", "rules.v4:2: chain `NOPE' does not exist"),
    ("-A INPUT -p tcp ! -m tcp --dport 22", "rules.v4:2: unexpected ! flag before --match"),
    ("-A INPUT -s 1.2.3.4/33", "rules.v4:2: invalid mask `33' specified"),
    ("-A INPUT -s foo.example", "rules.v4:2: host/network `foo.example' not found"),
    ("-A INPUT garbage", "rules.v4:2: Bad argument `garbage'"),
    ("-A INPUT -o eth0", "rules.v4:2: Can't use -o with INPUT"),
    (":FOO ACCEPT [0:0]", "rules.v4:2: Can't set policy `ACCEPT' on `FOO': Bad built-in "
                          "chain name"),
])
def test_errors_name_file_line_and_option(line: str, message: str) -> None:
    with pytest.raises(RulesetError) as caught:
        parse_ruleset(filter_table(line), "rules.v4")
    assert str(caught.value) == message


def test_missing_commit_and_unknown_table() -> None:
    with pytest.raises(RulesetError, match="^r:2: COMMIT expected"):
        parse_ruleset("*filter\n-A INPUT -j ACCEPT", "r")
    with pytest.raises(RulesetError, match="^r:1: table name 'foo' invalid$"):
        parse_ruleset("*foo\nCOMMIT\n", "r")


ROUND_TRIP = filter_table(
    ":USER - [3:4]",
    "[1:2] -A FORWARD -s 192.168.0.0/16 ! -d 10.0.0.1/32 -i eth+ ! -o lo -p tcp -m tcp "
    "--sport 1024:65535 ! --dport 22 --tcp-flags FIN,SYN,RST,ACK SYN -m state --state NEW "
    "-j USER",
    '-A INPUT -m comment --comment "has \\"quotes\\" and spaces" -j LOG --log-prefix "x: "',
    "-A INPUT -p icmp -m icmp --icmp-type 8 -m limit --limit 3/min --limit-burst 2 -j ACCEPT",
    "-A INPUT -f -j DROP",
    "-A USER -m recent --set --name SSH --mask 255.255.255.0 --rsource",
    "-A USER -m conntrack ! --ctstate INVALID --ctdir ORIGINAL -g USER2",
    ":USER2 - [0:0]",
    "-A USER2 -j REJECT --reject-with tcp-reset -p tcp",
)


def test_parse_print_parse_gives_the_same_model() -> None:
    first = parse_ruleset(ROUND_TRIP)
    second = parse_ruleset(format_ruleset(first))
    assert second == first
    assert format_ruleset(second) == format_ruleset(first)


@pytest.mark.kernel
def test_printed_ruleset_is_accepted_by_iptables_restore(netns: str) -> None:
    printed = format_ruleset(parse_ruleset(ROUND_TRIP))
    result = subprocess.run(["ip", "netns", "exec", netns, "iptables-restore", "--test"],
                            input=printed, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr
