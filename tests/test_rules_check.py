"""`statewall check [--lint]`: every error with file and line, and the lint warnings."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from statewall.cli import main
from statewall.rules.cli_commands import add_check_parser, check_command
from statewall.rules.matches.xt_rpfilter import NO_ROUTES

RULESETS = Path(__file__).resolve().parents[2] / "shared" / "rulesets"

# The seeds' example rules (seed-examples.md 1, 4, 5, 6, 10, 12) on one host.
SEEDS = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp ! --syn -m state --state NEW -j DROP
-A INPUT -p icmp -m state --state ESTABLISHED,RELATED -j ACCEPT
-A INPUT -p tcp --sport 21 -m state --state ESTABLISHED -j ACCEPT
-A INPUT -p tcp --sport 20 -m state --state ESTABLISHED,RELATED -j ACCEPT
-A INPUT -p tcp --sport 1024: --dport 1024: -m state --state ESTABLISHED -j ACCEPT
-A INPUT -p tcp --dport 22 -m state --state NEW -m recent --set
-A INPUT -p tcp --dport 22 -m state --state NEW -m recent --update --seconds 100 --hitcount 10 -j DROP
-A OUTPUT -p icmp -m state --state NEW,ESTABLISHED,RELATED -j ACCEPT
-A OUTPUT -p tcp --dport 21 -m state --state NEW,ESTABLISHED -j ACCEPT
-A OUTPUT -p tcp --dport 20 -m state --state ESTABLISHED -j ACCEPT
-A OUTPUT -p tcp --sport 1024: --dport 1024: -m state --state ESTABLISHED,RELATED -j ACCEPT
COMMIT
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_seed_rules_lint_warnings(tmp_path: Path) -> None:
    path = write(tmp_path, "seeds.v4", SEEDS)
    code, lines = check_command(path, None, lint=True, allow_unknown=False)
    assert code == 0
    assert [line.replace(path, "F") for line in lines] == [
        "F:6: warning: rule 2 of INPUT accepts ESTABLISHED but no earlier rule drops "
        "INVALID: INVALID packets fall through to the rules below",
        "F:8: warning: rule 4 of INPUT accepts RELATED but no `-t raw -j CT --helper` "
        "attaches a helper (not automatic since Linux 4.7): only ICMP errors will be RELATED",
        "F:12: warning: rule 1 of OUTPUT accepts ESTABLISHED but no earlier rule drops "
        "INVALID: INVALID packets fall through to the rules below",
        "F:13: warning: rule 2 of OUTPUT accepts TCP NEW without --syn: a stray ACK or FIN "
        "is NEW too (nf_conntrack_tcp_loose=1) and creates an entry",
        "F:15: warning: rule 4 of OUTPUT accepts RELATED but no `-t raw -j CT --helper` "
        "attaches a helper (not automatic since Linux 4.7): only ICMP errors will be RELATED",
    ]
    quiet, none = check_command(path, None, lint=False, allow_unknown=False)
    assert (quiet, none) == (0, [])


def test_helper_invalid_drop_and_syn_silence_the_warnings(tmp_path: Path) -> None:
    text = ("*raw\n-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n*filter\n"
            "-A INPUT -m conntrack --ctstate INVALID -j DROP\n"
            "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"
            "-A INPUT -p tcp --syn --dport 22 -m conntrack --ctstate NEW -j ACCEPT\nCOMMIT\n")
    assert check_command(write(tmp_path, "ok.v4", text), None, True, False) == (0, [])


def test_shadowed_rules_and_unreachable_chains(tmp_path: Path) -> None:
    text = ("*filter\n:ORPHAN - [0:0]\n"
            "-A INPUT -s 10.0.0.0/8 -j DROP\n"
            "-A INPUT -s 10.1.0.0/16 -p tcp -m tcp --dport 22 -j ACCEPT\n"
            "-A INPUT -m limit --limit 1/s -j ACCEPT\n"
            "-A INPUT -m limit --limit 1/s -j LOG\n"
            "-A INPUT -i eth+ -j RETURN\n"
            "-A INPUT -i eth0 -p udp -j ACCEPT\n"
            "-A ORPHAN -j ACCEPT\nCOMMIT\n")
    path = write(tmp_path, "sh.v4", text)
    code, lines = check_command(path, None, lint=True, allow_unknown=False)
    assert code == 0
    assert [line.replace(path, "F") for line in lines] == [
        "F:2: warning: chain ORPHAN of table filter is never reached (no jump or goto from "
        "a built-in chain leads to it)",
        "F:4: warning: rule 2 of INPUT is shadowed by rule 1 (line 3), which already "
        "decides every packet it could match",
        "F:8: warning: rule 6 of INPUT is shadowed by rule 5 (line 7), which already "
        "decides every packet it could match",
    ]


def test_every_error_is_reported(tmp_path: Path) -> None:
    text = ("*filter\n-A INPUT -p tcp --frob 1 -j ACCEPT\n-A INPUT -j NOWHERE\n"
            "-A INPUT -m mac --mac-source zz -j DROP\nCOMMIT\n")
    path = write(tmp_path, "bad.v4", text)
    code, lines = check_command(path, None, lint=True, allow_unknown=False)
    assert code == 1
    assert [line.replace(path, "F") for line in lines] == [
        "F:2: unknown option --frob for match tcp",
        "F:3: Chain 'NOWHERE' does not exist",
        "F:4: mac match: Invalid MAC address specified",
    ]


def test_check_parser_registers_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_check_parser(parser.add_subparsers())
    path = write(tmp_path, "bad.v4", "*filter\n-A INPUT -j NOWHERE\nCOMMIT\n")
    args = parser.parse_args(["check", path, "--lint"])
    assert args.handler(args) == 1
    assert capsys.readouterr().out == f"{path}:2: Chain 'NOWHERE' does not exist\n"


# --- the shared rulesets -----------------------------------------------------------

shared = pytest.mark.skipif(not RULESETS.is_dir(),
                            reason=f"shared rulesets not found at {RULESETS}")
FILES = sorted(p.name for p in RULESETS.glob("*") if p.name != "SOURCES.md") \
    if RULESETS.is_dir() else []
BROKEN = "iptables_semantics-parser-test.v4"
# What `check` says besides loading: medium-company's raw table uses rpfilter, and
# `check` is given no routes (the first line with it; the note is the same for all).
NOTES = {"netnet-medium-company.v4": [f"netnet-medium-company.v4:12: note: {NO_ROUTES}"]}


@shared
@pytest.mark.parametrize("name", [f for f in FILES if f != BROKEN])
def test_every_shared_ruleset_passes_check_without_allow_unknown(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`statewall check FILE`, as iptables-restore would load it: owner and rpfilter
    included. The sets of the two ipset rulesets must exist, for iptables-restore too."""
    from tests.test_rules_shared import IPSETS, family_of, text_of

    monkeypatch.chdir(tmp_path)
    write(tmp_path, name, text_of(name))
    argv = ["check", name] if family_of(name) == 4 else ["check", "/dev/null", "--rules6", name]
    if name in IPSETS:
        argv += ["--ipset", write(tmp_path, "sets", IPSETS[name])]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert (printed.out.splitlines(), printed.err) == (NOTES.get(name, []), "")


@shared
def test_broken_shared_ruleset_reports_its_errors() -> None:
    path = str(RULESETS / BROKEN)
    code, lines = check_command(path, None, lint=False, allow_unknown=False)
    assert code == 1
    assert lines[:2] == [
        f"{path}:12: unknown option --something-else for match multiport",
        f"{path}:40: match `icmp6' is not available for IPv4",
    ]
