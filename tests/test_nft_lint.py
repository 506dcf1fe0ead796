"""`statewall check --nft FILE --lint`: the warnings of statewall.nft.lint."""

from __future__ import annotations

from pathlib import Path

from statewall.rules.cli_commands import check_command

HEAD = "table inet f {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n"


def warnings(tmp_path: Path, body: str, extra: str = "") -> list[str]:
    path = tmp_path / "rules.nft"
    path.write_text(HEAD + body + "\t}\n" + extra + "}\n")
    code, lines = check_command(None, None, True, False, nft=str(path))
    assert code == 0, lines
    return [line.split(": warning: ", 1)[1] for line in lines if ": warning: " in line]


def test_established_before_invalid_and_related_without_helper(tmp_path: Path) -> None:
    found = warnings(tmp_path, "\t\tct state established,related accept\n"
                               "\t\tct state invalid drop\n")
    assert found == [
        "inet f input #1 accepts ESTABLISHED but no earlier rule drops INVALID: INVALID "
        "packets fall through to the rules below",
        "inet f input #1 accepts RELATED but no `ct helper set` attaches a helper (not "
        "automatic since Linux 4.7): only ICMP errors will be RELATED"]


def test_a_guarded_chain_with_a_helper_is_quiet(tmp_path: Path) -> None:
    assert warnings(tmp_path, "\t\tct state invalid drop\n"
                              "\t\ttcp dport 21 ct helper set \"ftp\"\n"
                              "\t\tct state established,related accept\n"
                              "\t\ttcp dport 22 tcp flags syn ct state new accept\n",
                    "\tct helper ftp {\n\t\ttype \"ftp\" protocol tcp\n\t\tl3proto inet\n\t}\n"
                    ) == []


def test_tcp_new_without_flags(tmp_path: Path) -> None:
    assert warnings(tmp_path, "\t\tct state invalid drop\n\t\ttcp dport 22 ct state new accept\n") \
        == ["inet f input #2 accepts TCP NEW without testing the flags: a stray ACK or FIN is "
            "NEW too (nf_conntrack_tcp_loose=1) and creates an entry"]


def test_rules_after_an_unconditional_verdict_and_unreachable_chains(tmp_path: Path) -> None:
    found = warnings(tmp_path, "\t\tcounter accept\n\t\tip saddr 192.0.2.1 drop\n",
                     "\tchain lonely {\n\t\tdrop\n\t}\n\tchain used {\n\t\taccept\n\t}\n"
                     "\tchain fwd {\n\t\ttype filter hook forward priority filter;\n"
                     "\t\tiifname vmap { \"lan\" : jump used }\n\t}\n")
    assert found == ["inet f input #2 is never reached: #1 before it decides every packet",
                     "chain lonely of inet f is never reached (no jump, goto or verdict map "
                     "from a base chain leads to it)"]
