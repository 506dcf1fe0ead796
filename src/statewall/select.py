"""Display filters: the `--filter` expression language, parsed into plain data.

An expression tests the fields of a replayed packet (or of a conntrack
entry, or of an event):

    verdict == DROP and src in 192.0.2.0/24
    ctstate in {NEW, RELATED} or status ~ ASSURED
    not (proto == udp) and dport >= 1024
    rule == "filter FORWARD 3" or rule.chain == INPUT
    reason ~ "window" or reason matches "^ICMP .* unknown"

Grammar, loosest first: `or` (`||`), `and` (`&&`), `not` (`!`), then a
parenthesised expression or a test. A test is a field alone (true when the
subject has it: `sport` for a packet with ports), or `FIELD OP VALUE` with
OP one of `== != < <= > >=`, `in` (a list `{a, b}` or a network), `~` or
`contains` (a status bit; a substring), `matches` (a regular expression).
Names are case-insensitive; a value with spaces or punctuation is quoted
("..." or '...', backslash escapes the next character).

A test of a field the subject lacks (the ports of an ICMP packet, the rule
of a packet no ruleset decided) is false, whatever the operator, except
`!=`: `a != b` means `not a == b`.

The result is JSON the core compiles once (core/src/output/filter.rs) and
evaluates per packet as it writes the output; nothing here runs per packet.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from statewall import _core

Node = dict[str, Any]

NUMBERS = ("frame", "proto", "sport", "dport", "conn", "master", "mark", "zone", "rule.number")
NAMES = ("verdict", "ctstate", "ctdir", "tcp_state", "state", "event")
ADDRESSES = ("src", "dst")
TEXTS = ("reason", "summary", "rule.table", "rule.chain")

# Which fields each kind of subject has.
PACKET_FIELDS = frozenset({
    "frame", "verdict", "ctstate", "ctdir", "proto", "src", "dst", "sport", "dport", "conn",
    "master", "rule", "rule.table", "rule.chain", "rule.number", "tcp_state", "status",
    "reason", "summary"})
ENTRY_FIELDS = frozenset({
    "proto", "src", "dst", "sport", "dport", "conn", "master", "state", "tcp_state", "status",
    "mark", "zone"})
EVENT_FIELDS = frozenset({
    "event", "proto", "src", "dst", "sport", "dport", "conn", "state", "tcp_state", "status",
    "mark", "zone"})

STATUS_BITS: dict[str, int] = dict(_core.STATUS_NAMES)
_TCP_STATES = tuple(_core.TCP_STATE_NAMES)
# The values each name field takes.
NAME_VALUES: dict[str, tuple[str, ...]] = {
    "verdict": tuple(_core.VERDICT_NAMES),
    "ctstate": tuple(dict.fromkeys(name for _, name in _core.CTSTATE_NAMES)),
    "ctdir": ("ORIGINAL", "REPLY"),
    "tcp_state": _TCP_STATES,
    "state": tuple(dict.fromkeys(_TCP_STATES + tuple(_core.SCTP_STATE_NAMES))),
    "event": ("NEW", "UPDATE", "DESTROY"),
}
NUMBER_LIMITS: dict[str, int] = {
    "proto": 255, "sport": 65535, "dport": 65535, "zone": 65535, "mark": 0xFFFFFFFF,
    "conn": 0xFFFFFFFF, "master": 0xFFFFFFFF, "rule.number": 0xFFFFFFFF, "frame": 2**64 - 1}

COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
_KEYWORDS = {"and": "and", "&&": "and", "or": "or", "||": "or", "not": "not", "!": "not"}
_PUNCT = ("==", "!=", "<=", ">=", "&&", "||", "<", ">", "~", "!", "(", ")", "{", "}", ",", "=")
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:/-")


class FilterError(ValueError):
    """An expression that cannot be parsed: where (1-based column) and what."""

    def __init__(self, column: int, message: str) -> None:
        super().__init__(f"at column {column}: {message}")
        self.column = column
        self.message = message


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "word", "string", "punct", "end"
    text: str
    column: int

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the expression"
        if self.kind == "string":
            return f"the string {json.dumps(self.text)}"
        return repr(self.text)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "\"'":
            i = _string(text, i, tokens)
            continue
        punct = next((p for p in _PUNCT if text.startswith(p, i)), None)
        if punct is not None:
            tokens.append(Token("punct", punct, i + 1))
            i += len(punct)
            continue
        if ch in _WORD_CHARS:
            start = i
            while i < len(text) and text[i] in _WORD_CHARS:
                i += 1
            tokens.append(Token("word", text[start:i], start + 1))
            continue
        raise FilterError(i + 1, f"unexpected character {ch!r}")
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def _string(text: str, start: int, tokens: list[Token]) -> int:
    quote, i, out = text[start], start + 1, []
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == quote:
            tokens.append(Token("string", "".join(out), start + 1))
            return i + 1
        out.append(ch)
        i += 1
    raise FilterError(start + 1, f"the string opened here has no closing {quote}")


class Parser:
    """Recursive descent over the tokens; `fields` are those the subject has."""

    def __init__(self, text: str, fields: frozenset[str]) -> None:
        self.tokens = tokenize(text)
        self.pos = 0
        self.fields = fields

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def keyword(self) -> str | None:
        tok = self.tok
        if tok.kind in ("word", "punct"):
            return _KEYWORDS.get(tok.text.lower() if tok.kind == "word" else tok.text)
        return None

    def expected(self, what: str) -> FilterError:
        return FilterError(self.tok.column, f"expected {what}, found {self.tok.describe()}")

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise self.expected("a test such as `verdict == DROP`")
        node = self.or_expr()
        if self.tok.kind != "end":
            raise self.expected("`and`, `or` or the end of the expression")
        return node

    def or_expr(self) -> Node:
        parts = [self.and_expr()]
        while self.keyword() == "or":
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else {"op": "any", "of": parts}

    def and_expr(self) -> Node:
        parts = [self.unary()]
        while self.keyword() == "and":
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else {"op": "all", "of": parts}

    def unary(self) -> Node:
        if self.keyword() == "not":
            self.take()
            return negate(self.unary())
        if self.tok.text == "(" and self.tok.kind == "punct":
            self.take()
            node = self.or_expr()
            if self.tok.text != ")" or self.tok.kind != "punct":
                raise self.expected("`)`")
            self.take()
            return node
        return self.test()

    def test(self) -> Node:
        tok = self.tok
        if tok.kind != "word" or self.keyword() is not None:
            raise self.expected("a field name")
        field = tok.text.lower()
        if field not in self.fields:
            known = ", ".join(sorted(self.fields))
            raise FilterError(tok.column, f"unknown field {tok.text!r} here (fields: {known})")
        self.take()
        op_tok = self.tok
        op = op_tok.text.lower() if op_tok.kind in ("punct", "word") else ""
        if op == "contains":
            op = "~"
        if op == "=" and op_tok.kind == "punct":
            raise FilterError(op_tok.column, "`=` is not an operator: compare with `==`")
        if op not in (*COMPARISONS, "in", "~", "matches"):
            return {"op": "has", "field": field}
        self.take()
        return self.field_test(field, op, op_tok)

    def field_test(self, field: str, op: str, op_tok: Token) -> Node:
        if op == "!=":
            return negate(self.field_test(field, "==", op_tok))
        if field in NUMBERS:
            return self.number_test(field, op, op_tok)
        if field in NAMES:
            return self.name_test(field, op, op_tok)
        if field in ADDRESSES:
            return self.address_test(field, op, op_tok)
        if field in TEXTS:
            return self.text_test(field, op, op_tok)
        if field == "status":
            return self.status_test(op, op_tok)
        return self.rule_test(op, op_tok)

    def refuse(self, field: str, op_tok: Token, allowed: str) -> FilterError:
        return FilterError(op_tok.column, f"{field} takes {allowed}, not {op_tok.text!r}")

    def values(self, one: Callable[[Token], Any]) -> list[Any]:
        """A braced list `{a, b, ...}` (or one value), each converted by `one`."""
        if not (self.tok.kind == "punct" and self.tok.text == "{"):
            return [one(self.value_token())]
        self.take()
        out = [one(self.value_token())]
        while self.tok.kind == "punct" and self.tok.text == ",":
            self.take()
            out.append(one(self.value_token()))
        if not (self.tok.kind == "punct" and self.tok.text == "}"):
            raise self.expected("`,` or `}`")
        self.take()
        return out

    def value_token(self) -> Token:
        tok = self.tok
        if tok.kind not in ("word", "string"):
            raise self.expected("a value")
        self.take()
        return tok

    def number_test(self, field: str, op: str, op_tok: Token) -> Node:
        def one(tok: Token) -> int:
            return number_value(field, tok)

        if op == "in":
            return {"op": "num_in", "field": field, "values": self.values(one)}
        if op in ("~", "matches"):
            raise self.refuse(field, op_tok, "== != < <= > >= and in")
        return {"op": "num", "field": field, "cmp": op, "value": one(self.value_token())}

    def name_test(self, field: str, op: str, op_tok: Token) -> Node:
        if op not in ("==", "in"):
            raise self.refuse(field, op_tok, "== != and in")
        return {"op": "name_in", "field": field,
                "values": self.values(lambda tok: name_value(field, tok))}

    def address_test(self, field: str, op: str, op_tok: Token) -> Node:
        if op not in ("==", "in"):
            raise self.refuse(field, op_tok, "== != and in (an address or a network)")
        nets = self.values(network_value)
        return {"op": "net_in", "field": field,
                "nets": [[str(net.network_address), net.prefixlen] for net in nets]}

    def text_test(self, field: str, op: str, op_tok: Token) -> Node:
        how = {"==": "eq", "~": "contains", "matches": "regex"}.get(op)
        if how is None:
            raise self.refuse(field, op_tok, "== != ~ (contains) and matches (a regular expression)")
        tok = self.value_token()
        return {"op": "text", "field": field, "how": how, "value": tok.text, "column": tok.column}

    def status_test(self, op: str, op_tok: Token) -> Node:
        if op != "~":
            raise self.refuse("status", op_tok, "~ (contains), e.g. `status ~ ASSURED`")
        bits = 0
        for bit in self.values(status_value):
            bits |= bit
        return {"op": "status", "bits": bits}

    def rule_test(self, op: str, op_tok: Token) -> Node:
        if op not in ("==", "in"):
            raise self.refuse("rule", op_tok, '== != and in, e.g. `rule == "filter FORWARD 3"`')
        rules = self.values(rule_value)
        return rules[0] if len(rules) == 1 else {"op": "any", "of": rules}


def negate(node: Node) -> Node:
    return {"op": "not", "of": node}


def number_value(field: str, tok: Token) -> int:
    text = tok.text
    if field == "proto" and not text[:1].isdigit():
        from statewall.rules.addr import PROTOCOLS

        number = PROTOCOLS.get(text.lower())
        if number is None:
            raise FilterError(tok.column, f"unknown protocol {text!r} (a name such as tcp, or 0-255)")
        return number
    try:
        value = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
    except ValueError:
        raise FilterError(tok.column, f"{field} is a number, not {text!r}") from None
    limit = NUMBER_LIMITS[field]
    if not 0 <= value <= limit:
        raise FilterError(tok.column, f"{field} {value} is out of range (0-{limit})")
    return value


def name_value(field: str, tok: Token) -> str:
    name = tok.text.upper()
    known = NAME_VALUES[field]
    if name not in known:
        raise FilterError(tok.column, f"{field} is one of {', '.join(known)}, not {tok.text!r}")
    return name


def network_value(tok: Token) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(tok.text, strict=False)
    except ValueError:
        raise FilterError(tok.column, f"not an address or a network: {tok.text!r}") from None


def status_value(tok: Token) -> int:
    bit = STATUS_BITS.get(tok.text.upper())
    if bit is None:
        raise FilterError(tok.column, f"status bits are {', '.join(STATUS_BITS)}, not {tok.text!r}")
    return bit


def rule_value(tok: Token) -> Node:
    """`TABLE CHAIN [NUMBER | #NUMBER | rule NUMBER | policy]` (0 is the policy too);
    `#NUMBER` is how the text lines cite a rule."""
    parts = tok.text.split()
    if len(parts) == 4 and parts[2] == "rule":
        parts = [parts[0], parts[1], parts[3]]
    if len(parts) == 3 and parts[2].startswith("#"):
        parts[2] = parts[2][1:]
    if len(parts) not in (2, 3):
        raise FilterError(tok.column, 'a rule is "TABLE CHAIN NUMBER" (or "... policy"), '
                                      f"not {tok.text!r}")
    number: int | None = None
    if len(parts) == 3:
        if parts[2] == "policy":
            number = 0
        elif parts[2].isdigit():
            number = int(parts[2])
        else:
            raise FilterError(tok.column, f"a rule number or `policy`, not {parts[2]!r}")
    return {"op": "rule", "table": parts[0], "chain": parts[1], "number": number}


def parse_filter(text: str, fields: frozenset[str] = PACKET_FIELDS) -> Node:
    """The expression as plain data; FilterError says where it goes wrong."""
    node = Parser(text, fields).parse()
    try:
        _core.check_filter(json.dumps(node))
    except ValueError as error:  # only what the core alone can judge: a regular expression
        message = str(error)
        if message.startswith("at column "):
            column, _, rest = message[len("at column "):].partition(": ")
            raise FilterError(int(column), rest) from None
        raise FilterError(1, message) from None
    return node


def all_of(nodes: Iterable[Node]) -> Node | None:
    """The conjunction of `nodes` (None when there are none)."""
    parts = list(nodes)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"op": "all", "of": parts}


@dataclass(frozen=True, slots=True)
class Selection:
    """What a replay writes out: the packets passing `filter` (JSON for the
    core) and, with `conn`, belonging to that connection or to one it
    expected (recursively); `write`: a pcapng file the selected packets go to."""

    filter: str | None = None
    conn: int | None = None
    write: str | None = None

    @staticmethod
    def of(node: Node | None, conn: int | None = None, write: str | None = None) -> Selection:
        return Selection(json.dumps(node) if node is not None else None, conn, write)
