"""The target extensions statewall knows, by the name `-j` loads them with."""

from __future__ import annotations

from statewall.rules.ext import TargetExt
from statewall.rules.targets import nat, xt_CT, xt_LOG, xt_mangle, xt_mark, xt_queue, xt_REJECT

# Verdicts built into every table (the kernel's standard target).
STANDARD_VERDICTS = ("ACCEPT", "DROP", "RETURN", "QUEUE")

TARGETS: dict[str, TargetExt] = {ext.name: ext for ext in (
    xt_REJECT.REJECT_TARGET, xt_LOG.LOG, xt_LOG.NFLOG, xt_LOG.ULOG, xt_mark.MARK_TARGET,
    xt_mark.CONNMARK_TARGET, xt_CT.CT, xt_CT.NOTRACK, xt_CT.TRACE, xt_mangle.TCPMSS,
    xt_mangle.CHECKSUM, xt_mangle.DSCP, xt_mangle.TOS, xt_mangle.TTL, xt_mangle.HL,
    xt_mangle.CLASSIFY, xt_queue.NFQUEUE, xt_queue.AUDIT, xt_queue.SET, nat.SNAT, nat.DNAT,
    nat.MASQUERADE, nat.REDIRECT, nat.NETMAP,
)}
