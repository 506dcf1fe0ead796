"""NFQUEUE (xt_NFQUEUE.c), AUDIT (xt_AUDIT.c) and SET (xt_set.c) targets.

NFQUEUE ends the walk with QUEUE: the packet goes to a userspace program
statewall does not run. With `--queue-bypass` the kernel accepts the packet
when no program listens; statewall reports QUEUE and notes the bypass.
"""

from __future__ import annotations

from statewall.rules.context import CONTINUE, QUEUE, PacketContext
from statewall.rules.errors import OptionError
from statewall.rules.ext import BuildArgs, OptSpec, TargetExt, TargetFn, parse_int
from statewall.rules.matches.xt_set import find_set, parse_flags
from statewall.rules.targets._effect import effect_target


def build_nfqueue(args: BuildArgs) -> TargetFn:
    num = parse_int(args.value("--queue-num", "0") or "0", 0, 65535, "--queue-num")
    balance = args.value("--queue-balance")
    if balance is not None:
        low, _, high = balance.partition(":")
        num = parse_int(low, 0, 65535, "--queue-balance")
        if parse_int(high or low, num, 65535, "--queue-balance") < num:
            raise OptionError("--queue-balance: start must not exceed end")
    bypass = args.has("--queue-bypass")

    def target(ctx: PacketContext) -> int:
        ctx.queue_num = num
        if bypass:
            ctx.note("NFQUEUE --queue-bypass: accepted if no program listens on the queue")
        return QUEUE

    return target


def build_audit(args: BuildArgs) -> TargetFn:
    kind = args.value("--type")
    if kind not in ("accept", "drop", "reject"):
        raise OptionError(f'Bad action type value "{kind}"')
    return effect_target("audit", kind)


def build_set(args: BuildArgs) -> TargetFn:
    """SET (xt_set.c set_target_v3): add the packet's element to a set or delete it.

    `--exist` re-adding an element refreshes its timeout; without it a
    duplicate add changes nothing, as the kernel refuses it silently.
    """
    add, delete = args.get("--add-set"), args.get("--del-set")
    if add is None and delete is None:
        raise OptionError("You must specify either `--add-set' or `--del-set'")
    timeout_text = args.value("--timeout")
    timeout = parse_int(timeout_text, 0, 2147483, "--timeout") if timeout_text else None
    exist = args.has("--exist")
    changes = tuple((kind, find_set(args, o.values[0]), parse_flags(o.values[1]))
                    for kind, o in (("add", add), ("del", delete)) if o is not None)

    def target(ctx: PacketContext) -> int:
        pkt = ctx.pkt
        for kind, ipset, flags in changes:
            if ipset.family not in (0, pkt.family) or len(flags) < ipset.dimension:
                continue
            if kind == "add":
                ipset.add_packet(pkt, flags, ctx.now, timeout, exist)
            else:
                ipset.del_packet(pkt, flags, ctx.now)
            ctx.effect("ipset", (kind, ipset.name))
        return CONTINUE

    return target


NFQUEUE = TargetExt(
    "NFQUEUE",
    (OptSpec("--queue-num", invert=False), OptSpec("--queue-balance", invert=False),
     OptSpec("--queue-bypass", nargs=0, invert=False),
     OptSpec("--fail-open", nargs=0, invert=False),
     OptSpec("--queue-cpu-fanout", nargs=0, invert=False)),
    build_nfqueue, terminal=True,
)
AUDIT = TargetExt("AUDIT", (OptSpec("--type", invert=False),), build_audit)
SET = TargetExt(
    "SET",
    (OptSpec("--add-set", nargs=2, invert=False), OptSpec("--del-set", nargs=2, invert=False),
     OptSpec("--timeout", invert=False), OptSpec("--exist", nargs=0, invert=False)),
    build_set,
)
