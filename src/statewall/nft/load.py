"""Reading an nftables ruleset file into libnftables JSON objects.

Two kinds of file are accepted, told apart by their first character: the
JSON `nft -j list ruleset` prints (`{"nftables": [...]}`), read directly,
and nftables text (`nft list ruleset` output or an nftables.conf), which
`statewall.nft.parser` turns into the same objects. Every problem is one
line naming the file (and line and column where known).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from statewall.nft.errors import NftSyntaxError
from statewall.rules.errors import RulesetError

JsonObject = dict[str, Any]


class NftError(RulesetError):
    """An nftables ruleset statewall refuses: one line, `FILE[:LINE[:COLUMN]]: problem`."""

    def __init__(self, text: str, source: str = "", line: int = 0) -> None:
        Exception.__init__(self, text)
        self.source = source
        self.line = line
        self.message = text


def load_objects(path: str | os.PathLike[str]) -> list[JsonObject]:
    """The ruleset's objects (tables, chains, rules, sets, ...), metainfo left out.
    A rule or chain read from text also has "file" and "line": where it was
    written; one read from JSON "line" and "column": where its object starts.

    Raises NftError for a file that is neither valid JSON of that shape nor
    text the parser accepts; OSError when it cannot be read."""
    source = os.fspath(path)
    return objects_from_text(Path(path).read_text(encoding="utf-8", errors="replace"), source)


def objects_from_text(text: str, source: str) -> list[JsonObject]:
    """As `load_objects`, for the file's text (`source` names it in errors)."""
    if text.lstrip().startswith("{"):
        return _from_json(text, source)
    from statewall.nft.parser import parse_nft_placed

    try:
        objects, places = parse_nft_placed(text, source)
    except NftSyntaxError as error:
        raise NftError(str(error), source, error.line) from None
    for obj in objects:
        body = obj.get("rule") or obj.get("chain")
        place = places.get(id(body))
        if place is not None and isinstance(body, dict):  # FILE:LINE in messages
            body["file"], body["line"] = place
    return objects


def _from_json(text: str, source: str) -> list[JsonObject]:
    """The objects of the JSON; each rule and chain gets "line" and "column": where
    its object starts in the file (`nft -j` prints the whole ruleset on one line, so
    the column is what tells its rules apart)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise NftError(f"{source}:{error.lineno}:{error.colno}: bad JSON: {error.msg}",
                       source, error.lineno) from None
    objects = data.get("nftables") if isinstance(data, dict) else None
    if not isinstance(objects, list):
        raise NftError(f'{source}: not an nftables ruleset: expected {{"nftables": [...]}} '
                       "as `nft -j list ruleset` prints it", source)
    starts = _element_starts(text)
    places = _line_columns(text, starts) if len(starts) == len(objects) else []
    out: list[JsonObject] = []
    for number, obj in enumerate(objects, 1):
        line, column = places[number - 1] if places else (0, 0)
        if not isinstance(obj, dict) or len(obj) != 1:
            where = f"{source}:{line}:{column}" if line else source
            raise NftError(f"{where}: object #{number} of the nftables list is not "
                           "one {\"kind\": {...}} object", source, line)
        body = obj.get("rule") or obj.get("chain")
        if isinstance(body, dict) and line:
            body["line"], body["column"] = line, column
        if "metainfo" not in obj:
            out.append(obj)
    return out


def _element_starts(text: str) -> list[int]:
    """Where each element of the top-level "nftables" array starts (offsets into
    `text`, already known to be valid JSON); empty when there is no such array."""
    decoder = json.JSONDecoder()
    space = re.compile(r"[ \t\n\r]*")

    def skip(at: int) -> int:
        found = space.match(text, at)
        return found.end() if found else at

    at = skip(0)
    if text[at] != "{":
        return []
    at = skip(at + 1)
    while text[at] != "}":
        key, at = decoder.raw_decode(text, at)
        at = skip(skip(at) + 1)  # past ":"
        if key == "nftables" and text[at] == "[":
            break
        _, at = decoder.raw_decode(text, at)
        at = skip(at)
        if text[at] == ",":
            at = skip(at + 1)
    else:
        return []
    starts: list[int] = []
    at = skip(at + 1)
    while text[at] != "]":
        starts.append(at)
        _, at = decoder.raw_decode(text, at)
        at = skip(at)
        if text[at] == ",":
            at = skip(at + 1)
    return starts


def _line_columns(text: str, starts: list[int]) -> list[tuple[int, int]]:
    """1-based line and column of each offset of `starts` (ascending)."""
    out: list[tuple[int, int]] = []
    line, line_start, last = 1, 0, 0
    for at in starts:
        newlines = text.count("\n", last, at)
        if newlines:
            line += newlines
            line_start = text.rfind("\n", last, at) + 1
        out.append((line, at - line_start + 1))
        last = at
    return out
