"""LOG, NFLOG and ULOG targets (xt_LOG.c, xt_NFLOG.c): their options, checked as
libxt_LOG, libxt_NFLOG and the kernel check them.

LOG's line is the one the kernel writes to its log, field for field
(nf_log_syslog.c: nf_log_ip_packet, nf_log_ip6_packet); NFLOG records its
group and prefix.
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, OptSpec, TargetExt, parse_int

LEVELS = ("emerg", "alert", "crit", "error", "warning", "notice", "info", "debug")


def check_log(args: BuildArgs) -> None:
    level_text = args.value("--log-level", "warning") or "warning"
    if not (level_text.isdigit() and int(level_text) <= 7) and level_text not in LEVELS \
            and level_text != "panic":
        raise OptionError(f'log level "{level_text}" unknown')
    prefix = args.value("--log-prefix", "") or ""
    if len(prefix) > 29:
        raise OptionError("Maximum prefix length 29 for --log-prefix")


def check_nflog(args: BuildArgs) -> None:
    parse_int(args.value("--nflog-group", "0") or "0", 0, 65535, "--nflog-group")


LOG = TargetExt(
    "LOG",
    (OptSpec("--log-level", invert=False), OptSpec("--log-prefix", invert=False))
    + tuple(OptSpec(f"--log-{n}", nargs=0, invert=False) for n in (
        "tcp-sequence", "tcp-options", "ip-options", "uid", "macdecode")),
    check_log,
)
NFLOG = TargetExt(
    "NFLOG",
    tuple(OptSpec(f"--nflog-{n}", invert=False) for n in (
        "group", "prefix", "range", "size", "threshold")),
    check_nflog,
)


def _refuse(args: BuildArgs) -> None:
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
