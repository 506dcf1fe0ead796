"""`parse_nft`: nftables text (a listing or an nftables.conf file) -> libnftables JSON objects.

Commands are executed in order (`flush ruleset`, `add rule`, `delete chain`,
...) and the result is the final ruleset as `nft -j list ruleset` lists it,
without handles and without the metainfo object.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

from .cursor import Cursor
from .errors import NftSyntaxError
from .grammar_block import CT_OBJECTS, DIRECTIVES, OBJECT_KINDS, BlockParser
from .grammar_expr import Json
from .lexer import WORD, Token, tokenize
from .ruleset import Places, Ruleset, Table

_MAX_INCLUDE_DEPTH = 16


class _File:
    """Parsing state shared by a file and the files it includes."""

    def __init__(self, include_dirs: Sequence[Path]) -> None:
        self.ruleset = Ruleset()
        self.defines: dict[str, list[Token]] = {}
        self.include_dirs = list(include_dirs)
        self.depth = 0

    def run(self, text: str, source: str, here: Path | None) -> None:
        if text.startswith(("*", ":")):
            raise NftSyntaxError(
                source, 1, 1, "an nftables test-suite file (.t), not nft syntax", text.split("\n", 1)[0]
            )
        cur = Cursor(tokenize(text, source), source, self.defines)
        parser = BlockParser(cur, self.ruleset)
        parser.directive = lambda word, tok: self._directive(parser, word, tok, here)
        while True:
            cur.skip_nl()
            while cur.accept(";"):
                cur.skip_nl()
            if cur.peek().kind == "eof":
                return
            self._command(parser, here)
            cur.end_line()

    def _command(self, p: BlockParser, here: Path | None) -> None:
        cur = p.cur
        tok = cur.peek()
        word = cur.word("a command")
        if word in DIRECTIVES:
            self._directive(p, word, tok, here)
        elif word == "table":
            self._add(p, "table", tok)
        elif word in ("add", "create", "insert", "replace"):
            self._add(p, cur.word("what to add"), tok, insert=word == "insert")
        elif word in ("delete", "destroy", "flush"):
            self._remove(p, word, cur.word(f"what to {word}"), tok)
        else:
            raise cur.error("unknown command", tok)

    def _directive(self, p: BlockParser, word: str, tok: Token, here: Path | None) -> None:
        cur = p.cur
        if word == "include":
            self._include(p, cur.word("a file name"), tok, here)
        elif word == "define" or word == "redefine":
            name = cur.word("a name")
            cur.expect("=")
            start = cur.pos
            cur._expand()
            while not cur.at_end() or cur.depth:
                if cur.at("{"):
                    cur.depth += 1
                elif cur.at("}"):
                    cur.depth -= 1
                cur.pos += 1
                cur._expand()
            self.defines[name] = cur.tokens[start : cur.pos]
        else:
            self.defines.pop(cur.word("a name"), None)

    def _include(self, p: BlockParser, name: str, tok: Token, here: Path | None) -> None:
        if self.depth >= _MAX_INCLUDE_DEPTH:
            raise p.cur.error("includes nested too deeply", tok, name)
        path = Path(name)
        bases = (
            [path]
            if path.is_absolute()
            else [*([here.parent / path] if here else []), *(d / path for d in self.include_dirs)]
        )
        for candidate in bases:
            matches = sorted(glob.glob(str(candidate)))
            if not glob.has_magic(str(candidate)) and not candidate.is_file():
                continue
            for match in matches:
                self.depth += 1
                try:
                    self.run(Path(match).read_text(), match, Path(match))
                except OSError as exc:
                    raise p.cur.error(f"cannot read include: {exc.strerror}", tok, name) from None
                finally:
                    self.depth -= 1
            return
        raise p.cur.error("include file not found", tok, name)

    def _add(self, p: BlockParser, what: str, tok: Token, insert: bool = False) -> None:
        cur = p.cur
        if what == "table":
            family, name = p.family_and_name()
            table = self.ruleset.table(family, name)
            if cur.at("{"):
                p.table_block(table)
            return
        if what == "rule":
            table = p.table_ref()
            chain = self._chain_ref(p, table)
            index = self._position(p, table, chain, insert)
            p.add_rule(table, chain, p.rule(), index, line=tok.line)
            return
        if what == "element":
            table = p.table_ref()
            found = table.find_set(cur.word("a set name"))
            if found is None:
                raise cur.error("no such set", tok)
            found.setdefault("elem", []).extend(p.elements())
            return
        if what == "ct" and cur.at(*CT_OBJECTS):
            kind = "ct " + cur.word()
            p.object_decl(p.table_ref(), kind, cur.word("a name"))
            return
        table = p.table_ref()
        if what == "chain":
            p.chain_decl(table, cur.word("a chain name"))
        elif what in ("set", "map"):
            p.set_decl(table, what, cur.word("a set name"))
        elif what in OBJECT_KINDS:
            p.object_decl(table, what, cur.word("a name"))
        elif what == "flowtable":
            p.flowtable_decl(table, cur.word("a name"))
        else:
            raise cur.error(f"unsupported command: add {what}", tok, what)

    def _chain_ref(self, p: BlockParser, table: Table) -> str:
        tok = p.cur.peek()
        chain = p.cur.word("a chain name")
        if chain not in table.chains:
            raise p.cur.error(f"no such chain: {chain}", tok, chain)
        return chain

    def _position(self, p: BlockParser, table: Table, chain: str, insert: bool) -> int | None:
        cur = p.cur
        rules = table.rules[chain]
        if cur.accept("index"):
            index = cur.number("an index")
            return index if insert else index + 1
        if cur.at("position", "handle"):
            raise cur.error("rule handles are not known in a file", near=cur.peek().text)
        return 0 if insert else len(rules)

    def _remove(self, p: BlockParser, verb: str, what: str, tok: Token) -> None:
        cur = p.cur
        if what == "ruleset":
            if cur.peek().kind == WORD and not cur.at_end():
                family = cur.word()
                for key in [k for k in self.ruleset.tables if k[0] == family]:
                    del self.ruleset.tables[key]
            else:
                self.ruleset.tables.clear()
            return
        table = p.table_ref()
        if what == "table":
            if verb == "flush":
                for chain in table.rules:
                    table.rules[chain] = []
            else:
                del self.ruleset.tables[(table.family, table.name)]
            return
        if what == "chain":
            chain = self._chain_ref(p, table)
            table.rules[chain] = []
            if verb != "flush":
                del table.chains[chain]
                del table.rules[chain]
            return
        if what in ("set", "map") and verb == "flush":
            found = table.find_set(cur.word("a set name"))
            if found is not None:
                found.pop("elem", None)
            return
        raise cur.error(f"unsupported command: {verb} {what}", tok, f"{verb} {what}")


def parse_nft(text: str, source: str, *, include_dirs: Sequence[Path] = ()) -> list[Json]:
    """The objects (libnftables JSON schema) of the ruleset `text` builds.

    `source` names the file in errors and locates relative includes.
    Raises NftSyntaxError (one line: FILE:LINE:COLUMN: problem (near 'x')).
    """
    return parse_nft_placed(text, source, include_dirs=include_dirs)[0]


def parse_nft_placed(
    text: str, source: str, *, include_dirs: Sequence[Path] = ()
) -> tuple[list[Json], Places]:
    """As `parse_nft`, with where each rule was written: `id()` of a rule object's
    body -> (file, line). Beside the objects, which stay exactly nft's JSON."""
    state = _File(include_dirs)
    here = Path(source) if source and not source.startswith("<") else None
    try:
        state.run(text, source, here)
    except RecursionError:
        raise NftSyntaxError(source, 0, 0, "nesting too deep") from None
    return state.ruleset.objects(), state.ruleset.places


__all__ = ["NftSyntaxError", "Places", "parse_nft", "parse_nft_placed"]
