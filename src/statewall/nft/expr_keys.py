"""The left side of an nft expression: a key (payload field, meta, ct, fib,
concatenation, with `&`/`|`/`^`) as the core's `Expr`, with its width,
datatype and the dependencies nft adds (`tcp dport` needs `meta l4proto
tcp`; `ip saddr` in an inet table needs `meta nfproto ipv4`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from statewall.nft.expr_values import BadValue, encode

JsonObject = dict[str, Any]


class Unsupported(Exception):
    """A construct the core does not evaluate (the message names it)."""


# (base, byte offset, byte length, mask or None, shift, datatype)
Field = tuple[str, int, int, int | None, int, str]

PAYLOAD: dict[str, dict[str, Field]] = {
    "ip": {
        "version": ("nh", 0, 1, 0xF0, 4, "integer"), "hdrlength": ("nh", 0, 1, 0x0F, 0, "integer"),
        "dscp": ("nh", 1, 1, 0xFC, 2, "dscp"), "ecn": ("nh", 1, 1, 0x03, 0, "integer"),
        "length": ("nh", 2, 2, None, 0, "integer"), "id": ("nh", 4, 2, None, 0, "integer"),
        "frag-off": ("nh", 6, 2, None, 0, "integer"), "ttl": ("nh", 8, 1, None, 0, "integer"),
        "protocol": ("nh", 9, 1, None, 0, "inet_proto"),
        "checksum": ("nh", 10, 2, None, 0, "integer"),
        "saddr": ("nh", 12, 4, None, 0, "ipv4_addr"), "daddr": ("nh", 16, 4, None, 0, "ipv4_addr"),
    },
    "ip6": {
        "version": ("nh", 0, 1, 0xF0, 4, "integer"), "dscp": ("nh", 0, 2, 0x0FC0, 6, "dscp"),
        "ecn": ("nh", 0, 2, 0x0030, 4, "integer"),
        "flowlabel": ("nh", 1, 3, 0x0FFFFF, 0, "integer"),
        "length": ("nh", 4, 2, None, 0, "integer"),
        "nexthdr": ("nh", 6, 1, None, 0, "inet_proto"),
        "hoplimit": ("nh", 7, 1, None, 0, "integer"),
        "saddr": ("nh", 8, 16, None, 0, "ipv6_addr"), "daddr": ("nh", 24, 16, None, 0, "ipv6_addr"),
    },
    "tcp": {
        "sport": ("th", 0, 2, None, 0, "inet_service"), "dport": ("th", 2, 2, None, 0, "inet_service"),
        "sequence": ("th", 4, 4, None, 0, "integer"), "ackseq": ("th", 8, 4, None, 0, "integer"),
        "doff": ("th", 12, 1, 0xF0, 4, "integer"), "flags": ("th", 13, 1, None, 0, "tcp_flag"),
        "window": ("th", 14, 2, None, 0, "integer"), "checksum": ("th", 16, 2, None, 0, "integer"),
        "urgptr": ("th", 18, 2, None, 0, "integer"),
    },
    "udp": {
        "sport": ("th", 0, 2, None, 0, "inet_service"), "dport": ("th", 2, 2, None, 0, "inet_service"),
        "length": ("th", 4, 2, None, 0, "integer"), "checksum": ("th", 6, 2, None, 0, "integer"),
    },
    "th": {
        "sport": ("th", 0, 2, None, 0, "inet_service"), "dport": ("th", 2, 2, None, 0, "inet_service"),
    },
    "icmp": {
        "type": ("th", 0, 1, None, 0, "icmp_type"), "code": ("th", 1, 1, None, 0, "icmp_code"),
        "checksum": ("th", 2, 2, None, 0, "integer"), "id": ("th", 4, 2, None, 0, "integer"),
        "sequence": ("th", 6, 2, None, 0, "integer"), "mtu": ("th", 6, 2, None, 0, "integer"),
        "gateway": ("th", 4, 4, None, 0, "ipv4_addr"),
    },
    "icmpv6": {
        "type": ("th", 0, 1, None, 0, "icmpv6_type"), "code": ("th", 1, 1, None, 0, "icmpv6_code"),
        "checksum": ("th", 2, 2, None, 0, "integer"), "id": ("th", 4, 2, None, 0, "integer"),
        "sequence": ("th", 6, 2, None, 0, "integer"), "mtu": ("th", 4, 4, None, 0, "integer"),
        "max-delay": ("th", 4, 2, None, 0, "integer"),
    },
    "sctp": {
        "sport": ("th", 0, 2, None, 0, "inet_service"), "dport": ("th", 2, 2, None, 0, "inet_service"),
        "vtag": ("th", 4, 4, None, 0, "integer"), "checksum": ("th", 8, 4, None, 0, "integer"),
    },
    "esp": {"spi": ("th", 0, 4, None, 0, "integer"), "sequence": ("th", 4, 4, None, 0, "integer")},
}
PAYLOAD["udplite"] = {**PAYLOAD["udp"], "csumcov": ("th", 4, 2, None, 0, "integer")}
PAYLOAD["dccp"] = {k: PAYLOAD["th"][k] for k in ("sport", "dport")}

# Transport headers whose fields need `meta l4proto` (nft's dependency).
L4_OF = {"tcp": "tcp", "udp": "udp", "udplite": "udplite", "sctp": "sctp", "dccp": "dccp",
         "icmp": "icmp", "icmpv6": "ipv6-icmp", "esp": "esp"}
NF_OF = {"ip": "ipv4", "ip6": "ipv6", "icmp": "ipv4", "icmpv6": "ipv6"}

# IPv6 extension headers `exthdr NAME exists` tests, by protocol number.
EXTHDR = {"hbh": 0, "rt": 43, "frag": 44, "dst": 60, "mh": 135}

# meta key -> (width, datatype). iif/oif are compared by name: statewall
# knows interfaces by name, not by index.
META: dict[str, tuple[int, str]] = {
    "mark": (4, "integer"), "iifname": (16, "ifname"), "oifname": (16, "ifname"),
    "iif": (16, "ifname"), "oif": (16, "ifname"), "iiftype": (2, "iface_type"),
    "oiftype": (2, "iface_type"), "l4proto": (1, "inet_proto"), "nfproto": (1, "nf_proto"),
    "protocol": (2, "ether_type"), "pkttype": (1, "pkt_type"), "length": (4, "integer"),
    "skuid": (4, "integer"), "skgid": (4, "integer"), "time": (8, "time"), "day": (1, "day"),
    "hour": (4, "hour"), "random": (4, "integer"),
}

# ct key -> (width, datatype); addresses take the table's family.
CT: dict[str, tuple[int, str]] = {
    "state": (4, "ct_state"), "status": (4, "ct_status"), "direction": (1, "ct_dir"),
    "mark": (4, "integer"), "zone": (2, "integer"), "helper": (16, "string"),
    "expiration": (4, "ms"), "l3proto": (1, "nf_proto"), "protocol": (1, "inet_proto"),
    "ip saddr": (4, "ipv4_addr"), "ip daddr": (4, "ipv4_addr"),
    "ip6 saddr": (16, "ipv6_addr"), "ip6 daddr": (16, "ipv6_addr"),
    "proto-src": (2, "inet_service"), "proto-dst": (2, "inet_service"),
    "bytes": (8, "integer"), "packets": (8, "integer"), "avgpkt": (8, "integer"),
}


@dataclass
class Left:
    """A lowered left side."""

    expr: JsonObject
    width: int
    dtype: str
    shift: int = 0
    deps: list[JsonObject] = field(default_factory=list)
    # For a concatenation: each part's (padded width, datatype, width, shift).
    parts: list[tuple[int, str, int, int]] = field(default_factory=list)


def dep_cmp(key: str, dtype: str, width: int, value: str) -> JsonObject:
    """`meta KEY == value` as the core's match."""
    data = encode(value, dtype, width).hex()
    return {"kind": "nft", "expr": {"op": "cmp", "left": {"key": {"kind": "meta", "key": key}},
                                    "cmp": "eq", "data": data}}


def _payload(p: JsonObject, family: str, core_family: int) -> Left:
    proto = p.get("protocol")
    if proto is None:
        base, off, length = p.get("base"), p.get("offset"), p.get("len")
        if base not in ("nh", "th", "ih", "ll") or not isinstance(off, int) \
                or not isinstance(length, int):
            raise Unsupported(f"payload {p}")
        if base == "ll":
            raise Unsupported("link-layer header (@ll)")
        if off % 8 or length % 8:
            raise Unsupported("raw payload not on byte boundaries")
        key = {"kind": "payload", "base": base, "offset": off // 8, "len": length // 8}
        return Left({"key": key}, length // 8, "integer")
    fields = PAYLOAD.get(proto)
    if fields is None:
        raise Unsupported(f"{proto} header")
    spec = fields.get(p.get("field", ""))
    if spec is None:
        raise Unsupported(f"{proto} {p.get('field')}")
    base, off, length, mask, shift, dtype = spec
    expr: JsonObject = {"key": {"kind": "payload", "base": base, "offset": off, "len": length}}
    if mask is not None:
        expr["mask"] = mask.to_bytes(length, "big").hex()
    deps = []
    if family == "inet" and proto in NF_OF:
        deps.append(dep_cmp("nfproto", "nf_proto", 1, NF_OF[proto]))
    if proto in L4_OF:
        deps.append(dep_cmp("l4proto", "inet_proto", 1, L4_OF[proto]))
    return Left(expr, length, dtype, shift, deps)


def _ct(c: JsonObject, family: str, core_family: int) -> Left:
    key = c.get("key", "")
    if key in ("saddr", "daddr"):
        key = ("ip " if core_family == 4 else "ip6 ") + key
    spec = CT.get(key)
    if spec is None:
        raise Unsupported(f"ct {key}")
    expr: JsonObject = {"key": {"kind": "ct", "key": key, "dir": c.get("dir")}}
    deps = []
    if family == "inet" and key.startswith("ip"):
        # An address of one family: the entry must be of that family.
        deps.append(dep_cmp("nfproto", "nf_proto", 1, NF_OF[key.split()[0]]))
    return Left(expr, spec[0], spec[1], 0, deps)


def _fib(f: JsonObject) -> Left:
    flags = set(f.get("flags", []))
    result = f.get("result")
    addr = "saddr" if "saddr" in flags else "daddr"
    if "mark" in flags:
        raise Unsupported("fib ... mark")
    width, dtype = {"type": (4, "fib_addrtype"), "oif": (16, "ifname"),
                    "oifname": (16, "ifname")}.get(result or "", (0, ""))
    if not width:
        raise Unsupported(f"fib {result}")
    key = {"kind": "fib", "result": result, "addr": addr, "iif": "iif" in flags,
           "oif": "oif" in flags}
    return Left({"key": key}, width, dtype)


BITWISE = ("&", "|", "^", "<<", ">>")


def constant(node: Any, dtype: str, width: int, shift: int = 0) -> int:
    """A value, or binary operators on values (`0x11 ^ 0x1331`), as one number of
    `width` bytes: nft computes such an expression when it loads the rule, and the
    kernel only ever sees the result. BadValue when a value does not fit."""
    if isinstance(node, dict) and len(node) == 1:
        (op, args), = node.items()
        if op in BITWISE and isinstance(args, list) and len(args) == 2:
            a = constant(args[0], dtype, width, shift)
            b = constant(args[1], dtype, width, shift)
            full = (1 << 8 * width) - 1
            results = {"&": a & b, "|": a | b, "^": a ^ b, "<<": a << b, ">>": a >> b}
            return results[op] & full
    return int.from_bytes(encode(node, dtype, width, shift), "big")


def is_constant(node: Any) -> bool:
    """True for a value or binary operators on values (no key loaded)."""
    if isinstance(node, dict) and len(node) == 1:
        (op, args), = node.items()
        return op in BITWISE and isinstance(args, list) and len(args) == 2 and \
            all(is_constant(a) for a in args)
    return not isinstance(node, (dict, list))


def _bitwise(op: str, args: list[Any], family: str, core_family: int) -> Left:
    inner = lower_left(args[0], family, core_family)
    if inner.parts:
        raise Unsupported(f"'{op}' on a concatenation")
    width = inner.width
    steps = list(inner.expr.get("steps", []))
    if op in ("<<", ">>"):
        return _shift(op, args[1], inner, steps)
    mask_of = inner.expr.get("mask")
    xor_of = inner.expr.get("xor")
    full = (1 << 8 * width) - 1
    m1 = int(mask_of, 16) if mask_of else full
    x1 = int(xor_of, 16) if xor_of else 0
    try:
        v = constant(args[1], inner.dtype, width, inner.shift)
    except BadValue as e:
        raise Unsupported(f"bitwise operand: {e}") from None
    # (x & m1 ^ x1) OP v, kept as one mask and xor.
    if op == "&":
        m2, x2 = v, 0
    elif op == "|":
        m2, x2 = full & ~v, v
    else:
        m2, x2 = full, v
    mask, xor = m1 & m2, (x1 & m2) ^ x2
    expr: JsonObject = {"key": inner.expr["key"]}
    if steps:
        expr["steps"] = steps
    expr.update(mask=mask.to_bytes(width, "big").hex(), xor=xor.to_bytes(width, "big").hex())
    return Left(expr, width, inner.dtype, inner.shift, inner.deps)


def _shift(op: str, count: Any, inner: Left, steps: list[JsonObject]) -> Left:
    """`x << n`, `x >> n`: the mask and xor so far become a step, then the shift."""
    if inner.shift or inner.width > 16:
        raise Unsupported(f"'{op}' on a value of {inner.width} bytes" if inner.shift == 0
                          else f"'{op}' on a part of a byte")
    try:
        bits = constant(count, "integer", 4)
    except BadValue as e:
        raise Unsupported(f"shift count: {e}") from None
    if "mask" in inner.expr:
        steps.append({"op": "mask_xor", "mask": inner.expr["mask"],
                      "xor": inner.expr.get("xor", "00" * inner.width)})
    steps.append({"op": "shift", "bits": bits if op == "<<" else -bits})
    return Left({"key": inner.expr["key"], "steps": steps}, inner.width, inner.dtype, 0,
                inner.deps)


def lower_left(node: Any, family: str, core_family: int) -> Left:
    """A JSON expression that loads a value."""
    if not isinstance(node, dict) or len(node) != 1:
        raise Unsupported(f"expression {node!r}")
    (kind, body), = node.items()
    if kind == "payload":
        return _payload(body, family, core_family)
    if kind == "meta":
        key = body.get("key", "")
        if key not in META:
            raise Unsupported(f"meta {key}")
        width, dtype = META[key]
        return Left({"key": {"kind": "meta", "key": key}}, width, dtype)
    if kind == "ct":
        return _ct(body, family, core_family)
    if kind == "fib":
        return _fib(body)
    if kind == "exthdr":
        if "field" in body or body.get("name") not in EXTHDR:
            raise Unsupported("exthdr field" if "field" in body else f"exthdr {body.get('name')}")
        deps = [dep_cmp("nfproto", "nf_proto", 1, "ipv6")] if family == "inet" else []
        return Left({"key": {"kind": "exthdr", "hdr": EXTHDR[body["name"]]}}, 1, "integer", 0,
                    deps)
    if kind == "numgen":
        mode = body.get("mode")
        if mode not in ("inc", "random"):
            raise Unsupported(f"numgen {mode}")
        key = {"kind": "numgen", "random": mode == "random", "modulus": int(body["mod"]),
               "offset": int(body.get("offset", 0))}
        return Left({"key": key}, 4, "integer")
    if kind in BITWISE and isinstance(body, list) and len(body) == 2:
        return _bitwise(kind, body, family, core_family)
    if kind == "concat":
        parts = [lower_left(p, family, core_family) for p in body]
        if any(p.parts for p in parts):
            raise Unsupported("nested concatenation")
        padded = [(p.width + 3) // 4 * 4 for p in parts]
        if sum(padded) > 64:
            raise Unsupported("concatenation wider than 64 bytes")
        return Left({"key": {"kind": "concat", "parts": [p.expr for p in parts]}}, sum(padded),
                    "concat", 0, [d for p in parts for d in p.deps],
                    [(w, p.dtype, p.width, p.shift) for w, p in zip(padded, parts, strict=True)])
    key = body.get("key") if isinstance(body, dict) else None
    raise Unsupported(f"{kind} {key}" if isinstance(key, str) else kind)

