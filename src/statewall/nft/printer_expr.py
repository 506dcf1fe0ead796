"""Expressions and values as `nft list ruleset` prints them."""

from __future__ import annotations

from .grammar_expr import BITMASK_KEYS, UNQUALIFIED_META, Json

# meta keys nft prints without `meta`
_BARE_META = frozenset(["iif", "oif", "iifname", "oifname", "iifgroup", "oifgroup", "ibrname", "obrname"])
_QUOTED_META = frozenset(
    [
        "iif",
        "oif",
        "iifname",
        "oifname",
        "iifgroup",
        "oifgroup",
        "ibrname",
        "obrname",
        "rtclassid",
        "time",
        "day",
        "hour",
    ]
)
_HEX_TYPES = ("mark",)
_QUOTED_TYPES = ("ifname", "iface_index", "string", "devgroup")
_TIME_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))

# How tightly each binary operator binds (nft's grammar, as C's).
_BINDING = {"<<": 4, ">>": 4, "&": 3, "^": 2, "|": 1}


def value_style(expr: Json) -> str:
    """How values compared with `expr` print: 'hex', 'time', 'quoted' or 'plain'."""
    if not isinstance(expr, dict) or len(expr) != 1:
        return "plain"
    kind, body = next(iter(expr.items()))
    if kind in ("&", "|", "^"):
        return value_style(body[0])
    if not isinstance(body, dict):
        return "plain"
    key = body.get("key")
    if kind == "meta":
        return "hex" if key == "mark" else "quoted" if key in _QUOTED_META else "plain"
    if kind == "ct":
        if key == "mark":
            return "hex"
        return "time" if key == "expiration" else "quoted" if key == "helper" else "plain"
    if kind == "socket" and key == "mark":
        return "hex"
    if kind == "osf" and key == "name":
        return "quoted"
    if kind == "fib" and body.get("result") == "oifname":
        return "quoted"
    if kind == "payload" and ("base" in body or body.get("field") == "flags"):
        return "rawhex"
    return "plain"


def type_style(type_name: str) -> str:
    if type_name in _HEX_TYPES:
        return "hex"
    if type_name in _QUOTED_TYPES:
        return "quoted"
    return "time" if type_name == "time" else "plain"


def format_time(seconds: int) -> str:
    parts = []
    for unit, size in _TIME_UNITS:
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def scalar_text(value: Json, style: str) -> str:
    if value is True:
        return "exists"
    if value is False:
        return "missing"
    if isinstance(value, int):
        if style == "hex":
            return f"0x{value:08x}"
        if style == "rawhex":
            return f"0x{value:x}"
        if style == "time":
            return format_time(value)
        return str(value)
    if isinstance(value, str) and style == "quoted" and not value.startswith("@"):
        return f'"{value}"'
    return str(value)


def expr_text(expr: Json) -> str:
    """An expression a rule looks at (`tcp dport`, `ct original ip saddr`, `meta mark & 0xff`)."""
    if not isinstance(expr, dict):
        return str(expr)
    kind, body = next(iter(expr.items()))
    if kind == "payload":
        if "base" in body:
            return f"@{body['base']},{body['offset']},{body['len']}"
        return f"{body['protocol']} {body['field']}"
    if kind == "meta":
        key = body["key"]
        return key if key in _BARE_META else f"meta {key}"
    if kind == "ct":
        direction = f"{body['dir']} " if "dir" in body else ""
        return f"ct {direction}{body['key']}"
    if kind == "concat":
        return " . ".join(expr_text(part) for part in body)
    if kind in _BINDING:
        style = value_style(body[0])
        left = expr_text(body[0])
        if isinstance(body[0], dict) and _BINDING.get(next(iter(body[0])), 9) < _BINDING[kind]:
            left = f"({left})"  # `(meta mark | 0x10) << 8`
        right = str(body[1]) if kind in ("<<", ">>") else value_text(body[1], style)
        return f"{left} {kind} {right}"
    if kind == "fib":
        return f"fib {' . '.join(body['flags'])} {body['result']}"
    if kind == "numgen":
        offset = f" offset {body['offset']}" if body.get("offset") else ""
        return f"numgen {body['mode']} mod {body['mod']}{offset}"
    if kind in ("jhash", "symhash"):
        inner = f" {expr_text(body['expr'])}" if "expr" in body else ""
        seed = f" seed 0x{body['seed']:x}" if "seed" in body else ""
        offset = f" offset {body['offset']}" if body.get("offset") else ""
        return f"{kind}{inner} mod {body['mod']}{seed}{offset}"
    if kind in ("socket", "osf"):
        ttl = f"ttl {body['ttl']} " if "ttl" in body else ""
        return f"{kind} {ttl}{body['key']}"
    if kind == "ipsec":
        spnum = f" spnum {body['spnum']}" if body.get("spnum") else ""
        return f"ipsec {body['dir']}{spnum} {body['key']}"
    if kind == "rt":
        family = f"{body['family']} " if "family" in body else ""
        return f"rt {family}{body['key']}"
    if kind == "exthdr":
        return f"{body['name']} {body['field']}" if "field" in body else f"exthdr {body['name']}"
    if kind in ("tcp option", "ip option", "sctp chunk"):
        field = f" {body['field']}" if "field" in body else ""
        return f"{kind} {body['name']}{field}"
    if kind == "map":
        return f"{expr_text(body['key'])} map {value_text(body['data'], 'plain')}"
    return str(expr)


def value_text(value: Json, style: str, data_style: str = "plain") -> str:
    """A value (or a set of them) compared with an expression printed in `style`."""
    if isinstance(value, list):
        if value and isinstance(value[0], list) is False and all(not isinstance(v, dict) for v in value):
            return ",".join(scalar_text(v, style) for v in value)
        return ",".join(value_text(v, style) for v in value)
    if not isinstance(value, dict):
        return scalar_text(value, style)
    kind, body = next(iter(value.items()))
    if kind == "set":
        return "{ " + ", ".join(element_text(e, style, data_style) for e in body) + " }"
    if kind == "range":
        return f"{scalar_text(body[0], style)}-{scalar_text(body[1], style)}"
    if kind == "prefix":
        return f"{body['addr']}/{body['len']}"
    if kind == "concat":
        styles = [style] * len(body)
        return " . ".join(value_text(v, s) for v, s in zip(body, styles, strict=True))
    if kind in ("|", "&", "^"):
        return f"{value_text(body[0], style)} {kind} {value_text(body[1], style)}"
    if kind in ("accept", "drop", "continue", "return"):
        return str(kind)
    if kind in ("jump", "goto"):
        return f"{kind} {body['target']}"
    if kind == "elem":
        return element_text(value, style, data_style)
    return expr_text(value)


def element_text(elem: Json, style: str, data_style: str) -> str:
    if isinstance(elem, list):
        return f"{element_text(elem[0], style, data_style)} : {value_text(elem[1], data_style)}"
    if isinstance(elem, dict) and "elem" in elem:
        body = elem["elem"]
        text = value_text(body["val"], style)
        if "timeout" in body:
            text += f" timeout {format_time(body['timeout'])}"
        if "expires" in body:
            text += f" expires {format_time(body['expires'])}"
        if "counter" in body:
            text += f" counter packets {body['counter']['packets']} bytes {body['counter']['bytes']}"
        if "comment" in body:
            text += f' comment "{body["comment"]}"'
        return text
    return value_text(elem, style)


def is_bitmask(expr: Json) -> bool:
    if not isinstance(expr, dict) or len(expr) != 1:
        return False
    kind, body = next(iter(expr.items()))
    return isinstance(body, dict) and (kind, body.get("key", body.get("field"))) in BITMASK_KEYS


__all__ = ["UNQUALIFIED_META", "element_text", "expr_text", "is_bitmask", "value_style", "value_text"]
