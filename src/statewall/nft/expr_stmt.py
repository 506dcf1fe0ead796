"""nft statements: the non-terminal ones become `nft` matches (counter,
limit, quota, log, mark/zone set, ct helper, notrack, set add/update), the
terminal ones the rule's target (verdicts, vmap, reject, nat, queue). Log,
reject, nat and the conntrack template effects take the same core data the
iptables LOG, REJECT, nat and CT targets give.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from statewall.nft.expr_keys import JsonObject, Unsupported, constant, dep_cmp, is_constant
from statewall.nft.expr_rule import RuleBuilder
from statewall.nft.expr_values import ICMP_CODE, ICMPV6_CODE, encode
from statewall.nft.sets import Part, verdict

_PER = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
_UNIT = {"bytes": 1, "kbytes": 1024, "mbytes": 1024 * 1024}
# NF_NAT_RANGE_PROTO_RANDOM, _PERSISTENT, _PROTO_RANDOM_FULLY; MAP_IPS, PROTO_SPECIFIED.
_NAT_FLAGS = {"random": 4, "persistent": 8, "fully-random": 16}
MAP_IPS, PROTO_SPECIFIED = 1, 2
_MARK: Part = (4, "integer", 4, 0)


def _object(rule: RuleBuilder, kind: str, name: str) -> JsonObject:
    obj = rule.scope.objects.get((kind, name))
    if obj is None:
        raise Unsupported(f"{kind} {name!r}, which the table does not define")
    return obj


def _named(rule: RuleBuilder, name: str) -> str:
    return f"{rule.scope.family} {rule.scope.table} {name}"


def counter(rule: RuleBuilder, body: Any) -> None:
    if isinstance(body, str):
        _object(rule, "counter", body)
        rule.nft({"op": "counter", "name": _named(rule, "counter " + body)})
    else:
        rule.nft({"op": "counter"})


def _objref_map(kind: str, body: Any) -> None:
    if isinstance(body, dict) and "map" in body:
        raise Unsupported(f"{kind} from a map")


def limit(rule: RuleBuilder, body: Any) -> None:
    _objref_map("limit", body)
    name = None
    if isinstance(body, str):
        name = _named(rule, "limit " + body)
        body = _object(rule, "limit", body)
    unit = body.get("rate_unit")
    is_bytes = unit is not None and unit != "packets"
    rate = int(body["rate"]) * (_UNIT.get(unit, 1) if is_bytes else 1)
    burst = int(body.get("burst", 0)) * _UNIT.get(body.get("burst_unit", "bytes"), 1)
    if not is_bytes and burst == 0:
        burst = 5  # the kernel's packet burst default
    spec = {"rate": rate, "unit": _PER[body.get("per", "second")], "burst": burst,
            "bytes": is_bytes, "over": bool(body.get("inv", False))}
    rule.nft({"op": "limit", "name": name, "spec": spec})


def quota(rule: RuleBuilder, body: Any) -> None:
    _objref_map("quota", body)
    if isinstance(body, str):
        obj = _object(rule, "quota", body)
        rule.nft({"op": "quota", "name": _named(rule, "quota " + body),
                  "bytes": int(obj["bytes"]), "used": int(obj.get("used", 0)),
                  "over": bool(obj.get("inv", False))})
        return
    total = int(body["val"]) * _UNIT[body.get("val_unit", "bytes")]
    used = int(body.get("used", 0)) * _UNIT[body.get("used_unit", "bytes")]
    rule.nft({"op": "quota", "bytes": total, "used": used, "over": bool(body.get("inv", False))})


def log(rule: RuleBuilder, body: Any) -> None:
    body = body or {}
    prefix = body.get("prefix", "")
    if "group" in body:
        # Like NFLOG: the line goes to a netlink group, not the kernel log.
        rule.nft({"op": "effect", "effect": "nflog", "value": [body["group"], prefix]})
        return
    flags = set(body.get("flags", []))
    every = "all" in flags
    rule.nft({"op": "log", "prefix": prefix,
              "tcp_sequence": every or "tcp sequence" in flags,
              "tcp_options": every or "tcp options" in flags,
              "ip_options": every or "ip options" in flags})


def _source(rule: RuleBuilder, value: Any, part: Part) -> JsonObject:
    """A statement's value: a constant, an expression or a map lookup."""
    if isinstance(value, dict) and "map" in value:
        left = rule.left(value["map"]["key"])
        ref = rule.set_ref(value["map"]["data"], left, part)
        return {"from": "map", "expr": left.expr, "map": ref}
    if is_constant(value):
        # `ct mark set 0x11 xor 0x1331`: nft sets the result.
        number = constant(value, part[1], part[2])
        return {"from": "imm", "data": number.to_bytes(part[2], "big").hex()}
    if isinstance(value, dict):
        left = rule.left(value)
        if left.width != part[2]:
            raise Unsupported("a value of another width")
        return {"from": "load", "expr": left.expr}
    return {"from": "imm", "data": encode(value, part[1], part[2]).hex()}


def mangle(rule: RuleBuilder, body: Any) -> None:
    key, value = body["key"], body["value"]
    if "meta" in key and key["meta"].get("key") == "mark":
        rule.nft({"op": "set", "what": "meta mark", "value": _source(rule, value, _MARK)})
    elif "ct" in key and key["ct"].get("key") in ("mark", "zone"):
        if "dir" in key["ct"]:
            raise Unsupported(f"ct {key['ct']['dir']} {key['ct']['key']} set")
        what = key["ct"]["key"]
        part: Part = _MARK if what == "mark" else (2, "integer", 2, 0)
        rule.nft({"op": "set", "what": "ct " + what, "value": _source(rule, value, part)})
    elif key.get("payload", {}).get("field") == "dscp" and not isinstance(value, dict):
        # What the DSCP target hands over.
        rule.nft({"op": "effect", "effect": "dscp",
                  "value": int.from_bytes(encode(value, "dscp", 1), "big")})
    elif key.get("tcp option", {}).get("name") == "maxseg" and \
            key["tcp option"].get("field") == "size" and (
                value == {"rt": {"key": "mtu"}} or isinstance(value, int)):
        # What the TCPMSS target hands over: the MSS conntrack never reads.
        rule.nft({"op": "effect", "effect": "tcpmss",
                  "value": value if isinstance(value, int) else "clamp-to-pmtu"})
    elif key.get("meta", {}).get("key") == "nftrace":
        pass  # tracing (as the TRACE target) changes no packet's fate
    else:
        name = next(iter(key))
        raise Unsupported(f"{name} {key[name].get('key') or key[name].get('field')} set")


def ct_helper(rule: RuleBuilder, body: Any) -> None:
    if isinstance(body, str):
        obj = _object(rule, "ct helper", body)
        rule.nft({"op": "effect", "effect": "helper", "value": obj.get("type", body)})
        return
    data = body.get("map", {}).get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("set"), list):
        raise Unsupported("ct helper set from a named map")
    # The map's data: an index into the helpers the rule names.
    values: list[Any] = []
    elements = []
    for key, name in data["set"]:
        values.append(_object(rule, "ct helper", name).get("type", name))
        elements.append([key, len(values) - 1])
    left = rule.left(body["map"]["key"])
    ref = rule.set_ref({"set": elements}, left, _MARK)
    rule.nft({"op": "effect_map", "effect": "helper", "key": left.expr, "map": ref,
              "values": values})


def ct_timeout(rule: RuleBuilder, body: Any) -> None:
    if not isinstance(body, str):
        raise Unsupported("ct timeout set from a map")
    _object(rule, "ct timeout", body)
    rule.nft({"op": "effect", "effect": "ct-timeout", "value": body})


def notrack(rule: RuleBuilder, body: Any) -> None:
    rule.nft({"op": "effect", "effect": "notrack", "value": True})


def dynset(rule: RuleBuilder, body: Any) -> None:
    elem, timeout = body["elem"], None
    if isinstance(elem, dict) and "elem" in elem:
        timeout = elem["elem"].get("timeout")
        elem = elem["elem"]["val"]
    left = rule.left(elem)
    name = body["set"]
    if not isinstance(name, str) or not name.startswith("@"):
        raise Unsupported("set statement on an anonymous set")
    op = body.get("op")
    if op not in ("add", "update"):
        raise Unsupported(f"set {op}")
    rule.nft({"op": "dynset", "update": op == "update", "key": left.expr,
              "set": rule.set_ref(name, left),
              "timeout": None if timeout is None else float(timeout)})


def _target(rule: RuleBuilder, target: JsonObject) -> None:
    if rule.target is not None:
        # nft goes on after a verdict map only when the element says continue.
        raise Unsupported("a statement after a verdict map" if
                          rule.target.get("kind") == "nft_vmap" else "a second verdict")
    rule.target = target


def _verdict(name: str) -> Callable[[RuleBuilder, Any], None]:
    def lower(rule: RuleBuilder, body: Any) -> None:
        if name == "continue":
            _target(rule, {"kind": "none"})
        elif name in ("jump", "goto"):
            v = verdict({name: body}, rule.scope)
            _target(rule, {"kind": name, "chain": v["chain"]})
        else:
            _target(rule, {"kind": "verdict", "verdict": name.upper()})
    return lower


def queue(rule: RuleBuilder, body: Any) -> None:
    body = body or {}
    num = body.get("num", 0)
    if not isinstance(num, int):
        raise Unsupported("queue to a range or map of queues")
    flags = body.get("flags", [])
    _target(rule, {"kind": "nfqueue", "num": num, "bypass": "bypass" in flags})


# The answer a reject sends, named as iptables' REJECT names it where it has a name
# (what the core records), by ICMP or ICMPv6 destination-unreachable code.
_V4_NAMES = {0: "icmp-net-unreachable", 1: "icmp-host-unreachable",
             2: "icmp-proto-unreachable", 3: "icmp-port-unreachable", 4: "icmp-frag-needed",
             9: "icmp-net-prohibited", 10: "icmp-host-prohibited", 13: "icmp-admin-prohibited"}
_V6_NAMES = {0: "icmp6-no-route", 1: "icmp6-adm-prohibited", 3: "icmp6-addr-unreachable",
             4: "icmp6-port-unreachable", 5: "icmp6-policy-fail", 6: "icmp6-reject-route"}
# icmpx codes (NFT_REJECT_ICMPX_*) and the ICMP and ICMPv6 codes nft_reject_inet sends.
_ICMPX = {"no-route": 0, "port-unreachable": 1, "host-unreachable": 2, "admin-prohibited": 3}
_ICMPX_SENT = {0: (0, 0), 1: (3, 4), 2: (1, 3), 3: (13, 1)}


def _code(kind: str, code: Any) -> int:
    """A reject code as its number: a name nft knows, or the number nft lists
    for a code without one (`reject with icmpv6 7`)."""
    names = {"icmpx": _ICMPX, "icmp": ICMP_CODE, "icmpv6": ICMPV6_CODE}[kind]
    number = names.get(code) if isinstance(code, str) else code
    if isinstance(code, str) and number is None and code.isdigit():
        number = int(code)
    limit = 3 if kind == "icmpx" else 255  # the kernel refuses more
    if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= limit:
        raise Unsupported(f"reject with {kind} {code}")
    return number


def _answer(v4: bool, code: int) -> str:
    if v4:
        return _V4_NAMES.get(code, f"icmp-code-{code}")
    return _V6_NAMES.get(code, f"icmp6-code-{code}")


def reject(rule: RuleBuilder, body: Any) -> None:
    body = body or {}
    v4 = rule.scope.core_family == 4
    kind = body.get("type") or {"inet": "icmpx", "ip": "icmp"}.get(rule.scope.family, "icmpv6")
    code = body.get("expr", "port-unreachable")
    if kind == "tcp reset":
        rule.matches.append(dep_cmp("l4proto", "inet_proto", 1, "tcp"))
        _target(rule, {"kind": "reject", "with": "tcp-reset"})
        return
    if kind not in ("icmpx", "icmp", "icmpv6"):
        raise Unsupported(f"reject with {kind}")
    family = rule.scope.family
    if family in ("ip", "ip6") and kind != {"ip": "icmp", "ip6": "icmpv6"}[family]:
        # What nft refuses to load ("abstracted ICMP unreachable not supported",
        # "conflicting protocols").
        raise Unsupported(f"reject with {kind} in an {family} table")
    number = _code(kind, code)
    if kind == "icmpx":
        number = _ICMPX_SENT[number][0 if v4 else 1]
    elif family == "inet":
        rule.matches.append(dep_cmp("nfproto", "nf_proto", 1,
                                    "ipv4" if kind == "icmp" else "ipv6"))
        v4 = kind == "icmp"
    _target(rule, {"kind": "reject", "with": _answer(v4, number)})


def _address(value: Any) -> tuple[str, str]:
    if isinstance(value, dict) and "range" in value:
        low, high = value["range"]
        return str(ipaddress.ip_address(low)), str(ipaddress.ip_address(high))
    if isinstance(value, str):
        return str(ipaddress.ip_address(value)), str(ipaddress.ip_address(value))
    raise Unsupported(f"nat to {value!r}")


def _nat(kind: str) -> Callable[[RuleBuilder, Any], None]:
    def lower(rule: RuleBuilder, body: Any) -> None:
        body = body or {}
        flags = 0
        for f in body.get("flags", []) if isinstance(body.get("flags"), list) else \
                [body["flags"]] if "flags" in body else []:
            if f not in _NAT_FLAGS:
                raise Unsupported(f"{kind.lower()} flag {f}")
            flags |= _NAT_FLAGS[f]
        family = body.get("family")
        if family in ("ip", "ip6") and rule.scope.family == "inet":
            rule.matches.append(dep_cmp("nfproto", "nf_proto", 1,
                                        "ipv4" if family == "ip" else "ipv6"))
        addr, port = body.get("addr"), body.get("port")
        width = 4 if rule.scope.core_family == 4 else 16
        addr_part: Part = (width, "ipv4_addr" if width == 4 else "ipv6_addr", width, 0)
        dynamic = any(isinstance(v, dict) and "map" in v for v in (addr, port))
        if dynamic:
            target: JsonObject = {"kind": "nft_nat", "target": kind, "flags": flags}
            if addr is not None:
                target["addr"] = _source(rule, addr, addr_part)
            if port is not None:
                target["port"] = _source(rule, port, (2, "inet_service", 2, 0))
            _target(rule, target)
            return
        out: JsonObject = {"kind": "nat", "target": kind, "flags": flags, "min_addr": None,
                           "max_addr": None, "min_port": 0, "max_port": 0, "base_port": 0}
        if addr is not None:
            try:
                out["min_addr"], out["max_addr"] = _address(addr)
            except ValueError:
                raise Unsupported(f"nat to {addr!r}") from None
            if ipaddress.ip_address(out["min_addr"]).version != rule.scope.core_family:
                # The other family's address: this family's packets never reach it.
                rule.matches.append(dep_cmp("nfproto", "nf_proto", 1,
                                            "ipv4" if width == 16 else "ipv6"))
            out["flags"] |= MAP_IPS
        if port is not None:
            if isinstance(port, dict) and "range" in port:
                low, high = port["range"]
            elif isinstance(port, int):
                low = high = port
            else:
                raise Unsupported(f"nat to port {port!r}")
            out.update(min_port=int(low), max_port=int(high))
            out["flags"] |= PROTO_SPECIFIED
        _target(rule, out)
    return lower


def vmap(rule: RuleBuilder, body: Any) -> None:
    left = rule.left(body["key"])
    ref = rule.set_ref(body["data"], left, "verdict")
    _target(rule, {"kind": "nft_vmap", "left": left.expr, "map": ref})


STATEMENTS: dict[str, Callable[[RuleBuilder, Any], None]] = {
    "counter": counter, "limit": limit, "quota": quota, "log": log, "mangle": mangle,
    "ct helper": ct_helper, "ct timeout": ct_timeout, "notrack": notrack, "set": dynset,
    "accept": _verdict("accept"), "drop": _verdict("drop"), "return": _verdict("return"),
    "continue": _verdict("continue"), "jump": _verdict("jump"), "goto": _verdict("goto"),
    "queue": queue, "reject": reject, "vmap": vmap,
    "snat": _nat("SNAT"), "dnat": _nat("DNAT"), "masquerade": _nat("MASQUERADE"),
    "redirect": _nat("REDIRECT"),
}
