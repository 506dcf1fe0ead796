"""`statewall table`'s `conntrack -L` filters against the real conntrack tool.

The same datagrams go through the live kernel (a forwarding firewall in
namespaces, with a ruleset that sets connection marks and a zone) and
through statewall; then every option set below is given to `conntrack -L`
in the firewall namespace and to `statewall table --format conntrack`, and
both must list the same connections (compared by their original tuple, as
timeouts and ordering differ by nature).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from statewall import builder as b
from statewall.capture import LINKTYPE_RAW, write_pcap
from statewall.cli import main

pytestmark = pytest.mark.kernel

C, C2, C3 = "10.99.1.1", "10.99.1.2", "10.99.1.3"
S, S2 = "10.99.2.1", "10.99.2.2"
C6, S6 = "fd99:1::1", "fd99:2::1"
T0 = 1_700_000_000.0

RULES = """\
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -s 10.99.1.3/32 -j CT --zone 7
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p udp -m udp --dport 5353 -j CONNMARK --set-xmark 0x13/0xffffffff
-A PREROUTING -p udp -m udp --dport 5354 -j CONNMARK --set-xmark 0x5/0xffffffff
COMMIT
"""


def datagrams() -> list[tuple[bytes, int]]:
    """(datagram, side): 0 from the client side, 1 from the server side."""
    return [
        (b.tcp(C, S, 1000, 80, "S", 100), 0),
        (b.tcp(S, C, 80, 1000, "SA", 500, 101), 1),
        (b.tcp(C, S, 1000, 80, "A", 101, 501), 0),       # ESTABLISHED, ASSURED
        (b.tcp(C, S, 1001, 80, "S", 7), 0),              # SYN_SENT, unreplied
        (b.tcp(C2, S2, 2000, 22, "S", 9), 0),
        (b.udp(C, S, 5000, 53, b"q"), 0),
        (b.udp(S, C, 53, 5000, b"a"), 1),                # SEEN_REPLY
        (b.udp(C2, S2, 5001, 5353, b"m"), 0),            # mark 0x13
        (b.udp(C2, S, 5002, 5354, b"m"), 0),             # mark 0x5
        (b.udp(C3, S, 5003, 53, b"z"), 0),               # zone 7
        (b.icmp_echo(C, S2, 7, 1), 0),
        (b.udp(C6, S6, 5004, 53, b"q"), 0),
        (b.udp(S6, C6, 53, 5004, b"a"), 1),
    ]


OPTION_SETS = [
    [], ["-p", "tcp"], ["-p", "6"], ["-p", "UDP"], ["-p", "icmp"], ["-p", "ipv6-icmp"],
    ["-p", "udp", "--sport", "5000"], ["-p", "udp", "--dport", "53"],
    ["-p", "tcp", "--sport", "1000", "--dport", "81"],
    ["-p", "tcp", "--state", "ESTABLISHED"], ["-p", "tcp", "--state", "SYN_SENT"],
    ["-s", C], ["-s", "10.99.1.0/24"], ["-s", "10.99.1.77/30"], ["-s", S], ["-d", S2],
    ["--orig-src", C2, "--orig-dst", S], ["-s", "fd99:1::/32"], ["-d", S6], ["-f", "ipv6"],
    ["-f", "ipv4"], ["-u", "ASSURED"], ["-u", "SEEN_REPLY"], ["-u", "UNREPLIED"],
    ["-u", "ASSURED,SEEN_REPLY"], ["-u", "SEEN_REPLY,UNREPLIED"],
    ["-u", "UNREPLIED,SEEN_REPLY"], ["-u", "EXPECTED"], ["--status", "assured"],
    ["-m", "0x13"], ["-m", "19"], ["-m", "0x10/0xf0"], ["-m", "3/0x3"], ["-m", "19/0xf"],
    ["-m", "0"], ["--zone", "7"], ["--zone", "0"],
    ["-p", "udp", "-s", C2, "--dport", "5353"], ["-p", "tcp", "-u", "UNREPLIED", "-d", S2],
]

_TUPLE = re.compile(r"^(\S+)\s+\d+\s.*?src=(\S+) dst=(\S+) (?:sport=(\d+) dport=(\d+)|type=)")


def originals(lines: list[str]) -> list[tuple[str, ...]]:
    """Each listed connection's protocol and original tuple, sorted."""
    out = []
    for line in lines:
        match = _TUPLE.match(line)
        assert match, f"not a conntrack -L line: {line!r}"
        out.append(tuple(part or "" for part in match.groups()))
    return sorted(out)


def test_table_filters_select_what_conntrack_selects(
        kernel: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from statewall.oracle import netns
    from statewall.oracle.kernel import KernelFirewall

    capture, rules = tmp_path / "flows.pcap", tmp_path / "rules.v4"
    write_pcap(capture, [(T0 + i * 0.01, data) for i, (data, _) in enumerate(datagrams())],
               linktype=LINKTYPE_RAW)
    rules.write_text(RULES)
    kernel_lists = {}
    with KernelFirewall(RULES) as fw:
        for data, side in datagrams():
            fw.send(data, side)
        firewall = fw.topology.firewall if fw.topology else ""
        for options in OPTION_SETS:
            listed = netns.run(["conntrack", "-L", *options], firewall).splitlines()
            kernel_lists[" ".join(options)] = originals(listed)
    assert len(kernel_lists[""]) == 9
    assert len(kernel_lists["--zone 7"]) == 1 and len(kernel_lists["-m 0x13"]) == 1
    for options in OPTION_SETS:
        code = main(["table", str(capture), "--rules", str(rules), "--format", "conntrack",
                     *options])
        out, err = capsys.readouterr()
        assert (code, err) == (0, "")
        assert originals(out.splitlines()) == kernel_lists[" ".join(options)], options
