"""`statewall report`: one self-contained HTML page about a replay.

    import statewall
    statewall.report("capture.pcap", "report.html", rules="rules.v4")

The page holds its data (one JSON model, model.py), its style and its
script (assets/); opening it asks no network address for anything. The
replay runs once, in the core, which counts what the page shows as it goes
(model.py); the page aggregates nothing itself but lays out what the model
holds, draws a connection's ladder diagram only when it is opened, and
marks itself ready (`data-ready` on the root element) once laid out.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any

from statewall import __version__
from statewall.api import MachineOptions, PathLike, build_firewall, machine_options
from statewall.report.model import Caps, build_model
from statewall.report.page import render_page
from statewall.select import Selection, parse_filter


def build_report(capture: PathLike, machine: MachineOptions, *,
                 machine_b: MachineOptions | None = None, select: Selection | None = None,
                 limit: int | None = None, caps: Caps | None = None,
                 title: str | None = None, chosen: str | None = None) -> str:
    """The page for `capture` replayed through `machine` (and, side by side, what
    `machine_b` changes). `select`: the packets the details hold (the totals count
    every packet), `chosen` its words for the page (the filter's text). Errors as
    `build_firewall` and the capture raise them: a capture that breaks off makes no
    page (a report of part of a capture would pass for the whole)."""
    caps = caps or Caps()
    firewall = build_firewall(machine, conn_log=True)
    path = os.fspath(capture)
    run = firewall.replay_file(path, "report", limit, select=select, caps=caps.core())
    meta = report_meta(path, machine, limit=limit, title=title, chosen=chosen)
    model = build_model(firewall, run, caps=caps, meta=meta)
    if machine_b is not None:
        from statewall.report.sides import side_by_side

        model["diff"] = side_by_side(path, machine, machine_b, limit, model["rules"])
    return render_page(model)


def report_meta(capture: PathLike, machine: MachineOptions, *, limit: int | None,
                title: str | None, chosen: str | None) -> dict[str, Any]:
    """The model's `meta` but for the run's counts: what the page is of."""
    path = os.fspath(capture)
    return {
        "title": title or f"statewall report: {os.path.basename(path)}",
        "capture": path, "version": __version__, "limit": limit,
        "filter": chosen,
        "rules": [os.fspath(p) for p in (machine.rules, machine.rules6, machine.nft)
                  if p is not None],
        "local": [str(a) for a in machine.local],
    }


def report(capture: PathLike, output: PathLike | None = None, *,
           rules_b: PathLike | None = None, rules6_b: PathLike | None = None,
           nft_b: PathLike | None = None, filter: str | None = None, conn: int | None = None,
           limit: int | None = None, title: str | None = None, **options: Any) -> str:
    """The report of `capture` replayed through the machine `options` describe (the
    arguments of `statewall.load_firewall`), as HTML text, also written to `output`
    when given. `rules_b`/`rules6_b`/`nft_b`: a second ruleset shown side by side with
    what it changes; `filter` (a display filter, as `replay --filter`) and `conn`
    choose the packets the details hold; `limit`: the first N packets only."""
    machine = machine_options(**options)
    changes: dict[str, Any] = {k: v for k, v in (("rules", rules_b), ("rules6", rules6_b),
                                                 ("nft", nft_b)) if v is not None}
    from dataclasses import replace

    machine_b = replace(machine, **changes) if changes else None
    node = parse_filter(filter) if filter is not None else None
    select = Selection.of(node, conn) if node is not None or conn is not None else None
    page = build_report(capture, machine, machine_b=machine_b, select=select, limit=limit,
                        title=title, chosen=_chosen(filter, conn))
    if output is not None:
        with open(output, "w", encoding="utf-8") as out:
            out.write(page)
    return page


def _chosen(filter: str | None, conn: int | None) -> str | None:
    """The selection in words, for the page's header."""
    parts = ([f"--filter {filter}"] if filter is not None else []) + \
        ([f"--conn {conn}"] if conn is not None else [])
    return " ".join(parts) or None


__all__ = ["Caps", "build_report", "report", "report_meta"]


class _CallableModule(types.ModuleType):
    """`statewall.report(...)` works even where `statewall.report` is this package
    (importing a submodule names the package on its parent)."""

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        return report(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
