"""The one error a ruleset can raise while loading.

Its text is a single line in the form compilers use, `FILE:LINE: message`,
so editors and CI logs can jump to the offending rule. The message quotes
the ruleset, whose comments, prefixes and chain names may hold control
characters: they are escaped, so the line stays one line and a terminal
shows them instead of obeying them.
"""

from __future__ import annotations

from statewall._core import escape_controls


class RulesetError(Exception):
    """A ruleset that iptables-restore (or the kernel's checkentry) would refuse."""

    def __init__(self, source: str, line: int, message: str) -> None:
        self.source = source
        self.line = line
        self.message = escape_controls(message)
        super().__init__(f"{escape_controls(source)}:{line}: {self.message}")


class OptionError(Exception):
    """Raised by a match or target builder; the compiler adds file and line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotEvaluated(OptionError):
    """A well-formed option statewall cannot evaluate with what it was given
    (a set that was not loaded): refused like an unsupported match unless
    unknown rules are allowed."""
