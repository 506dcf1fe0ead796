"""Walking one table for one packet (ip_tables.c: ipt_do_table).

Start at the hook's built-in chain; the first rule whose checks all pass
is counted and acts: a verdict ends the walk; a jump pushes the return
point, a goto does not; RETURN, or falling off the end of a user chain,
pops it, and with nothing to pop the built-in chain's policy decides (the
kernel's "underflow"). A target returning CONTINUE (LOG, MARK, CT ...)
lets the walk go on to the next rule. Counters count the IP total length,
as the kernel adds skb->len. A match may hot-drop the packet (the walk ends
in DROP at once) or report that it cannot decide (the rule's outcome, and
so the packet's, is UNKNOWN). Once a TRACE rule has set the packet's
nf_trace bit, every matched rule adds a TRACE log line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from statewall.rules.compile import (
    K_GOTO,
    K_JUMP,
    K_NONE,
    K_TARGET,
    K_UNKNOWN,
    K_VERDICT,
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
)
from statewall.rules.targets.xt_LOG import log_line
from statewall.verdict import RuleRef

# The log flags of a traced packet (ip_tables.c trace_loginfo: NF_LOG_DEFAULT_MASK
# less the socket owner, which statewall never knows).
TRACE_FLAGS = frozenset({"tcp-sequence", "tcp-options", "ip-options"})

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
    or has no chain for that hook (the packet passes as with ACCEPT).

    `trace` is the packet's nf_trace bit on entry (set by an earlier TRACE
    rule); `Decision.nf_trace` is its value on exit, for the next table.
    """
    compiled = ruleset.tables.get(table)
    if compiled is None or hook not in compiled.entry:
        return None
    ctx = PacketContext(pkt, ctinfo, conn, now, hook, iface_in, iface_out, mark)
    ctx.trace = trace
    return _walk(compiled.chains, compiled.entry[hook], ctx, pkt.ip_len)


def _walk(chains: list[CompiledChain], entry: int, ctx: PacketContext,
          size: int) -> Decision:
    stack: list[tuple[int, int]] = []
    lines: list[str] = []
    ci, ri = entry, 0
    chain = chains[ci]
    while True:
        if ri >= len(chain.rules):
            if not stack:
                if ci != entry and ctx.trace:  # the user chain's own tail entry
                    lines.append(trace_line(ctx, chain.ref.table, chain.name, "return",
                                            len(chain.rules) + 1))
                return _policy(chains[entry], ctx, size, lines)
            if ctx.trace:
                lines.append(trace_line(ctx, chain.ref.table, chain.name, "return",
                                        len(chain.rules) + 1))
            ci, ri = stack.pop()
            chain = chains[ci]
            continue
        rule = chain.rules[ri]
        ri += 1
        if not _matches(rule, ctx):
            if ctx.hotdrop is not None:
                return _hotdrop(rule, ctx, lines)
            continue
        rule.packets += 1
        rule.octets += size
        if ctx.trace:
            lines.append(_rule_trace(ctx, rule, ci == entry))
        if ctx.unknown is not None:
            return _decide(UNKNOWN, rule, ctx, lines)
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
                return _policy(chains[entry], ctx, size, lines)
            ci, ri = stack.pop()
            chain = chains[ci]
            continue
        return _decide(verdict, rule, ctx, lines)


def _matches(rule: CompiledRule, ctx: PacketContext) -> bool:
    # A plain loop rather than all(...): no generator object per rule on the hot path.
    for check in rule.checks:
        if not check(ctx):
            ctx.unknown = None  # an undecidable match does not matter when another fails
            return False
    return True


def trace_line(ctx: PacketContext, table: str, chain: str, comment: str, number: int) -> str:
    """The kernel log line of a traced packet (ip_tables.c: trace_packet).

    The prefix is ip_tables' `TRACE: table:chain:comment:number `, followed by
    the packet as LOG prints it with the trace log flags (TCP sequence, TCP
    options, IP options). This is the legacy ip_tables format; the nf_tables
    backend reports traces over netlink (`xtables-monitor --trace`) instead.
    """
    prefix = f"TRACE: {table}:{chain}:{comment}:{number} "
    return log_line(ctx, prefix, TRACE_FLAGS)


def _rule_trace(ctx: PacketContext, rule: CompiledRule, builtin: bool) -> str:
    """A matched rule is traced as `rule`, except that an unconditional rule with
    a plain verdict looks to the kernel like a chain's tail entry and is
    labelled `policy` (built-in chain) or `return` (user chain)."""
    comment = "rule"
    if rule.kind == K_VERDICT and not rule.checks:
        comment = "policy" if builtin else "return"
    return trace_line(ctx, rule.ref.table, rule.ref.chain, comment, rule.ref.number)


def _policy(chain: CompiledChain, ctx: PacketContext, size: int, lines: list[str]) -> Decision:
    chain.packets += 1
    chain.octets += size
    if ctx.trace:
        lines.append(trace_line(ctx, chain.ref.table, chain.name, "policy",
                                len(chain.rules) + 1))
    name = VERDICT_NAMES[chain.policy]
    reason = f"policy {name} of {chain.ref.table} {chain.name}"
    return _decision(name, chain.ref, reason, ctx, lines)


def _hotdrop(rule: CompiledRule, ctx: PacketContext, lines: list[str]) -> Decision:
    reason = f"dropped by a match of rule {rule.ref.number} of {rule.ref.table} " \
             f"{rule.ref.chain} ({ctx.hotdrop}): {rule.text}"
    return _decision("DROP", rule.ref, reason, ctx, lines)


def _decide(verdict: int, rule: CompiledRule, ctx: PacketContext,
            lines: list[str]) -> Decision:
    name = VERDICT_NAMES[verdict]
    if verdict == UNKNOWN:
        why = ctx.unknown or rule.unknown
        reason = f"undetermined from rule {rule.ref.number} of {rule.ref.table} " \
                 f"{rule.ref.chain} ({why}): {rule.text}"
    else:
        reason = f"rule {rule.ref.number} of {rule.ref.table} {rule.ref.chain}: {rule.text}"
    return _decision(name, rule.ref, reason, ctx, lines)


def _decision(verdict: str, ref: RuleRef, reason: str, ctx: PacketContext,
              lines: list[str]) -> Decision:
    return Decision(
        verdict, ref, reason, ctx.mark, ctx.reject_with, ctx.queue_num,
        tuple(ctx.logs or ()), tuple(ctx.effects or ()), tuple(ctx.notes or ()),
        tuple(lines), ctx.trace,
    )
