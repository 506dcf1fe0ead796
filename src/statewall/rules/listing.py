"""What `iptables -L -n` prints after the addresses: each match's and target's
`print` function of libxtables (extensions/libxt_*.c, numeric mode).

Each printer takes the options as loaded and returns the text with its
leading space, exactly as iptables 1.8 prints it. Extensions without a
printer here fall back to their options in iptables-save form (marked as
such in the docstring of `match_text`).
"""

from __future__ import annotations

from collections.abc import Callable

from statewall.rules.addr import parse_address, parse_port_range, parse_protocol
from statewall.rules.ext import parse_int
from statewall.rules.matches.icmp import ICMP6_NAMES, ICMP_NAMES, parse_icmp_type
from statewall.rules.matches.xt_addrtype import TYPES as ADDR_TYPES
from statewall.rules.matches.xt_limit import parse_rate as limit_rate
from statewall.rules.model import Option
from statewall.rules.save import format_options
from statewall.rules.targets.xt_REJECT import V4 as REJECT4
from statewall.rules.targets.xt_REJECT import V6 as REJECT6

Opts = tuple[Option, ...]
TCP_FLAGS = {"FIN": 1, "SYN": 2, "RST": 4, "PSH": 8, "ACK": 16, "URG": 32, "ECE": 64,
             "CWR": 128, "ALL": 255, "NONE": 0}
STATE_ORDER = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")
STATUS_ORDER = ("EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED")
LOG_LEVELS = {"emerg": 0, "panic": 0, "alert": 1, "crit": 2, "err": 3, "error": 3,
              "warn": 4, "warning": 4, "notice": 5, "info": 6, "debug": 7}
LOG_FLAGS = {"--log-tcp-sequence": 1, "--log-tcp-options": 2, "--log-ip-options": 4,
             "--log-uid": 8, "--log-macdecode": 32}


def _get(opts: Opts, *names: str) -> Option | None:
    for option in opts:
        if option.name in names:
            return option
    return None


def _val(opts: Opts, name: str) -> str | None:
    option = _get(opts, name)
    return option.values[0] if option is not None and option.values else None


def _bang(option: Option | None, text: str = "!") -> str:
    return text if option is not None and option.negated else ""


def _ports(name: str, option: Option | None) -> str:
    if option is None:
        return ""
    low, high = parse_port_range(option.values[0])
    inv = _bang(option)
    if low == high:
        return f" {name}:{inv}{low}"
    return f" {name}s:{inv}{low}:{high}"


def _flags(text: str) -> int:
    mask = 0
    for name in text.split(","):
        mask |= TCP_FLAGS.get(name.upper(), 0)
    return mask


def print_tcp(opts: Opts, family: int) -> str:
    text = " tcp" + _ports("spt", _get(opts, "--sport")) + _ports("dpt", _get(opts, "--dport"))
    option = _get(opts, "--tcp-option")
    if option is not None:
        text += f" option={_bang(option)}{option.values[0]}"
    flags = _get(opts, "--tcp-flags")
    syn = _get(opts, "--syn")
    if flags is not None:
        mask, cmp = _flags(flags.values[0]), _flags(flags.values[1])
        text += f" flags:{_bang(flags)}0x{mask:02X}/0x{cmp:02X}"
    elif syn is not None:
        text += f" flags:{_bang(syn)}0x17/0x02"
    return text


def print_udp(opts: Opts, family: int) -> str:
    return " udp" + _ports("spt", _get(opts, "--sport")) + _ports("dpt", _get(opts, "--dport"))


def print_icmp(opts: Opts, family: int) -> str:
    option = _get(opts, "--icmp-type", "--icmpv6-type")
    head = " icmp" if family == 4 else " ipv6-icmp"
    if option is None:
        return head
    kind, low, high = parse_icmp_type(option.values[0], ICMP_NAMES if family == 4
                                      else ICMP6_NAMES)
    text = head + (" !" if option.negated else "") + f"type {kind}"
    if low == high:
        text += f" code {low}"
    elif low != 0 or high != 255:
        text += f" codes {low}-{high}"
    return text


def _states(text: str, order: tuple[str, ...]) -> str:
    names = {n.upper() for n in text.split(",")}
    return ",".join(n for n in order if n in names)


def print_state(opts: Opts, family: int) -> str:
    option = _get(opts, "--state")
    if option is None:
        return " state"
    return f"{_bang(option, ' !')} state {_states(option.values[0], STATE_ORDER)}"


_CT_ORDER = ("--ctstate", "--ctproto", "--ctorigsrc", "--ctorigdst", "--ctreplsrc",
             "--ctrepldst", "--ctorigsrcport", "--ctorigdstport", "--ctreplsrcport",
             "--ctrepldstport", "--ctstatus", "--ctexpire", "--ctdir")


def _ct_value(option: Option, family: int) -> str:
    value = option.values[0]
    if option.name == "--ctstate":
        return _states(value, STATE_ORDER)
    if option.name == "--ctstatus":
        return _states(value, STATUS_ORDER) or "NONE"
    if option.name == "--ctproto":
        return str(parse_protocol(value))
    if option.name in ("--ctorigsrc", "--ctorigdst", "--ctreplsrc", "--ctrepldst"):
        return _address(value, family)
    return value


def print_conntrack(opts: Opts, family: int) -> str:
    text = ""
    for name in _CT_ORDER:
        option = _get(opts, name)
        if option is not None:
            text += f"{_bang(option, ' !')} {name[2:]} {_ct_value(option, family)}"
    return text


def _address(text: str, family: int) -> str:
    from statewall.rules.counters import host_text  # the -L address form

    return host_text(parse_address(text, family), family)


def print_multiport(opts: Opts, family: int) -> str:
    for name, label in (("--sports", "sports"), ("--source-ports", "sports"),
                        ("--dports", "dports"), ("--destination-ports", "dports"),
                        ("--ports", "ports")):
        option = _get(opts, name)
        if option is not None:
            ports = ",".join(":".join(str(p) for p in _range_words(w))
                             for w in option.values[0].split(","))
            return f" multiport {label} {_bang(option)}{ports}".replace(
                f"{label} !", f"{label}  !")
    return " multiport"


def _range_words(word: str) -> tuple[int, ...]:
    low, high = parse_port_range(word)
    return (low,) if low == high and ":" not in word else (low, high)


def print_comment(opts: Opts, family: int) -> str:
    return f" /* {_val(opts, '--comment') or ''} */"


def _rate(avg: int, scale: int) -> tuple[str, int]:
    """print_rate: the largest unit that shows the rate exactly (libxt_limit)."""
    rates = (("day", scale * 86400), ("hour", scale * 3600), ("min", scale * 60),
             ("sec", scale))
    i = 1
    while i < len(rates):
        mult = rates[i][1]
        if avg > mult or mult // avg < mult % avg:
            break
        i += 1
    name, mult = rates[i - 1]
    return f"{mult // avg}/{name}", mult // scale * 1000


def print_limit(opts: Opts, family: int) -> str:
    avg = limit_rate(_val(opts, "--limit") or "3/hour")
    return f" limit: avg {_rate(avg, 10000)[0]} burst {_val(opts, '--limit-burst') or '5'}"


def print_recent(opts: Opts, family: int) -> str:
    text = " recent:"
    modes = (("--set", " SET"), ("--rcheck", " CHECK"), ("--update", " UPDATE"),
             ("--remove", " REMOVE"))
    for name, label in modes:
        option = _get(opts, name)
        if option is not None:
            text += _bang(option, " !") + label
    if _get(opts, "--seconds"):
        text += f" seconds: {_val(opts, '--seconds')}"
    if _get(opts, "--reap"):
        text += " reap"
    if _get(opts, "--hitcount"):
        text += f" hit_count: {_val(opts, '--hitcount')}"
    if _get(opts, "--rttl"):
        text += " TTL-Match"
    text += f" name: {_val(opts, '--name') or 'DEFAULT'}"
    text += " side: dest" if _get(opts, "--rdest") else " side: source"
    full = "255.255.255.255" if family == 4 else "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    return text + f" mask: {_val(opts, '--mask') or full}"


def _mark(text: str) -> str:
    value, _, mask = text.partition("/")
    v = parse_int(value, 0, 0xFFFFFFFF, "mark")
    m = parse_int(mask, 0, 0xFFFFFFFF, "mask") if mask else 0xFFFFFFFF
    return f" 0x{v:x}" if m == 0xFFFFFFFF else f" 0x{v:x}/0x{m:x}"


def print_mark(opts: Opts, family: int) -> str:
    option = _get(opts, "--mark")
    return " mark match" + _bang(option, " !") + (_mark(option.values[0]) if option else "")


def print_connmark(opts: Opts, family: int) -> str:
    option = _get(opts, "--mark")
    return " connmark match " + _bang(option) + (_mark(option.values[0]) if option else "")


def print_mac(opts: Opts, family: int) -> str:
    option = _get(opts, "--mac-source")
    return " MAC" + _bang(option, " !") + (f" {option.values[0].lower()}" if option else "")


def print_iprange(opts: Opts, family: int) -> str:
    text = ""
    for name, label in (("--src-range", "source"), ("--dst-range", "destination")):
        option = _get(opts, name)
        if option is not None:
            text += f" {label} IP range{_bang(option, ' !')} {option.values[0]}"
    return text


def _types(text: str) -> str:
    names = {n.upper() for n in text.split(",")}
    return ",".join(n for n in ADDR_TYPES if n in names)


def print_addrtype(opts: Opts, family: int) -> str:
    text = " ADDRTYPE match"
    for name, label in (("--src-type", "src-type"), ("--dst-type", "dst-type")):
        option = _get(opts, name)
        if option is not None:
            text += f" {label} {_bang(option)}{_types(option.values[0])}"
    if _get(opts, "--limit-iface-in"):
        text += " limit-in"
    if _get(opts, "--limit-iface-out"):
        text += " limit-out"
    return text


def print_pkttype(opts: Opts, family: int) -> str:
    option = _get(opts, "--pkt-type")
    return f" PKTTYPE {'!=' if option and option.negated else '='} " \
           f"{option.values[0] if option else ''}"


def _span(option: Option | None) -> str:
    if option is None:
        return ""
    low, _, high = option.values[0].partition(":")
    text = low if not high or high == low else f"{low or 0}:{high}"
    return _bang(option) + text


def print_length(opts: Opts, family: int) -> str:
    return f" length {_span(_get(opts, '--length'))}"


def print_ttl(opts: Opts, family: int) -> str:
    return _hl_like(opts, "ttl", "TTL")


def print_hl(opts: Opts, family: int) -> str:
    return _hl_like(opts, "hl", "HL")


def _hl_like(opts: Opts, prefix: str, label: str) -> str:
    for name, op in (("eq", "=="), ("lt", "<"), ("gt", ">")):
        option = _get(opts, f"--{prefix}-{name}")
        if option is not None:
            shown = "!=" if option.negated else op
            return f" {label} match {label} {shown} {option.values[0]}"
    return f" {label} match"


def print_tos(opts: Opts, family: int) -> str:
    option = _get(opts, "--tos")
    if option is None:
        return " tos match"
    value, _, mask = option.values[0].partition("/")
    v, m = int(value, 0), int(mask, 0) if mask else 0xFF
    return f" tos match{_bang(option)}0x{v:02x}/0x{m:02x}"


def print_dscp(opts: Opts, family: int) -> str:
    option = _get(opts, "--dscp")
    value = int(option.values[0], 0) if option else 0
    return f" DSCP match {_bang(option)}0x{value:02x}"


def print_hashlimit(opts: Opts, family: int) -> str:
    from statewall.rules.matches.xt_hashlimit import SCALE, parse_rate

    above = _get(opts, "--hashlimit-above")
    upto = _get(opts, "--hashlimit-upto") or _get(opts, "--hashlimit")
    invert = (above is not None and not above.negated) or (upto is not None and upto.negated)
    chosen = above or upto
    avg, _, byte_mode = parse_rate(chosen.values[0] if chosen else "1/sec")
    text = " limit: above" if invert else " limit: up to"
    rate, quantum = _rate(avg, SCALE) if not byte_mode else (chosen.values[0] if chosen else "",
                                                            15000)
    text += f" {rate} burst {_val(opts, '--hashlimit-burst') or '5'}"
    mode = _val(opts, "--hashlimit-mode")
    if mode:
        order = ("srcip", "srcport", "dstip", "dstport")
        text += " mode " + "-".join(m for m in order if m in mode.split(","))
    for name in ("htable-size", "htable-max", "htable-gcinterval"):
        if _get(opts, f"--hashlimit-{name}"):
            text += f" {name} {_val(opts, f'--hashlimit-{name}')}"
    expire = _val(opts, "--hashlimit-htable-expire")
    if expire is not None and int(expire) != quantum:
        text += f" htable-expire {expire}"
    bits = "32" if family == 4 else "128"
    for name in ("srcmask", "dstmask"):
        value = _val(opts, f"--hashlimit-{name}")
        if value is not None and value != bits:
            text += f" {name} {value}"
    if _get(opts, "--hashlimit-rate-match"):
        text += " rate-match"
    return text


def print_connlimit(opts: Opts, family: int) -> str:
    above, upto = _get(opts, "--connlimit-above"), _get(opts, "--connlimit-upto")
    invert = (above is not None and above.negated) or (upto is not None and not upto.negated)
    chosen = above or upto
    side = "dst" if _get(opts, "--connlimit-daddr") else "src"
    mask = _val(opts, "--connlimit-mask") or ("32" if family == 4 else "128")
    limit = chosen.values[0] if chosen else "0"
    return f" #conn {side}/{mask} {'<=' if invert else '>'} {limit}"


def print_statistic(opts: Opts, family: int) -> str:
    mode = _val(opts, "--mode") or "random"
    option = _get(opts, "--probability") or _get(opts, "--every")
    inv = _bang(option, " !")
    if mode == "random":
        prob = round(0x80000000 * float(_val(opts, "--probability") or "0")) / 0x80000000
        return f" statistic mode random{inv} probability {prob:.11f}"
    text = f" statistic mode nth{inv} every {_val(opts, '--every')}"
    return text + f" packet {_val(opts, '--packet') or '0'}"


def print_helper(opts: Opts, family: int) -> str:
    option = _get(opts, "--helper")
    return f' helper match{_bang(option, " !")} "{option.values[0] if option else ""}"'


def print_set(opts: Opts, family: int) -> str:
    option = _get(opts, "--match-set")
    text = f"{_bang(option, ' !')} match-set {' '.join(option.values) if option else ''}"
    if _get(opts, "--return-nomatch"):
        text += " return-nomatch"
    for name in ("--update-counters", "--update-subcounters"):
        found = _get(opts, name)
        if found is not None and found.negated:
            text += f" ! {name[2:]}"
    for what in ("packets", "bytes"):
        for op in ("eq", "lt", "gt"):
            found = _get(opts, f"--{what}-{op}")
            if found is not None:
                text += f"{_bang(found, ' !')} {what}-{op} {found.values[0]}"
    return text


def print_owner(opts: Opts, family: int) -> str:
    text = ""
    for name, label in (("--socket-exists", "socket exists"), ("--uid-owner", "UID match"),
                        ("--gid-owner", "GID match")):
        option = _get(opts, name)
        if option is not None:
            value = f" {option.values[0]}" if option.values else ""
            text += f" owner{_bang(option, ' !')} {label}{value}"
    if _get(opts, "--suppl-groups"):
        text += " incl. suppl. groups"
    return text


def print_policy(opts: Opts, family: int) -> str:
    text = f" policy match dir {_val(opts, '--dir')} pol {_val(opts, '--pol')}"
    return text + (" strict" if _get(opts, "--strict") else "")


def print_physdev(opts: Opts, family: int) -> str:
    text = " PHYSDEV match"
    for option in opts:
        value = f" {option.values[0]}" if option.values else ""
        text += f"{_bang(option, ' !')} {option.name}{value}"
    return text


def print_rpfilter(opts: Opts, family: int) -> str:
    order = ("--loose", "--validmark", "--accept-local", "--invert")
    return " rpfilter" + "".join(f" {n[2:]}" for n in order if _get(opts, n))


def print_tcpmss(opts: Opts, family: int) -> str:
    return f" tcpmss match {_span(_get(opts, '--mss'))}"


def print_string(opts: Opts, family: int) -> str:
    option = _get(opts, "--string", "--hex-string")
    text = f" STRING match {_bang(option)} \"" + (option.values[0] if option else "") + '"'
    text += f" ALGO name {_val(opts, '--algo')}"
    for name in ("from", "to"):
        if _get(opts, f"--{name}"):
            text += f" {name.upper()} {_val(opts, f'--{name}')}"
    return text + (" ICASE" if _get(opts, "--icase") else "")


def print_connbytes(opts: Opts, family: int) -> str:
    option = _get(opts, "--connbytes")
    low, _, high = (option.values[0] if option else "0").partition(":")
    text = f"{_bang(option, ' !')} connbytes {low}" + (f":{high}" if high else "")
    return text + f" connbytes mode {_val(opts, '--connbytes-mode')}" \
        f" connbytes direction {_val(opts, '--connbytes-dir')}"


def print_ecn(opts: Opts, family: int) -> str:
    text = " ECN match"
    ect = _get(opts, "--ecn-ip-ect")
    if ect is not None:
        text += f" ECT={_bang(ect)}{ect.values[0]}"
    for name, label in (("--ecn-tcp-ece", "ECE"), ("--ecn-tcp-cwr", "CWR")):
        option = _get(opts, name)
        if option is not None:
            text += f" {_bang(option)}{label}"
    return text


MATCH_PRINTERS: dict[str, Callable[[Opts, int], str]] = {
    "tcp": print_tcp, "udp": print_udp, "icmp": print_icmp, "icmp6": print_icmp,
    "state": print_state, "conntrack": print_conntrack, "multiport": print_multiport,
    "comment": print_comment, "limit": print_limit, "recent": print_recent,
    "mark": print_mark, "connmark": print_connmark, "mac": print_mac,
    "iprange": print_iprange, "addrtype": print_addrtype, "pkttype": print_pkttype,
    "length": print_length, "ttl": print_ttl, "hl": print_hl, "tos": print_tos,
    "dscp": print_dscp, "hashlimit": print_hashlimit, "connlimit": print_connlimit,
    "statistic": print_statistic, "helper": print_helper, "set": print_set,
    "owner": print_owner, "policy": print_policy, "physdev": print_physdev,
    "rpfilter": print_rpfilter, "tcpmss": print_tcpmss, "string": print_string,
    "connbytes": print_connbytes, "ecn": print_ecn,
}


def match_text(name: str, opts: Opts, family: int) -> str:
    """The match as `iptables -L -n` shows it; unknown ones in iptables-save form."""
    printer = MATCH_PRINTERS.get(name)
    if printer is None:
        return " " + " ".join([name, *format_options(opts)])
    return printer(opts, family)


def _xmark(opts: Opts) -> str:
    xset = _val(opts, "--set-xmark")
    if xset is not None or _get(opts, "--set-mark"):
        text = xset or _val(opts, "--set-mark") or "0"
        value, _, mask_text = text.partition("/")
        v = int(value, 0)
        m = int(mask_text, 0) if mask_text else 0xFFFFFFFF
        if xset is None:
            m |= v
        if m == 0xFFFFFFFF:
            return f" MARK set 0x{v:x}"
        return f" MARK xset 0x{v:x}/0x{m:x}"
    for name, label in (("--and-mark", "and"), ("--or-mark", "or"), ("--xor-mark", "xor")):
        given = _val(opts, name)
        if given is not None:
            return f" MARK {label} 0x{int(given, 0):x}"
    return " MARK"


def _log(opts: Opts, family: int) -> str:
    level_text = _val(opts, "--log-level") or "4"
    level = int(level_text) if level_text.isdigit() else LOG_LEVELS.get(level_text, 4)
    flags = sum(bit for name, bit in LOG_FLAGS.items() if _get(opts, name))
    text = f" LOG flags {flags} level {level}"
    prefix = _val(opts, "--log-prefix")
    return text + (f' prefix "{prefix}"' if prefix else "")


def _reject(opts: Opts, family: int) -> str:
    names = REJECT4 if family == 4 else REJECT6
    default = "icmp-port-unreachable" if family == 4 else "icmp6-port-unreachable"
    return f" reject-with {names.get(_val(opts, '--reject-with') or default, default)}"


def _nflog(opts: Opts, family: int) -> str:
    text = ""
    prefix = _val(opts, "--nflog-prefix")
    if prefix:
        text += f' nflog-prefix "{prefix}"'
    for name in ("group", "range", "size", "threshold"):
        value = _val(opts, f"--nflog-{name}")
        if value is not None and value != "0":
            text += f" nflog-{name} {value}"
    return text


def _connmark(opts: Opts, family: int) -> str:
    if _get(opts, "--save-mark"):
        return " CONNMARK save"
    if _get(opts, "--restore-mark"):
        return " CONNMARK restore"
    value = _val(opts, "--set-mark") or _val(opts, "--set-xmark")
    return f" CONNMARK set{_mark(value) if value else ''}"


def _ct(opts: Opts, family: int) -> str:
    text = " CT"
    for option in opts:
        value = f" {option.values[0]}" if option.values else ""
        text += f" {option.name[2:]}{value}"
    return text


def _simple(fmt: Callable[[Opts], str]) -> Callable[[Opts, int], str]:
    return lambda opts, family: fmt(opts)


TARGET_PRINTERS: dict[str, Callable[[Opts, int], str]] = {
    "LOG": _log, "REJECT": _reject, "NFLOG": _nflog, "CONNMARK": _connmark, "CT": _ct,
    "MARK": _simple(_xmark),
    "NOTRACK": _simple(lambda o: " NOTRACK"),
    "NFQUEUE": _simple(lambda o: f" NFQUEUE num {_val(o, '--queue-num') or '0'}"
                       + (" bypass" if _get(o, "--queue-bypass") else "")),
    "AUDIT": _simple(lambda o: f" AUDIT {_val(o, '--type')}"),
    "SET": _simple(lambda o: "".join(f" {n[2:]} {' '.join(x.values)}" for n in
                                     ("--add-set", "--del-set") if (x := _get(o, n)))),
    "TCPMSS": _simple(lambda o: " TCPMSS clamp to PMTU" if _get(o, "--clamp-mss-to-pmtu")
                      else f" TCPMSS set {_val(o, '--set-mss')}"),
    "CLASSIFY": _simple(lambda o: f" CLASSIFY set {_val(o, '--set-class')}"),
    "CHECKSUM": _simple(lambda o: " CHECKSUM fill"),
    "TTL": _simple(lambda o: f" TTL set to {_val(o, '--ttl-set')}" if _get(o, "--ttl-set")
                   else f" TTL decrement by {_val(o, '--ttl-dec')}" if _get(o, "--ttl-dec")
                   else f" TTL increment by {_val(o, '--ttl-inc')}"),
    "DSCP": _simple(lambda o: f" DSCP set 0x{int(_val(o, '--set-dscp') or '0', 0):02x}"),
    "TOS": _simple(lambda o: f" TOS set {_val(o, '--set-tos')}"),
    "DNAT": _simple(lambda o: f" to:{_val(o, '--to-destination')}"),
    "SNAT": _simple(lambda o: f" to:{_val(o, '--to-source')}"),
    "NETMAP": _simple(lambda o: f" to:{_val(o, '--to')}"),
    "REDIRECT": _simple(lambda o: f" redir ports {_val(o, '--to-ports')}"
                        if _get(o, "--to-ports") else ""),
    "MASQUERADE": _simple(lambda o: f" masq ports: {_val(o, '--to-ports')}"
                          if _get(o, "--to-ports") else ""),
    "TRACE": _simple(lambda o: ""),
}

# Targets listed under another name (NOTRACK is CT --notrack to the kernel).
TARGET_LABELS = {"NOTRACK": "CT"}


def target_text(name: str, opts: Opts, family: int) -> str:
    printer = TARGET_PRINTERS.get(name)
    if printer is None:
        return " " + " ".join([name, *format_options(opts)]) if opts else ""
    return printer(opts, family)
