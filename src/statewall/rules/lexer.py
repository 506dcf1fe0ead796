"""Splitting a rule line into arguments exactly as iptables-restore does.

Mirrors iptables' `add_param_to_argv` (xshared.c): blanks separate words;
a double quote opens a quoted part that may contain blanks; inside quotes a
backslash takes the next character literally; a closing quote ends the
word. Single quotes and backslashes outside quotes are ordinary characters.
"""

from __future__ import annotations

from statewall.rules.errors import OptionError


def split_words(line: str) -> list[str]:
    words: list[str] = []
    buf: list[str] = []
    quoted = escaped = False
    for char in line:
        if quoted:
            if escaped:
                buf.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
                words.append("".join(buf))
                buf.clear()
            else:
                buf.append(char)
        elif char == '"':
            quoted = True
        elif char in " \t\n":
            if buf:
                words.append("".join(buf))
                buf.clear()
        else:
            buf.append(char)
    if quoted:
        raise OptionError("unterminated quoted string")
    if buf:
        words.append("".join(buf))
    return words


def quote(text: str) -> str:
    """Quote a word the way iptables-save does, so that `split_words` gives it back."""
    if text and not any(c in text for c in ' \t"\\\'') and not text.startswith("!"):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
