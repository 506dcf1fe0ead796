"""Fitting a shared nftables ruleset (../shared/nft-rulesets) onto the kernel oracle.

The same fitting as the iptables cases (test_verify_rulesets.py), for nft
text: the kernel's listing `NAME.nft` is read, the documented literal fixes
are applied, and interface names are renamed wherever they stand quoted
(`iifname "eth0"`, `oifname { "eth0", "wlan0" }`, `iif "lan"`, vmap keys):
the side where connections start is `swl`, the other `swr`. The firewall's
own addresses and routes come from `--iface NAME=ADDR/PREFIX,CIDR` texts
(`NftSetup.ifaces`), given to the kernel and statewall alike; a ruleset
written for a host is verified with those addresses local, so its input
chain meets the traffic addressed to them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from statewall.oracle.verify import Datagram, VerifyResult, verify_datagrams
from statewall.topology import Topology, parse_iface


@dataclass(frozen=True)
class NftSetup:
    """One shared nft ruleset and how it is fitted onto the oracle's router."""

    name: str  # NAME of ../shared/nft-rulesets/NAME.nft
    interfaces: Mapping[str, str] = field(default_factory=dict)
    fixes: tuple[tuple[str, str], ...] = ()  # literal replacements, each must apply
    ifaces: tuple[str, ...] = ()  # `--iface NAME=ADDR/PREFIX,CIDR` texts (after renaming)

    def text(self, shared: Path) -> str:
        text = (shared / "nft-rulesets" / f"{self.name}.nft").read_text()
        for old, new in self.fixes:
            assert old in text, f"{self.name}: nothing to fix, {old!r} not found"
            text = text.replace(old, new)
        return rename_quoted_interfaces(text, self.interfaces)


def rename_quoted_interfaces(text: str, mapping: Mapping[str, str]) -> str:
    """Every quoted interface name of `mapping` replaced (`"eth0"` -> `"swl"`)."""
    for old, new in mapping.items():
        text = text.replace(f'"{old}"', f'"{new}"')
    return text


def run_nft(setup: NftSetup, shared: Path, datagrams: Sequence[Datagram]) -> VerifyResult:
    """`datagrams` through the fitted ruleset, in the kernel and in statewall."""
    machine = Topology.build((), [parse_iface(t) for t in setup.ifaces])
    return verify_datagrams(datagrams, None, None, nft=setup.text(shared),
                            local=machine.local, ifaces=machine.interfaces,
                            addresses=machine.addresses)
