"""Statements of a rule: matches, verdicts, counters, NAT, set updates and the rest."""

from __future__ import annotations

from .grammar_expr import (
    BITMASK_KEYS,
    RELATIONAL,
    VERDICTS,
    ExprParser,
    Json,
    scalar,
)
from .lexer import PUNCT, WORD, Token

_NAT = ("snat", "dnat", "masquerade", "redirect")
_NAT_FLAGS = ("random", "fully-random", "persistent", "netmap")
_BYTE_UNITS = {"bytes": 1, "kbytes": 1024, "mbytes": 1024**2, "gbytes": 1024**3}
_LOG_OPTIONS = ("prefix", "level", "group", "snaplen", "queue-threshold")


class StmtParser(ExprParser):
    """One rule: its statements up to the end of the line, and its comment."""

    def rule(self) -> tuple[list[Json], str | None]:
        stmts: list[Json] = []
        comment = None
        while not self.cur.at_end():
            if self.cur.accept("comment"):
                comment = self.cur.word("a comment")
                continue
            stmts.append(self.statement())
        return stmts, comment

    def statement(self) -> Json:
        cur = self.cur
        tok = cur.peek()
        word = tok.text if tok.kind == WORD else ""
        if word in VERDICTS:
            cur.next()
            return {word: None}
        if word in ("jump", "goto"):
            cur.next()
            return {word: {"target": cur.word("a chain name")}}
        handler = getattr(self, "_stmt_" + word.replace("-", "_"), None) if word else None
        if handler is not None and not (word in ("ct", "synproxy") and self._is_ct_match()):
            cur.next()
            result: Json = handler(tok)
            return result
        if word in ("add", "update", "delete") and cur.peek(1).kind == PUNCT and cur.peek(1).text == "@":
            cur.next()
            return self._set_update(word)
        if not self.starts_expr():
            raise cur.error("unknown statement", tok)
        return self._match()

    def _is_ct_match(self) -> bool:
        nxt = self.cur.peek(1).text
        if self.cur.peek().text == "synproxy":
            return False
        if nxt in ("helper", "timeout", "expectation"):
            return self.cur.peek(2).text != "set"
        return nxt != "count"

    # -- matches and changes ------------------------------------------------

    def _match(self) -> Json:
        cur = self.cur
        left = self.concat()
        if cur.accept("set"):
            return self._mangle(left)
        if cur.accept("vmap"):
            return {"vmap": {"key": left, "data": self.set_or_ref()}}
        tok = cur.peek()
        op = None
        if tok.kind in (PUNCT, WORD) and tok.text in RELATIONAL:
            op = RELATIONAL[cur.next().text]
        elif tok.kind == PUNCT and tok.text == "!":
            cur.next()
            op = "!"
        right = self.value()
        if cur.accept("/"):
            left = {"&": [left, self.value()]}
        if op is None:
            op = "=="
            plain = isinstance(left, dict) and len(left) == 1
            kind = next(iter(left)) if plain else ""
            plain = plain and isinstance(left[kind], dict)
            key = left[kind].get("key", left[kind].get("field")) if plain else None
            if (kind, key) in BITMASK_KEYS and not (isinstance(right, dict) and "set" in right):
                op = "in"
        if "fib" in left and left["fib"]["result"] == "oif" and type(right) is int:
            right = str(right)  # nft -j prints an interface index there as a string
        return {"match": {"op": op, "left": left, "right": right}}

    def _mangle(self, key: Json) -> Json:
        return {"mangle": {"key": key, "value": self.value_or_expr()}}

    def _named_or_map(self, kind: str) -> Json:
        self.cur.expect("name")
        if self.cur.peek().kind != WORD or not self.starts_expr():
            return {kind: self.cur.word("an object name")}
        return {kind: self.expr()}

    # -- stateful statements ------------------------------------------------

    def _stmt_counter(self, tok: Token) -> Json:
        if self.cur.at("name"):
            return self._named_or_map("counter")
        counter = {"packets": 0, "bytes": 0}
        if self.cur.accept("packets"):
            counter["packets"] = self.cur.number()
        if self.cur.accept("bytes"):
            counter["bytes"] = self.cur.number()
        return {"counter": counter}

    def _stmt_limit(self, tok: Token) -> Json:
        if self.cur.at("name"):
            return self._named_or_map("limit")
        self.cur.expect("rate")
        return {"limit": self.limit_body()}

    def limit_body(self) -> dict[str, Json]:
        cur = self.cur
        body: dict[str, Json] = {}
        if cur.accept("over"):
            body["inv"] = True
        rate_text = cur.word("a rate")
        if "/" in rate_text:
            rate, _, per = rate_text.partition("/")
            body["rate"] = int(rate)
            body["per"] = per
            unit = None
        else:
            body["rate"] = int(rate_text)
            unit_per = cur.word("a unit")
            unit, _, per = unit_per.partition("/")
            if not per:
                per = cur.word("a period").lstrip("/")
            body["rate_unit"] = unit
            body["per"] = per
        body["burst"] = 5 if unit is None else 0
        if cur.accept("burst"):
            body["burst"] = cur.number()
            if unit is not None or cur.at(*_BYTE_UNITS):
                if cur.at("packets"):
                    cur.next()
                else:
                    body["burst_unit"] = cur.word("a unit")
            else:
                cur.accept("packets")
        return body

    def _stmt_quota(self, tok: Token) -> Json:
        if self.cur.at("name"):
            return self._named_or_map("quota")
        cur = self.cur
        body: dict[str, Json] = {}
        if cur.accept("over"):
            body["inv"] = True
        body["val"] = cur.number()
        body["val_unit"] = cur.word("a unit")
        if cur.accept("used"):
            body["used"] = cur.number()
            body["used_unit"] = cur.word("a unit")
        return {"quota": body}

    def _stmt_log(self, tok: Token) -> Json:
        body: dict[str, Json] = {}
        flags: list[str] = []
        while self.cur.at(*_LOG_OPTIONS, "flags"):
            option = self.cur.word()
            if option == "flags":
                flags += self._log_flags()
            else:
                body[option] = scalar(self.cur.word("a value"))
        if flags:  # one flag is a string in nft's JSON, more a list
            body["flags"] = flags[0] if len(flags) == 1 else flags
        return {"log": body or None}

    def _log_flags(self) -> list[str]:
        """`ip options`, `tcp sequence,options` (each "tcp ..." in the JSON), `skuid`, ..."""
        word = self.cur.word("a log flag")
        if word not in ("ip", "tcp"):
            return [word]
        names = [self.cur.word(f"a {word} log flag")]
        while self.cur.accept(","):
            names.append(self.cur.word(f"a {word} log flag"))
        return [f"{word} {name}" for name in names]

    def _stmt_reject(self, tok: Token) -> Json:
        if not self.cur.accept("with"):
            return {"reject": None}
        kind = self.cur.word("icmp, icmpv6, icmpx or tcp")
        if kind == "tcp":
            self.cur.expect("reset")
            return {"reject": {"type": "tcp reset"}}
        self.cur.accept("type")
        return {"reject": {"type": kind, "expr": self.cur.word("a reject code")}}

    def _stmt_notrack(self, tok: Token) -> Json:
        return {"notrack": None}

    def _stmt_ct(self, tok: Token) -> Json:
        key = self.cur.word()
        if key == "count":
            body: dict[str, Json] = {}
            if self.cur.accept("over"):
                body["inv"] = True
            body = {"val": self.cur.number(), **body}
            return {"ct count": body}
        self.cur.expect("set")
        return {f"ct {key}": self.value_or_expr()}

    def _stmt_dup(self, tok: Token) -> Json:
        self.cur.expect("to")
        body: dict[str, Json] = {"addr": self.value_or_expr()}
        if self.cur.accept("device"):
            body["dev"] = self.value_or_expr()
        return {"dup": body}

    def _stmt_fwd(self, tok: Token) -> Json:
        body: dict[str, Json] = {}
        if self.cur.at("ip", "ip6"):
            body["family"] = self.cur.word()
        self.cur.expect("to")
        first = self.value_or_expr()
        if self.cur.accept("device"):
            body["addr"] = first
            body["dev"] = self.value_or_expr()
        else:
            body["dev"] = first
        return {"fwd": body}

    def _stmt_synproxy(self, tok: Token) -> Json:
        if self.cur.at("name"):
            return self._named_or_map("synproxy")
        return {"synproxy": self.synproxy_body() or None}

    def synproxy_body(self) -> dict[str, Json]:
        body: dict[str, Json] = {}
        while self.cur.at("mss", "wscale", "timestamp", "sack-perm"):
            option = self.cur.word()
            if option in ("mss", "wscale"):
                body[option] = self.cur.number()
            else:
                body.setdefault("flags", []).append(option)
        return body

    def _stmt_queue(self, tok: Token) -> Json:
        body: dict[str, Json] = {}
        while self.cur.at("num", "bypass", "fanout", "flags", "to"):
            option = self.cur.word()
            if option in ("num", "to"):
                body["num"] = self.value_or_expr()
            elif option == "flags":
                flags = self.value()
                body["flags"] = flags if isinstance(flags, list) else [flags]
            else:
                body.setdefault("flags", []).append(option)
        return {"queue": body or None}

    def _stmt_meter(self, tok: Token) -> Json:
        cur = self.cur
        name = cur.word("a meter name")
        body: dict[str, Json] = {}
        if cur.accept("size"):
            body["size"] = cur.number()
        cur.expect("{")
        cur.depth += 1
        key = self._elem_key_expr()
        stmt = self.statement()
        cur.depth -= 1
        cur.expect("}")
        return {"meter": {"key": key, "stmt": _bare(stmt), **body, "name": name}}

    def _elem_key_expr(self) -> Json:
        key = self.concat()
        options: dict[str, Json] = {}
        while self.cur.at("timeout", "expires"):
            option = self.cur.word()
            options[option] = scalar(self.cur.word("a time"))
        return {"elem": {"val": key, **options}} if options else key

    def _set_update(self, op: str) -> Json:
        cur = self.cur
        name = self.value_atom()
        cur.expect("{")
        cur.depth += 1
        key = self._elem_key_expr()
        stmts: list[Json] = []
        data = None
        if cur.accept(":"):
            data = self.value_or_expr()
        while not cur.at("}"):
            stmts.append(_bare(self.statement()))
        cur.depth -= 1
        cur.expect("}")
        if data is not None:
            return {"map": {"op": op, "elem": key, "data": data, "map": name}}
        body: dict[str, Json] = {"op": op, "elem": key, "set": name}
        if stmts:
            body["stmt"] = stmts
        return {"set": body}

    # -- NAT and tproxy -----------------------------------------------------

    def _split_colon(self) -> None:
        # `map {...}:tcp dport ...` and `to :80` arrive as one word ':x'
        tok = self.cur.peek()
        if tok.kind == WORD and tok.text.startswith(":") and not tok.text.startswith("::"):
            index = self.cur.pos
            self.cur.tokens[index : index + 1] = [
                Token(PUNCT, ":", tok.line, tok.col),
                Token(WORD, tok.text[1:], tok.line, tok.col + 1),
            ]

    def _addr_port(self, body: dict[str, Json], port_only: bool = False) -> None:
        cur = self.cur
        self._split_colon()
        if not cur.accept(":"):
            tok = cur.peek()
            text = tok.text
            if tok.kind == WORD and not self.starts_expr():
                addr, port = _split_addr_port(text)
                if port is not None or addr != text:
                    cur.next()
                    body["addr"] = addr
                    if port is not None:
                        body["port"] = word_port(port)
                    return
                if False:
                    body["addr"] = addr
                    body["port"] = word_port(port)
                    return
            body["addr" if not port_only else "port"] = self.value_or_expr()
            self._split_colon()
            if not cur.accept(":"):
                return
        body["port"] = self.value_or_expr()

    def _nat(self, kind: str) -> Json:
        cur = self.cur
        body: dict[str, Json] = {}
        if cur.at("ip", "ip6") and cur.peek(1).text == "to":
            body["family"] = cur.word()
        if cur.accept("to") or (
            kind in ("snat", "dnat") and not cur.at_end() and not cur.at(*_NAT_FLAGS, "comment")
        ):
            self._addr_port(body, port_only=kind in ("masquerade", "redirect"))
        flags: list[str] = []
        while cur.at(*_NAT_FLAGS) or cur.at(","):
            if not cur.accept(","):
                flags.append(cur.word())
        if flags:
            body["flags"] = flags[0] if len(flags) == 1 else flags
        return {kind: body or None}

    def _stmt_snat(self, tok: Token) -> Json:
        return self._nat("snat")

    def _stmt_dnat(self, tok: Token) -> Json:
        return self._nat("dnat")

    def _stmt_masquerade(self, tok: Token) -> Json:
        return self._nat("masquerade")

    def _stmt_redirect(self, tok: Token) -> Json:
        return self._nat("redirect")

    def _stmt_tproxy(self, tok: Token) -> Json:
        body: dict[str, Json] = {}
        if self.cur.at("ip", "ip6"):
            body["family"] = self.cur.word()
        self.cur.expect("to")
        self._addr_port(body)
        return {"tproxy": body}


def _bare(stmt: Json) -> Json:
    """Statements inside a set or meter element: a counter there has no values yet."""
    if isinstance(stmt, dict) and stmt.get("counter") == {"packets": 0, "bytes": 0}:
        return {"counter": None}
    return stmt


def _split_addr_port(text: str) -> tuple[str, str | None]:
    if text.startswith("["):
        addr, _, rest = text[1:].partition("]")
        if not rest:
            return addr, None
        return addr, rest[1:] if rest.startswith(":") else None
    if text.count(":") == 1:
        addr, _, port = text.partition(":")
        return addr, port
    return text, None


def word_port(text: str) -> Json:
    if "-" in text:
        low, _, high = text.partition("-")
        return {"range": [scalar(low), scalar(high)]}
    return scalar(text)
