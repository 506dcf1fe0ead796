"""What a user sees when something is wrong: one line naming the file, line or option
and the problem, and the exit code the README documents (2 usage, 3 input).

The ipset cases follow `ipset restore` 7.17 (checked in a network namespace): it
takes an empty file and COMMIT lines, and refuses a line that is no command
("No command specified: unknown argument *filter").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from statewall import builder as b
from statewall.capture import write_pcap
from statewall.cli import EXIT_INPUT, EXIT_OK, EXIT_USAGE, main
from statewall.testing import VerdictError, assert_accepted

START = 1_700_000_000.0


def capture(tmp_path: Path) -> Path:
    path = tmp_path / "cap.pcap"
    write_pcap(path, [
        (START, b.ethernet(b.udp("192.0.2.1", "198.51.100.7", 4000, 53, b"q"))),
        (START + 0.5, b.ethernet(b.udp("198.51.100.7", "192.0.2.1", 53, 4000, b"a"))),
    ])
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """argparse's error, which leaves through SystemExit: its stderr."""
    with pytest.raises(SystemExit) as stopped:
        main(list(argv))
    assert stopped.value.code == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == ""
    return err


# -- 1. argparse: one line naming the command ----------------------------------------

@pytest.mark.parametrize(("argv", "line"), [
    (["replay", "x.pcap", "--foo"], "statewall replay: error: unrecognized arguments: --foo"),
    (["table", "x.pcap", "--foo", "bar"],
     "statewall table: error: unrecognized arguments: --foo bar"),
    (["check", "--lint", "--nope", "r.v4"], "statewall check: error: unrecognized arguments: --nope"),
    (["verify", "x.pcap", "--bar"], "statewall verify: error: unrecognized arguments: --bar"),
    (["replay"], "statewall replay: error: the following arguments are required: capture"),
    (["replay", "x.pcap", "--format", "xml"],
     "statewall replay: error: argument --format: invalid choice: 'xml' "
     "(choose from 'text', 'jsonl')"),
    (["replay", "x.pcap", "--limit", "many"],
     "statewall replay: error: argument --limit: invalid int value: 'many'"),
    ([], "statewall: error: the following arguments are required: COMMAND"),
])
def test_argparse_errors_are_one_line_naming_the_command(
        argv: list[str], line: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert usage_error(capsys, *argv) == line + "\n"


def test_unknown_command_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, "replai", "x.pcap")
    assert err.startswith("statewall: error: argument COMMAND: invalid choice: 'replai' (choose")
    assert "'replay'" in err and len(err.splitlines()) == 1


def test_help_keeps_its_usage_block(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["replay", "--help"])
    assert stopped.value.code == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("usage: statewall replay [-h]") and "--sysctl-file FILE" in out


# -- 2. files that cannot be read ----------------------------------------------------

@pytest.mark.parametrize("option", ["--rules", "--rules6", "--ipset", "--sysctl-file"])
@pytest.mark.parametrize(("make", "problem"), [
    (lambda path: None, "No such file or directory"),
    (lambda path: path.mkdir(), "Is a directory"),
])
def test_a_file_option_that_cannot_be_read(
        option: str, make: object, problem: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "given.file"
    make(bad)  # type: ignore[operator]
    code, out, err = run(capsys, "replay", capture(tmp_path), option, bad)
    assert (code, out) == (EXIT_INPUT, "")
    assert err == f"statewall: {bad}: {problem}\n"


def test_check_names_a_ruleset_that_cannot_be_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "check", tmp_path / "rules.v4")
    assert (code, err) == (EXIT_INPUT, f"statewall: {tmp_path / 'rules.v4'}: No such file or "
                                       "directory\n")


def test_a_capture_that_cannot_be_read(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    for what in ("table", "events", "stats", "conns", "replay"):
        code, out, err = run(capsys, what, tmp_path / "gone.pcap")
        assert (code, out) == (EXIT_INPUT, ""), what
        assert err == f"statewall: {tmp_path / 'gone.pcap'}: cannot open: No such file or " \
                      "directory\n", what


# -- 3. a file given as --ipset that is not `ipset save` output -----------------------

EXPECTED = "expected `ipset save' output: `create NAME TYPE ...' and `add NAME ELEMENT ...' lines"


@pytest.mark.parametrize(("content", "message"), [
    (b"# Generated by iptables-save v1.8.9\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n",
     f"2: {EXPECTED}, got `*filter' (an iptables-save file: give it with --rules)"),
    (b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\n", f"1: binary data, not text: {EXPECTED}"),
    (b"\x89PNG\r\n\x1a\n", f"1: binary data, not text: {EXPECTED}"),
    (b"create a hash:ip\nadd a 192.0.2.1\ndel a 192.0.2.1\n",
     f"3: `del' is an `ipset restore' command that `ipset save' never writes: {EXPECTED}"),
    (b"create\n", "1: `create' is short: expected `create NAME TYPE ...'"),
    (b"hello world\n", f"1: {EXPECTED}, got `hello world'"),
])
def test_an_ipset_file_that_is_not_ipset_save_output(
        content: bytes, message: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    sets = tmp_path / "sets.save"
    sets.write_bytes(content)
    code, out, err = run(capsys, "replay", capture(tmp_path), "--ipset", sets)
    assert (code, out) == (EXIT_INPUT, "")
    assert err == f"statewall: {sets}:{message}\n"


@pytest.mark.parametrize("content", [b"", b"\n# nothing\n",
                                     b"create a hash:ip family inet\nadd a 192.0.2.1\nCOMMIT\n"])
def test_ipset_files_ipset_restore_takes_are_taken(
        content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sets = tmp_path / "sets.save"
    sets.write_bytes(content)
    code, _, err = run(capsys, "replay", capture(tmp_path), "--ipset", sets, "--summary-only")
    assert (code, err) == (EXIT_OK, "")


# -- 5. did you mean ------------------------------------------------------------------

RULES = """*filter
:INPUT ACCEPT [0:0]
-A INPUT -p tcp --dprot 22 -j ACCEPT
-A INPUT -m conntrak --ctstate NEW -j ACCEPT
-A INPUT -m conntrack --ctstat NEW -j ACCEPT
-A INPUT -p udp --frobnicate 1 -j ACCEPT
-A INPUT -j ACCEPTT
COMMIT
"""


def test_unknown_names_in_a_ruleset_say_what_was_meant(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.v4"
    rules.write_text(RULES)
    code, out, _ = run(capsys, "check", rules)
    assert code == 1
    assert out.splitlines() == [
        f"{rules}:3: unknown option --dprot for match tcp (did you mean --dport?)",
        f"{rules}:4: Couldn't load match `conntrak' (did you mean conntrack?)",
        f"{rules}:5: option \"--ctstat\" is ambiguous (--ctstate, --ctstatus)",
        f"{rules}:6: unknown option --frobnicate for match udp",  # nothing near enough
        f"{rules}:7: Chain 'ACCEPTT' does not exist (did you mean ACCEPT?)",
    ]


def test_replay_names_the_first_with_its_hint(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.v4"
    rules.write_text(RULES)
    code, out, err = run(capsys, "replay", capture(tmp_path), "--rules", rules)
    assert (code, out) == (EXIT_INPUT, "")
    assert err == f"statewall: {rules}:3: unknown option --dprot for match tcp " \
                  "(did you mean --dport?)\n"


# -- 6. numeric options ----------------------------------------------------------------

FIRST = "1700000000.000000 (2023-11-14 22:13:20 UTC)"


@pytest.mark.parametrize("at", ["-1", "-0.5", "1600000000"])
def test_at_before_the_capture_starts(at: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "table", capture(tmp_path), "--at", at)
    assert (code, out) == (EXIT_USAGE, "")
    assert err == (f"statewall: --at {at}: before the capture's first packet, at {FIRST}; "
                   "give seconds from it (0 or more) or a later epoch time\n")


@pytest.mark.parametrize("at", ["0", str(START)])
def test_at_the_first_packet_is_taken(at: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "table", capture(tmp_path), "--at", at)
    assert (code, err) == (EXIT_OK, "") and out.count("\n") == 1


@pytest.mark.parametrize(("argv", "line"), [
    (["replay", "{cap}", "--seed", "-1"],
     "--seed -1: expected a number from 0 to 18446744073709551615"),
    (["replay", "{cap}", "--seed", str(2**64)],
     f"--seed {2**64}: expected a number from 0 to 18446744073709551615"),
    (["events", "{cap}", "--limit", "0"], "--limit 0: expected a number of packets (1 or more)"),
    (["stats", "{cap}", "--limit", "-2"], "--limit -2: expected a number of packets (1 or more)"),
    (["diff", "{cap}", "--sysctl-b", "nf_conntrack_tcp_loose=0", "--limit", "0"],
     "--limit 0: expected a number of packets (1 or more)"),
    (["verify", "{cap}", "--rules", "r.v4", "--limit", "0"],
     "--limit 0: expected a number of packets (1 or more)"),
    (["replay", "{cap}", "--conn", "0"], "--conn 0: out of range (1-4294967295)"),
    (["sysctl", "--memory", "nan"], "--memory 'nan': expected a size such as 512M or 4G"),
    (["sysctl", "--memory", "inf"], "--memory 'inf': expected a size such as 512M or 4G"),
    (["sysctl", "--memory", "0"], "--memory 0: expected a positive size"),
])
def test_numeric_options_out_of_range(argv: list[str], line: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    cap = str(capture(tmp_path))
    code, out, err = run(capsys, *(arg.replace("{cap}", cap) for arg in argv))
    assert (code, out, err) == (EXIT_USAGE, "", f"statewall: {line}\n")


# -- 7. plurals ------------------------------------------------------------------------

def test_firewall_ci_failure_counts_one_packet(tmp_path: Path) -> None:
    path = tmp_path / "one.pcap"
    write_pcap(path, [(START, b.ethernet(b.udp("192.0.2.1", "198.51.100.7", 4000, 53, b"q")))])
    rules = tmp_path / "rules.v4"
    rules.write_text("*filter\n:FORWARD DROP [0:0]\nCOMMIT\n")
    with pytest.raises(VerdictError) as failed:
        assert_accepted(path, rules=rules)
    assert str(failed.value).splitlines()[0] == f"{path}: 1 of 1 packet not accepted:"


def test_ipv6_hint_counts_one_packet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "v6.pcap"
    write_pcap(path, [(START, b.ethernet(b.udp("2001:db8::1", "2001:db8::2", 4000, 53, b"q")))])
    rules = tmp_path / "rules.v4"
    rules.write_text("*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n")
    code, out, _ = run(capsys, "replay", path, "--rules", rules, "--summary-only")
    assert code == EXIT_OK
    assert ("hint: 1 IPv6 packet met no IPv6 ruleset and passed unfiltered: give the "
            "ip6tables-save file with --rules6") in out.splitlines()


@pytest.mark.parametrize("module", ["statewall", "statewall.cli"])
def test_a_bad_filter_is_a_usage_error_however_the_command_is_run(tmp_path: Path,
                                                                  module: str) -> None:
    """`python -m statewall.cli` runs the module as __main__: its errors must still be
    recognised as usage errors (one line, exit 2), not reported as internal."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", module, "replay", str(capture(tmp_path)),
                           "--filter", "host 192.0.2.1"], capture_output=True, text=True)
    assert done.returncode == EXIT_USAGE
    assert done.stderr.startswith("statewall: --filter: at column 1: unknown field 'host'")
    assert "internal error" not in done.stderr and len(done.stderr.splitlines()) == 1
