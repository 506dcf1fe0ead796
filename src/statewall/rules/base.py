"""The header part of every rule (ip_tables.c: ip_packet_match; ip6_tables.c: ip6_packet_match).

Folded into one closure per rule, or none when the rule tests nothing:
`-s`/`-d` compare masked addresses, `-i`/`-o` compare names (`eth+` is a
prefix; a missing interface is the empty name), `-p` the layer-4 protocol
(0 matches all), `-f` non-first fragments.
"""

from __future__ import annotations

from statewall.rules.context import PacketContext
from statewall.rules.ext import MatchFn
from statewall.rules.model import Rule


def _iface(pattern: str) -> tuple[str, bool]:
    """(name or prefix, is_prefix)."""
    if pattern.endswith("+"):
        return pattern[:-1], True
    return pattern, False


def iface_matches(name: str | None, pattern: str, prefix: bool) -> bool:
    actual = name or ""
    return actual.startswith(pattern) if prefix else actual == pattern


def compile_base(rule: Rule, family: int) -> MatchFn | None:
    src, dst = rule.src, rule.dst
    smask, saddr = (src.mask, src.addr) if src else (0, 0)
    dmask, daddr = (dst.mask, dst.addr) if dst else (0, 0)
    sneg, dneg = rule.src_neg, rule.dst_neg
    in_pat, in_prefix = _iface(rule.iface_in) if rule.iface_in is not None else ("", True)
    out_pat, out_prefix = _iface(rule.iface_out) if rule.iface_out is not None else ("", True)
    in_neg, out_neg = rule.iface_in_neg, rule.iface_out_neg
    proto, proto_neg = rule.proto, rule.proto_neg
    fragment = rule.fragment
    if src is None and dst is None and rule.iface_in is None and rule.iface_out is None \
            and not proto and fragment is None:
        return None

    def match(ctx: PacketContext) -> bool:
        pkt = ctx.pkt
        if ((pkt.src & smask) == saddr) == sneg or ((pkt.dst & dmask) == daddr) == dneg:
            return False
        if iface_matches(ctx.iface_in, in_pat, in_prefix) == in_neg:
            return False
        if iface_matches(ctx.iface_out, out_pat, out_prefix) == out_neg:
            return False
        if proto and (pkt.proto == proto) == proto_neg:
            return False
        if fragment is not None:
            later = pkt.fragment is not None and pkt.fragment.offset > 0
            return later == fragment
        return True

    return match
