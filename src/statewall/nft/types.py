"""The data type nft gives a set declared with `typeof EXPR` (what `nft -j` prints as its type)."""

from __future__ import annotations

from .grammar_expr import Json

_PAYLOAD = {
    ("ip", "saddr"): "ipv4_addr",
    ("ip", "daddr"): "ipv4_addr",
    ("ip6", "saddr"): "ipv6_addr",
    ("ip6", "daddr"): "ipv6_addr",
    ("ether", "saddr"): "ether_addr",
    ("ether", "daddr"): "ether_addr",
    ("ether", "type"): "ether_type",
    ("ip", "protocol"): "inet_proto",
    ("ip6", "nexthdr"): "inet_proto",
    ("icmp", "type"): "icmp_type",
    ("icmpv6", "type"): "icmpv6_type",
    ("tcp", "flags"): "tcp_flag",
}
_PORT_FIELDS = ("sport", "dport")
_META = {
    "iifname": "ifname",
    "oifname": "ifname",
    "ibrname": "ifname",
    "obrname": "ifname",
    "iif": "iface_index",
    "oif": "iface_index",
    "mark": "mark",
    "l4proto": "inet_proto",
    "nfproto": "nf_proto",
    "protocol": "ether_type",
    "iiftype": "iface_type",
    "oiftype": "iface_type",
    "pkttype": "pkt_type",
    "skuid": "uid",
    "skgid": "gid",
    "iifgroup": "devgroup",
    "oifgroup": "devgroup",
    "day": "day",
    "hour": "hour",
    "time": "time",
    "cpu": "integer",
    "length": "integer",
}
_CT = {
    "mark": "mark",
    "state": "ct_state",
    "status": "ct_status",
    "direction": "ct_dir",
    "zone": "integer",
    "helper": "string",
    "l3proto": "nf_proto",
    "protocol": "inet_proto",
    "label": "ct_label",
    "expiration": "time",
    "saddr": "ipv4_addr",
    "daddr": "ipv4_addr",
    "ip saddr": "ipv4_addr",
    "ip daddr": "ipv4_addr",
    "ip6 saddr": "ipv6_addr",
    "ip6 daddr": "ipv6_addr",
    "proto-src": "inet_service",
    "proto-dst": "inet_service",
}


def set_type_of(expr: Json) -> Json:
    """`ip saddr` -> "ipv4_addr"; a concatenation -> the list of its parts' types."""
    if isinstance(expr, dict) and "concat" in expr:
        return [set_type_of(part) for part in expr["concat"]]
    if not isinstance(expr, dict) or len(expr) != 1:
        return "integer"
    kind, body = next(iter(expr.items()))
    if kind == "payload" and "protocol" in body:
        if body["field"] in _PORT_FIELDS:
            return "inet_service"
        return _PAYLOAD.get((body["protocol"], body["field"]), "integer")
    if kind == "meta":
        return _META.get(body["key"], "integer")
    if kind == "ct":
        return _CT.get(body["key"], "integer")
    if kind == "osf":
        return "string"
    if kind == "fib" and body["result"] == "type":
        return "fib_addrtype"
    return "integer"
