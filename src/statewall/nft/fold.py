"""nft tests that say what an iptables rule header or `-m state` says, folded into those.

The core evaluates one rule data for both languages. An iptables rule's
header (addresses with masks, protocol, interfaces) is tested in one step
before its matches, and `-m state` reads the ctinfo's bit directly; an nft
rule spells the same tests as register loads and comparisons (`ip saddr
10.0.0.0/8` is a payload load, a mask and a compare). Folding them back,
as iptables-nft's own translation does in reverse, makes the common nft
rule as fast as its iptables equivalent without a second evaluator.

Only pure tests are moved: those before the rule's first statement (a
counter, a log, a set) and, among them, only exact equivalents:
* `ip saddr/daddr` (and `ip6`) compared equal (or unequal) under a prefix mask
  -> the header's address and mask;
* `meta l4proto` (and IPv4's `ip protocol`) compared with one value -> `-p`;
* `iifname`/`oifname` equal to a name, or to a prefix (`"eth*"`) -> `-i`/`-o`
  (`eth+`);
* `ct state` bit tests (`ct state established,related`) -> `-m state`: nft's
  state bits are xt_state's (invalid 1, established 2, related 4, new 8,
  untracked 64);
* `meta nfproto` of the core family the rule is lowered for, which always
  holds there (an inet table's dependency).
Moving pure tests ahead of other pure tests changes no verdict.
"""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]

# (core family, nh offset, length) -> header field.
_ADDRESSES = {(4, 12, 4): "src", (4, 16, 4): "dst", (6, 8, 16): "src", (6, 24, 16): "dst"}
_IFACES = {"iifname": "iface_in", "oifname": "iface_out"}
_STATE_BITS = 1 | 2 | 4 | 8 | 64
_NFPROTO = {4: 2, 6: 10}
IFNAMSIZ = 16


def fold(matches: list[JsonObject], core_family: int) -> tuple[JsonObject, list[JsonObject]]:
    """The rule header the leading pure tests amount to, and the matches left."""
    header: JsonObject = {}
    kept: list[JsonObject] = []
    pure = True
    for match in matches:
        expr = match.get("expr", {}) if match.get("kind") == "nft" else {}
        pure = pure and expr.get("op") in ("cmp",)
        if pure and _fold_one(expr, core_family, header, kept):
            continue
        kept.append(match)
    return header, kept


def _fold_one(expr: JsonObject, family: int, header: JsonObject,
              kept: list[JsonObject]) -> bool:
    """Fold one compare into `header` (or `kept` as a state match); False to keep it."""
    left, cmp, data = expr["left"], expr["cmp"], bytes.fromhex(expr["data"])
    if cmp not in ("eq", "ne") or left.get("xor", "").strip("0") or left.get("steps"):
        return False
    key, mask = left["key"], left.get("mask")
    neg = cmp == "ne"
    kind = key.get("kind")
    if kind == "payload" and key.get("base") == "nh":
        field = _ADDRESSES.get((family, key.get("offset"), key.get("len")))
        if field is not None and field not in header:
            return _address(header, field, data, mask, neg)
        if (family, key.get("offset"), key.get("len")) == (4, 9, 1) and mask is None:
            return _proto(header, data, neg)
        return False
    if kind != "meta" and kind != "ct":
        return False
    name = key.get("key")
    if kind == "ct" and name == "state" and key.get("dir") is None:
        return _state(kept, data, mask, neg)
    if mask is not None:
        return False
    if name == "l4proto":
        return _proto(header, data, neg)
    if name == "nfproto" and data == bytes([_NFPROTO[family]]) and not neg:
        return True
    if name in _IFACES and _IFACES[name] not in header:
        return _iface(header, _IFACES[name], data, neg)
    return False


def _address(header: JsonObject, field: str, data: bytes, mask: str | None,
             neg: bool) -> bool:
    width = len(data) * 8
    bits = int(mask, 16) if mask else (1 << width) - 1
    ones = bin(bits).count("1")
    if bits != ((1 << width) - 1) ^ ((1 << (width - ones)) - 1):
        return False  # not a prefix mask
    value = int.from_bytes(data, "big")
    if value & ~bits:
        return False  # can never equal: leave it to the compare
    header[field] = {"addr": str(value), "mask": str(bits)}
    header[f"{field}_neg"] = neg
    return True


def _proto(header: JsonObject, data: bytes, neg: bool) -> bool:
    if "proto" in header or len(data) != 1 or data[0] == 0:
        return False
    header["proto"] = data[0]
    header["proto_neg"] = neg
    return True


def _iface(header: JsonObject, field: str, data: bytes, neg: bool) -> bool:
    if len(data) == IFNAMSIZ and b"\0" in data:
        name = data.split(b"\0", 1)[0]
        if data[len(name):].strip(b"\0"):
            return False
        pattern = name.decode("latin-1")
    elif b"\0" not in data and data:
        pattern = data.decode("latin-1") + "+"
    else:
        return False
    if not pattern or "+" in pattern[:-1] or (pattern.endswith("+") and len(data) == IFNAMSIZ):
        return False
    header[field] = pattern
    header[f"{field}_neg"] = neg
    return True


def _state(kept: list[JsonObject], data: bytes, mask: str | None, neg: bool) -> bool:
    bits = int(mask, 16) if mask else 0
    if not bits or bits & ~_STATE_BITS or data.strip(b"\0") or len(data) != 4:
        return False
    # `ct state X` (a bit test): some bit in the mask is set; `== 0`: none is.
    kept.append({"kind": "state", "mask": bits, "neg": not neg})
    return True
