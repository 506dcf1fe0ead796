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
    A rule read from text also has "file" and "line": where it was written.

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
        place = places.get(id(obj.get("rule")))
        if place is not None:  # read by the lowering for FILE:LINE in messages
            obj["rule"]["file"], obj["rule"]["line"] = place
    return objects


def _from_json(text: str, source: str) -> list[JsonObject]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise NftError(f"{source}:{error.lineno}:{error.colno}: bad JSON: {error.msg}",
                       source, error.lineno) from None
    objects = data.get("nftables") if isinstance(data, dict) else None
    if not isinstance(objects, list):
        raise NftError(f'{source}: not an nftables ruleset: expected {{"nftables": [...]}} '
                       "as `nft -j list ruleset` prints it", source)
    out: list[JsonObject] = []
    for number, obj in enumerate(objects, 1):
        if not isinstance(obj, dict) or len(obj) != 1:
            raise NftError(f"{source}: object #{number} of the nftables list is not "
                           "one {\"kind\": {...}} object", source)
        if "metainfo" not in obj:
            out.append(obj)
    return out
