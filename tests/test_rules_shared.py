"""Every shared ruleset loads, round-trips, and compiles (or fails exactly as documented)."""

from __future__ import annotations

from pathlib import Path

import pytest

from statewall.rules.compile import compile_ruleset
from statewall.rules.errors import RulesetError
from statewall.rules.model import Ruleset
from statewall.rules.parser import parse_ruleset
from statewall.rules.save import format_ruleset

RULESETS = Path(__file__).resolve().parents[2] / "shared" / "rulesets"
FILES = sorted(p.name for p in RULESETS.glob("*") if p.name != "SOURCES.md") \
    if RULESETS.is_dir() else []
pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not RULESETS.is_dir(), reason=f"shared rulesets not found at {RULESETS}"),
]

# Chains ufw creates itself, which its rule fragments jump to.
UFW_STUBS = {
    "ufw-after.rules": ("ufw-skip-to-policy-input",),
    "ufw-after6.rules": ("ufw6-skip-to-policy-input",),
    "ufw-before.rules": ("ufw-logging-deny",),
    "ufw-before6.rules": ("ufw6-logging-deny",),
}
BROKEN = "iptables_semantics-parser-test.v4"
# Files using sets they do not hold, with the first line using one: iptables-restore
# refuses them too until the sets exist (xt_set's checkentry), so statewall wants
# their `ipset save`.
NOT_EVALUATED = {
    "moby-docker-usernet-portmap.v4": (25, "match set is not evaluated"),
    "netnet-serverfault-759927-ipset.v4": (20, "match set is not evaluated"),
}
# The sets those files use, as `ipset save` would print them (for `check --ipset`).
IPSETS = {
    "moby-docker-usernet-portmap.v4": "create docker-ext-bridges-v4 hash:net family inet\n",
    "netnet-serverfault-759927-ipset.v4": "create whitelist hash:net family inet\n",
}


def family_of(name: str) -> int:
    return 6 if name.endswith((".v6", "6.rules")) else 4


def text_of(name: str) -> str:
    text = (RULESETS / name).read_text(encoding="utf-8")
    if "tum-chair" in name:  # anonymised MACs, which iptables refuses (SOURCES.md)
        text = text.replace("XX:XX:XX:XX:XX:XX", "00:00:00:00:00:00")
    if name == "tutorial-rc.firewall.v4":  # iptables 1.8 refuses the upper-case level
        text = text.replace("--log-level DEBUG", "--log-level debug")
    stubs = UFW_STUBS.get(name, ())
    if stubs:
        head, _, rest = text.partition("*filter\n")
        text = head + "*filter\n" + "".join(f":{c} - [0:0]\n" for c in stubs) + rest
    return text


def load(name: str) -> Ruleset:
    return parse_ruleset(text_of(name), name, family_of(name))


@pytest.mark.parametrize("name", [f for f in FILES if f != BROKEN])
def test_ruleset_loads_and_round_trips(name: str) -> None:
    ruleset = load(name)
    assert ruleset.tables
    printed = format_ruleset(ruleset)
    again = parse_ruleset(printed, name, family_of(name))
    assert again == ruleset
    assert format_ruleset(again) == printed


@pytest.mark.parametrize("name", [f for f in FILES if f != BROKEN])
def test_ruleset_compiles_or_names_what_is_not_evaluated(name: str) -> None:
    ruleset = load(name)
    if name not in NOT_EVALUATED:
        compile_ruleset(ruleset)
        return
    line, why = NOT_EVALUATED[name]
    with pytest.raises(RulesetError) as caught:
        compile_ruleset(ruleset)
    assert caught.value.line == line and why in str(caught.value)
    compiled = compile_ruleset(ruleset, allow_unknown=True)
    assert compiled.unknown_rules


def test_parser_torture_file_fails_at_its_unknown_option() -> None:
    with pytest.raises(RulesetError) as caught:
        parse_ruleset((RULESETS / BROKEN).read_text(), BROKEN)
    assert str(caught.value) == (
        "iptables_semantics-parser-test.v4:12: unknown option --something-else "
        "for match multiport")


def test_parser_torture_file_next_fails_at_icmp6_in_ipv4() -> None:
    text = (RULESETS / BROKEN).read_text().replace(" --something-else", "")
    with pytest.raises(RulesetError) as caught:
        parse_ruleset(text, BROKEN)
    assert str(caught.value) == (
        "iptables_semantics-parser-test.v4:40: match `icmp6' is not available for IPv4")


def test_files_as_shipped_fail_where_iptables_fails() -> None:
    mac = parse_ruleset((RULESETS / "netnet-tum-chair-2016-06.v4").read_text(), "tum.v4")
    with pytest.raises(RulesetError, match=r"^tum.v4:1826: mac match: Invalid MAC address"):
        compile_ruleset(mac)
    tutorial = parse_ruleset((RULESETS / "tutorial-rc.firewall.v4").read_text(), "rc")
    with pytest.raises(RulesetError, match=r'^rc:37: LOG target: log level "DEBUG" unknown$'):
        compile_ruleset(tutorial)
    ufw = parse_ruleset((RULESETS / "ufw-before.rules").read_text(), "before.rules")
    with pytest.raises(RulesetError,
                       match=r"^before.rules:30: Chain 'ufw-logging-deny' does not exist$"):
        compile_ruleset(ufw)


def test_crlf_file_loads() -> None:
    assert b"\r\n" in (RULESETS / "netnet-vsrv-ufw-fail2ban.v4").read_bytes()
    compile_ruleset(load("netnet-vsrv-ufw-fail2ban.v4"))
