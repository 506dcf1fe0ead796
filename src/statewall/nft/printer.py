"""Objects of the libnftables JSON schema printed as `nft list ruleset` prints them."""

from __future__ import annotations

from .expr_values import ICMP_CODE, ICMPV6_CODE
from .grammar_expr import Json
from .printer_expr import (
    expr_text,
    format_time,
    is_bitmask,
    type_style,
    value_style,
    value_text,
)

_PRIO_NAMES = {-300: "raw", -150: "mangle", -100: "dstnat", 0: "filter", 50: "security", 100: "srcnat"}
_BRIDGE_PRIO_NAMES = {-300: "dstnat", -200: "filter", 100: "out", 300: "srcnat"}
_DEFAULT_REJECT = {"ip": "icmp", "ip6": "icmpv6"}


def _match(body: dict[str, Json]) -> str:
    left, right, op = body["left"], body["right"], body["op"]
    style = value_style(left)
    if isinstance(left, dict) and "&" in left and isinstance(left["&"][1], list):
        masked, mask = left["&"]
        text = f"{expr_text(masked)} {value_text(right, style)} / {value_text(mask, style)}"
        return text if op == "==" else f"{expr_text(masked)} {op} " + text.split(" ", 2)[-1]
    right_text = value_text(right, style)
    if op == "in" or (op == "==" and not _explicit_eq(left, right)):
        return f"{expr_text(left)} {right_text}"
    return f"{expr_text(left)} {op} {right_text}"


def _explicit_eq(left: Json, right: Json) -> bool:
    if isinstance(left, dict) and any(k in left for k in ("&", "|", "^")):
        return True
    return is_bitmask(left) and not (isinstance(right, dict) and "set" in right)


def _nat(kind: str, body: Json) -> str:
    if body is None:
        return kind
    text = kind
    if "family" in body:
        text += f" {body['family']}"
    if "addr" in body or "port" in body:
        text += " to "
        if "addr" in body:
            addr = value_text(body["addr"], "plain")
            text += f"[{addr}]" if ":" in addr and "port" in body and "map" not in body["addr"] else addr
        if "port" in body:
            text += ":" + value_text(body["port"], "plain")
    flags = body.get("flags")
    if flags:
        text += " " + (flags if isinstance(flags, str) else ",".join(flags))
    return text


def statement_text(stmt: Json) -> str:
    """One statement of a rule."""
    kind, body = next(iter(stmt.items()))
    if kind == "match":
        return _match(body)
    if kind in ("accept", "drop", "continue", "return", "notrack"):
        return str(kind)
    if kind in ("jump", "goto"):
        return f"{kind} {body['target']}"
    if kind == "counter":
        if body is None:
            return "counter"
        if isinstance(body, str):
            return f'counter name "{body}"'
        if "map" in body:
            return f"counter name {expr_text(body)}"
        return f"counter packets {body['packets']} bytes {body['bytes']}"
    if kind in ("quota", "limit", "synproxy", "ct helper", "ct timeout", "ct expectation") and (
        isinstance(body, str) or (isinstance(body, dict) and "map" in body)
    ):
        name = f'"{body}"' if isinstance(body, str) else _map_text(body["map"], "quoted")
        if kind.startswith("ct "):
            return f"{kind} set {name}"
        return f"{kind} name {name}"
    if kind == "mangle":
        key = body["key"]
        return f"{expr_text(key)} set {_set_value(body['value'], value_style(key))}"
    if kind == "vmap":
        return f"{expr_text(body['key'])} vmap {value_text(body['data'], value_style(body['key']))}"
    if kind in ("snat", "dnat", "masquerade", "redirect"):
        return _nat(kind, body)
    if kind == "reject":
        if (
            body is None
            or body.get("expr") == "port-unreachable"
            and body.get("type") in ("icmpx", "icmp", "icmpv6")
        ):
            return "reject"
        if body["type"] == "tcp reset":
            return "reject with tcp reset"
        return f"reject with {body['type']} {_reject_code(body['type'], body['expr'])}"
    if kind == "limit":
        return "limit " + limit_text(body)
    if kind == "log":
        if not body:
            return "log"
        parts = []
        if "prefix" in body:
            parts.append(f'prefix "{body["prefix"]}"')
        parts += [f"{k} {body[k]}" for k in ("level", "group", "snaplen") if k in body]
        if "flags" in body:
            parts.append(_log_flags(body["flags"]))
        return "log " + " ".join(parts)
    if kind == "ct count":
        over = "over " if body.get("inv") else ""
        return f"ct count {over}{body['val']}"
    if kind == "dup":
        text = f"dup to {_set_value(body['addr'], 'quoted')}"
        return text + (f" device {_set_value(body['dev'], 'quoted')}" if "dev" in body else "")
    if kind == "tproxy":
        family = f" {body['family']}" if "family" in body else ""
        addr = body.get("addr", "")
        if addr and ":" in addr:
            addr = f"[{addr}]"
        port = f":{body['port']}" if "port" in body else ""
        return f"tproxy{family} to {addr}{port}"
    if kind == "meter":
        size = f" size {body['size']}" if "size" in body else ""
        return f"meter {body['name']}{size} {{ {_elem_key(body['key'])} {statement_text(body['stmt'])} }}"
    if kind == "set":
        stmts = "".join(" " + statement_text(s) for s in body.get("stmt", []))
        return f"{body['op']} {body['set']} {{ {_elem_key(body['elem'])}{stmts} }}"
    if kind == "map":
        data = _set_value(body["data"], "plain")
        return f"{body['op']} {body['map']} {{ {_elem_key(body['elem'])} : {data} }}"
    if kind == "synproxy":
        return "synproxy" + _synproxy_args(body or {}, " ")
    if kind == "quota":
        over = "over " if body.get("inv") else ""
        return f"quota {over}{body['val']} {body['val_unit']}"
    if kind == "queue":
        return "queue" + (f" to {body['num']}" if body and "num" in body else "")
    return str(kind)


def _elem_key(key: Json) -> str:
    if isinstance(key, dict) and "elem" in key:
        body = key["elem"]
        text = expr_text(body["val"])
        if "timeout" in body:
            text += f" timeout {format_time(body['timeout'])}"
        return text
    return expr_text(key)


def _map_text(body: dict[str, Json], data_style: str) -> str:
    key = body["key"]
    data = body["data"]
    text = data if isinstance(data, str) else value_text(data, value_style(key), data_style)
    return f"{expr_text(key)} map {text}"


def _set_value(value: Json, style: str) -> str:
    if isinstance(value, dict) and "map" in value:
        return _map_text(value["map"], style)
    if (
        isinstance(value, dict)
        and len(value) == 1
        and next(iter(value)) not in ("set", "range", "prefix", "concat", "accept", "drop", "jump", "goto")
    ):
        return expr_text(value)
    return value_text(value, style)


def limit_text(body: dict[str, Json]) -> str:
    over = "over " if body.get("inv") else ""
    if "rate_unit" in body:
        text = f"rate {over}{body['rate']} {body['rate_unit']}/{body['per']}"
        if body.get("burst"):
            text += f" burst {body['burst']} {body.get('burst_unit', 'bytes')}"
        return text
    text = f"rate {over}{body['rate']}/{body['per']}"
    if body.get("burst", 5) != 5:
        text += f" burst {body['burst']} packets"
    return text


def _synproxy_args(body: dict[str, Json], sep: str) -> str:
    parts = [f"{k} {body[k]}" for k in ("mss", "wscale") if k in body]
    if body.get("flags"):
        parts.append(" ".join(body["flags"]))
    return "".join(sep + p for p in parts)


def format_statements(expr: list[Json]) -> str:
    """One rule's statements as `nft list ruleset` prints the rule."""
    return " ".join(statement_text(stmt) for stmt in expr)


def _prio_text(family: str, hook: str, prio: int) -> str:
    names = dict(_BRIDGE_PRIO_NAMES if family == "bridge" else _PRIO_NAMES)
    # nft names the NAT priorities only at the hooks where they apply
    if hook != "prerouting":
        names = {k: v for k, v in names.items() if v != "dstnat"}
    if hook != "postrouting":
        names = {k: v for k, v in names.items() if v != "srcnat"}
    if prio in names:
        return names[prio]
    for base, name in names.items():
        if 0 < abs(prio - base) <= 10:
            return f"{name} {'+' if prio > base else '-'} {abs(prio - base)}"
    return str(prio)


def _chain_lines(chain: dict[str, Json], rules: list[dict[str, Json]]) -> list[str]:
    lines = [f"\tchain {chain['name']} {{"]
    if "hook" in chain:
        dev = ""
        if "dev" in chain:
            devs = chain["dev"]
            dev = f' device "{devs}"' if isinstance(devs, str) else " devices = { " + ", ".join(devs) + " }"
        lines.append(
            f"\t\ttype {chain['type']} hook {chain['hook']}{dev} priority "
            f"{_prio_text(chain['family'], chain['hook'], chain['prio'])}; policy {chain['policy']};"
        )
    for rule in rules:
        text = format_statements(rule["expr"])
        if "comment" in rule:
            text += f' comment "{rule["comment"]}"'
        lines.append("\t\t" + text)
    lines.append("\t}")
    return lines


def _type_text(value: Json) -> str:
    return " . ".join(value) if isinstance(value, list) else str(value)


def _set_lines(kind: str, body: dict[str, Json]) -> list[str]:
    lines = [f"\t{kind} {body['name']} {{"]
    key = _type_text(body["type"])
    if kind == "map":
        key += f" : {_type_text(body['map'])}"
    lines.append(f"\t\ttype {key}")
    if "flags" in body:
        lines.append(f"\t\tflags {','.join(body['flags'])}")
    if "timeout" in body:
        lines.append(f"\t\ttimeout {format_time(body['timeout'])}")
    if "size" in body:
        lines.append(f"\t\tsize {body['size']}")
    for stmt in body.get("stmt", []):
        lines.append("\t\t" + statement_text(stmt))
    if "comment" in body:
        lines.append(f'\t\tcomment "{body["comment"]}"')
    if "elem" in body:
        style = type_style(body["type"] if isinstance(body["type"], str) else "")
        data_style = type_style(body.get("map", "")) if kind == "map" else "plain"
        text = value_text({"set": body["elem"]}, style, data_style)
        lines.append(f"\t\telements = {text}")
    lines.append("\t}")
    return lines


def _object_lines(kind: str, body: dict[str, Json]) -> list[str]:
    lines = [f"\t{kind} {body['name']} {{"]
    if kind == "counter":
        lines.append(f"\t\tpackets {body['packets']} bytes {body['bytes']}")
    elif kind == "quota":
        over = "over " if body.get("inv") else ""
        lines.append(f"\t\t{over}{_bytes_text(body['bytes'])}")
    elif kind == "limit":
        lines.append("\t\t" + limit_text(body))
    elif kind == "ct helper":
        lines.append(f'\t\ttype "{body["type"]}" protocol {body["protocol"]}')
        lines.append(f"\t\tl3proto {body['l3proto']}")
    elif kind == "ct timeout":
        policy = ", ".join(f"{k} : {v}" for k, v in body["policy"].items())
        lines += [
            f"\t\tprotocol {body['protocol']}",
            f"\t\tl3proto {body['l3proto']}",
            f"\t\tpolicy = {{ {policy} }}",
        ]
    elif kind == "ct expectation":
        lines += [
            f"\t\tprotocol {body['protocol']}",
            f"\t\tdport {body['dport']}",
            f"\t\ttimeout {format_time(body['timeout'] // 1000)}",
            f"\t\tsize {body['size']}",
            f"\t\tl3proto {body['l3proto']}",
        ]
    elif kind == "synproxy":
        lines += [f"\t\t{line}" for line in _synproxy_args(body, "\n").split("\n")[1:]]
    lines.append("\t}")
    return lines


def _bytes_text(value: int) -> str:
    for unit, size in (("gbytes", 1024**3), ("mbytes", 1024**2), ("kbytes", 1024)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} bytes"


def format_ruleset(objects: list[Json]) -> str:
    """The text `nft list ruleset` prints for these objects (handles and metainfo ignored)."""
    tables: list[tuple[dict[str, Json], list[list[str]]]] = []
    blocks: dict[tuple[str, str], list[list[str]]] = {}
    chains: dict[tuple[str, str, str], tuple[dict[str, Json], list[dict[str, Json]]]] = {}
    order: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for obj in objects:
        kind, body = next(iter(obj.items()))
        if kind == "metainfo":
            continue
        if kind == "table":
            key = (body["family"], body["name"])
            blocks[key] = []
            order[key] = []
            tables.append((body, blocks[key]))
            continue
        key = (body["family"], body["table"])
        if kind == "chain":
            chains[(*key, body["name"])] = (body, [])
            order[key].append((*key, body["name"]))
        elif kind == "rule":
            chains[(*key, body["chain"])][1].append(body)
        elif kind in ("set", "map"):
            blocks[key].append(_set_lines(kind, body))
        else:
            blocks[key].append(_object_lines(kind, body))
    out: list[str] = []
    for table, table_blocks in tables:
        key = (table["family"], table["name"])
        all_blocks = table_blocks + [_chain_lines(*chains[c]) for c in order[key]]
        out.append(f"table {table['family']} {table['name']} {{")
        for index, block in enumerate(all_blocks):
            if index:
                out.append("")
            out += block
        out.append("}")
    return "\n".join(out) + "\n" if out else ""


def _log_flags(flags: str | list[str]) -> str:
    """`flags tcp sequence,options` for ["tcp sequence", "tcp options"]: the flags of
    one header share its name, each header its own `flags`."""
    groups: list[tuple[str, list[str]]] = []
    for flag in [flags] if isinstance(flags, str) else flags:
        head, _, name = flag.partition(" ")
        if name and groups and groups[-1][0] == head:
            groups[-1][1].append(name)
        else:
            groups.append((head, [name]) if name else (flag, []))
    return " ".join(f"flags {head} {','.join(names)}" if names else f"flags {head}"
                    for head, names in groups)


def _reject_code(kind: str, code: Json) -> str:
    """A reject code by the name nft lists it with (`icmpx 3`: admin-prohibited);
    a number without a name stays a number."""
    names = {"icmpx": {"no-route": 0, "port-unreachable": 1, "host-unreachable": 2,
                       "admin-prohibited": 3},
             "icmp": ICMP_CODE, "icmpv6": ICMPV6_CODE}.get(kind, {})
    number = int(code) if isinstance(code, str) and code.isdigit() else code
    return next((name for name, n in names.items() if n == number), str(code))
