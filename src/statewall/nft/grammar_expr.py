"""Expressions of nftables rules: what a rule looks at, and the values it compares with.

The result is the expression's form in the libnftables JSON schema
(`{"payload": {"protocol": "tcp", "field": "dport"}}`, `{"set": [...]}`,
`{"range": [a, b]}`, plain numbers and strings for values).
"""

from __future__ import annotations

import re
from typing import Any

from .cursor import Cursor
from .lexer import PUNCT, STRING, WORD

Json = Any

PAYLOAD_PROTOCOLS = frozenset(
    [
        "ether",
        "vlan",
        "arp",
        "ip",
        "ip6",
        "icmp",
        "icmpv6",
        "igmp",
        "tcp",
        "udp",
        "udplite",
        "sctp",
        "dccp",
        "ah",
        "esp",
        "comp",
        "th",
        "gre",
        "vxlan",
        "geneve",
    ]
)
EXTHDRS = frozenset(["hbh", "rt", "rt0", "rt2", "srh", "frag", "dst", "mh"])
# `rt KEY`: the route's values (the routing header's fields have other names).
_ROUTE_KEYS = ("classid", "nexthop", "mtu", "ipsec")
# meta keys nft accepts without the `meta` keyword
UNQUALIFIED_META = frozenset(
    [
        "mark",
        "iif",
        "iifname",
        "iiftype",
        "oif",
        "oifname",
        "oiftype",
        "skuid",
        "skgid",
        "nftrace",
        "rtclassid",
        "ibriport",
        "obriport",
        "ibrname",
        "obrname",
        "pkttype",
        "cpu",
        "iifgroup",
        "oifgroup",
        "cgroup",
        "time",
        "day",
        "hour",
    ]
)
CT_DIRS = ("original", "reply")
# nft's "bitmask" types: a bare value there means "any of these bits" (op `in`)
BITMASK_KEYS = (("ct", "state"), ("ct", "status"), ("ct", "event"), ("payload", "flags"))
VERDICTS = ("accept", "drop", "continue", "return")
RELATIONAL = {
    "==": "==",
    "!=": "!=",
    "<": "<",
    ">": ">",
    "<=": "<=",
    ">=": ">=",
    "eq": "==",
    "ne": "!=",
    "lt": "<",
    "gt": ">",
    "le": "<=",
    "ge": ">=",
}
BINOPS = ("&", "|", "^", "<<", ">>", "and", "or", "xor", "lshift", "rshift")
_BINOP_WORDS = {"and": "&", "or": "|", "xor": "^", "lshift": "<<", "rshift": ">>"}
# nft's grammar (as C): shifts bind tightest, then &, then ^, then |.
_BINDING = {"<<": 4, ">>": 4, "&": 3, "^": 2, "|": 1}
_TIME = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?")
_TIME_FACTORS = (86400000, 3600000, 60000, 1000, 1)


def time_ms(text: str) -> int | None:
    """`1m7s` -> 67000; None when `text` is not a time."""
    match = _TIME.fullmatch(text)
    if not match or not any(match.groups()):
        return None
    return sum(int(g) * f for g, f in zip(match.groups(), _TIME_FACTORS, strict=True) if g)


def scalar(text: str) -> int | str:
    """One unquoted value: numbers (decimal, hex, times in seconds) or the text itself."""
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"0x[0-9a-fA-F]+", text):
        value = int(text, 16)
        # nft -j prints values wider than 64 bits as the hex text
        return value if value < 1 << 64 else text
    ms = time_ms(text)
    if ms is not None:
        return ms // 1000
    return text


def _value_like(text: str) -> bool:
    return bool(text) and (text[0].isdigit() or ":" in text or text[0] == "[")


def word_value(text: str) -> Json:
    """An unquoted word as a value: `10.0.0.0/8` a prefix, `33-45` a range, else a scalar."""
    if "/" in text:
        addr, _, length = text.rpartition("/")
        if length.isdigit() and addr:
            return {"prefix": {"addr": addr, "len": int(length)}}
    if "-" in text[1:]:
        for index in range(1, len(text) - 1):
            if text[index] == "-" and _value_like(text[:index]) and _value_like(text[index + 1 :]):
                return {"range": [scalar(text[:index]), scalar(text[index + 1 :])]}
    return scalar(text)


class ExprParser:
    """Expressions on a cursor; statements and blocks build on it."""

    def __init__(self, cur: Cursor) -> None:
        self.cur = cur

    # -- what a rule looks at ------------------------------------------------

    def starts_expr(self) -> bool:
        tok = self.cur.peek()
        if tok.kind == PUNCT:
            return tok.text in ("@", "(")
        if tok.kind != WORD:
            return False
        word = tok.text
        nxt = self.cur.peek(1)
        if word in PAYLOAD_PROTOCOLS or word in EXTHDRS:
            return nxt.kind == WORD and nxt.text not in ("to",)
        return (
            word
            in (
                "meta",
                "ct",
                "fib",
                "numgen",
                "jhash",
                "symhash",
                "socket",
                "osf",
                "ipsec",
                "exthdr",
                "rt",
                "tunnel",
            )
            or word in UNQUALIFIED_META
        )

    def primary(self) -> Json:
        cur = self.cur
        tok = cur.peek()
        if tok.kind == PUNCT and tok.text == "@":
            cur.next()
            base = cur.word("a payload base")
            cur.expect(",")
            offset = cur.number("an offset")
            cur.expect(",")
            length = cur.number("a length")
            return {"payload": {"base": base, "offset": offset, "len": length}}
        if tok.kind == PUNCT and tok.text == "(":
            cur.next()
            cur.depth += 1
            inner = self.expr()
            cur.depth -= 1
            cur.expect(")")
            return inner
        word = cur.word("an expression")
        if word == "meta":
            return {"meta": {"key": cur.word("a meta key")}}
        if word in UNQUALIFIED_META:
            return {"meta": {"key": word}}
        if word == "ct":
            return self._ct()
        if word == "fib":
            flags = [cur.word("a fib flag")]
            while cur.accept("."):
                flags.append(cur.word("a fib flag"))
            return {"fib": {"result": cur.word("a fib result"), "flags": flags}}
        if word == "numgen":
            mode = cur.word("a numgen mode")
            cur.expect("mod")
            body: dict[str, Json] = {"mode": mode, "mod": cur.number(), "offset": 0}
            if cur.accept("offset"):
                body["offset"] = cur.number()
            return {"numgen": body}
        if word in ("jhash", "symhash"):
            body = {}
            if word == "jhash":
                body["expr"] = self.concat()
            cur.expect("mod")
            body["mod"] = cur.number()
            if cur.accept("seed"):
                body["seed"] = cur.number()
            if cur.accept("offset"):
                body["offset"] = cur.number()
            return {word: body}
        if word == "socket":
            return {"socket": {"key": cur.word("a socket key")}}
        if word == "osf":
            body = {}
            if cur.accept("ttl"):
                body["ttl"] = cur.word("a ttl mode")
            body["key"] = cur.word("an osf key")
            return {"osf": body}
        if word == "ipsec":
            direction = cur.word("in or out")
            spnum = cur.number() if cur.accept("spnum") else 0
            key = cur.word("an ipsec key")
            if key in ("ip", "ip6"):
                key = cur.word("an address key")
            return {"ipsec": {"key": key, "dir": direction, "spnum": spnum}}
        if word == "exthdr":
            return {"exthdr": {"name": cur.word("an extension header")}}
        if word == "rt" and cur.at(*_ROUTE_KEYS, "ip", "ip6"):
            # The routing expression, not the routing header (`rt type`).
            family = cur.word() if cur.at("ip", "ip6") else None
            route: dict[str, Json] = {"key": cur.word("a route key")}
            if family is not None:
                route["family"] = family
            return {"rt": route}
        if word in EXTHDRS:
            return {"exthdr": {"name": word, "field": cur.word("a header field")}}
        if word in PAYLOAD_PROTOCOLS:
            field = cur.word("a header field")
            if field == "option" and word in ("tcp", "ip"):
                return self._named(f"{word} option")
            if field == "chunk" and word == "sctp":
                return self._named("sctp chunk")
            return {"payload": {"protocol": word, "field": field}}
        raise cur.error("unknown expression", near=word)

    def _named(self, kind: str) -> Json:
        name = self.cur.word("a name")
        body: dict[str, Json] = {"name": name}
        tok = self.cur.peek()
        if (
            tok.kind == WORD
            and tok.text not in ("exists", "missing", "set", "map", "vmap")
            and not tok.text[0].isdigit()
        ):
            body["field"] = self.cur.word()
        return {kind: body}

    def _ct(self) -> Json:
        cur = self.cur
        direction = None
        if cur.at(*CT_DIRS):
            direction = cur.word()
        key = cur.word("a ct key")
        if key in ("ip", "ip6"):
            key = f"{key} {cur.word('an address key')}"
        body: dict[str, Json] = {"key": key}
        if direction:
            body["dir"] = direction
        return {"ct": body}

    def term(self) -> Json:
        """A primary with binary operators (`meta mark & 0xff`)."""
        return self.binary(self.primary(), 1)

    def binary(self, left: Json, weakest: int) -> Json:
        """`left` followed by binary operators binding at least as `weakest`, each
        right operand a value (`ct mark & 0xff00 | 0x12`, `0x1 | 0x2 & 0x3`)."""
        while self.cur.at(*BINOPS):
            op = _BINOP_WORDS.get(self.cur.peek().text, self.cur.peek().text)
            binding = _BINDING[op]
            if binding < weakest:
                break
            self.cur.next()
            right = self.value_atom()
            while self.cur.at(*BINOPS) and _BINDING[_BINOP_WORDS.get(
                    self.cur.peek().text, self.cur.peek().text)] > binding:
                right = self.binary(right, binding + 1)
            left = {op: [left, right]}
        return left

    def concat(self) -> Json:
        parts = [self.term()]
        while self.cur.at("."):
            self.cur.next()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else {"concat": parts}

    def expr(self) -> Json:
        """An expression as the key of a map or the value of a `set`: maybe `map {...}`."""
        key = self.concat()
        if self.cur.accept("map"):
            return {"map": {"key": key, "data": self.set_or_ref()}}
        return key

    # -- values ----------------------------------------------------------------

    def value_atom(self) -> Json:
        cur = self.cur
        tok = cur.peek()
        if tok.kind == STRING:
            cur.next()
            value: Json = tok.text
            if cur.at("-") and cur.peek(1).kind == STRING:
                cur.next()
                value = {"range": [tok.text, cur.next().text]}
            return value
        if tok.kind == PUNCT:
            if tok.text == "{":
                return self.anon_set()
            if tok.text == "@":
                cur.next()
                return "@" + cur.word("a set name")
            if tok.text == "(":
                cur.next()
                cur.depth += 1
                inner = self.value()
                cur.depth -= 1
                cur.expect(")")
                return inner
            if tok.text == "*":
                cur.next()
                return "*"
        if tok.kind == WORD:
            cur.next()
            if tok.text == "exists":
                return True
            if tok.text == "missing":
                return False
            if tok.text in ("jump", "goto"):
                return {tok.text: {"target": cur.word("a chain name")}}
            if tok.text in VERDICTS:
                return {tok.text: None}
            value = word_value(tok.text)
            if cur.at("-") and not isinstance(value, dict):
                cur.next()
                value = {"range": [value, scalar(cur.word("the end of a range"))]}
            return value
        raise cur.error("expected a value", tok)

    def value_term(self) -> Json:
        return self.binary(self.value_atom(), 1)

    def value(self) -> Json:
        """A value: flags `a,b`, concatenations `a . b`, or a value expression."""
        parts = [self.value_term()]
        while self.cur.at("."):
            self.cur.next()
            parts.append(self.value_term())
        value = parts[0] if len(parts) == 1 else {"concat": parts}
        if self.cur.at(",") and not self.cur.depth:
            items = [value]
            while self.cur.accept(","):
                items.append(self.value_term())
            return items
        return value

    def value_or_expr(self) -> Json:
        """Where either may stand (`meta mark set ct mark`, `dnat to ip saddr map @m`)."""
        if self.starts_expr():
            return self.expr()
        value = self.value()
        if self.cur.accept("map"):
            return {"map": {"key": value, "data": self.set_or_ref()}}
        return value

    def set_or_ref(self) -> Json:
        if self.cur.at("@"):
            return self.value_atom()
        if self.cur.at("{"):
            return self.anon_set()
        raise self.cur.error("expected a set or '@name'")

    def anon_set(self) -> Json:
        return {"set": self.elements()}

    def elements(self) -> list[Json]:
        """`{ a, b : c, d timeout 1s }` -> the element list (map elements as [key, data])."""
        cur = self.cur
        cur.expect("{")
        cur.depth += 1
        items: list[Json] = []
        while not cur.at("}"):
            key = self.element_key()
            if isinstance(key, dict) and "set" in key and len(key) == 1:
                items.extend(key["set"])  # a define holding a set, used inside a set
            elif cur.accept(":"):
                items.append([key, self.value_or_expr()])
            else:
                items.append(key)
            if not cur.accept(","):
                break
        cur.depth -= 1
        cur.expect("}")
        return items

    def element_key(self) -> Json:
        cur = self.cur
        parts = [self.value_term()]
        while cur.at("."):
            cur.next()
            parts.append(self.value_term())
        value = parts[0] if len(parts) == 1 else {"concat": parts}
        options: dict[str, Json] = {}
        while cur.at("timeout", "expires", "counter", "comment"):
            option = cur.word()
            if option == "counter":
                counter = {"packets": 0, "bytes": 0}
                if cur.accept("packets"):
                    counter["packets"] = cur.number()
                if cur.accept("bytes"):
                    counter["bytes"] = cur.number()
                options["counter"] = counter
            elif option == "comment":
                options["comment"] = cur.word("a comment")
            else:
                options[option] = scalar(cur.word("a time"))
        if options:
            return {"elem": {"val": value, **options}}
        return value
