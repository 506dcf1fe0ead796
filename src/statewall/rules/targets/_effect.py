"""Targets whose only result is an effect statewall records (packet rewriting
targets: the rewritten header is reported, not applied to the capture)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from statewall.rules.context import CONTINUE, PacketContext
from statewall.rules.ext import BuildArgs, TargetFn


def effect_target(kind: str, value: Any, verdict: int = CONTINUE) -> TargetFn:
    def target(ctx: PacketContext) -> int:
        ctx.effect(kind, value)
        return verdict

    return target


def options_effect(kind: str) -> Callable[[BuildArgs], TargetFn]:
    """A builder recording the target's options as written (for reports)."""

    def build(args: BuildArgs) -> TargetFn:
        text = " ".join(" ".join((o.name, *o.values)) for o in args.options)
        return effect_target(kind, text)

    return build
