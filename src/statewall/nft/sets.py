"""nft sets and maps as the core's `SetSpec` (core/src/rules/nft/mod.rs).

Named sets and maps go to the ruleset's nft set list (`nft_sets`, beside
the ipset list: nft keys are byte strings of any layout); `lower_set`
gives one entry of it. Anonymous sets use the same element encoding and
travel inside the rule. Keys are big-endian bytes; each part of a
concatenation is padded to 4 bytes. Intervals (ranges, prefixes, `eth*`)
are stored as low and high keys; in a concatenation each part has its own.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from statewall.nft.expr_keys import JsonObject, Unsupported
from statewall.nft.expr_values import TYPE_WIDTH, BadValue, encode, is_wildcard, wildcard_range
from statewall.nft.scope import RuleScope

# A key part: (padded width, datatype, width, shift).
Part = tuple[int, str, int, int]
# A map's data: one part, several (a concatenation), or "verdict".
Data = Part | list[Part] | str | None

_VERDICTS = ("accept", "drop", "continue", "return", "queue")


def verdict(node: Any, scope: RuleScope) -> JsonObject:
    """A verdict as map data: {"verdict": "accept"} or {"verdict": "jump", "chain": N}."""
    if isinstance(node, dict) and len(node) == 1:
        (kind, body), = node.items()
        if kind in _VERDICTS:
            return {"verdict": kind}
        if kind in ("jump", "goto") and isinstance(body, dict):
            target = body.get("target")
            if not isinstance(target, str) or target not in scope.chains:
                raise Unsupported(f"{kind} to an unknown chain {target!r}")
            return {"verdict": kind, "chain": scope.chains[target]}
    raise Unsupported(f"verdict {node!r}")


def _bounds(value: Any, part: Part) -> tuple[bytes, bytes | None]:
    """One part's low key and, for an interval, its high key."""
    padded, dtype, width, shift = part
    pad = bytes(padded - width)
    if isinstance(value, dict) and "range" in value:
        low, high = value["range"]
        return (encode(low, dtype, width, shift) + pad, encode(high, dtype, width, shift) + pad)
    if isinstance(value, dict) and "prefix" in value:
        p = value["prefix"]
        try:
            net = ipaddress.ip_network(f"{p['addr']}/{p['len']}", strict=False)
        except ValueError:
            raise BadValue(f"bad prefix {p!r}") from None
        if len(net.network_address.packed) != width:
            raise BadValue(f"{net} is not an address of this family")
        return net.network_address.packed + pad, net.broadcast_address.packed + pad
    if is_wildcard(value, dtype):
        low, high = wildcard_range(value, width)
        return low + pad, high + pad
    return encode(value, dtype, width, shift) + pad, None


def element(value: Any, parts: list[Part]) -> JsonObject:
    """A set element (key, or interval) of a key made of `parts`."""
    timeout = None
    if isinstance(value, dict) and "elem" in value:
        timeout = value["elem"].get("timeout")
        value = value["elem"]["val"]
    if value == "*":
        return {"key": "", "catchall": True}
    if len(parts) > 1:
        if not isinstance(value, dict) or "concat" not in value \
                or len(value["concat"]) != len(parts):
            raise BadValue(f"{value!r} is not a value of the concatenation")
        items = value["concat"]
    else:
        items = [value]
    lows, highs, interval = b"", b"", False
    for item, part in zip(items, parts, strict=True):
        low, high = _bounds(item, part)
        lows += low
        highs += high if high is not None else low
        interval |= high is not None
    out: JsonObject = {"key": lows.hex()}
    if interval:
        out["key_end"] = highs.hex()
    if timeout is not None:
        out["timeout"] = float(timeout)
    return out


def spec(name: str, parts: list[Part], elements: list[Any], data: Data,
         scope: RuleScope) -> JsonObject:
    """A SetSpec; `data` is the map's data part, "verdict", or None for a set."""
    elems = []
    for e in elements:
        if data is None:
            elems.append(element(e, parts))
            continue
        if not isinstance(e, list) or len(e) != 2:
            raise BadValue(f"{e!r} is not a map element")
        out = element(e[0], parts)
        if data == "verdict":
            out["verdict"] = verdict(e[1], scope)
        elif isinstance(data, tuple):
            low, high = _bounds(e[1], data)
            out["data"] = (low + (high or b"")).hex()
        elif isinstance(data, list):
            out["data"] = element(e[1], data)["key"]
        elems.append(out)
    return {"name": name, "key_len": sum(p[0] for p in parts),
            "fields": [p[0] for p in parts] if len(parts) > 1 else [],
            "data_fields": [p[0] for p in data] if isinstance(data, list) else [],
            "interval": any("key_end" in e for e in elems), "elements": elems}


def type_parts(type_: Any) -> list[Part]:
    """The key parts of a set type ("ipv4_addr", ["ipv4_addr", "inet_service"], "a . b")."""
    names = type_ if isinstance(type_, list) else str(type_).split(" . ")
    parts = []
    for n in names:
        if n not in TYPE_WIDTH:
            raise Unsupported(f"set type {n}")
        width = TYPE_WIDTH[n]
        parts.append(((width + 3) // 4 * 4 if len(names) > 1 else width, n, width, 0))
    return parts


def lower_set(obj: JsonObject, scope: RuleScope) -> JsonObject:
    """A named set or map definition (`{"set": {...}}`, `{"map": {...}}` or its body)."""
    if len(obj) == 1 and next(iter(obj)) in ("set", "map"):
        obj = next(iter(obj.values()))
    data: Data = None
    if "map" in obj:
        kind = obj["map"]
        if kind == "verdict":
            data = "verdict"
        elif kind in ("counter", "quota", "limit", "ct helper", "ct timeout", "synproxy",
                      "secmark", "ct expectation"):
            raise Unsupported(f"map of {kind} objects")
        else:
            dparts = type_parts(kind)
            data = dparts if len(dparts) > 1 else dparts[0]
    try:
        out = spec(obj["name"], type_parts(obj.get("type")), obj.get("elem", []), data, scope)
    except BadValue as e:
        raise Unsupported(f"set {obj.get('name')}: {e}") from None
    flags = obj.get("flags", [])
    flags = flags if isinstance(flags, list) else [flags]
    out["interval"] = out["interval"] or "interval" in flags
    if "timeout" in obj:
        out["timeout"] = float(obj["timeout"])
    if "size" in obj:
        out["size"] = int(obj["size"])
    return out
