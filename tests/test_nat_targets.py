"""The nat targets load as iptables-restore loads them: the same rules refused,
and what an accepted one asks the NAT core for."""

from __future__ import annotations

import subprocess

import pytest
from conftest import nat_table

from statewall.rules.errors import RulesetError
from statewall.rules.hooks import compile_text

# (family, rule in the nat table)
CASES = [
    (4, "-A POSTROUTING -o wan -j MASQUERADE"),
    (4, "-A POSTROUTING -p tcp -o wan -j MASQUERADE --to-ports 1024-2047"),
    (4, "-A POSTROUTING -o wan -j MASQUERADE --to-ports 1024"),  # ports need a protocol
    (4, "-A POSTROUTING -o wan -j MASQUERADE --random-fully"),
    (4, "-A POSTROUTING -j SNAT --to-source 203.0.113.1"),
    (4, "-A POSTROUTING -j SNAT --to-source 203.0.113.1-203.0.113.9 --persistent"),
    (4, "-A POSTROUTING -p udp -j SNAT --to-source 203.0.113.1:1000-2000 --random"),
    (4, "-A POSTROUTING -j SNAT --to-source 203.0.113.1:1000"),  # needs -p
    (4, "-A POSTROUTING -j SNAT --to-source 203.0.113.300"),
    (4, "-A POSTROUTING -j SNAT --to-source 2001:db8::1"),
    (4, "-A PREROUTING -p tcp -j DNAT --to-destination 192.168.1.2:8080"),
    (4, "-A PREROUTING -p tcp -j DNAT --to-destination :8080"),
    (4, "-A PREROUTING -p tcp -j DNAT --to-destination 192.168.1.2:1000-2000/80"),
    (4, "-A PREROUTING -j DNAT --to-destination 192.168.1.2:80"),
    (4, "-A PREROUTING -p tcp -j REDIRECT --to-ports 3128"),
    (4, "-A PREROUTING -j REDIRECT"),
    (4, "-A PREROUTING -d 203.0.113.0/24 -j NETMAP --to 192.168.1.0/24"),
    (4, "-A POSTROUTING -j DNAT --to-destination 192.168.1.2"),  # DNAT not in POSTROUTING
    (6, "-A POSTROUTING -o wan -j MASQUERADE"),
    (6, "-A PREROUTING -p tcp -j DNAT --to-destination [2001:db8::2]:80"),
    (6, "-A PREROUTING -j DNAT --to-destination 2001:db8::2"),
    (6, "-A POSTROUTING -j SNAT --to-source 192.0.2.1"),
]


def ruleset(rule: str) -> str:
    return nat_table(rule)


def statewall_accepts(family: int, rule: str) -> bool:
    try:
        compile_text(ruleset(rule), "nat.rules", family=family)
    except RulesetError:
        return False
    return True


@pytest.mark.kernel
def test_the_same_nat_rules_load_as_in_iptables_restore(kernel: None, netns: str) -> None:
    for family, rule in CASES:
        tool = "iptables-restore" if family == 4 else "ip6tables-restore"
        # A real load: --test stops before the kernel's own checks (hooks, ranges).
        kernel_ok = subprocess.run(["ip", "netns", "exec", netns, tool],
                                   input=ruleset(rule), text=True,
                                   capture_output=True).returncode == 0
        assert statewall_accepts(family, rule) == kernel_ok, (family, rule)


def test_a_port_range_without_a_protocol_is_refused_with_the_reason() -> None:
    with pytest.raises(RulesetError, match="need TCP, UDP, SCTP or DCCP with port"):
        compile_text(ruleset("-A POSTROUTING -j SNAT --to-source 203.0.113.1:1000"), "nat.rules",
                     family=4)
