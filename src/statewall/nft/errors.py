"""The one error the nftables front end raises for bad or unsupported text."""

from __future__ import annotations


class NftSyntaxError(ValueError):
    """A problem at one place of an nftables file: `FILE:LINE:COLUMN: problem (near 'x')`."""

    def __init__(self, source: str, line: int, column: int, problem: str, near: str = "") -> None:
        self.source = source
        self.line = line
        self.column = column
        self.problem = problem
        self.near = near
        text = f"{source}:{line}:{column}: {problem}"
        if near:
            text += f" (near '{near}')"
        super().__init__(text.replace("\n", " "))
