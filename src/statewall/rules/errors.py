"""The one error a ruleset can raise while loading.

Its text is a single line in the form compilers use, `FILE:LINE: message`,
so editors and CI logs can jump to the offending rule.
"""

from __future__ import annotations


class RulesetError(Exception):
    """A ruleset that iptables-restore (or the kernel's checkentry) would refuse."""

    def __init__(self, source: str, line: int, message: str) -> None:
        super().__init__(f"{source}:{line}: {message}")
        self.source = source
        self.line = line
        self.message = message


class OptionError(Exception):
    """Raised by a match or target builder; the compiler adds file and line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotEvaluated(OptionError):
    """A well-formed option statewall cannot evaluate with what it was given
    (a set that was not loaded): refused like an unsupported match unless
    unknown rules are allowed."""
