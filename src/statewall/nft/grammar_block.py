"""Declarations and commands: `table ... { }` blocks, `add rule ...`, `flush ruleset` and the rest."""

from __future__ import annotations

from collections.abc import Callable

from .cursor import Cursor
from .grammar_expr import Json, scalar, time_ms
from .grammar_stmt import StmtParser
from .lexer import STRING, WORD, Token
from .ruleset import Ruleset, Table
from .types import set_type_of

DIRECTIVES = ("define", "redefine", "undefine", "include")
FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")
OBJECT_KINDS = ("counter", "quota", "limit", "secmark", "synproxy")
CT_OBJECTS = ("helper", "timeout", "expectation")
_STANDARD_PRIO = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}
_BRIDGE_PRIO = {"dstnat": -300, "filter": -200, "out": 100, "srcnat": 300}
_JSON_SET_FLAGS = ("constant", "interval", "timeout")
_ELEMENT_OPTIONS = ("flags", "timeout", "size", "gc-interval", "policy", "comment", "auto-merge")


class BlockParser(StmtParser):
    """Top-level commands of one file, applied to `ruleset`."""

    def __init__(
        self, cur: Cursor, ruleset: Ruleset, directive: Callable[[str, Token], None] | None = None
    ) -> None:
        super().__init__(cur)
        self.ruleset = ruleset
        # `define` and `include` may stand inside a table block too
        self.directive = directive

    # -- names --------------------------------------------------------------

    def family_and_name(self) -> tuple[str, str]:
        first = self.cur.word("a table name")
        if first in FAMILIES and (self.cur.peek().kind in (WORD, STRING)) and not self.cur.at("{"):
            return first, self.cur.word("a table name")
        return "ip", first

    def table_ref(self) -> Table:
        tok = self.cur.peek()
        family, name = self.family_and_name()
        if (family, name) not in self.ruleset.tables:
            raise self.cur.error(f"no such table: {family} {name}", tok, name)
        return self.ruleset.tables[(family, name)]

    # -- blocks -------------------------------------------------------------

    def table_block(self, table: Table) -> None:
        cur = self.cur
        cur.expect("{")
        while True:
            cur.skip_nl()
            while cur.accept(";"):
                cur.skip_nl()
            if cur.accept("}"):
                return
            tok = cur.peek()
            word = cur.word("a declaration")
            if word == "chain":
                self.chain_decl(table, cur.word("a chain name"))
            elif word in ("set", "map"):
                self.set_decl(table, word, cur.word("a set name"))
            elif word == "ct" and cur.at(*CT_OBJECTS):
                kind = "ct " + cur.word()
                self.object_decl(table, kind, cur.word("a name"))
            elif word in OBJECT_KINDS:
                self.object_decl(table, word, cur.word("a name"))
            elif word == "flowtable":
                self.flowtable_decl(table, cur.word("a flowtable name"))
            elif word in DIRECTIVES and self.directive is not None:
                self.directive(word, tok)
            elif word == "comment":
                cur.word("a comment")  # nft 1.0.6's JSON has no table comment
            elif word == "flags":
                table.attrs["flags"] = self._names()
            else:
                raise cur.error("unknown declaration in a table", tok)
            cur.end_line()

    def _names(self) -> list[str]:
        names = [self.cur.word("a flag")]
        while self.cur.accept(","):
            names.append(self.cur.word("a flag"))
        return names

    def _chain(self, table: Table, name: str) -> dict[str, Json]:
        if name not in table.chains:
            body: dict[str, Json] = {"family": table.family, "table": table.name, "name": name}
            table.chains[name] = body
            table.rules[name] = []
            self.ruleset.places[id(body)] = (self.cur.source, self.cur.peek().line)
        return table.chains[name]

    def chain_decl(self, table: Table, name: str) -> None:
        cur = self.cur
        chain = self._chain(table, name)
        if not cur.at("{"):
            return
        cur.next()
        while True:
            cur.skip_nl()
            while cur.accept(";"):
                cur.skip_nl()
            if cur.accept("}"):
                return
            if cur.at("type") and cur.peek(1).kind == WORD and cur.peek(2).text == "hook":
                self._base_chain(table, chain)
            elif cur.at("policy"):
                cur.next()
                chain["policy"] = cur.word("accept or drop")
            elif cur.at("comment") and cur.peek(1).kind == STRING and cur.peek(2).text in (";", "\n"):
                cur.next()
                cur.word()  # nft 1.0.6's JSON has no chain comment
            else:
                self.add_rule(table, name, self.rule(), line=cur.peek().line)
            cur.end_line()

    def _base_chain(self, table: Table, chain: dict[str, Json]) -> None:
        cur = self.cur
        cur.expect("type")
        chain["type"] = cur.word("a chain type")
        cur.expect("hook")
        chain["hook"] = cur.word("a hook")
        if cur.accept("device"):
            chain["dev"] = cur.word("a device")
        elif cur.accept("devices"):
            cur.expect("=")
            devices = self.set_or_ref()
            chain["dev"] = devices["set"] if isinstance(devices, dict) else devices
        cur.expect("priority")
        chain["prio"] = self.priority(table.family)
        chain.setdefault("policy", "accept")

    def priority(self, family: str) -> int:
        cur = self.cur
        tok = cur.peek()
        text = cur.word("a priority")
        names = _BRIDGE_PRIO if family == "bridge" else _STANDARD_PRIO
        base_text, sign, offset_text = text, "", ""
        for mark in ("+", "-"):
            head, found, tail = text[1:].partition(mark)
            if found and tail.isdigit() and not text[0].isdigit():
                base_text, sign, offset_text = text[0] + head, mark, tail
        if base_text in names:
            base = names[base_text]
        else:
            try:
                return int(text)
            except ValueError:
                raise cur.error("unknown chain priority", tok) from None
        if not sign and cur.at("+", "-"):
            sign = cur.next().text
            offset_text = str(cur.number("a priority offset"))
        offset = int(offset_text) if offset_text else 0
        return base + offset if sign == "+" else base - offset

    def set_decl(self, table: Table, kind: str, name: str) -> None:
        cur = self.cur
        body: dict[str, Json] = {"family": table.family, "name": name, "table": table.name}
        table.sets.append((kind, body))
        cur.expect("{")
        while True:
            cur.skip_nl()
            while cur.accept(";"):
                cur.skip_nl()
            if cur.accept("}"):
                return
            tok = cur.peek()
            word = cur.word("a set property")
            if word in ("type", "typeof"):
                self._set_type(body, kind, word)
            elif word == "flags":
                # nft 1.0.6's JSON lists only these set flags (not `dynamic`)
                flags = [f for f in self._names() if f in _JSON_SET_FLAGS]
                if flags:
                    body["flags"] = flags
            elif word in ("timeout", "gc-interval"):
                body[word] = scalar(cur.word("a time"))
            elif word == "size":
                body["size"] = cur.number()
            elif word == "policy":
                body["policy"] = cur.word("a set policy")
            elif word == "comment":
                body["comment"] = cur.word("a comment")
            elif word == "auto-merge":
                body["auto-merge"] = True
            elif word == "elements":
                cur.expect("=")
                body["elem"] = self.elements()
            elif word == "counter":
                body.setdefault("stmt", []).append({"counter": None})
            elif word in ("quota", "limit"):
                cur.pos -= 1
                body.setdefault("stmt", []).append(self.statement())
            else:
                raise cur.error("unknown set property", tok)
            cur.end_line()

    def _set_type(self, body: dict[str, Json], kind: str, how: str) -> None:
        cur = self.cur
        key = set_type_of(self.concat()) if how == "typeof" else self._type_names()
        body["type"] = key
        if kind == "map":
            cur.expect(":")
            if how == "typeof" and not cur.at("verdict"):
                body["map"] = set_type_of(self.concat())
            else:
                body["map"] = self._type_names()
            if isinstance(body["map"], list):
                body["map"] = " . ".join(body["map"])  # so nft 1.0.6's JSON prints it

    def _type_names(self) -> Json:
        names = [self.cur.word("a type")]
        while self.cur.accept("."):
            names.append(self.cur.word("a type"))
        return names[0] if len(names) == 1 else names

    def object_decl(self, table: Table, kind: str, name: str) -> None:
        cur = self.cur
        body: dict[str, Json] = {"family": table.family, "name": name, "table": table.name}
        table.objects.append((kind, body))
        if not cur.accept("{"):
            return
        while True:
            cur.skip_nl()
            while cur.accept(";"):
                cur.skip_nl()
            if cur.accept("}"):
                return
            self._object_line(kind, body)
            cur.end_line()

    def _object_line(self, kind: str, body: dict[str, Json]) -> None:
        cur = self.cur
        tok = cur.peek()
        if kind == "counter":
            cur.expect("packets")
            body["packets"] = cur.number()
            cur.expect("bytes")
            body["bytes"] = cur.number()
        elif kind == "quota":
            body["inv"] = cur.accept("over")
            body["bytes"] = _bytes(cur.number(), cur.word("a unit"))
            body["used"] = 0
            if cur.accept("used"):
                body["used"] = _bytes(cur.number(), cur.word("a unit"))
        elif kind == "limit":
            cur.expect("rate")
            limit = self.limit_body()
            body.update(limit)
        elif kind == "synproxy":
            body.update(self.synproxy_body())
        elif kind == "comment" or cur.at("comment"):
            cur.expect("comment")
            body["comment"] = cur.word("a comment")
        elif kind.startswith("ct "):
            self._ct_object_line(kind, body)
        else:
            raise cur.error(f"unsupported object: {kind}", tok)

    def _ct_object_line(self, kind: str, body: dict[str, Json]) -> None:
        cur = self.cur
        tok = cur.peek()
        word = cur.word("a property")
        if word == "type" and kind == "ct helper":
            body["type"] = cur.word("a helper name")
            cur.expect("protocol")
            body["protocol"] = cur.word("a protocol")
        elif word == "protocol":
            body["protocol"] = cur.word("a protocol")
        elif word == "l3proto":
            body["l3proto"] = cur.word("a family")
        elif word == "policy":
            cur.expect("=")
            policy: dict[str, Json] = {}
            for item in self.elements():
                policy[item[0]] = item[1]
            body["policy"] = policy
        elif word in ("dport", "size"):
            body[word] = cur.number()
        elif word == "timeout":
            body["timeout"] = time_ms(cur.word("a time"))
        else:
            raise cur.error(f"unknown {kind} property", tok)

    def flowtable_decl(self, table: Table, name: str) -> None:
        raise self.cur.error("flowtables are not supported", near=f"flowtable {name}")

    def add_rule(
        self,
        table: Table,
        chain: str,
        rule: tuple[list[Json], str | None],
        index: int | None = None,
        line: int = 0,
    ) -> None:
        stmts, comment = rule
        body: dict[str, Json] = {"family": table.family, "table": table.name, "chain": chain}
        if comment is not None:
            body["comment"] = comment
        body["expr"] = [_default_reject(stmt, table.family) for stmt in stmts]
        rules = table.rules[chain]
        rules.insert(len(rules) if index is None else index, body)
        self.ruleset.places[id(body)] = (self.cur.source, line)


def _bytes(value: int, unit: str) -> int:
    factors = {"bytes": 1, "kbytes": 1024, "mbytes": 1024**2, "gbytes": 1024**3}
    return value * factors.get(unit, 1)


def _default_reject(stmt: Json, family: str) -> Json:
    """A bare `reject` is listed with the code the kernel uses for the table's family."""
    if stmt != {"reject": None}:
        return stmt
    kind = {"ip": "icmp", "ip6": "icmpv6"}.get(family, "icmpx")
    return {"reject": {"type": kind, "expr": "port-unreachable"}}
