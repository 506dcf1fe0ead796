"""Counters output: `iptables-save -c` and `iptables -L -v -n [-x]`.

The golden texts were produced on the live kernel (iptables v1.8.9, nf_tables) in a
throwaway namespace: `iptables-restore RULES`, then 3 UDP datagrams of 100 bytes and
200 of 1000 bytes to closed ports on 127.0.0.1 (each answered by an ICMP port
unreachable), then `iptables -L -v -n`, `iptables -L -v -n -x` and `iptables-save -c`
(date comments removed).
"""

from __future__ import annotations

import pytest
from rulewalk import CT_NEW, CT_RELATED, Rules, compile_text, walk

from statewall import builder
from statewall.decode import decode_datagram
from statewall.rules.compile import CompiledRuleset
from statewall.rules.counters import (
    format_counters_list,
    format_counters_save,
    number,
    set_counters,
)

RULES = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:MYCHAIN - [0:0]\n:EMPTY - [0:0]\n-A INPUT -p icmp -m state --state NEW -j MYCHAIN\n-A INPUT -s 10.0.0.0/8 -i eth0 -p tcp -m tcp --dport 22 -j ACCEPT\n-A INPUT ! -s 127.0.0.2/32 -p udp -m udp --sport 53 -j DROP\n-A INPUT -m comment --comment "a comment here" -j LOG --log-prefix "x: "\n-A INPUT -p tcp -m tcp --tcp-flags SYN,ACK SYN -m limit --limit 3/min -j REJECT --reject-with tcp-reset\n-A INPUT -f -j DROP\n-A INPUT -g EMPTY\n-A MYCHAIN -j RETURN\n-A OUTPUT -o lo -j ACCEPT\nCOMMIT\n'  # noqa: E501
GOLDEN_LIST = 'Chain INPUT (policy ACCEPT 406 packets, 322K bytes)\n pkts bytes target     prot opt in     out     source               destination         \n    0     0 MYCHAIN    1    --  *      *       0.0.0.0/0            0.0.0.0/0            state NEW\n    0     0 ACCEPT     6    --  eth0   *       10.0.0.0/8           0.0.0.0/0            tcp dpt:22\n    0     0 DROP       17   --  *      *      !127.0.0.2            0.0.0.0/0            udp spt:53\n  406  322K LOG        0    --  *      *       0.0.0.0/0            0.0.0.0/0            /* a comment here */ LOG flags 0 level 4 prefix "x: "\n    0     0 REJECT     6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp flags:0x12/0x02 limit: avg 3/min burst 5 reject-with tcp-reset\n    0     0 DROP       0    -f  *      *       0.0.0.0/0            0.0.0.0/0           \n  406  322K EMPTY      0    --  *      *       0.0.0.0/0            0.0.0.0/0           [goto] \n\nChain FORWARD (policy DROP 0 packets, 0 bytes)\n pkts bytes target     prot opt in     out     source               destination         \n\nChain OUTPUT (policy ACCEPT 0 packets, 0 bytes)\n pkts bytes target     prot opt in     out     source               destination         \n  406  322K ACCEPT     0    --  *      lo      0.0.0.0/0            0.0.0.0/0           \n\nChain EMPTY (1 references)\n pkts bytes target     prot opt in     out     source               destination         \n\nChain MYCHAIN (1 references)\n pkts bytes target     prot opt in     out     source               destination         \n    0     0 RETURN     0    --  *      *       0.0.0.0/0            0.0.0.0/0           \n'  # noqa: E501
GOLDEN_LIST_EXACT = 'Chain INPUT (policy ACCEPT 406 packets, 321652 bytes)\n    pkts      bytes target     prot opt in     out     source               destination         \n       0        0 MYCHAIN    1    --  *      *       0.0.0.0/0            0.0.0.0/0            state NEW\n       0        0 ACCEPT     6    --  eth0   *       10.0.0.0/8           0.0.0.0/0            tcp dpt:22\n       0        0 DROP       17   --  *      *      !127.0.0.2            0.0.0.0/0            udp spt:53\n     406   321652 LOG        0    --  *      *       0.0.0.0/0            0.0.0.0/0            /* a comment here */ LOG flags 0 level 4 prefix "x: "\n       0        0 REJECT     6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp flags:0x12/0x02 limit: avg 3/min burst 5 reject-with tcp-reset\n       0        0 DROP       0    -f  *      *       0.0.0.0/0            0.0.0.0/0           \n     406   321652 EMPTY      0    --  *      *       0.0.0.0/0            0.0.0.0/0           [goto] \n\nChain FORWARD (policy DROP 0 packets, 0 bytes)\n    pkts      bytes target     prot opt in     out     source               destination         \n\nChain OUTPUT (policy ACCEPT 0 packets, 0 bytes)\n    pkts      bytes target     prot opt in     out     source               destination         \n     406   321652 ACCEPT     0    --  *      lo      0.0.0.0/0            0.0.0.0/0           \n\nChain EMPTY (1 references)\n    pkts      bytes target     prot opt in     out     source               destination         \n\nChain MYCHAIN (1 references)\n    pkts      bytes target     prot opt in     out     source               destination         \n       0        0 RETURN     0    --  *      *       0.0.0.0/0            0.0.0.0/0           \n'  # noqa: E501
GOLDEN_SAVE = '*filter\n:INPUT ACCEPT [406:321652]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:EMPTY - [0:0]\n:MYCHAIN - [0:0]\n[0:0] -A INPUT -p icmp -m state --state NEW -j MYCHAIN\n[0:0] -A INPUT -s 10.0.0.0/8 -i eth0 -p tcp -m tcp --dport 22 -j ACCEPT\n[0:0] -A INPUT ! -s 127.0.0.2/32 -p udp -m udp --sport 53 -j DROP\n[406:321652] -A INPUT -m comment --comment "a comment here" -j LOG --log-prefix "x: "\n[0:0] -A INPUT -p tcp -m tcp --tcp-flags SYN,ACK SYN -m limit --limit 3/min -j REJECT --reject-with tcp-reset\n[0:0] -A INPUT -f -j DROP\n[406:321652] -A INPUT -g EMPTY\n[406:321652] -A OUTPUT -o lo -j ACCEPT\n[0:0] -A MYCHAIN -j RETURN\nCOMMIT\n'  # noqa: E501


def replayed() -> CompiledRuleset:
    """The live experiment's packets walked through the same ruleset."""
    rs = Rules.of(compile_text(RULES, source="rules.v4"))
    sizes = [(100, 128)] * 3 + [(1000, 548)] * 200
    for payload, quoted in sizes:
        datagram = decode_datagram(builder.udp("127.0.0.1", "127.0.0.1", 40000, 9999,
                                               b"y" * payload))
        error = decode_datagram(builder.icmp("127.0.0.1", "127.0.0.1", 3, 3,
                                             payload=b"\0" * quoted))
        for pkt, ctinfo in ((datagram, CT_NEW), (error, CT_RELATED)):
            walk(rs.engine, "filter", "OUTPUT", pkt, ctinfo, None, 0.0, None, "lo")
            walk(rs.engine, "filter", "INPUT", pkt, ctinfo, None, 0.0, "lo", None)
    set_counters(rs.compiled, rs.engine.counters())
    return rs.compiled


def test_list_matches_iptables_L_v_n() -> None:
    assert format_counters_list(replayed(), "filter") == GOLDEN_LIST


def test_list_exact_matches_iptables_L_v_n_x() -> None:
    assert format_counters_list(replayed(), "filter", exact=True) == GOLDEN_LIST_EXACT


def test_save_matches_iptables_save_c() -> None:
    assert format_counters_save(replayed()) == GOLDEN_SAVE


@pytest.mark.parametrize(("value", "text"), [
    (0, "    0 "), (99999, "99999 "), (100000, " 100K "), (321652, " 322K "),
    (9999499, "9999K "), (9999500, "  10M "), (12345678901, "  12G "),
])
def test_number_abbreviations_as_xtables_print_num(value: int, text: str) -> None:
    assert number(value, exact=False) == text


def test_number_exact_is_eight_wide() -> None:
    assert number(321652, exact=True) == "  321652 "
