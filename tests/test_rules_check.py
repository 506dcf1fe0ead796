"""`statewall check [--lint]`: every error with file and line, and the lint warnings."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

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
        "F:6: warning: INPUT #2 accepts ESTABLISHED but no earlier rule drops "
        "INVALID: INVALID packets fall through to the rules below",
        "F:8: warning: INPUT #4 accepts RELATED but no `-t raw -j CT --helper` "
        "attaches a helper (not automatic since Linux 4.7): only ICMP errors will be RELATED",
        "F:12: warning: OUTPUT #1 accepts ESTABLISHED but no earlier rule drops "
        "INVALID: INVALID packets fall through to the rules below",
        "F:13: warning: OUTPUT #2 accepts TCP NEW without --syn: a stray ACK or FIN "
        "is NEW too (nf_conntrack_tcp_loose=1) and creates an entry",
        "F:15: warning: OUTPUT #4 accepts RELATED but no `-t raw -j CT --helper` "
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
        "F:4: warning: INPUT #2 is shadowed by INPUT #1 (line 3), which already "
        "decides every packet it could match",
        "F:8: warning: INPUT #6 is shadowed by INPUT #5 (line 7), which already "
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
    from tests.test_rules_shared import IPSETS, text_of

    monkeypatch.chdir(tmp_path)
    write(tmp_path, name, text_of(name))
    argv = ["check", name]  # a .v6 file is checked as IPv6
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


# --- one pass ------------------------------------------------------------------------


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often the file is parsed and how often each table is compiled."""
    from statewall.rules import compile as compile_mod
    from statewall.rules import parser as parser_mod

    calls = {"parse": 0, "table": 0}
    run, table = parser_mod._FileParser.run, compile_mod._Compiler.table

    def counted_run(self: Any, text: str) -> Any:
        calls["parse"] += 1
        return run(self, text)

    def counted_table(self: Any, t: Any) -> Any:
        calls["table"] += 1
        return table(self, t)

    monkeypatch.setattr(parser_mod._FileParser, "run", counted_run)
    monkeypatch.setattr(compile_mod._Compiler, "table", counted_table)
    return calls


def test_many_errors_are_reported_once_each_in_line_order(tmp_path: Path,
                                                         passes: dict[str, int]) -> None:
    # Three kinds of error, each caught at a different stage: the parser (an
    # unknown option), the walk over the jumps (a missing chain) and the
    # match's own check (a bad MAC address), between good rules.
    bad = ["-A INPUT -p tcp --frob {n} -j ACCEPT",
           "-A FORWARD -p udp --sport {n} -j NOWHERE{n}",
           "-A INPUT -m mac --mac-source zz:{n} -j DROP"]
    messages = ["unknown option --frob for match tcp", "Chain 'NOWHERE{n}' does not exist",
                "mac match: Invalid MAC address specified"]
    lines, expected = ["*filter"], []
    for n in range(300):
        lines.append(f"-A INPUT -p udp --dport {n + 1} -j ACCEPT")
        lines.append(bad[n % 3].format(n=n))
        expected.append(f"F:{len(lines)}: {messages[n % 3].format(n=n)}")
    lines.append("COMMIT")
    path = write(tmp_path, "many.v4", "\n".join(lines) + "\n")
    code, out = check_command(path, None, lint=False, allow_unknown=False)
    assert code == 1
    assert [line.replace(path, "F") for line in out] == expected
    assert passes == {"parse": 1, "table": 1}


def test_a_chain_reached_only_through_a_bad_jump_is_checked_without_it(
        tmp_path: Path, passes: dict[str, int]) -> None:
    # The OUTPUT rule is dropped, so X is reached from INPUT alone, where
    # -m mac is allowed: line 5 passes, line 6 still fails on its own.
    text = ("*filter\n:X - [0:0]\n-A INPUT -j X\n-A OUTPUT -m mark --mark zz -j X\n"
            "-A X -m mac --mac-source 00:11:22:33:44:55 -j ACCEPT\n"
            "-A X -m mac --mac-source zz -j DROP\nCOMMIT\n")
    path = write(tmp_path, "jump.v4", text)
    code, out = check_command(path, None, lint=False, allow_unknown=False)
    assert [line.replace(path, "F") for line in out] == [
        'F:4: mark match: invalid mark "zz"',
        "F:6: mac match: Invalid MAC address specified",
    ]
    assert code == 1 and passes == {"parse": 1, "table": 1}
    # With a good OUTPUT rule, X is reached from OUTPUT and both mac rules fail there.
    path = write(tmp_path, "jump2.v4", text.replace("-m mark --mark zz ", ""))
    code, out = check_command(path, None, lint=False, allow_unknown=False)
    place = "mac match: used from hooks OUTPUT, but only usable from PREROUTING/INPUT/FORWARD"
    assert [line.replace(path, "F") for line in out] == [f"F:5: {place}", f"F:6: {place}"]


def test_a_missing_final_commit_is_reported_once(tmp_path: Path) -> None:
    path = write(tmp_path, "open.v4", "*filter\n-A INPUT --frob -j ACCEPT\n-A INPUT -j DROP")
    code, out = check_command(path, None, lint=False, allow_unknown=False)
    assert [line.replace(path, "F") for line in out] == [
        "F:2: unknown option --frob", "F:3: COMMIT expected at end of file"]
    assert code == 1


@shared
def test_a_large_shared_ruleset_is_checked_in_one_pass(passes: dict[str, int]) -> None:
    # Its MAC addresses were anonymised to XX:XX:..., which the mac match refuses.
    path = RULESETS / "netnet-tum-chair-2016-06.v4"
    anonymised = [n for n, line in enumerate(path.read_text().split("\n"), start=1)
                  if "--mac-source XX:" in line]
    code, out = check_command(str(path), None, lint=False, allow_unknown=False)
    assert code == 1
    assert out == [f"{path}:{n}: mac match: Invalid MAC address specified" for n in anonymised]
    assert len(anonymised) > 1000
    assert passes == {"parse": 1, "table": 3}  # its raw, nat and filter tables


V6_RULES = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 2001:db8::/32 -j DROP\nCOMMIT\n"


def test_check_takes_the_family_from_the_file(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """ip6tables-restore accepts an IPv6 source, iptables-restore refuses it: a `.v6`
    file or one with ip6tables-save's header is checked as IPv6, alone or by --rules6."""
    v6 = tmp_path / "rules.v6"
    v6.write_text(V6_RULES)
    headed = tmp_path / "saved"
    headed.write_text("# Generated by ip6tables-save v1.8.9\n" + V6_RULES)
    v4 = tmp_path / "rules.v4"
    v4.write_text(V6_RULES)
    assert main(["check", str(v6)]) == 0
    assert main(["check", str(headed)]) == 0
    assert main(["check", "--rules6", str(v4)]) == 0
    capsys.readouterr()
    assert main(["check", str(v4)]) == 1
    assert capsys.readouterr().out.endswith("rules.v4:3: host/network `2001:db8::' not found\n")
    assert main(["check"]) == 2
    assert "give a ruleset" in capsys.readouterr().err
