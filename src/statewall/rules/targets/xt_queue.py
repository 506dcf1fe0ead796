"""NFQUEUE (xt_NFQUEUE.c), AUDIT (xt_AUDIT.c) and SET (xt_set.c) targets.

NFQUEUE ends the walk with QUEUE: the packet goes to a userspace program
statewall does not run. With `--queue-bypass` the kernel accepts the packet
when no program listens; statewall reports QUEUE and notes the bypass.
"""

from __future__ import annotations

from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, OptSpec, TargetExt, parse_int
from statewall.rules.matches.xt_set import find_set, parse_flags


def check_nfqueue(args: BuildArgs) -> None:
    parse_int(args.value("--queue-num", "0") or "0", 0, 65535, "--queue-num")
    balance = args.value("--queue-balance")
    if balance is not None:
        low, _, high = balance.partition(":")
        num = parse_int(low, 0, 65535, "--queue-balance")
        if parse_int(high or low, num, 65535, "--queue-balance") < num:
            raise OptionError("--queue-balance: start must not exceed end")


def audit_effect(args: BuildArgs) -> tuple[str, str]:
    """AUDIT's effect: ("audit", the --type)."""
    kind = args.value("--type")
    if kind not in ("accept", "drop", "reject"):
        raise OptionError(f'Bad action type value "{kind}"')
    return "audit", kind


def check_set(args: BuildArgs) -> None:
    """SET (xt_set.c set_target_v3): add the packet's element to a set or delete it.

    `--exist` re-adding an element refreshes its timeout; without it a
    duplicate add changes nothing, as the kernel refuses it silently.
    """
    add, delete = args.get("--add-set"), args.get("--del-set")
    if add is None and delete is None:
        raise OptionError("You must specify either `--add-set' or `--del-set'")
    timeout_text = args.value("--timeout")
    if timeout_text:
        parse_int(timeout_text, 0, 2147483, "--timeout")
    for option in (add, delete):
        if option is not None:
            find_set(args, option.values[0])
            parse_flags(option.values[1])


NFQUEUE = TargetExt(
    "NFQUEUE",
    (OptSpec("--queue-num", invert=False), OptSpec("--queue-balance", invert=False),
     OptSpec("--queue-bypass", nargs=0, invert=False),
     OptSpec("--fail-open", nargs=0, invert=False),
     OptSpec("--queue-cpu-fanout", nargs=0, invert=False)),
    check_nfqueue, terminal=True,
)
AUDIT = TargetExt("AUDIT", (OptSpec("--type", invert=False),), audit_effect)
SET = TargetExt(
    "SET",
    (OptSpec("--add-set", nargs=2, invert=False), OptSpec("--del-set", nargs=2, invert=False),
     OptSpec("--timeout", invert=False), OptSpec("--exist", nargs=0, invert=False)),
    check_set,
)
