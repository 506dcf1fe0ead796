"""The shared nftables rulesets (../shared/nft-rulesets) for the nft front-end tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import SHARED

RULESETS = SHARED / "nft-rulesets"
NAMES = sorted(p.name[: -len(".json")] for p in RULESETS.glob("*.json")) if RULESETS.is_dir() else []


def kernel_objects(name: str) -> list[Any]:
    """NAME.json's objects without handles and metainfo."""
    objects = []
    for obj in json.loads((RULESETS / f"{name}.json").read_text())["nftables"]:
        if "metainfo" in obj:
            continue
        for body in obj.values():
            body.pop("handle", None)
        objects.append(obj)
    return objects


def listing(name: str) -> str:
    return (RULESETS / f"{name}.nft").read_text()


def listing_path(name: str) -> Path:
    return RULESETS / f"{name}.nft"
