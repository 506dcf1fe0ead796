"""LOG target (xt_LOG.c, nf_log_syslog.c: nf_log_ip_packet, nf_log_ip6_packet).

Builds the line the kernel writes to its log, field for field:
`PREFIX IN=.. OUT=.. MAC=.. SRC=.. DST=.. LEN=.. ...`, each field followed by
a space as the kernel prints it. NFLOG only records its group and prefix.
"""

from __future__ import annotations

from statewall.packet import Packet
from statewall.rules.addr import format_ip
from statewall.rules.context import CONTINUE, PacketContext
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, OptSpec, TargetExt, TargetFn, parse_int

LEVELS = ("emerg", "alert", "crit", "error", "warning", "notice", "info", "debug")
TCP_FLAG_NAMES = ((0x80, "CWR"), (0x40, "ECE"), (0x20, "URG"), (0x10, "ACK"),
                  (0x08, "PSH"), (0x04, "RST"), (0x02, "SYN"), (0x01, "FIN"))


def _u16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 2], "big") if len(data) >= at + 2 else 0


def _tcp(pkt: Packet, seq: bool, opts: bool) -> str:
    d, o = pkt.data, pkt.l4_off
    if len(d) < o + 20:
        return f"INCOMPLETE [{max(0, len(d) - o)} bytes] "
    text = f"SPT={pkt.sport} DPT={pkt.dport} "
    if seq:
        text += f"SEQ={pkt.seq} ACK={pkt.ack} "
    text += f"WINDOW={pkt.window} RES=0x{(d[o + 12] & 0x0F) << 2:02x} "
    text += "".join(f"{name} " for bit, name in TCP_FLAG_NAMES if d[o + 13] & bit)
    text += f"URGP={_u16(d, o + 18)} "
    header_len = (d[o + 12] >> 4) * 4
    if opts and header_len > 20:
        text += "OPT (" + d[o + 20:o + header_len].hex().upper() + ") "
    return text


def _l4(pkt: Packet, seq: bool, opts: bool) -> str:
    later = pkt.fragment is not None and pkt.fragment.offset > 0
    proto = pkt.proto
    if proto == 6:
        return "PROTO=TCP " + ("" if later else _tcp(pkt, seq, opts))
    if proto in (17, 136):
        name = "UDP" if proto == 17 else "UDPLITE"
        if later:
            return f"PROTO={name} "
        return f"PROTO={name} SPT={pkt.sport} DPT={pkt.dport} LEN={_u16(pkt.data, pkt.l4_off + 4)} "
    if proto in (1, 58):
        return _icmp(pkt, later)
    names = {50: "ESP", 51: "AH", 2: "IGMP"}
    return f"PROTO={names[proto]} " if proto in names else f"PROTO={proto} "


def _icmp(pkt: Packet, later: bool) -> str:
    v4 = pkt.proto == 1
    text = "PROTO=ICMP " if v4 else "PROTO=ICMPv6 "
    if later:
        return text
    text += f"TYPE={pkt.icmp_type} CODE={pkt.icmp_code} "
    echo = (0, 8) if v4 else (128, 129)
    if pkt.icmp_type in echo:
        text += f"ID={pkt.icmp_id} SEQ={_u16(pkt.data, pkt.l4_off + 6)} "
    elif pkt.inner is not None:
        text += "[" + _ip(pkt.inner, False, False, False) + "] "
    return text


def _ip(pkt: Packet, seq: bool, opts: bool, ipopts: bool) -> str:
    d = pkt.data
    src, dst = format_ip(pkt.src, pkt.family), format_ip(pkt.dst, pkt.family)
    if pkt.family == 6:
        flow = int.from_bytes(d[1:4], "big") & 0xFFFFF if len(d) >= 4 else 0
        return (f"SRC={src} DST={dst} LEN={pkt.ip_len} TC={pkt.tos} HOPLIMIT={pkt.ttl} "
                f"FLOWLBL={flow} " + _l4(pkt, seq, opts))
    text = (f"SRC={src} DST={dst} LEN={pkt.ip_len} TOS=0x{pkt.tos & 0x1E:02X} "
            f"PREC=0x{pkt.tos & 0xE0:02X} TTL={pkt.ttl} ID={pkt.ip_id} ")
    frag = _u16(d, 6)
    text += "CE " if frag & 0x8000 else ""
    text += "DF " if frag & 0x4000 else ""
    text += "MF " if frag & 0x2000 else ""
    text += f"FRAG:{frag & 0x1FFF} " if frag & 0x1FFF else ""
    header_len = (d[0] & 0x0F) * 4 if d else 20
    if ipopts and header_len > 20:
        text += "OPT (" + d[20:header_len].hex().upper() + ") "
    return text + _l4(pkt, seq, opts)


def log_line(ctx: PacketContext, prefix: str, flags: frozenset[str]) -> str:
    pkt = ctx.pkt
    text = f"{prefix}IN={ctx.iface_in or ''} OUT={ctx.iface_out or ''} "
    if ctx.iface_in is not None:
        if pkt.link_src is not None and pkt.link_dst is not None:
            ethertype = b"\x08\x00" if pkt.family == 4 else b"\x86\xdd"
            header = pkt.link_dst + pkt.link_src + ethertype
            text += "MAC=" + ":".join(f"{b:02x}" for b in header) + " "
        else:
            text += "MAC= "
    text += _ip(pkt, "tcp-sequence" in flags, "tcp-options" in flags, "ip-options" in flags)
    if ctx.mark:
        text += f"MARK=0x{ctx.mark:x} "
    return text


def build_log(args: BuildArgs) -> TargetFn:
    level_text = args.value("--log-level", "warning") or "warning"
    if not (level_text.isdigit() and int(level_text) <= 7) and level_text not in LEVELS \
            and level_text != "panic":
        raise OptionError(f'log level "{level_text}" unknown')
    prefix = args.value("--log-prefix", "") or ""
    if len(prefix) > 29:
        raise OptionError("Maximum prefix length 29 for --log-prefix")
    flags = frozenset(o.name[6:] for o in args.options if not o.values)

    def target(ctx: PacketContext) -> int:
        ctx.log(log_line(ctx, prefix, flags))
        return CONTINUE

    return target


def build_nflog(args: BuildArgs) -> TargetFn:
    group = parse_int(args.value("--nflog-group", "0") or "0", 0, 65535, "--nflog-group")
    prefix = args.value("--nflog-prefix", "") or ""

    def target(ctx: PacketContext) -> int:
        ctx.effect("nflog", (group, prefix))
        return CONTINUE

    return target


LOG = TargetExt(
    "LOG",
    (OptSpec("--log-level", invert=False), OptSpec("--log-prefix", invert=False))
    + tuple(OptSpec(f"--log-{n}", nargs=0, invert=False) for n in (
        "tcp-sequence", "tcp-options", "ip-options", "uid", "macdecode")),
    build_log,
)
NFLOG = TargetExt(
    "NFLOG",
    tuple(OptSpec(f"--nflog-{n}", invert=False) for n in (
        "group", "prefix", "range", "size", "threshold")),
    build_nflog,
)


def _refuse(args: BuildArgs) -> TargetFn:
    raise OptionError("not evaluated")


# iptables still parses ULOG (libipt_ULOG), but the kernel target was removed
# in Linux 3.17: loading a rule that uses it fails with "No chain/target/match
# by that name". statewall refuses it the same way, or with --allow-unknown
# evaluates the rule as undetermined.
ULOG = TargetExt(
    "ULOG",
    tuple(OptSpec(f"--ulog-{n}", invert=False) for n in (
        "nlgroup", "prefix", "cprange", "qthreshold")),
    _refuse,
    families=(4,),
    unsupported="ULOG was removed from Linux in 3.17 and the kernel refuses the rule "
                "(No chain/target/match by that name); use NFLOG",
)
