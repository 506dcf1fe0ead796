"""An iptables ruleset and its nftables translation decide alike.

`iptables-restore-translate` (`ip6tables-restore-translate`) turns each shared
iptables ruleset into `nft` commands; replaying the shared captures through
statewall with the original and with the translation must give every packet
the same verdict, ctstate, direction, status bits and addresses as it leaves
(NAT), and leave the same conntrack table. Each capture is replayed twice: on
a router (every packet forwarded) and on a host owning the first packet's
destination (INPUT and OUTPUT). What cannot be compared is listed with the
reason: rulesets the tool does not translate (or translates with rules
commented out), and translations statewall refuses, each checked to still be
so, so neither list outlives its reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from conftest import SHARED, _unavailable
from test_rules_shared import FILES, family_of, text_of

import statewall
from statewall.nft.lower import load_nft
from statewall.rules.errors import RulesetError

TRANSLATORS = {4: "iptables-restore-translate", 6: "ip6tables-restore-translate"}
TRACES = SHARED / "traces"

# The tool stops on these (its message), or leaves rules as `# ...` comments.
NOT_TRANSLATED = {
    "iptables_semantics-parser-test.v4": 'unknown option "--something-else"',
    "moby-docker-usernet-portmap.v4": "Set docker-ext-bridges-v4 doesn't exist",
    "netnet-serverfault-759927-ipset.v4": "Set whitelist doesn't exist",
    "sysconfig-firewall-services.v4": "line 22 failed",
    "iptables-tests-fedora27.v4": "# -t mangle -A POSTROUTING -o virbr0 -p udp -m udp "
                                  "--dport 68 -j CHECKSUM",
    "iptables-tests-ipt-save-filter.v4": "# -t filter -A in_icmp -p icmp -m icmp "
                                         "--icmp-type 1 -j ACCEPT",
    "iptables-tests-nft-save.v4": "# -t filter -A INPUT -d 8.0.0.0/5 -p icmp -m icmp "
                                  "--icmp-type 1 -j ACCEPT",
    "kube-proxy-eks-aws-cni.v4": "-m recent --set",
    "kube-proxy-eks-pod2service.v4": "-m recent --set",
    "kube-proxy-test-overall.v4": "-m nfacct",
    "netnet-docker-topos.v4": "-m recent --set",
    "netnet-home-user.v4": "-m recent --set",
    "netnet-ipv6-mailserver.v6": "-m hl --hl-eq 1",
    "netnet-majek-vpn.v4": "-m policy --dir out --pol ipsec",
    "netnet-medium-company.v4": "-m recent --set",
    "netnet-openlab-stettenstr.v4": "-m physdev --physdev-is-bridged",
    "netnet-shorewall-sqrl-2014.v4": "-j CT --helper amanda",
    "netnet-tum-chair-2016-06.v4": "-m recent",
    "netnet-tum-chair-2016-06.v6": "-m recent",
    "ufw-before6.rules": "-m hl --hl-eq 255",
}

# Translations statewall refuses, with what its one line names.
NOT_LOADED = {
    # The originals declare no chains (iptables-restore makes the built-in ones
    # itself); the translation adds rules to chains it never adds, which `nft -f`
    # refuses too.
    "iptables-tests-address-masks.v6": "no such chain: FORWARD",
    "iptables-tests-ipt-6.v4": "no such chain: FORWARD",
    "iptables-tests-restore-ordering.v4": "no such chain: FORWARD",
    # hashlimit becomes a meter (a dynamic set of limits).
    "netnet-serverfault-795234-hashlimit.v4": "meter",
}

# Pairs that differ as the kernel's two modules do. xt_limit keeps its credit
# in jiffies and nft's limit in nanoseconds, so where a burst runs out between
# two close packets they let different ones through (each agrees with the kernel
# on the capture: `statewall verify` with either file).
DIFFERENT = {
    ("netnet-openwrt-aa.v4", "tcp-syn-scan.pcapng"): "-m limit --limit 25/sec --limit-burst 50",
}

# Captures of each family, chosen to cover helpers, ICMP errors, fragments,
# scans and a LAN mix in a few seconds.
CAPTURES = {
    4: ["ftp-active-port-download-ipv4.pcap", "icmp-port-unreachable-dns-mixed.pcap",
        "icmp-time-exceeded-traceroute-icmp.pcapng", "ipv4-frag-icmp-echo.pcap",
        "large-mixed-lan-1kxun.pcap", "sip-register-invite-rtp.pcap",
        "tcp-rst-closed-port-then-http.pcap", "tcp-syn-scan.pcapng", "tftp-rrq-read.pcap"],
    6: ["ftp-epsv-eprt-internet-ipv6.pcap", "icmp6-echo-ipv6.pcap",
        "ip-frag-dns-udp-ipv4-ipv6.pcap", "ipv6-mixed-dns-icmp6-errors-tcp.pcap"],
}
COMPARED = [name for name in FILES if name not in NOT_TRANSLATED and name not in NOT_LOADED]

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not FILES, reason=f"shared rulesets not found at {SHARED}"),
]


@dataclass(frozen=True)
class Translation:
    returncode: int
    text: str  # the nft commands
    stderr: str

    @property
    def commented(self) -> list[str]:
        """The rules the tool left as comments (its header and footer aside)."""
        return [line for line in self.text.splitlines() if line.startswith("# ")
                and not re.match(r"# (Translated by|Completed on) ", line)]


@cache
def translate(name: str) -> Translation:
    tool = TRANSLATORS[family_of(name)]
    if shutil.which(tool) is None:
        _unavailable(f"{tool} not installed (apt-get install iptables)")
    done = subprocess.run([tool, "-f", "/dev/stdin"], input=text_of(name), capture_output=True, text=True,
                          check=False)
    return Translation(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("translate")


def files(name: str, workdir: Path) -> tuple[Path, Path]:
    """The original (as the shared rules tests load it) and its translation."""
    original, translated = workdir / name, workdir / f"{name}.nft"
    if not translated.exists():
        original.write_text(text_of(name), encoding="utf-8")
        translated.write_text(translate(name).text, encoding="utf-8")
    return original, translated


@pytest.mark.parametrize("name", sorted(NOT_TRANSLATED))
def test_not_translated(name: str) -> None:
    result = translate(name)
    said = result.stderr if result.returncode else "\n".join(result.commented)
    assert result.returncode or result.commented, f"{name} translates now: compare it"
    assert NOT_TRANSLATED[name] in said


@pytest.mark.parametrize("name", sorted(NOT_LOADED))
def test_not_loaded(name: str, workdir: Path) -> None:
    result = translate(name)
    assert result.returncode == 0 and not result.commented
    _, translated = files(name, workdir)
    with pytest.raises(RulesetError, match=re.escape(NOT_LOADED[name])):
        load_nft(str(translated))


def outcome(capture: Path, family: int, rules: Path | None, nft: Path | None,
            local: tuple[str, ...]) -> tuple[list[tuple[object, ...]], list[str]]:
    option = {"rules" if family == 4 else "rules6": rules} if rules else {"nft": nft}
    run = statewall.replay(capture, local=local, **option)  # type: ignore[arg-type]
    packets = [(p.index, p.verdict, p.ctstate, p.ctdir, p.status, p.leaving()) for p in run]
    return packets, run.table()


def host(capture: Path) -> tuple[str, ...]:
    """The machine owning the first packet's destination."""
    first = next(iter(statewall.replay(capture, limit=1)))
    return (first.dst,) if first.dst else ()


@pytest.mark.parametrize("name", COMPARED)
def test_translation_decides_alike(name: str, workdir: Path) -> None:
    result = translate(name)
    assert result.returncode == 0 and not result.commented, result.stderr
    original, translated = files(name, workdir)
    family = family_of(name)
    for capture in CAPTURES[family]:
        if (name, capture) in DIFFERENT:
            continue
        path = TRACES / capture
        for local in ((), host(path)):
            want = outcome(path, family, original, None, local)
            got = outcome(path, family, None, translated, local)
            where = f"{capture} with local={list(local)}"
            for a, b in zip(want[0], got[0], strict=True):
                assert a == b, f"{where}: packet {a[0]}: iptables {a[1:]}, nft {b[1:]}"
            assert want[1] == got[1], f"{where}: the conntrack tables differ"


@pytest.mark.parametrize(("name", "capture"), sorted(DIFFERENT))
def test_known_differences_still_differ(name: str, capture: str, workdir: Path) -> None:
    original, translated = files(name, workdir)
    assert DIFFERENT[name, capture] in original.read_text(encoding="utf-8")
    local = host(TRACES / capture)
    family = family_of(name)
    assert outcome(TRACES / capture, family, original, None, local) != \
        outcome(TRACES / capture, family, None, translated, local)
