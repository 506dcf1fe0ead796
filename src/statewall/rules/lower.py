"""A checked ruleset as plain data for the core's walker (statewall._core.RuleEngine).

`lower(compiled)` turns what `compile_ruleset` accepted into frozen values:
tables -> chains -> rules, each rule its header, its matches and its target
as typed variants with their parameters (parsed by the extensions' own
option helpers, the ones the load-time checks use), its place (table,
chain, number, line) and its iptables-save text. `to_json()` is what
`RuleEngine` loads. Matches and targets the core does not evaluate are
`NotPortedMatch` / `NotPortedTarget`: the core reports a rule reaching one
as undetermined.
"""

from __future__ import annotations

import json
import sys
from typing import Any, ClassVar

from statewall.packet import CWR, ECE
from statewall.rules.addr import parse_address, parse_ip, parse_port_range, parse_protocol
from statewall.rules.compile import (
    K_GOTO,
    K_JUMP,
    K_NONE,
    K_UNKNOWN,
    K_VERDICT,
    CompiledRule,
    CompiledRuleset,
    compile_ruleset,
)
from statewall.rules.ext import BuildArgs, RuleState, parse_int, parse_value_mask
from statewall.rules.ipset import IpSet, ListSet
from statewall.rules.matches import icmp as icmp_ext
from statewall.rules.matches import (
    xt_addrtype,
    xt_dscp,
    xt_hashlimit,
    xt_iprange,
    xt_limit,
    xt_owner,
    xt_physdev,
    xt_pkttype,
    xt_policy,
    xt_recent,
    xt_sctp,
    xt_set,
    xt_string,
    xt_tcpudp,
)
from statewall.rules.matches._util import parse_flag_list, parse_range
from statewall.rules.matches.xt_conntrack import CTSTATE_NAMES, STATUS_NAMES
from statewall.rules.matches.xt_mac import parse_mac
from statewall.rules.matches.xt_state import STATE_NAMES
from statewall.rules.model import Match, Rule, Ruleset
from statewall.rules.model import Option as ModelOption
from statewall.rules.targets import nat as xt_nat
from statewall.rules.targets import xt_CT, xt_mangle, xt_mark, xt_queue
from statewall.rules.targets.xt_REJECT import V4, V6
from statewall.values import value, value_fields
from statewall.verdict import RuleRef

FULL = 0xFFFFFFFF
_NO = ModelOption("", False, ("",))


def _plain(value: Any) -> Any:
    """JSON-ready: ints too wide for a JSON number travel as strings where the core expects them."""
    if isinstance(value, Variant):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


@value
class Variant:
    """One typed variant; `kind` is the tag the core's serde enums read."""

    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for name in value_fields(self):
            out[name] = _plain(getattr(self, name))
        return out


def _wide(value: int) -> str:
    return str(value)


# ---- header ------------------------------------------------------------------------------


@value
class Header:
    src: tuple[int, int] | None = None
    src_neg: bool = False
    dst: tuple[int, int] | None = None
    dst_neg: bool = False
    iface_in: str | None = None
    iface_in_neg: bool = False
    iface_out: str | None = None
    iface_out_neg: bool = False
    proto: int = 0
    proto_neg: bool = False
    fragment: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in value_fields(self):
            item = getattr(self, name)
            if name in ("src", "dst"):
                item = None if item is None else {"addr": _wide(item[0]), "mask": _wide(item[1])}
            out[name] = item
        return out


def _header(rule: Rule) -> Header:
    return Header(
        (rule.src.addr, rule.src.mask) if rule.src else None, rule.src_neg,
        (rule.dst.addr, rule.dst.mask) if rule.dst else None, rule.dst_neg,
        rule.iface_in, rule.iface_in_neg, rule.iface_out, rule.iface_out_neg,
        rule.proto, rule.proto_neg, rule.fragment,
    )


# ---- matches -----------------------------------------------------------------------------


@value
class PortRange(Variant):
    low: int = 0
    high: int = 65535
    neg: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "neg": self.neg}


@value
class TcpMatch(Variant):
    kind: ClassVar[str] = "tcp"
    sport: PortRange
    dport: PortRange
    flags_mask: int
    flags_cmp: int
    flags_neg: bool
    option: int | None
    option_neg: bool


@value
class UdpMatch(Variant):
    kind: ClassVar[str] = "udp"
    sport: PortRange
    dport: PortRange


@value
class IcmpMatch(Variant):
    kind: ClassVar[str] = "icmp"
    icmp_type: int
    code_low: int
    code_high: int
    neg: bool
    match_all: bool


@value
class MultiportMatch(Variant):
    kind: ClassVar[str] = "multiport"
    ranges: tuple[tuple[int, int], ...]
    src: bool
    dst: bool
    neg: bool


@value
class StateMatch(Variant):
    kind: ClassVar[str] = "state"
    mask: int
    neg: bool


@value
class CtCheck(Variant):
    """One xt_conntrack test: kind is addr, port, proto, status, expire or dir."""

    check: str
    which: int = 0
    low: int = 0
    high: int = 0
    neg: bool = False

    def to_dict(self) -> dict[str, Any]:
        c = self.check
        if c == "addr":
            return {"kind": c, "which": self.which, "addr": _wide(self.low),
                    "mask": _wide(self.high), "neg": self.neg}
        if c == "port":
            return {"kind": c, "which": self.which, "low": self.low, "high": self.high,
                    "neg": self.neg}
        if c == "proto":
            return {"kind": c, "proto": self.low, "neg": self.neg}
        if c == "status":
            return {"kind": c, "mask": self.low, "neg": self.neg}
        if c == "expire":
            return {"kind": c, "low": self.low, "high": self.high, "neg": self.neg}
        return {"kind": "dir", "reply": self.neg}


@value
class ConntrackMatch(Variant):
    kind: ClassVar[str] = "conntrack"
    state: tuple[int, bool] | None
    checks: tuple[CtCheck, ...]


@value
class MarkMatch(Variant):
    kind: ClassVar[str] = "mark"
    value: int
    mask: int
    neg: bool


@value
class ConnmarkMatch(Variant):
    kind: ClassVar[str] = "connmark"
    value: int
    mask: int
    neg: bool


@value
class CommentMatch(Variant):
    kind: ClassVar[str] = "comment"


@value
class MacMatch(Variant):
    kind: ClassVar[str] = "mac"
    mac: tuple[int, ...]
    neg: bool


@value
class IprangeMatch(Variant):
    kind: ClassVar[str] = "iprange"
    src_low: int
    src_high: int
    src_neg: bool
    dst_low: int
    dst_high: int
    dst_neg: bool

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "src_low": _wide(self.src_low),
                "src_high": _wide(self.src_high), "src_neg": self.src_neg,
                "dst_low": _wide(self.dst_low), "dst_high": _wide(self.dst_high),
                "dst_neg": self.dst_neg}


@value
class LengthMatch(Variant):
    kind: ClassVar[str] = "length"
    low: int
    high: int
    neg: bool


@value
class HlMatch(Variant):
    kind: ClassVar[str] = "hl"
    op: str
    value: int
    neg: bool


@value
class PkttypeMatch(Variant):
    kind: ClassVar[str] = "pkttype"
    want: str
    neg: bool


@value
class LimitMatch(Variant):
    kind: ClassVar[str] = "limit"
    cost: int
    cap: int
    credits_per_jiffy: int
    hz: int


@value
class HelperMatch(Variant):
    kind: ClassVar[str] = "helper"
    name: str
    neg: bool


@value
class ConstMatch(Variant):
    """A match with the same answer for every packet statewall sees (nfacct, physdev, policy)."""

    kind: ClassVar[str] = "const"
    value: bool
    note: str | None = None


@value
class AddrtypeMatch(Variant):
    kind: ClassVar[str] = "addrtype"
    src_mask: int
    src_neg: bool
    dst_mask: int
    dst_neg: bool
    limit_in: bool
    limit_out: bool


@value
class StatisticRandomMatch(Variant):
    kind: ClassVar[str] = "statistic_random"
    threshold: int
    neg: bool


@value
class StatisticNthMatch(Variant):
    kind: ClassVar[str] = "statistic_nth"
    every: int
    packet: int
    neg: bool


@value
class RecentMatch(Variant):
    kind: ClassVar[str] = "recent"
    table: int
    command: str
    invert: bool
    seconds: int
    hitcount: int
    use_dst: bool
    check_ttl: bool
    reap: bool
    hz: int


@value
class HashlimitMatch(Variant):
    kind: ClassVar[str] = "hashlimit"
    table: int
    invert: bool
    byte_mode: bool
    rate_match: bool
    hz: int


@value
class StringMatch(Variant):
    kind: ClassVar[str] = "string"
    pattern: tuple[int, ...]
    from_: int
    to: int
    icase: bool
    neg: bool

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "pattern": list(self.pattern), "from": self.from_,
                "to": self.to, "icase": self.icase, "neg": self.neg}


@value
class RtMatch(Variant):
    kind: ClassVar[str] = "rt"
    rt_type: tuple[int, bool] | None
    segs: tuple[int, int, bool]
    len: tuple[int, bool] | None
    reserved: bool
    addrs: tuple[int, ...]
    strict: bool

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rt_type": _plain(self.rt_type), "segs": list(self.segs),
                "len": _plain(self.len), "reserved": self.reserved,
                "addrs": [_wide(a) for a in self.addrs], "strict": self.strict}


@value
class SctpMatch(Variant):
    kind: ClassVar[str] = "sctp"
    sport: PortRange
    dport: PortRange
    chunks: tuple[str, tuple[int, ...], tuple[tuple[int, int, int], ...], bool] | None


@value
class DscpMatch(Variant):
    kind: ClassVar[str] = "dscp"
    code: int
    neg: bool


@value
class TosMatch(Variant):
    kind: ClassVar[str] = "tos"
    value: int
    mask: int
    neg: bool


@value
class EcnMatch(Variant):
    kind: ClassVar[str] = "ecn"
    ect: tuple[int, bool] | None
    tcp: tuple[tuple[int, bool], ...]


@value
class TcpmssMatch(Variant):
    kind: ClassVar[str] = "tcpmss"
    low: int
    high: int
    neg: bool


@value
class RpfilterMatch(Variant):
    kind: ClassVar[str] = "rpfilter"
    loose: bool
    validmark: bool
    accept_local: bool
    invert: bool


@value
class OwnerIds(Variant):
    """An owner match's uid or gid test: the range (None: a name the firewall
    resolves itself) and its `!`."""

    ids: tuple[int, int] | None
    neg: bool

    def to_dict(self) -> dict[str, Any]:
        return {"ids": None if self.ids is None else list(self.ids), "neg": self.neg}


@value
class OwnerMatch(Variant):
    kind: ClassVar[str] = "owner"
    socket_exists: bool | None  # None: not tested; else negated
    uid: OwnerIds | None
    gid: OwnerIds | None
    suppl_groups: bool


@value
class ConnbytesMatch(Variant):
    kind: ClassVar[str] = "connbytes"
    dirs: int
    mode: int
    low: int
    high: int
    neg: bool


@value
class ConnlimitMatch(Variant):
    kind: ClassVar[str] = "connlimit"
    limit: int
    invert: bool
    by_dst: bool
    mask: int

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "limit": self.limit, "invert": self.invert,
                "by_dst": self.by_dst, "mask": _wide(self.mask)}


@value
class SetMatch(Variant):
    kind: ClassVar[str] = "set"
    set: int
    flags: tuple[bool, ...]
    invert: bool
    return_nomatch: bool
    update: bool
    packets: tuple[int, int, bool] | None
    bytes: tuple[int, int, bool] | None


@value
class NotPortedMatch(Variant):
    kind: ClassVar[str] = "not_ported"
    name: str


def _ports(args: BuildArgs, name: str) -> PortRange:
    found = xt_tcpudp._port_check(args, name)
    return PortRange(*found) if found is not None else PortRange()


def _tcp(args: BuildArgs) -> Variant:
    flags = xt_tcpudp._tcp_flags(args) or (0, 0, False)
    option = args.get("--tcp-option")
    return TcpMatch(_ports(args, "--sport"), _ports(args, "--dport"), flags[0], flags[1],
                    flags[2], int(option.values[0]) if option else None,
                    option is not None and option.negated)


def _udp(args: BuildArgs) -> Variant:
    return UdpMatch(_ports(args, "--sport"), _ports(args, "--dport"))


def _icmp(args: BuildArgs, option: str, names: dict[str, tuple[int, int, int]],
          wildcard: bool) -> Variant:
    given = args.get(option)
    if given is None:
        return IcmpMatch(255, 0, 255, False, wildcard)
    test_type, low, high = icmp_ext.parse_icmp_type(given.values[0], names)
    return IcmpMatch(test_type, low, high, given.negated, wildcard and test_type == 255)


def _multiport(args: BuildArgs) -> Variant:
    option = args.options[0]
    ranges = tuple(parse_port_range(part) for part in option.values[0].split(","))
    return MultiportMatch(ranges, option.name in ("--sports", "--ports"),
                          option.name in ("--dports", "--ports"), option.negated)


def _state(args: BuildArgs) -> Variant:
    option = args.get("--state")
    assert option is not None
    return StateMatch(parse_flag_list(option.values[0], STATE_NAMES, "state"), option.negated)


_CT_ADDRS = ("--ctorigsrc", "--ctorigdst", "--ctreplsrc", "--ctrepldst")
_CT_PORTS = ("--ctorigsrcport", "--ctorigdstport", "--ctreplsrcport", "--ctrepldstport")


def _conntrack(args: BuildArgs) -> Variant:
    state_opt = args.get("--ctstate")
    state = None if state_opt is None else (
        parse_flag_list(state_opt.values[0], CTSTATE_NAMES, "ctstate"), state_opt.negated)
    checks: list[CtCheck] = []
    for option in args.options:
        neg = option.negated
        value = option.values[0] if option.values else ""
        if option.name in _CT_ADDRS:
            address = parse_address(value, args.family)
            checks.append(CtCheck("addr", _CT_ADDRS.index(option.name), address.addr,
                                  address.mask, neg))
        elif option.name in _CT_PORTS:
            low, high = parse_port_range(value)
            checks.append(CtCheck("port", _CT_PORTS.index(option.name), low, high, neg))
        elif option.name == "--ctproto":
            checks.append(CtCheck("proto", 0, parse_protocol(value), 0, neg))
        elif option.name == "--ctstatus":
            checks.append(CtCheck("status", 0, parse_flag_list(value, STATUS_NAMES, "ctstatus"),
                                  0, neg))
        elif option.name == "--ctexpire":
            low, high = parse_range(value, 0, 0xFFFFFFFF, "ctexpire range")
            checks.append(CtCheck("expire", 0, low, high, neg))
        elif option.name == "--ctdir":
            checks.append(CtCheck("dir", neg=value.upper() == "REPLY"))
    return ConntrackMatch(state, tuple(checks))


def _value_mask(args: BuildArgs, what: str) -> tuple[int, int, bool]:
    option = args.get("--mark")
    assert option is not None
    value, mask = parse_value_mask(option.values[0], what)
    return value, mask, option.negated


def _mac(args: BuildArgs) -> Variant:
    option = args.get("--mac-source")
    assert option is not None
    return MacMatch(tuple(parse_mac(option.values[0])), option.negated)


def _iprange(args: BuildArgs) -> Variant:
    return IprangeMatch(*xt_iprange._range(args, "--src-range"),
                        *xt_iprange._range(args, "--dst-range"))


def _length(args: BuildArgs) -> Variant:
    option = args.get("--length")
    assert option is not None
    low, high = parse_range(option.values[0], 0, 65535, "length")
    return LengthMatch(low, high, option.negated)


def _hl(args: BuildArgs, prefix: str) -> Variant:
    option = args.options[0]
    value = parse_int(option.values[0], 0, 255, prefix.strip("-"))
    return HlMatch(option.name[len(prefix) + 1:], value, option.negated)


def _pkttype(args: BuildArgs) -> Variant:
    option = args.get("--pkt-type")
    assert option is not None
    return PkttypeMatch(xt_pkttype.NAMES[option.values[0].lower()], option.negated)


def _limit(args: BuildArgs) -> Variant:
    avg = xt_limit.parse_rate(args.value("--limit", "3/hour") or "3/hour")
    burst = parse_int(args.value("--limit-burst", "5") or "5", 1, 10000, "burst")
    hz = args.state.hz
    return LimitMatch(xt_limit.user2credits(avg, hz), xt_limit.user2credits(avg * burst, hz),
                      xt_limit.credits_per_jiffy(hz), hz)


def _helper(args: BuildArgs) -> Variant:
    option = args.get("--helper")
    assert option is not None
    return HelperMatch(option.values[0], option.negated)


def _physdev(args: BuildArgs) -> Variant:
    used = [o for o in args.options if o.name in xt_physdev._OPTIONS]
    return ConstMatch(all(o.negated for o in used))


def _policy(args: BuildArgs) -> Variant:
    if args.value("--pol") == "none":
        return ConstMatch(True)
    return ConstMatch(False, xt_policy.NOTE)


def _owner_ids(args: BuildArgs, name: str) -> OwnerIds | None:
    option = args.get(name)
    if option is None:
        return None
    return OwnerIds(xt_owner.parse_ids(option.values[0], name), option.negated)


def _owner(args: BuildArgs) -> Variant:
    socket = args.get("--socket-exists")
    return OwnerMatch(None if socket is None else socket.negated,
                      _owner_ids(args, "--uid-owner"), _owner_ids(args, "--gid-owner"),
                      args.has("--suppl-groups"))


def _addrtype(args: BuildArgs) -> Variant:
    src, dst = args.get("--src-type"), args.get("--dst-type")
    types = xt_addrtype.TYPES
    return AddrtypeMatch(
        parse_flag_list(src.values[0], types, "address type") if src else 0,
        src is not None and src.negated,
        parse_flag_list(dst.values[0], types, "address type") if dst else 0,
        dst is not None and dst.negated,
        args.has("--limit-iface-in"), args.has("--limit-iface-out"))


def _statistic(args: BuildArgs) -> Variant:
    if args.value("--mode") == "random":
        option = args.get("--probability")
        assert option is not None
        return StatisticRandomMatch(round(float(option.values[0]) * 0x80000000), option.negated)
    option = args.get("--every")
    assert option is not None
    every = parse_int(option.values[0], 1, 0xFFFFFFFF, "--every") - 1
    packet = parse_int(args.value("--packet", "0") or "0", 0, every, "--packet")
    return StatisticNthMatch(every, packet, option.negated)


def _string(args: BuildArgs) -> Variant:
    text, hexed = args.get("--string"), args.get("--hex-string")
    option = text if text is not None else hexed
    assert option is not None
    pattern = option.values[0].encode() if text is not None else \
        xt_string.parse_hex_string(option.values[0])
    start = parse_int(args.value("--from", "0") or "0", 0, 65535, "--from")
    stop = parse_int(args.value("--to", "65535") or "65535", start, 65535, "--to")
    icase = args.has("--icase")
    return StringMatch(tuple(pattern.lower() if icase else pattern), start, stop, icase,
                       option.negated)


def _rt(args: BuildArgs) -> Variant:
    rtype, segs, length = args.get("--rt-type"), args.get("--rt-segsleft"), args.get("--rt-len")
    low, high = parse_range(segs.values[0], 0, 0xFFFFFFFF, "--rt-segsleft") if segs \
        else (0, 255)
    addrs_opt = args.get("--rt-0-addrs")
    return RtMatch(
        (parse_int(rtype.values[0], 0, 255, "--rt-type"), rtype.negated) if rtype else None,
        (low, high, segs is not None and segs.negated),
        (parse_int(length.values[0], 0, 0xFFFFFFFF, "--rt-len"), length.negated)
        if length else None,
        args.has("--rt-0-res"),
        tuple(parse_ip(a, 6) for a in addrs_opt.values[0].split(",")) if addrs_opt else (),
        not args.has("--rt-0-not-strict"))


def _sctp(args: BuildArgs) -> Variant:
    option = args.get("--chunk-types")
    chunks = None
    if option is not None:
        kind, types, flags = xt_sctp.parse_chunks(option.values[0], option.values[1])
        chunks = (kind, tuple(sorted(types)),
                  tuple((c, m, v) for c, (m, v) in sorted(flags.items())), option.negated)
    return SctpMatch(_ports(args, "--sport"), _ports(args, "--dport"), chunks)


def _ecn(args: BuildArgs) -> Variant:
    tcp = tuple((bit, args.negated(name)) for name, bit in
                (("--ecn-tcp-cwr", CWR), ("--ecn-tcp-ece", ECE)) if args.has(name))
    text = args.value("--ecn-ip-ect")
    ect = None if text is None else (parse_int(text, 0, 3, "ECN IP ECT"),
                                     args.negated("--ecn-ip-ect"))
    return EcnMatch(ect, tcp)


def _tcpmss(args: BuildArgs) -> Variant:
    option = args.get("--mss")
    assert option is not None
    low, high = parse_range(option.values[0], 0, 65535, "mss")
    return TcpmssMatch(low, high, option.negated)


def _connbytes(args: BuildArgs) -> Variant:
    option = args.get("--connbytes")
    assert option is not None
    low_text, _, high_text = option.values[0].partition(":")
    dirs = {"original": 0, "reply": 1, "both": 2}[args.value("--connbytes-dir") or ""]
    mode = {"packets": 0, "bytes": 1, "avgpkt": 2}[args.value("--connbytes-mode") or ""]
    high = int(high_text) if high_text else (1 << 64) - 1
    return ConnbytesMatch(dirs, mode, int(low_text), min(high, (1 << 64) - 1), option.negated)


def _connlimit(args: BuildArgs) -> Variant:
    upto, above = args.get("--connlimit-upto"), args.get("--connlimit-above")
    chosen = upto or above
    assert chosen is not None
    bits = 32 if args.family == 4 else 128
    length = parse_int(args.value("--connlimit-mask", str(bits)) or "", 0, bits,
                       "--connlimit-mask")
    return ConnlimitMatch(parse_int(chosen.values[0], 0, 0xFFFFFFFF, "connlimit"),
                          chosen.negated if chosen is above else not chosen.negated,
                          args.has("--connlimit-daddr"),
                          ((1 << length) - 1) << (bits - length))


class _Tables:
    """Named tables shared by rules (xt_recent lists, hashlimit tables, ipsets), in
    first-use order."""

    def __init__(self) -> None:
        self.recent: list[str] = []
        self.hashlimit: list[str] = []
        self.sets: list[str] = []

    def set_index(self, sets: dict[str, Any], name: str) -> int:
        """The set's index; list:set members are numbered too."""
        ipset = sets[name]
        if isinstance(ipset, ListSet):
            for member in ipset.members:
                self.set_index(sets, member.name)
        return self.index(self.sets, name)

    @staticmethod
    def index(names: list[str], name: str) -> int:
        if name not in names:
            names.append(name)
        return names.index(name)


_COUNTER_OPS = {"eq": 0, "lt": 1, "gt": 2}


def _counter_test(args: BuildArgs, what: str) -> tuple[int, int, bool] | None:
    found = xt_set._counter_test(args, what)
    return None if found is None else (_COUNTER_OPS[found[0]], found[1], found[2])


def _set(args: BuildArgs, tables: _Tables) -> Variant:
    option = args.get("--match-set")
    assert option is not None
    ipset = xt_set.find_set(args, option.values[0])
    return SetMatch(tables.set_index(args.state.sets, ipset.name),
                    xt_set.parse_flags(option.values[1]), option.negated,
                    args.has("--return-nomatch") and ipset.nomatch_type,
                    not args.negated("--update-counters"),
                    _counter_test(args, "packets"), _counter_test(args, "bytes"))


def _set_target(args: BuildArgs, tables: _Tables) -> Variant:
    text = args.value("--timeout")
    changes = tuple(
        (kind == "add", tables.set_index(args.state.sets, xt_set.find_set(args, o.values[0]).name),
         xt_set.parse_flags(o.values[1]))
        for kind, o in (("add", args.get("--add-set")), ("del", args.get("--del-set")))
        if o is not None)
    return SetTarget(changes, parse_int(text, 0, 2147483, "--timeout") if text else None,
                     args.has("--exist"))


def _set_spec(ipset: IpSet, index: dict[str, int]) -> dict[str, Any]:
    def key(k: object) -> list[str]:
        parts = k if isinstance(k, tuple) else (k,)
        return [str(int(p)) for p in parts]

    return {
        "name": ipset.name, "type_name": ipset.type_name, "family": ipset.family,
        "dimension": ipset.dimension, "counters": ipset.counters, "timeout": ipset.timeout,
        "nomatch_type": ipset.nomatch_type, "netmask": getattr(ipset, "netmask", 0),
        "low": getattr(ipset, "low", 0), "high": getattr(ipset, "high", 65535),
        "members": [index[m.name] for m in getattr(ipset, "members", [])],
        "elements": [[key(k), {"packets": e.packets, "octets": e.octets,
                               "expires": e.expires, "nomatch": e.nomatch}]
                     for k, e in ipset.elements.items()],
    }


def _recent(args: BuildArgs, tables: _Tables) -> Variant:
    command, invert = xt_recent._check_options(args)
    name = args.value("--name", "DEFAULT") or "DEFAULT"
    return RecentMatch(
        tables.index(tables.recent, name), command[2:], invert,
        parse_int(args.value("--seconds", "0") or "0", 0, 0xFFFFFFFF, "seconds"),
        parse_int(args.value("--hitcount", "0") or "0", 0, xt_recent.MAX_NSTAMPS - 1,
                  "hitcount"),
        args.has("--rdest"), args.has("--rttl"), args.has("--reap"), args.state.hz)


def _hashlimit(args: BuildArgs, tables: _Tables) -> Variant:
    rule = xt_hashlimit._config(args)
    name = args.value("--hashlimit-name") or ""
    return HashlimitMatch(tables.index(tables.hashlimit, name), rule.invert, rule.byte_mode,
                          rule.rate_match, args.state.hz)


_MATCH_LOWER: dict[str, Any] = {
    "nfacct": lambda a: ConstMatch(True),
    "physdev": _physdev,
    "policy": _policy,
    "addrtype": _addrtype,
    "dscp": lambda a: DscpMatch(*xt_dscp.parse_dscp(a)),
    "tos": lambda a: TosMatch(*xt_dscp.parse_tos((a.get("--tos") or _NO).values[0]),
                              a.negated("--tos")),
    "ecn": _ecn,
    "tcpmss": _tcpmss,
    "rpfilter": lambda a: RpfilterMatch(a.has("--loose"), a.has("--validmark"),
                                        a.has("--accept-local"), a.has("--invert")),
    "owner": _owner,
    "connbytes": _connbytes,
    "connlimit": _connlimit,
    "string": _string,
    "rt": _rt,
    "sctp": _sctp,
    "statistic": _statistic,
    "tcp": _tcp,
    "udp": _udp,
    "icmp": lambda a: _icmp(a, "--icmp-type", icmp_ext.ICMP_NAMES, True),
    "icmp6": lambda a: _icmp(a, "--icmpv6-type", icmp_ext.ICMP6_NAMES, False),
    "multiport": _multiport,
    "state": _state,
    "conntrack": _conntrack,
    "mark": lambda a: MarkMatch(*_value_mask(a, "mark")),
    "connmark": lambda a: ConnmarkMatch(*_value_mask(a, "connmark")),
    "comment": lambda a: CommentMatch(),
    "mac": _mac,
    "iprange": _iprange,
    "length": _length,
    "ttl": lambda a: _hl(a, "--ttl"),
    "hl": lambda a: _hl(a, "--hl"),
    "pkttype": _pkttype,
    "limit": _limit,
    "helper": _helper,
}


# ---- targets -----------------------------------------------------------------------------


@value
class NoTarget(Variant):
    kind: ClassVar[str] = "none"


@value
class VerdictTarget(Variant):
    kind: ClassVar[str] = "verdict"
    verdict: str


@value
class JumpTarget(Variant):
    kind: ClassVar[str] = "jump"
    chain: int


@value
class GotoTarget(Variant):
    kind: ClassVar[str] = "goto"
    chain: int


@value
class UnknownTarget(Variant):
    kind: ClassVar[str] = "unknown"
    why: str


@value
class LogTarget(Variant):
    kind: ClassVar[str] = "log"
    prefix: str
    tcp_sequence: bool
    tcp_options: bool
    ip_options: bool


@value
class RejectTarget(Variant):
    kind: ClassVar[str] = "reject"
    with_: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "with": self.with_}


@value
class MarkTarget(Variant):
    kind: ClassVar[str] = "mark"
    mask: int
    xor: int


@value
class ConnmarkCopyTarget(Variant):
    kind: ClassVar[str] = "connmark_copy"
    save: bool
    nfmask: int
    ctmask: int


@value
class ConnmarkSetTarget(Variant):
    kind: ClassVar[str] = "connmark_set"
    mask: int
    xor: int


@value
class CtTarget(Variant):
    kind: ClassVar[str] = "ct"
    effects: tuple[tuple[str, Any], ...]


@value
class TraceTarget(Variant):
    kind: ClassVar[str] = "trace"


@value
class NatTarget(Variant):
    kind: ClassVar[str] = "nat"
    target: str
    flags: int
    min_addr: str | None
    max_addr: str | None
    min_port: int
    max_port: int
    base_port: int


@value
class NfqueueTarget(Variant):
    kind: ClassVar[str] = "nfqueue"
    num: int
    bypass: bool


@value
class EffectTarget(Variant):
    kind: ClassVar[str] = "effect"
    effect: str
    value: Any


@value
class SetTarget(Variant):
    kind: ClassVar[str] = "set"
    changes: tuple[tuple[bool, int, tuple[bool, ...]], ...]
    timeout: int | None
    exist: bool


@value
class NotPortedTarget(Variant):
    kind: ClassVar[str] = "not_ported"
    name: str


def _log(args: BuildArgs) -> Variant:
    flags = {o.name[6:] for o in args.options if not o.values}
    return LogTarget(args.value("--log-prefix", "") or "", "tcp-sequence" in flags,
                     "tcp-options" in flags, "ip-options" in flags)


def _reject(args: BuildArgs) -> Variant:
    names = V4 if args.family == 4 else V6
    default = "icmp-port-unreachable" if args.family == 4 else "icmp6-port-unreachable"
    return RejectTarget(names[args.value("--reject-with", default) or default])


def _mark(args: BuildArgs) -> Variant:
    change = xt_mark.xmark(args)
    assert change is not None
    return MarkTarget(*change)


def _connmark(args: BuildArgs) -> Variant:
    nfmask, ctmask = xt_mark._masks(args)
    if args.has("--save-mark") or args.has("--restore-mark"):
        return ConnmarkCopyTarget(args.has("--save-mark"), nfmask, ctmask)
    change = xt_mark.xmark(args)
    assert change is not None
    return ConnmarkSetTarget(*change)


def _nat(name: str) -> Any:
    def lower(args: BuildArgs) -> Variant:
        r = xt_nat.parse_range(name, args)
        return NatTarget(name, r.flags, None if r.min_addr is None else str(r.min_addr),
                         None if r.max_addr is None else str(r.max_addr),
                         r.min_port, r.max_port, r.base_port)
    return lower


def _nfqueue(args: BuildArgs) -> Variant:
    num = parse_int(args.value("--queue-num", "0") or "0", 0, 65535, "--queue-num")
    balance = args.value("--queue-balance")
    if balance is not None:
        num = parse_int(balance.partition(":")[0], 0, 65535, "--queue-balance")
    return NfqueueTarget(num, args.has("--queue-bypass"))


def _nflog(args: BuildArgs) -> Variant:
    group = parse_int(args.value("--nflog-group", "0") or "0", 0, 65535, "--nflog-group")
    return EffectTarget("nflog", (group, args.value("--nflog-prefix", "") or ""))


def _effect(effect_of: Any) -> Any:
    """Targets whose only result is an effect: (kind, value) as their module gives it."""
    def lower(args: BuildArgs) -> Variant:
        kind, value = effect_of(args)
        return EffectTarget(kind, value)
    return lower


_TARGET_LOWER: dict[str, Any] = {
    "LOG": _log,
    "NFLOG": _nflog,
    "REJECT": _reject,
    "MARK": _mark,
    "CONNMARK": _connmark,
    "CT": lambda a: CtTarget(tuple(xt_CT._effects(a))),
    "NOTRACK": lambda a: CtTarget((("notrack", True),)),
    "TRACE": lambda a: TraceTarget(),
    "NFQUEUE": _nfqueue,
    **{n: _nat(n) for n in ("SNAT", "DNAT", "MASQUERADE", "REDIRECT", "NETMAP")},
    "TCPMSS": _effect(xt_mangle.tcpmss_effect),
    "CHECKSUM": _effect(xt_mangle.checksum_effect),
    "DSCP": _effect(xt_mangle.dscp_effect),
    "TOS": _effect(xt_mangle.tos_effect),
    "TTL": _effect(xt_mangle.ttl_effect),
    "HL": _effect(xt_mangle.hl_effect),
    "CLASSIFY": _effect(xt_mangle.classify_effect),
    "AUDIT": _effect(xt_queue.audit_effect),
}


# ---- rules, chains, tables ---------------------------------------------------------------


@value
class LoweredRule:
    header: Header
    matches: tuple[Variant, ...]
    target: Variant
    ref: RuleRef
    text: str
    unknown: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"header": self.header.to_dict(), "matches": [m.to_dict() for m in self.matches],
                "target": self.target.to_dict(), "number": self.ref.number,
                "line": self.ref.line, "text": self.text, "unknown": self.unknown}


@value
class LoweredChain:
    name: str
    policy: str | None
    line: int
    rules: tuple[LoweredRule, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "policy": self.policy, "line": self.line,
                "rules": [r.to_dict() for r in self.rules]}


@value
class LoweredTable:
    name: str
    chains: tuple[LoweredChain, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "chains": [c.to_dict() for c in self.chains]}


@value
class Net:
    family: int
    addr: int
    mask: int

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "addr": _wide(self.addr), "mask": _wide(self.mask)}


@value
class RecentSpec:
    """An xt_recent list as the rules configured it (mask of its first rule)."""

    name: str
    mask: int
    stamp_mask: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "mask": _wide(self.mask), "stamp_mask": self.stamp_mask}


@value
class HashlimitSpec:
    """A hashlimit table's settings, from the first rule naming it."""

    name: str
    mode: int
    avg: int
    burst: int
    srcmask: int
    dstmask: int
    expire_ms: int
    gc_ms: int
    max_entries: int
    byte_mode: bool
    rate_match: bool
    interval: int

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in value_fields(self)}


@value
class LoweredRuleset:
    family: int
    source: str
    tables: tuple[LoweredTable, ...]
    seed: int = 0
    local_nets: tuple[Net, ...] = ()
    iface_nets: tuple[tuple[str, tuple[Net, ...]], ...] = ()
    recent_tables: tuple[RecentSpec, ...] = ()
    recent_size: int = 100
    hashlimit_tables: tuple[HashlimitSpec, ...] = ()
    sets: str = "[]"  # the ipsets used, as JSON (they hold elements: data, not settings)

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "source": self.source,
                "tables": [t.to_dict() for t in self.tables],
                "seed": self.seed,
                "local_nets": [n.to_dict() for n in self.local_nets],
                "iface_nets": [[name, [n.to_dict() for n in nets]]
                               for name, nets in self.iface_nets],
                "recent_tables": [r.to_dict() for r in self.recent_tables],
                "recent_size": self.recent_size,
                "hashlimit_tables": [h.to_dict() for h in self.hashlimit_tables],
                "sets": json.loads(self.sets)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @property
    def not_ported(self) -> tuple[str, ...]:
        """Names of the matches and targets the core does not evaluate yet, sorted."""
        names = set()
        for table in self.tables:
            for chain in table.chains:
                for rule in chain.rules:
                    for v in (*rule.matches, rule.target):
                        if isinstance(v, NotPortedMatch | NotPortedTarget):
                            names.add(v.name)
        return tuple(sorted(names))


def _lower_match(match: Match, args: BuildArgs, tables: _Tables) -> Variant:
    """The match as the core evaluates it."""
    if match.name == "recent":
        return _recent(args, tables)
    if match.name == "hashlimit":
        return _hashlimit(args, tables)
    if match.name == "set":
        return _set(args, tables)
    lower = _MATCH_LOWER.get(match.name)
    return lower(args) if lower is not None else NotPortedMatch(match.name)


def _lower_target(rule: Rule, compiled: CompiledRule, args: BuildArgs | None,
                  tables: _Tables) -> Variant:
    kind = compiled.kind
    if kind == K_NONE:
        return NoTarget()
    if kind == K_VERDICT:
        assert compiled.verdict is not None
        return VerdictTarget(compiled.verdict)
    if kind == K_JUMP:
        return JumpTarget(compiled.jump)
    if kind == K_GOTO:
        return GotoTarget(compiled.jump)
    if kind == K_UNKNOWN:
        return UnknownTarget(compiled.unknown or "")
    assert rule.target is not None and args is not None
    if rule.target.name == "SET":
        return _set_target(args, tables)
    lower = _TARGET_LOWER.get(rule.target.name)
    return lower(args) if lower is not None else NotPortedTarget(rule.target.name)


def lower(compiled: CompiledRuleset) -> LoweredRuleset:
    """The checked ruleset as plain data."""
    source = compiled.source
    family = source.family
    state = compiled.state
    shared = _Tables()
    tables: list[LoweredTable] = []
    for table in source.tables:
        ctable = compiled.tables[table.name]
        chains: list[LoweredChain] = []
        for chain, cchain in zip(table.chains, ctable.chains, strict=True):
            rules: list[LoweredRule] = []
            for rule, crule in zip(chain.rules, cchain.rules, strict=True):
                matches = [_lower_match(match, BuildArgs(match.options, family, table.name,
                                                         rule, state), shared)
                           for match in crule.matches]
                targs = None if rule.target is None else BuildArgs(
                    rule.target.options, family, table.name, rule, state)
                target = _lower_target(rule, crule, targs, shared)
                rules.append(LoweredRule(_header(rule), tuple(matches), target, crule.ref,
                                         crule.text, crule.unknown))
            chains.append(LoweredChain(chain.name, chain.policy, chain.line, tuple(rules)))
        tables.append(LoweredTable(table.name, tuple(chains)))
    recent = tuple(RecentSpec(name, state.recent[name].mask, state.recent[name].stamp_mask)
                   for name in shared.recent)
    hashlimit = tuple(_hashlimit_spec(name, state.hashlimit[name]) for name in shared.hashlimit)
    return LoweredRuleset(family, source.source, tuple(tables), state.seed,
                          _nets(state.local_nets),
                          tuple((n, _nets(v)) for n, v in state.iface_nets.items()),
                          recent, state.recent_size, hashlimit,
                          _sets_json(state.sets, shared.sets))


def machine_only(family: int, source: str, state: RuleState) -> LoweredRuleset:
    """A ruleset without iptables tables: the machine's addresses and seed only
    (the nft tables are added to it)."""
    return LoweredRuleset(family, source, (), state.seed, _nets(state.local_nets),
                          tuple((n, _nets(v)) for n, v in state.iface_nets.items()))


def _sets_json(sets: dict[str, Any], names: list[str]) -> str:
    """The sets the rules use, as JSON text (elements and all)."""
    index = {name: i for i, name in enumerate(names)}
    return json.dumps([_set_spec(sets[name], index) for name in names])


def _nets(nets: tuple[tuple[int, int, int], ...]) -> tuple[Net, ...]:
    return tuple(Net(*n) for n in nets)


def _hashlimit_spec(name: str, cfg: xt_hashlimit.Config) -> HashlimitSpec:
    return HashlimitSpec(name, cfg.mode, cfg.avg, cfg.burst, cfg.srcmask, cfg.dstmask,
                         cfg.expire_ms, cfg.gc_ms, cfg.max_entries, cfg.byte_mode,
                         cfg.rate_match, cfg.interval)


def compile_for_core(ruleset: Ruleset, state: RuleState | None = None,
                     allow_unknown: bool = False) -> CompiledRuleset:
    """`compile_ruleset` for rulesets with deep jump nesting.

    The load-time checks (compile.py, mark_source_chains) follow jumps by
    recursion, one Python frame per level; the core walks any depth without
    recursing. Python 3.11 keeps pure-Python calls off the C stack, so the
    recursion limit is raised for the duration of the checks, to what the
    ruleset's number of chains needs, and restored afterwards.
    """
    chains = sum(len(t.chains) for t in ruleset.tables)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 2 * chains + 1000))
    try:
        return compile_ruleset(ruleset, state, allow_unknown)
    finally:
        sys.setrecursionlimit(limit)
