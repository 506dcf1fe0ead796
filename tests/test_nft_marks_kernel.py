"""`ct mark set` and `meta mark set` with bitwise expressions, against the kernel.

The kernel evaluates `ct mark set ct mark and A or B` (and `xor`, `|`, `&`,
shifts) as nft_bitwise steps on the loaded value; nft computes what has no key
(`ct mark set 0x11 xor 0x1331`) when it loads the rule. A ruleset sets the marks
in prerouting, each destination port its own form, and the forward chain
accepts a packet only when the mark it carries is the value the form must give
(policy drop): a wrong mark is a dropped packet, which `verify` compares. Each
connection's reply is sent too: it must carry the connection's mark. The
ruleset is loaded as written (an nftables.conf with the word operators) and as
the kernel's own `nft -j` listing of it.

The forms are those the shared rulesets' listings hold (kube-proxy-nftables:
`meta mark | 0x4000`, `^ 0x4000`; fw4-rules-mark: `meta mark & 0xffff00ff |
0xab`, `& ... ^ 0xad`, `& 0xae`, `| 0xaf`; py-any-ct-a: `ct mark | 0x1`, `ct
mark set meta mark`, constant expressions; py-any-meta-a: constant expressions)
and a shift.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from test_verify_rulesets import assert_agrees, handshake

from statewall.oracle import netns as ns
from statewall.oracle.verify import Datagram, VerifyResult, verify_datagrams

# 0x0000ff0f to start with; port -> (form, the mark it gives)
FORMS = {
    1001: ("ct mark set ct mark xor 0x4", 0xFF0B),
    1002: ("ct mark set ct mark and 0xff00 or 0x12", 0xFF12),
    1003: ("ct mark set ct mark & 0xf0f0 ^ 0x0f00", 0xFF00),
    1004: ("ct mark set ct mark | 0x10000", 0x1FF0F),
    1005: ("ct mark set 0x11 xor 0x1331", 0x1320),
    1006: ("ct mark set 0x12 or 0x11", 0x13),
    1007: ("ct mark set meta mark and 0xffff", 0xCD),
    1008: ("meta mark set meta mark & 0xffff00ff | 0x000000ab ct mark set meta mark",
            0xAB00EF),
    1009: ("meta mark set meta mark & 0xffff00ff ^ 0x000000ad ct mark set meta mark",
            0xAB0060),
    1010: ("meta mark set meta mark | 0x4000 meta mark set meta mark ^ 0x4000 "
           "ct mark set meta mark", 0xAB00CD),
    1011: ("ct mark set (meta mark | 0x10) << 8", 0xAB00DD00),
    1012: ("ct mark set ct mark >> 4 xor 0x1", 0xFF1),
    1013: ("ct mark set ct mark | 0x1 & 0x3", 0xFF0F),  # & binds first: | 0x1
}
WRONG = 1020  # xor 0x4, but the forward chain asks for the unchanged mark

RULESET = "table inet marks {\n\tchain pre {\n" \
    "\t\ttype filter hook prerouting priority mangle; policy accept;\n" \
    "\t\tct state new ct mark set 0x0000ff0f\n" \
    "\t\tmeta mark set 0x00ab00cd\n" + "".join(
        f"\t\tct state new tcp dport {port} {form}\n" for port, (form, _) in FORMS.items()) + \
    f"\t\tct state new tcp dport {WRONG} ct mark set ct mark xor 0x4\n" \
    "\t}\n\tchain forward_check {\n\t\ttype filter hook forward priority filter; policy drop;\n" + "".join(
        f"\t\ttcp dport {port} ct mark {mark:#x} accept\n"
        f"\t\ttcp sport {port} ct mark {mark:#x} accept\n" for port, (_, mark) in FORMS.items()) + \
    f"\t\ttcp dport {WRONG} ct mark 0xff0f accept\n\t}}\n}}\n"

CLIENT, SERVER = "192.0.2.10", "198.51.100.20"
NEW_F, EST_R = "NEW/ORIGINAL forwarded", "ESTABLISHED/REPLY forwarded"


def traffic() -> list[tuple[bytes, str]]:
    out: list[tuple[bytes, str]] = []
    for n, port in enumerate(FORMS):
        syn, synack, _ = handshake(CLIENT, SERVER, 42000 + n, port)
        out += [(syn, NEW_F), (synack, EST_R)]
    wrong = handshake(CLIENT, SERVER, 42100, WRONG)
    out += [(wrong[0], "NEW/ORIGINAL dropped")]
    return out


def kernel_json(text: str, name: str) -> str:
    """The kernel's `nft -j list ruleset` of `text`, loaded in namespace `name`."""
    ns.run(["nft", "-f", "-"], name, stdin=text)
    return json.dumps(json.loads(ns.run(["nft", "-j", "list", "ruleset"], name)))


def _verify(nft: str) -> VerifyResult:
    sent = traffic()
    result = verify_datagrams([Datagram(n, d) for n, (d, _) in enumerate(sent, 1)], None,
                              nft=nft)
    assert [p.kernel_answer() for p in result.packets] == [a for _, a in sent], \
        "the kernel changed"
    return result


@pytest.mark.kernel
def test_marks_set_with_bitwise_forms_as_the_kernel(kernel: None, netns: str) -> None:
    if subprocess.run(["which", "nft"], capture_output=True).returncode:
        pytest.skip("nft not installed (apt-get install nftables)")
    assert_agrees("marks (text)", _verify(RULESET))
    listing = kernel_json(RULESET, netns)
    assert '"<<"' in listing and '"^"' in listing  # the JSON keeps the shift and the xor
    assert_agrees("marks (kernel JSON)", _verify(listing))
