"""REJECT target (ipt_REJECT.c, ip6t_REJECT.c): drop and answer; statewall records the answer.

Valid in INPUT, FORWARD and OUTPUT only; `tcp-reset` needs `-p tcp`.
Aliases are normalised to the name iptables-save prints.
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, OptSpec, TargetExt

V4 = {
    "icmp-net-unreachable": "icmp-net-unreachable", "net-unreach": "icmp-net-unreachable",
    "icmp-host-unreachable": "icmp-host-unreachable", "host-unreach": "icmp-host-unreachable",
    "icmp-proto-unreachable": "icmp-proto-unreachable",
    "proto-unreach": "icmp-proto-unreachable",
    "icmp-port-unreachable": "icmp-port-unreachable", "port-unreach": "icmp-port-unreachable",
    "icmp-net-prohibited": "icmp-net-prohibited", "net-prohib": "icmp-net-prohibited",
    "icmp-host-prohibited": "icmp-host-prohibited", "host-prohib": "icmp-host-prohibited",
    "icmp-admin-prohibited": "icmp-admin-prohibited", "admin-prohib": "icmp-admin-prohibited",
    "tcp-reset": "tcp-reset", "tcp-rst": "tcp-reset",
}
V6 = {
    "icmp6-no-route": "icmp6-no-route", "no-route": "icmp6-no-route",
    "icmp6-adm-prohibited": "icmp6-adm-prohibited", "adm-prohibited": "icmp6-adm-prohibited",
    "icmp6-addr-unreachable": "icmp6-addr-unreachable", "addr-unreach": "icmp6-addr-unreachable",
    "icmp6-port-unreachable": "icmp6-port-unreachable", "port-unreach": "icmp6-port-unreachable",
    "icmp6-policy-fail": "icmp6-policy-fail", "policy-fail": "icmp6-policy-fail",
    "icmp6-reject-route": "icmp6-reject-route", "reject-route": "icmp6-reject-route",
    "tcp-reset": "tcp-reset", "tcp-rst": "tcp-reset",
}


def check_reject(args: BuildArgs) -> None:
    names = V4 if args.family == 4 else V6
    default = "icmp-port-unreachable" if args.family == 4 else "icmp6-port-unreachable"
    given = args.value("--reject-with", default) or default
    kind = names.get(given)
    if kind is None:
        raise OptionError(f'unknown reject type "{given}"')
    if kind == "tcp-reset" and (args.rule.proto != 6 or args.rule.proto_neg):
        raise OptionError("TCP RST can only be used with -p tcp")


REJECT_TARGET = TargetExt("REJECT", (OptSpec("--reject-with", invert=False),), check_reject,
                          hooks=("INPUT", "FORWARD", "OUTPUT"), terminal=True)
