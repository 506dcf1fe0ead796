"""The two forms of one nftables ruleset compile to the same rule data.

For every shared ruleset the kernel's listing (`NAME.nft`, text) and its
`nft -j list ruleset` (`NAME.json`) are lowered for the core; the IPv4 and
IPv6 rule data, the sets and the notes must be equal, or both refused with
the same line. What cannot be evaluated is kept as unknown (allow_unknown),
so every rule is compared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from nftshared import NAMES, RULESETS

from statewall.nft.load import NftError, load_objects
from statewall.nft.lower import lower_objects


def compiled(path: Path) -> Any:
    try:
        ruleset = lower_objects(load_objects(path), "NAME", allow_unknown=True)
    except NftError as error:
        return f"refused: {error}".replace(str(path), "NAME")
    out = {}
    for family in (4, 6):
        part = ruleset.family(family)
        if part is not None:
            for table in part.tables:
                for chain in table["chains"]:
                    for placed in (chain, *chain["rules"]):
                        # Where each was written: a line of text, a line and column of JSON.
                        placed.pop("line", None)
                        placed.pop("place", None)
            out[family] = json.loads(json.dumps({"tables": part.tables, "sets": part.sets}))
    return out, [note.replace(str(path), "NAME") for note in ruleset.notes]


@pytest.mark.shared
@pytest.mark.parametrize("name", NAMES)
def test_text_and_json_compile_alike(shared: Path, name: str) -> None:
    from_text = compiled(RULESETS / f"{name}.nft")
    from_json = compiled(RULESETS / f"{name}.json")
    assert from_text == from_json
