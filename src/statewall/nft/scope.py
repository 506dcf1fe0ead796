"""What lowering one nft rule needs to know, and what it gives back.

`statewall.nft.lower` walks tables and chains; for each rule it hands the
rule's statement list (libnftables JSON) and a `RuleScope` to
`statewall.nft.expr.lower_rule`, which answers with the core's matches and
target for that rule (`LoweredRule`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class RuleScope:
    """The rule's place and the names it may refer to."""

    family: str
    """The table's family: "ip", "ip6" or "inet"."""
    table: str
    chain: str
    chains: Mapping[str, int]
    """The table's chains by name -> index in the core's table (jump, goto, vmap)."""
    sets: Mapping[str, int]
    """The table's named sets and maps by name -> index in the ruleset's nft set list."""
    objects: Mapping[tuple[str, str], JsonObject]
    """The table's named stateful objects by (kind, name): kind as in the JSON schema
    ("counter", "quota", "limit", "ct helper", "ct timeout", "ct expectation", ...)."""
    source: str
    """Where the rule came from, for errors: "FILE:LINE" (or "FILE" when the line is unknown)."""
    core_family: int = 4
    """The core ruleset being built (4 or 6): an inet table is lowered once for each."""


@dataclass
class LoweredRule:
    """A rule as the core's serde data (core/src/rules/model.rs)."""

    matches: list[JsonObject] = field(default_factory=list)
    target: JsonObject = field(default_factory=lambda: {"kind": "none"})
    unsupported: str | None = None
    """Why the rule cannot be evaluated (names the construct), or None."""
