"""connbytes turns connection accounting on, in the kernel and in statewall.

xt_connbytes' checkentry sets `nf_conntrack_acct=1` in the namespace that loads
the rule when it was off: the match reads counters that only accounting keeps.
The kernel tests show it in a namespace (the sysctl reads 1 after
`iptables-restore`, `conntrack -L` prints packets= and bytes=) and then that
statewall, given the same ruleset and no sysctl, agrees packet for packet (the
match drops a connection's third packet) and line for line, counters included.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from statewall import builder as b
from statewall.capture import write_pcap
from statewall.cli import main
from statewall.engine import Firewall
from statewall.oracle import netns
from statewall.oracle.kernel import KernelFirewall
from statewall.oracle.verify import Datagram, load_rule_engine, verify_datagrams

CLIENT, SERVER = "198.51.100.7", "203.0.113.9"
CLIENT6, SERVER6 = "2001:db8:1::7", "2001:db8:2::9"
ACCT = "/proc/sys/net/netfilter/nf_conntrack_acct"
# The third packet of a connection, both directions counted, is dropped.
CONNBYTES = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
             "-A FORWARD -m connbytes --connbytes 3: --connbytes-dir both "
             "--connbytes-mode packets -j DROP\nCOMMIT\n")
PLAIN = "*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -p udp -j ACCEPT\nCOMMIT\n"


def flow(client: str, server: str) -> list[bytes]:
    return [b.udp(client, server, 5000, 53, b"q"), b.udp(server, client, 53, 5000, b"a"),
            b.udp(client, server, 5000, 53, b"q2"), b.udp(server, client, 53, 5000, b"a2")]


def test_a_connbytes_ruleset_turns_accounting_on_in_statewall() -> None:
    engine = load_rule_engine(CONNBYTES, None)
    assert engine is not None and engine.forces_acct
    assert Firewall(rules=engine).cfg.nf_conntrack_acct == 1
    plain = load_rule_engine(PLAIN, None)
    assert plain is not None and not plain.forces_acct
    assert Firewall(rules=plain).cfg.nf_conntrack_acct == 0


def test_the_table_shows_counters_and_the_summary_says_why(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture, rules = tmp_path / "c.pcap", tmp_path / "rules.v4"
    write_pcap(capture, [(1.0 + i, b.ethernet(d)) for i, d in enumerate(flow(CLIENT, SERVER))])
    rules.write_text(CONNBYTES)
    assert main(["table", str(capture), "--rules", str(rules), "--format", "conntrack"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert "dport=53 packets=2 bytes=59 src=" in line
    assert "dport=5000 packets=2 bytes=59 [ASSURED]" in line  # the drops counted too
    assert main(["replay", str(capture), "--rules", str(rules), "--summary-only"]) == 0
    out = capsys.readouterr().out
    assert "verdicts: ACCEPT 2, DROP 2" in out
    assert (f"{rules}:5: note: connbytes turns connection accounting on "
            "(nf_conntrack_acct=1)") in out


@pytest.mark.kernel
def test_loading_connbytes_turns_the_kernels_accounting_on(kernel: None,
                                                          made: list[str]) -> None:
    with KernelFirewall(PLAIN) as plain:
        assert plain.topology is not None
        assert netns.read_netns_file(plain.topology.firewall, ACCT) == "0\n"
    with KernelFirewall(None, CONNBYTES) as firewall:
        assert firewall.topology is not None
        assert netns.read_netns_file(firewall.topology.firewall, ACCT) == "1\n"
        firewall.send(b.udp(CLIENT6, SERVER6, 5000, 53, b"q"), 0)
        (entry,) = firewall.conntrack_list()
        assert "dport=53 packets=1 bytes=49 [UNREPLIED] src=" in entry
        assert entry.endswith("dport=5000 packets=0 bytes=0 mark=0 use=1")


@pytest.mark.kernel
def test_statewall_counts_and_matches_as_the_kernel_does(kernel: None,
                                                         made: list[str]) -> None:
    datagrams = [Datagram(n, d) for n, d in enumerate(
        flow(CLIENT, SERVER) + flow(CLIENT6, SERVER6), 1)]
    # The pause makes the fourth datagram the one that assures the UDP stream.
    result = verify_datagrams(datagrams, CONNBYTES, CONNBYTES, waits={4: 2.1})
    assert [p.kernel_answer() for p in result.packets] == [
        "NEW/ORIGINAL forwarded", "ESTABLISHED/REPLY forwarded",
        "ESTABLISHED/ORIGINAL dropped", "ESTABLISHED/REPLY dropped"] * 2
    assert all(p.agree for p in result.packets), result.disagreements
    assert len(result.table.kernel) == 2
    assert all(line.count("packets=2 bytes=") == 2 for line in result.table.kernel)
    assert result.table.same, (result.table.only_kernel, result.table.only_statewall)
