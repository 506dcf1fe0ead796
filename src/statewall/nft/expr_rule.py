"""The rule being lowered: its matches so far (with nft's implied
dependencies, each once), its target, and the helpers statements share.
"""

from __future__ import annotations

import json
from typing import Any

from statewall.nft.expr_keys import JsonObject, Left, Unsupported, lower_left
from statewall.nft.expr_values import BadValue
from statewall.nft.scope import RuleScope
from statewall.nft.sets import Data, Part, element, spec


class RuleBuilder:
    """The matches and target of the rule being lowered."""

    def __init__(self, scope: RuleScope) -> None:
        self.scope = scope
        self.matches: list[JsonObject] = []
        self.target: JsonObject | None = None
        self._deps: set[str] = set()

    def nft(self, expr: JsonObject) -> None:
        if self.target is not None:
            raise Unsupported("a statement after a verdict map" if
                              self.target.get("kind") == "nft_vmap" else
                              "a statement after the rule's verdict")
        self.matches.append({"kind": "nft", "expr": expr})

    def left(self, node: Any) -> Left:
        left = lower_left(node, self.scope.family, self.scope.core_family)
        for dep in left.deps:
            text = json.dumps(dep, sort_keys=True)
            if text not in self._deps:
                self._deps.add(text)
                self.matches.append(dep)
        return left

    def set_ref(self, node: Any, left: Left, data: Data = None) -> JsonObject:
        """A named set (`"@name"`) or an anonymous one (`{"set": [...]}`)."""
        if isinstance(node, str) and node.startswith("@"):
            name = node[1:]
            if name not in self.scope.sets:
                raise Unsupported(f"set @{name}, which the table does not define")
            return {"set": self.scope.sets[name]}
        if isinstance(node, dict) and "set" in node and isinstance(node["set"], list):
            anon = spec("anonymous", parts(left), node["set"], data, self.scope)
            return {"anon": anon}
        if isinstance(node, dict) and "set" in node:
            return self.set_ref({"set": [node["set"]]}, left, data)
        raise Unsupported(f"set {node!r}")


def parts(left: Left) -> list[Part]:
    """The key parts of `left` (a single key is not padded)."""
    if left.parts:
        return left.parts
    return [(left.width, left.dtype, left.width, left.shift)]


def value_bytes(value: Any, left: Left) -> bytes:
    e = element(value, parts(left))
    if "key_end" in e or e.get("catchall"):
        raise BadValue(f"{value!r} is not a single value")
    return bytes.fromhex(e["key"])


def with_mask(left: Left, mask: bytes) -> JsonObject:
    """`left` ANDed with `mask` (a prefix)."""
    expr = dict(left.expr)
    old = int(expr.get("mask", "ff" * left.width), 16)
    old_xor = int(expr.get("xor", "00"), 16)
    m = int.from_bytes(mask, "big")
    expr["mask"] = (old & m).to_bytes(left.width, "big").hex()
    expr["xor"] = (old_xor & m).to_bytes(left.width, "big").hex()
    return expr
