"""What the Dask engine refuses to partition, found in the compiled ruleset and options.

Each case is a ruleset with one thing partitioning by host pair cannot keep
exact (rule state shared across pairs, NAT, a helper that expects a third
host), which must be named with its file and line; the ruleset beside it,
stateful filtering and the helpers that stay between two hosts, names
nothing. Then the run-time proof of the machine-wide limits.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from statewall.api import MachineOptions, build_firewall
from statewall.config import Sysctls
from statewall.dask.plan import proven_reasons, static_reasons

HEAD = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
RAW = "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"


@pytest.mark.parametrize(("rule", "named"), [
    ("-A FORWARD -m recent --name a --rcheck -j DROP", "5: -m recent"),
    ("-A FORWARD -m hashlimit --hashlimit-above 5/s --hashlimit-name h -j DROP",
     "5: -m hashlimit"),
    ("-A FORWARD -m limit --limit 5/s -j ACCEPT", "5: -m limit"),
    ("-A FORWARD -p tcp --syn -m connlimit --connlimit-above 3 -j DROP", "5: -m connlimit"),
    ("-A FORWARD -m statistic --mode nth --every 2 -j DROP", "5: -m statistic --mode nth"),
    ("-A FORWARD -m statistic --mode random --probability 0.5 -j DROP",
     "5: -m statistic --mode random"),
])
def test_iptables_rule_state_shared_across_pairs_is_named(tmp_path: Path, rule: str,
                                                          named: str) -> None:
    rules = tmp_path / "r.v4"
    rules.write_text(HEAD + rule + "\nCOMMIT\n")
    reasons = static_reasons(build_firewall(MachineOptions(rules=rules)))
    assert len(reasons) == 1 and reasons[0].startswith(f"{rules}:{named} ")


def test_set_element_counters_are_named_and_plain_set_lookups_are_not(tmp_path: Path) -> None:
    sets = tmp_path / "sets"
    sets.write_text("create nets hash:net counters\nadd nets 192.0.2.0/24\n")
    rules = tmp_path / "r.v4"
    rules.write_text(HEAD + "-A FORWARD -m set --match-set nets src -j ACCEPT\n"
                     "-A FORWARD -m set --match-set nets src --packets-gt 10 -j DROP\nCOMMIT\n")
    reasons = static_reasons(build_firewall(MachineOptions(rules=rules, ipsets=(sets,))))
    assert [r.split(" (")[0] for r in reasons] == [f"{rules}:6: -m set --packets-*/--bytes-*"]


def test_the_irc_helper_and_auto_helpers_are_named_and_ftp_is_not(tmp_path: Path) -> None:
    rules = tmp_path / "r.v4"
    rules.write_text(RAW + "-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\n"
                     "-A PREROUTING -p udp --dport 69 -j CT --helper tftp\n"
                     "-A PREROUTING -p tcp --dport 6667 -j CT --helper irc\nCOMMIT\n"
                     + HEAD + "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"
                     "COMMIT\n")
    assert static_reasons(build_firewall(MachineOptions(rules=rules))) == [
        f"{rules}:6: the IRC helper (its DCC expectations admit a connection from any host)"]
    assert static_reasons(build_firewall(MachineOptions(auto_helpers=True))) == [
        "--auto-helpers: the IRC helper on port 6667, whose DCC expectations admit a "
        "connection from any host"]


NFT = """table inet f {
    ct helper irc-h { type "irc" protocol tcp; }
    set seen { type ipv4_addr; flags dynamic; }
    chain pre {
        type filter hook prerouting priority 0;
        tcp dport 6667 ct helper set "irc-h"
        limit rate 5/second accept
        meta l4proto tcp add @seen { ip saddr }
        quota over 10 mbytes drop
        meta mark set numgen inc mod 2
        ct state established,related accept
    }
}
table ip n {
    chain post { type nat hook postrouting priority 100; masquerade }
}
"""


def test_nft_state_shared_across_pairs_and_nat_are_named(tmp_path: Path) -> None:
    nft = tmp_path / "r.nft"
    nft.write_text(NFT)
    reasons = static_reasons(build_firewall(MachineOptions(nft=nft)))
    assert [r.split(": ", 1)[1].split(" (")[0] for r in reasons] == [
        "the IRC helper", "nft limit", "nft add/update @set", "nft quota", "nft numgen", "NAT"]
    assert all(r.startswith(f"{nft}:") for r in reasons)


def test_an_irc_helper_chosen_through_a_map_is_named(tmp_path: Path) -> None:
    nft = tmp_path / "r.nft"
    nft.write_text('table inet f {\n ct helper i { type "irc" protocol tcp; }\n'
                   ' ct helper f { type "ftp" protocol tcp; }\n'
                   ' chain pre {\n  type filter hook prerouting priority 0;\n'
                   '  ct helper set tcp dport map { 21 : "f", 6667 : "i" }\n }\n}\n')
    assert static_reasons(build_firewall(MachineOptions(nft=nft))) == [
        f"{nft}:6: the IRC helper (its DCC expectations admit a connection from any host)"]
    nft.write_text(nft.read_text().replace('6667 : "i"', '2121 : "f"'))
    assert static_reasons(build_firewall(MachineOptions(nft=nft))) == []


def test_a_stateful_ruleset_is_exact() -> None:
    assert static_reasons(build_firewall(MachineOptions())) == []


def test_machine_wide_limits_are_proven_out_of_reach_by_the_summed_peaks() -> None:
    cfg = Sysctls().with_values({"nf_conntrack_max": 100, "nf_conntrack_expect_max": 10})
    assert proven_reasons(cfg, [(49, 4, 0, 0), (50, 5, 0, 0)], 0) == []
    reasons = proven_reasons(cfg, [(50, 5, 0, 0), (50, 5, 0, 0)], 2)
    assert [r.split(":")[0] for r in reasons] == [
        "nf_conntrack_max=100", "nf_conntrack_expect_max=10",
        "2 ICMP error(s) in fragments quote another host pair than their own"]
    unlimited = Sysctls().with_values({"nf_conntrack_max": 0})
    assert proven_reasons(unlimited, [(10**9, 0, 0, 0)], 0) == []
