"""One nft rule (its statement list in the libnftables JSON schema) as the
core's matches and target (`lower_rule`).

Expressions and non-terminal statements become `{"kind": "nft", "expr":
...}` matches in rule order, so a statement sees what the tests before it
decided and the values statements before it set; the terminal statement
(verdict, verdict map, reject, nat, queue) becomes the target. A construct
the core does not evaluate makes the whole rule unsupported, naming it.
"""

from __future__ import annotations

from typing import Any

from statewall.nft import expr_stmt
from statewall.nft.expr_keys import JsonObject, Unsupported
from statewall.nft.expr_rule import RuleBuilder, parts, value_bytes, with_mask
from statewall.nft.expr_values import BIT_TYPES, BadValue, is_wildcard
from statewall.nft.scope import LoweredRule, RuleScope
from statewall.nft.sets import element

_CMP = {"==": "eq", "!=": "ne", "<": "lt", ">": "gt", "<=": "le", ">=": "ge", "in": "eq"}


def _match(rule: RuleBuilder, body: JsonObject) -> None:
    op, right = body.get("op"), body.get("right")
    left = rule.left(body.get("left"))
    if isinstance(right, str) and right.startswith("@") or \
            isinstance(right, dict) and "set" in right:
        if op not in ("==", "!=", "in"):
            raise Unsupported(f"set lookup with '{op}'")
        rule.nft({"op": "lookup", "left": left.expr, "set": rule.set_ref(right, left),
                  "neg": op == "!="})
        return
    if isinstance(right, dict) and ("range" in right or "prefix" in right):
        e = element(right, parts(left))
        low = bytes.fromhex(e["key"])
        high = bytes.fromhex(str(e.get("key_end", e["key"])))
        if op not in ("==", "!=", "in"):
            raise Unsupported(f"a range with '{op}'")
        if "prefix" in right:
            mask = bytes(~(a ^ b) & 0xFF for a, b in zip(low, high, strict=True))
            rule.nft({"op": "cmp", "left": with_mask(left, mask),
                      "cmp": "ne" if op == "!=" else "eq", "data": low.hex()})
        else:
            rule.nft({"op": "range", "left": left.expr, "low": low.hex(), "high": high.hex(),
                      "neg": op == "!="})
        return
    if is_wildcard(right, left.dtype):
        if op not in ("==", "!=", "in"):
            raise Unsupported(f"an interface wildcard with '{op}'")
        rule.nft({"op": "cmp", "left": left.expr, "cmp": "ne" if op == "!=" else "eq",
                  "data": str(right)[:-1].encode().hex()})
        return
    if isinstance(right, bool) and left.expr["key"].get("kind") == "fib":
        # fib ... oif exists / missing: a route (an output interface) or none.
        rule.nft({"op": "cmp", "left": left.expr, "cmp": "ne" if right == (op != "!=") else "eq",
                  "data": bytes(left.width).hex()})
        return
    data = value_bytes(right, left)
    if left.dtype in BIT_TYPES and op in ("in", "!"):
        # A flag test: (x & v) != 0, or == 0 for `!`.
        rule.nft({"op": "cmp", "left": with_mask(left, data),
                  "cmp": "eq" if op == "!" else "ne", "data": bytes(len(data)).hex()})
        return
    if op not in _CMP:
        raise Unsupported(f"operator '{op}'")
    rule.nft({"op": "cmp", "left": left.expr, "cmp": _CMP[op], "data": data.hex()})


def _statement(rule: RuleBuilder, stmt: Any) -> None:
    if not isinstance(stmt, dict) or len(stmt) != 1:
        raise Unsupported(f"statement {stmt!r}")
    (kind, body), = stmt.items()
    if kind == "match":
        _match(rule, body)
        return
    lower = expr_stmt.STATEMENTS.get(kind)
    if lower is None:
        raise Unsupported(kind)
    lower(rule, body)


def lower_rule(stmts: list[dict[str, Any]], scope: RuleScope) -> LoweredRule:
    """The rule's statements as the core's matches and target."""
    rule = RuleBuilder(scope)
    try:
        for stmt in stmts:
            _statement(rule, stmt)
    except Unsupported as e:
        return LoweredRule(unsupported=str(e))
    except (BadValue, KeyError, TypeError, ValueError) as e:
        return LoweredRule(unsupported=f"a value the core cannot hold: {e}")
    return LoweredRule(matches=rule.matches, target=rule.target or {"kind": "none"})

