"""A position in a token list, with `$name` substitution from the defines."""

from __future__ import annotations

from .errors import NftSyntaxError
from .lexer import EOF, NL, PUNCT, STRING, WORD, Token


class Cursor:
    """Tokens of one file; `defines` is shared with included files."""

    def __init__(self, tokens: list[Token], source: str, defines: dict[str, list[Token]]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.source = source
        self.defines = defines
        self.depth = 0  # open braces/parentheses of a value: newlines are spaces there

    def _expand(self) -> None:
        # `$name` is replaced by the define's tokens where it is met, so a
        # define may hold a whole set, and defines may use earlier defines
        while True:
            tok = self.tokens[self.pos]
            if not (tok.kind == PUNCT and tok.text == "$"):
                return
            name = self.tokens[self.pos + 1]
            if name.kind != WORD:
                raise self.error("expected a define's name after '$'", tok)
            if name.text not in self.defines:
                raise self.error(f"undefined variable '${name.text}'", tok, "$" + name.text)
            self.tokens[self.pos : self.pos + 2] = self.defines[name.text]

    def peek(self, ahead: int = 0) -> Token:
        self._expand()
        if self.depth:
            self.skip_nl()
        index = self.pos
        for _ in range(ahead):
            index += 1
            while self.depth and self.tokens[min(index, len(self.tokens) - 1)].kind == NL:
                index += 1
        return self.tokens[min(index, len(self.tokens) - 1)]

    def skip_nl(self) -> None:
        while self.tokens[self.pos].kind == NL:
            self.pos += 1

    def next(self) -> Token:
        tok = self.peek()
        if tok.kind != EOF:
            self.pos += 1
        return tok

    def at(self, *texts: str) -> bool:
        tok = self.peek()
        return tok.kind in (WORD, PUNCT) and tok.text in texts

    def accept(self, *texts: str) -> bool:
        if self.at(*texts):
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> Token:
        tok = self.peek()
        if tok.kind not in (WORD, PUNCT) or tok.text != text:
            raise self.error(f"expected '{text}'", tok)
        self.pos += 1
        return tok

    def word(self, what: str = "a name") -> str:
        tok = self.peek()
        if tok.kind not in (WORD, STRING):
            raise self.error(f"expected {what}", tok)
        self.pos += 1
        return tok.text

    def number(self, what: str = "a number") -> int:
        tok = self.peek()
        try:
            value = int(tok.text, 0)
        except ValueError:
            raise self.error(f"expected {what}", tok) from None
        self.pos += 1
        return value

    def at_end(self) -> bool:
        """End of a rule or a declaration: newline, ';', '}' or the end of the file."""
        tok = self.tokens[self.pos]
        if tok.kind == PUNCT and tok.text == "$":
            return False
        return tok.kind in (NL, EOF) or (tok.kind == PUNCT and tok.text in (";", "}"))

    def end_line(self) -> None:
        tok = self.tokens[self.pos]
        if tok.kind in (NL, EOF) or (tok.kind == PUNCT and tok.text == "}"):
            return
        if tok.kind == PUNCT and tok.text == ";":
            self.pos += 1
            return
        raise self.error("unexpected text", tok)

    def error(self, problem: str, tok: Token | None = None, near: str | None = None) -> NftSyntaxError:
        tok = tok or self.peek()
        if near is None:
            near = tok.text if tok.kind != NL else "end of line"
            if tok.kind == EOF:
                near = "end of file"
        return NftSyntaxError(self.source, tok.line, tok.col, problem, near)
