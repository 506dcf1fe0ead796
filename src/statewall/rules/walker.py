"""Walking one table for one packet (ip_tables.c: ipt_do_table).

Start at the hook's built-in chain; the first rule whose checks all pass
is counted and acts: a verdict ends the walk; a jump pushes the return
point, a goto does not; RETURN, or falling off the end of a user chain,
pops it, and with nothing to pop the built-in chain's policy decides (the
kernel's "underflow"). A target returning CONTINUE (LOG, MARK, CT ...)
lets the walk go on to the next rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from statewall.rules.compile import (
    K_GOTO,
    K_JUMP,
    K_NONE,
    K_TARGET,
    K_UNKNOWN,
    CompiledChain,
    CompiledRule,
    CompiledRuleset,
)
from statewall.rules.context import (
    CONTINUE,
    RETURN,
    UNKNOWN,
    VERDICT_NAMES,
    Decision,
    PacketContext,
    RuleRef,
)

if TYPE_CHECKING:
    from statewall.conntrack.conn import Conn
    from statewall.packet import Packet

# Tables each hook traverses, in priority order (raw -300, mangle -150, nat -100/100,
# filter 0, security 50). Conntrack runs between raw and mangle in PREROUTING/OUTPUT
# and confirms after the last table in INPUT/POSTROUTING.
HOOK_TABLES: dict[str, tuple[str, ...]] = {
    "PREROUTING": ("raw", "mangle", "nat"),
    "INPUT": ("mangle", "filter", "security", "nat"),
    "FORWARD": ("mangle", "filter", "security"),
    "OUTPUT": ("raw", "mangle", "nat", "filter", "security"),
    "POSTROUTING": ("mangle", "nat"),
}


def walk(
    ruleset: CompiledRuleset,
    table: str,
    hook: str,
    pkt: Packet,
    ctinfo: int,
    conn: Conn | None,
    now: float,
    iface_in: str | None = None,
    iface_out: str | None = None,
    mark: int = 0,
    trace: bool = False,
) -> Decision | None:
    """The decision of `table` at `hook`, or None when the table is not loaded
    or has no chain for that hook (the packet passes as with ACCEPT)."""
    compiled = ruleset.tables.get(table)
    if compiled is None or hook not in compiled.entry:
        return None
    ctx = PacketContext(pkt, ctinfo, conn, now, hook, iface_in, iface_out, mark)
    ctx.trace = trace
    return _walk(compiled.chains, compiled.entry[hook], ctx, len(pkt.data))


def _walk(chains: list[CompiledChain], entry: int, ctx: PacketContext,
          size: int) -> Decision:
    stack: list[tuple[int, int]] = []
    lines: list[str] | None = [] if ctx.trace else None
    ci, ri = entry, 0
    chain = chains[ci]
    while True:
        if ri >= len(chain.rules):
            if not stack:
                return _policy(chains[entry], ctx, size, lines, "policy" if ci == entry
                               else "return")
            ci, ri = stack.pop()
            chain = chains[ci]
            continue
        rule = chain.rules[ri]
        ri += 1
        if not _matches(rule, ctx):
            continue
        rule.packets += 1
        rule.octets += size
        if lines is not None:
            lines.append(f"TRACE: {rule.ref.table}:{rule.ref.chain}:rule:{rule.ref.number}")
        kind = rule.kind
        if kind == K_NONE:
            continue
        if kind == K_JUMP:
            stack.append((ci, ri))
        if kind in (K_JUMP, K_GOTO):
            ci, ri = rule.jump, 0
            chain = chains[ci]
            continue
        verdict = rule.verdict
        if kind == K_TARGET:
            assert rule.target is not None
            verdict = rule.target(ctx)
            if verdict == CONTINUE:
                continue
        elif kind == K_UNKNOWN:
            verdict = UNKNOWN
        if verdict == RETURN:
            if not stack:
                return _policy(chains[entry], ctx, size, lines, "return")
            ci, ri = stack.pop()
            chain = chains[ci]
            continue
        return _decide(verdict, rule, ctx, lines)


def _matches(rule: CompiledRule, ctx: PacketContext) -> bool:
    # A plain loop rather than all(...): no generator object per rule on the hot path.
    for check in rule.checks:  # noqa: SIM110
        if not check(ctx):
            return False
    return True


def _policy(chain: CompiledChain, ctx: PacketContext, size: int, lines: list[str] | None,
            how: str) -> Decision:
    chain.packets += 1
    chain.octets += size
    if lines is not None:
        lines.append(f"TRACE: {chain.ref.table}:{chain.name}:{how}:1")
    name = VERDICT_NAMES[chain.policy]
    reason = f"policy {name} of {chain.ref.table} {chain.name}"
    return _decision(name, chain.ref, reason, ctx, lines)


def _decide(verdict: int, rule: CompiledRule, ctx: PacketContext,
            lines: list[str] | None) -> Decision:
    name = VERDICT_NAMES[verdict]
    if verdict == UNKNOWN:
        reason = f"undetermined from rule {rule.ref.number} of {rule.ref.table} " \
                 f"{rule.ref.chain} ({rule.unknown}): {rule.text}"
    else:
        reason = f"rule {rule.ref.number} of {rule.ref.table} {rule.ref.chain}: {rule.text}"
    return _decision(name, rule.ref, reason, ctx, lines)


def _decision(verdict: str, ref: RuleRef, reason: str, ctx: PacketContext,
              lines: list[str] | None) -> Decision:
    return Decision(
        verdict, ref, reason, ctx.mark, ctx.reject_with, ctx.queue_num,
        tuple(ctx.logs or ()), tuple(ctx.effects or ()), tuple(ctx.notes or ()),
        tuple(lines or ()),
    )
