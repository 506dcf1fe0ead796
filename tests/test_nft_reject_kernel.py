"""nft `reject` in every form the shared rulesets and nft's listings use, against the kernel.

An inet table rejects in input, each UDP port with its own form: the bare
`reject`, `icmpx` by name and by number (`reject with icmpx 3`, which nft lists
as admin-prohibited; py-inet-reject.loaded.nft holds it), `with icmpx type ...`
(the fw4 originals), `icmp`/`icmpv6` codes with and without a name nft knows,
and `tcp reset`. A client namespace sends to each port over IPv4 and IPv6 and
watches what comes back on its wire; statewall walks the same datagrams through
the ruleset as read from the text and from the kernel's `nft -j` listing of it.
They must agree: an inet reject answers IPv4 with ICMP and IPv6 with ICMPv6
(icmpx mapped to each family's code), an `icmp` form rejects only IPv4 and an
`icmpv6` form only IPv6 (the other family goes on to the next rule, a drop with
no answer).

The ICMP rate limits are lifted in the firewall, or the kernel would hold back
answers after the first few.
"""

from __future__ import annotations

import json
import select
import shutil
import socket
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from nftwalk import engine
from rulewalk import walk

from statewall.decode import decode_datagram
from statewall.nft.load import objects_from_text
from statewall.oracle import netns as ns

FORMS = {
    1: "reject",
    2: "reject with icmpx 3",
    3: "reject with icmpx type host-unreachable",
    4: "reject with icmpx no-route",
    5: "reject with icmpx 1",
    6: "reject with icmp 4",
    7: "reject with icmp 15",
    8: "reject with icmp type host-prohibited",
    9: "reject with icmpv6 7",
    10: "reject with icmpv6 policy-fail",
    11: "reject with icmpv6 type addr-unreachable",
    12: "reject with icmpx port-unreachable",
}
TCP_PORT = 13
RULESET = "table inet t {\n\tchain i {\n" \
    "\t\ttype filter hook input priority filter; policy accept;\n" + "".join(
        f"\t\tudp dport {port} {form}\n" for port, form in FORMS.items()) + \
    f"\t\ttcp dport {TCP_PORT} reject with tcp reset\n" \
    "\t\tmeta l4proto udp drop\n\t}\n}\n"

FIREWALL, CLIENT = ("192.0.2.1", "2001:db8::1"), ("192.0.2.2", "2001:db8::2")
ETH_P_ALL = 0x0003

# What iptables' REJECT names (the core records these) send: (protocol, type, code).
V4_SENT = {"icmp-net-unreachable": 0, "icmp-host-unreachable": 1, "icmp-proto-unreachable": 2,
           "icmp-port-unreachable": 3, "icmp-frag-needed": 4, "icmp-net-prohibited": 9,
           "icmp-host-prohibited": 10, "icmp-admin-prohibited": 13}
V6_SENT = {"icmp6-no-route": 0, "icmp6-adm-prohibited": 1, "icmp6-addr-unreachable": 3,
           "icmp6-port-unreachable": 4, "icmp6-policy-fail": 5, "icmp6-reject-route": 6}
Answer = tuple[str, int, int] | None


def sent_answer(reject_with: str | None) -> Answer:
    if reject_with is None:
        return None
    if reject_with == "tcp-reset":
        return ("tcp", 0, 0)
    if reject_with.startswith("icmp6-"):
        code = V6_SENT.get(reject_with)
        return ("icmpv6", 1, code if code is not None else int(reject_with.split("-")[-1]))
    code = V4_SENT.get(reject_with)
    return ("icmp", 3, code if code is not None else int(reject_with.split("-")[-1]))


def wire_answer(frame: bytes) -> Answer:
    """An ICMP/ICMPv6 destination unreachable or a TCP reset, else None."""
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    ip = frame[14:]
    if ethertype == 0x0800 and ip[9] == 1 and ip[(ip[0] & 15) * 4] == 3:
        at = (ip[0] & 15) * 4
        return ("icmp", ip[at], ip[at + 1])
    if ethertype == 0x0800 and ip[9] == 6 and ip[(ip[0] & 15) * 4 + 13] & 0x04:
        return ("tcp", 0, 0)
    if ethertype == 0x86DD and ip[6] == 58 and ip[40] == 1:
        return ("icmpv6", ip[40], ip[41])
    if ethertype == 0x86DD and ip[6] == 6 and ip[40 + 13] & 0x04:
        return ("tcp", 0, 0)
    return None


@contextmanager
def client_and_firewall() -> Iterator[tuple[str, str]]:
    client, firewall, _ = ns.new_names()
    try:
        for name in (client, firewall):
            ns.run(["ip", "netns", "add", name])
        ns.ip_batch(firewall, [f"link add fw type veth peer name cl netns {client}",
                               "link set fw up", "link set lo up",
                               f"addr add {FIREWALL[0]}/24 dev fw",
                               f"addr add {FIREWALL[1]}/64 dev fw nodad"])
        ns.ip_batch(client, ["link set cl up", "link set lo up",
                             f"addr add {CLIENT[0]}/24 dev cl",
                             f"addr add {CLIENT[1]}/64 dev cl nodad"])
        ns.write_sysctl(firewall, "net.ipv4.icmp_ratelimit", 0)
        ns.write_sysctl(firewall, "net.ipv6.icmp.ratelimit", 0)
        yield client, firewall
    finally:
        for name in (client, firewall):
            ns.run(["ip", "netns", "del", name])


def kernel_answers(client: str) -> dict[tuple[int, int], Answer]:
    """(family, port) -> what came back on the client's wire within a second."""
    answers: dict[tuple[int, int], Answer] = {}
    with ns.entered(client):
        watch = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        watch.bind(("cl", 0))
    with watch:
        for family, af in ((4, socket.AF_INET), (6, socket.AF_INET6)):
            for port in [*FORMS, TCP_PORT]:
                with ns.entered(client):
                    kind = socket.SOCK_STREAM if port == TCP_PORT else socket.SOCK_DGRAM
                    sock = socket.socket(af, kind)
                with sock:
                    sock.setblocking(False)
                    if port == TCP_PORT:
                        sock.connect_ex((FIREWALL[family == 6], port))
                    else:
                        sock.sendto(b"x", (FIREWALL[family == 6], port))
                    answers[(family, port)] = _first_answer(watch, 0.3 if port > 1 else 1.0)
    return answers


def _first_answer(watch: socket.socket, wait: float) -> Answer:
    end = time.monotonic() + wait
    while (left := end - time.monotonic()) > 0:
        if not select.select([watch], [], [], left)[0]:
            break
        frame, (_, _, kind, *_) = watch.recvfrom(65535)
        answer = wire_answer(frame) if kind != socket.PACKET_OUTGOING else None
        if answer is not None:
            return answer
    return None


def statewall_answers(objects: list[dict[str, object]]) -> dict[tuple[int, int], Answer]:
    """The same datagrams walked through the ruleset's input chain."""
    from statewall import builder as b

    rules = [o["rule"]["expr"] for o in objects if "rule" in o]  # type: ignore[index]
    answers: dict[tuple[int, int], Answer] = {}
    for family in (4, 6):
        e = engine({"i": rules}, core_family=family, base="INPUT")  # type: ignore[dict-item]
        src, dst = CLIENT[family == 6], FIREWALL[family == 6]
        for port in [*FORMS, TCP_PORT]:
            data = b.tcp(src, dst, 40000, port, "S") if port == TCP_PORT else \
                b.udp(src, dst, 40000, port, b"x")
            d = walk(e, "filter", "INPUT", decode_datagram(data))
            assert d is not None
            answers[(family, port)] = sent_answer(d.reject_with)
    return answers


@pytest.mark.kernel
def test_every_reject_form_answers_as_the_kernel(kernel: None, made: list[str]) -> None:
    if shutil.which("nft") is None:
        pytest.skip("nft not installed (apt-get install nftables)")
    with client_and_firewall() as (client, firewall):
        ns.run(["nft", "-f", "-"], firewall, stdin=RULESET)
        listing = json.loads(ns.run(["nft", "-j", "list", "ruleset"], firewall))
        got = kernel_answers(client)
    # The kernel's answers pinned: each form means what the docstring says.
    assert got[(4, 2)] == ("icmp", 3, 13) and got[(6, 2)] == ("icmpv6", 1, 1)
    assert got[(4, 7)] == ("icmp", 3, 15) and got[(6, 7)] is None
    assert got[(4, 9)] is None and got[(6, 9)] == ("icmpv6", 1, 7)
    assert got[(4, TCP_PORT)] == got[(6, TCP_PORT)] == ("tcp", 0, 0)
    assert statewall_answers(objects_from_text(RULESET, "t.nft")) == got
    kernel_objects = [o for o in listing["nftables"] if "metainfo" not in o]
    assert statewall_answers(kernel_objects) == got
