"""`replay --counters` with an nftables ruleset: `nft list ruleset` with the counts.

Each `counter` statement counts the packets that reach it where it stands
(the kernel's per-statement counts are checked against the core's in
test_nft_expr_kernel.py); here the replay's counts must come back into the
listing at their statements: an inet table's IPv4 and IPv6 packets summed
into one count, a counter before a test counting what reaches it, and a
named counter object once however many rules update it.
"""

from __future__ import annotations

from pathlib import Path

from statewall import builder as b
from statewall.api import load_firewall, replay
from statewall.capture import write_pcap
from statewall.cli import counters_text

RULES = """table inet t {
\tcounter seen {
\t\tpackets 0 bytes 0
\t}

\tchain fwd {
\t\ttype filter hook forward priority filter; policy accept;
\t\tcounter packets 0 bytes 0 udp dport 53 counter packets 0 bytes 0 accept
\t\tudp dport 7 counter name "seen" drop
\t\ttcp dport 7 counter name "seen" drop
\t}
}
"""


def test_counts_return_to_their_statements(tmp_path: Path) -> None:
    rules = tmp_path / "rules.nft"
    rules.write_text(RULES)
    datagrams = [b.udp("192.0.2.1", "198.51.100.1", 1000, 53, b"q"),
                 b.udp("2001:db8::1", "2001:db8:1::1", 1000, 53, b"q"),
                 b.udp("192.0.2.1", "198.51.100.1", 1001, 7, b"x"),
                 b.tcp("192.0.2.1", "198.51.100.1", 1002, 7, "S", 1)]
    capture = tmp_path / "c.pcap"
    write_pcap(capture, [(1.0 + i, b.ethernet(d)) for i, d in enumerate(datagrams)])
    firewall = load_firewall(nft=rules)
    verdicts = list(replay(capture, firewall))
    assert [v.verdict for v in verdicts] == ["ACCEPT", "ACCEPT", "DROP", "DROP"]
    sizes = [len(d) for d in datagrams]
    text = counters_text(firewall, "save")
    assert text == "# nft list ruleset\n" + RULES.replace(
        "\t\tpackets 0 bytes 0", f"\t\tpackets 2 bytes {sizes[2] + sizes[3]}").replace(
        "counter packets 0 bytes 0 udp", f"counter packets 4 bytes {sum(sizes)} udp").replace(
        "53 counter packets 0 bytes 0", f"53 counter packets 2 bytes {sizes[0] + sizes[1]}")
