"""Tokens of nftables text.

nft's own scanner knows hundreds of keywords; here everything unquoted is
a WORD (addresses, numbers, ranges such as `33-45`, keywords) and the
grammar decides what a word means where it stands. Newlines are tokens
because they end a rule; inside braces and parentheses the grammar skips
them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import NftSyntaxError

WORD, STRING, PUNCT, NL, EOF = "word", "string", "punct", "nl", "eof"

_WORD_CHARS = re.compile(r"[A-Za-z0-9_./:\-*%\\\[\]]+")
_GLUED = re.compile(r"([^:]+):([A-Za-z][A-Za-z0-9_-]*)")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_PUNCTS = (
    "==",
    "!=",
    "<=",
    ">=",
    "<<",
    ">>",
    "{",
    "}",
    "(",
    ")",
    ";",
    ",",
    "=",
    "<",
    ">",
    "&",
    "|",
    "^",
    "!",
    "@",
    "$",
    "+",
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    line: int
    col: int


def tokenize(text: str, source: str) -> list[Token]:
    """Split `text` into tokens; comments (`# ...`) and line continuations vanish."""
    tokens: list[Token] = []
    pos = 0
    line = 1
    line_start = 0
    n = len(text)
    while pos < n:
        ch = text[pos]
        col = pos - line_start + 1
        if ch == "\n":
            tokens.append(Token(NL, "\n", line, col))
            pos += 1
            line += 1
            line_start = pos
        elif ch in " \t\r":
            pos += 1
        elif ch == "\\" and text.startswith("\n", pos + 1):
            pos += 2
            line += 1
            line_start = pos
        elif ch == "#":
            end = text.find("\n", pos)
            pos = n if end < 0 else end
        elif ch == '"':
            end = pos + 1
            while end < n and text[end] != '"':
                if text[end] == "\n":
                    raise NftSyntaxError(source, line, col, "unterminated string", text[pos:end])
                end += 1
            if end >= n:
                raise NftSyntaxError(source, line, col, "unterminated string", text[pos:end])
            tokens.append(Token(STRING, text[pos + 1 : end], line, col))
            pos = end + 1
        else:
            match = _WORD_CHARS.match(text, pos)
            if match:
                word = match.group()
                pos = match.end()
                if word in (".", ":", "-", "/"):
                    tokens.append(Token(PUNCT, word, line, col))
                elif len(word) > 1 and word.endswith(":") and not word.endswith("::"):
                    # `22:"x"`: a map key glued to its value
                    tokens.append(Token(WORD, word[:-1], line, col))
                    tokens.append(Token(PUNCT, ":", line, col + len(word) - 1))
                elif (glued := _GLUED.fullmatch(word)) and not _HEX.fullmatch(glued[2]):
                    # `25:accept`: a map key glued to a value that is a name (a hex
                    # tail, `aa:bb`, stays a MAC or IPv6 fragment)
                    tokens.append(Token(WORD, glued[1], line, col))
                    tokens.append(Token(PUNCT, ":", line, col + len(glued[1])))
                    tokens.append(Token(WORD, glued[2], line, col + len(glued[1]) + 1))
                else:
                    tokens.append(Token(WORD, word, line, col))
                continue
            for punct in _PUNCTS:
                if text.startswith(punct, pos):
                    tokens.append(Token(PUNCT, punct, line, col))
                    pos += len(punct)
                    break
            else:
                raise NftSyntaxError(source, line, col, f"unexpected character {ch!r}", ch)
    tokens.append(Token(EOF, "", line, pos - line_start + 1))
    return tokens
