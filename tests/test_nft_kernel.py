"""nftables rulesets against the live kernel: base chains at their priorities
beside an iptables table, policies, jump/goto/return, each loaded with
`nft -f` in the firewall and into statewall alike and compared by `verify`.

The rulesets are `nft -j` JSON written here, so that they are read the same
whatever parts of the text front end exist.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from test_nat_helpers_kernel import Stream

from statewall import builder as b
from statewall.oracle.verify import Datagram, VerifyResult, verify_datagrams
from statewall.topology import Topology, parse_iface

LEFT, RIGHT = "192.0.2.10", "198.51.100.20"
LEFT6, RIGHT6 = "2001:db8:1::10", "2001:db8:2::20"


def table(family: str, name: str) -> dict[str, Any]:
    return {"table": {"family": family, "name": name}}


def chain(family: str, tname: str, name: str, hook: str | None = None, prio: int = 0,
          policy: str = "accept", kind: str = "filter") -> dict[str, Any]:
    body: dict[str, Any] = {"family": family, "table": tname, "name": name}
    if hook is not None:
        body.update(type=kind, hook=hook, prio=prio, policy=policy)
    return {"chain": body}


def rule(family: str, tname: str, chain_name: str, *stmts: dict[str, Any]) -> dict[str, Any]:
    return {"rule": {"family": family, "table": tname, "chain": chain_name,
                     "expr": list(stmts)}}


ACCEPT, DROP, RETURN = {"accept": None}, {"drop": None}, {"return": None}
COUNTER = {"counter": {"packets": 0, "bytes": 0}}


def ruleset(*objects: dict[str, Any]) -> str:
    return json.dumps({"nftables": list(objects)})


def run(nft: str, traffic: Sequence[bytes], rules: str | None = None,
        rules6: str | None = None) -> VerifyResult:
    datagrams = [Datagram(n, d) for n, d in enumerate(traffic, 1)]
    result = verify_datagrams(datagrams, rules, rules6, nft=nft)
    assert result.ok, ([(p.number, p.differences, p.kernel_answer(), p.statewall_answer())
                        for p in result.disagreements], result.table)
    return result


def fate(result: VerifyResult) -> list[tuple[str, str | None]]:
    """Each packet's verdict and the rule statewall cites (the kernel agreed on the fate)."""
    return [(p.statewall.verdict, None if p.statewall.rule is None else str(p.statewall.rule))
            for p in result.packets]


# iptables' filter table at priority 0 between the two nft chains: it drops UDP to port 9.
IPT_FILTER = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
              "-A FORWARD -p udp --dport 9 -j DROP\nCOMMIT\n")


@pytest.mark.kernel
def test_accept_ends_only_its_base_chain_and_drop_is_final(kernel: None, made: list[str]) -> None:
    """inet t early (-10) accepts everything; the iptables filter table (0) still
    drops port 9; late (10, policy drop) then jumps to c (which returns) and goes
    to d (which accepts): what reaches it is forwarded, by d's rule."""
    f, t = "inet", "t"
    nft = ruleset(
        table(f, t),
        chain(f, t, "early", "forward", -10), chain(f, t, "late", "forward", 10, "drop"),
        chain(f, t, "c"), chain(f, t, "d"),
        rule(f, t, "early", COUNTER, ACCEPT),
        rule(f, t, "late", {"jump": {"target": "c"}}),
        rule(f, t, "late", {"goto": {"target": "d"}}),
        rule(f, t, "late", DROP),
        rule(f, t, "c", COUNTER), rule(f, t, "c", RETURN), rule(f, t, "c", DROP),
        rule(f, t, "d", ACCEPT))
    result = run(nft, [
        b.udp(LEFT, RIGHT, 4000, 7, b"a"),
        b.udp(RIGHT, LEFT, 7, 4000, b"b"),
        b.udp(LEFT, RIGHT, 4001, 9, b"c"),
        b.udp(LEFT6, RIGHT6, 4000, 7, b"d"),
    ], rules=IPT_FILTER)
    assert fate(result) == [("ACCEPT", "inet t d #1"), ("ACCEPT", "inet t d #1"),
                            ("DROP", "filter FORWARD #1"), ("ACCEPT", "inet t d #1")]


@pytest.mark.kernel
def test_a_base_chain_policy_drop_and_return_at_base_level(kernel: None,
                                                           made: list[str]) -> None:
    """ip6 only: IPv4 meets no chain. In ip6 t, fwd's policy is drop; its return
    (at base-chain level) applies the policy, so the jump-free rule after it is
    never reached."""
    f, t = "ip6", "t"
    nft = ruleset(
        table(f, t), chain(f, t, "fwd", "forward", 0, "drop"),
        rule(f, t, "fwd", COUNTER), rule(f, t, "fwd", RETURN), rule(f, t, "fwd", ACCEPT))
    result = run(nft, [
        b.udp(LEFT6, RIGHT6, 4000, 7, b"a"),
        b.udp(LEFT, RIGHT, 4000, 7, b"b"),
    ])
    assert fate(result) == [("DROP", "ip6 t fwd policy"), ("ACCEPT", None)]


@pytest.mark.kernel
def test_of_two_chains_at_one_priority_the_later_registered_runs_first(
        kernel: None, made: list[str]) -> None:
    """`first` (listed first) drops marked packets, `second` (same priority 0,
    registered after it) marks packets to port 9: the kernel puts a new hook
    entry before the existing ones of its priority, so `second` runs first and
    `first` then drops what it marked; port 7 goes unmarked and passes."""
    nft = ("table inet t {\n"
           "\tchain first {\n\t\ttype filter hook forward priority filter; policy accept;\n"
           "\t\tmeta mark 1 counter drop\n\t}\n\n"
           "\tchain second {\n\t\ttype filter hook forward priority filter; policy accept;\n"
           "\t\tudp dport 9 meta mark set 1\n\t}\n}\n")
    result = run(nft, [b.udp(LEFT, RIGHT, 4000, 9, b"a"), b.udp(LEFT, RIGHT, 4001, 7, b"b")])
    assert fate(result) == [("DROP", "inet t first #1"), ("ACCEPT", "inet t first policy")]


@pytest.mark.kernel
@pytest.mark.parametrize(("prio", "helped"), [(0, True), (-300, False)])
def test_ct_helper_set_acts_only_after_conntrack(kernel: None, made: list[str], prio: int,
                                                 helped: bool) -> None:
    """`ct helper set` gives the helper to the packet's still unconfirmed entry: at
    priority filter the FTP connection gets it and the data connection its 227 names
    is RELATED; at priority raw there is no entry yet and nothing happens (no
    template, as iptables' CT --helper would make)."""
    f, t = "inet", "t"
    nft = ruleset(
        table(f, t),
        {"ct helper": {"family": f, "table": t, "name": "ftp-standard", "type": "ftp",
                       "protocol": "tcp", "l3proto": "inet"}},
        chain(f, t, "pre", "prerouting", prio),
        rule(f, t, "pre", {"match": {"op": "==", "left": {"payload": {
            "protocol": "tcp", "field": "dport"}}, "right": 21}},
            {"ct helper": "ftp-standard"}))
    ctl = Stream(LEFT, RIGHT, LEFT, 40000, 21)
    result = run(nft, [*ctl.handshake(), ctl.server_says(b"220 ready\r\n"),
                       ctl.client_says(b"PASV\r\n"),
                       ctl.server_says(b"227 Entering Passive Mode (198,51,100,20,195,81).\r\n"),
                       b.tcp(LEFT, RIGHT, 40001, 50001, "S", 5, window=64240)])
    assert result.packets[-1].statewall.ctstate == ("RELATED" if helped else "NEW")
    assert any("helper=ftp" in line for line in result.table.kernel) == helped


@pytest.mark.kernel
def test_no_output_interface_before_routing(kernel: None, made: list[str]) -> None:
    """A received datagram is routed after prerouting: there `oifname` meets an
    empty out device and matches no name, while forward sees the interface the
    route chose (swr, for 198.51.100.0/24)."""
    nft = ("table inet t {\n"
           "\tchain pre {\n\t\ttype filter hook prerouting priority filter; policy accept;\n"
           "\t\toifname \"swr\" counter drop\n\t}\n\n"
           "\tchain routed {\n\t\ttype filter hook forward priority filter; policy accept;\n"
           "\t\toifname \"swr\" udp dport 9 counter drop\n\t}\n}\n")
    machine = Topology.build((), [parse_iface(t) for t in ("swl=192.0.2.1/24",
                                                           "swr=198.51.100.1/24")])
    datagrams = [Datagram(n, d) for n, d in enumerate(
        [b.udp(LEFT, RIGHT, 4000, 7, b"a"), b.udp(LEFT, RIGHT, 4001, 9, b"b")], 1)]
    result = verify_datagrams(datagrams, None, None, nft=nft, local=machine.local,
                              ifaces=machine.interfaces, addresses=machine.addresses)
    assert result.ok, [(p.number, p.differences) for p in result.disagreements]
    assert fate(result) == [("ACCEPT", "inet t routed policy"), ("DROP", "inet t routed #1")]
