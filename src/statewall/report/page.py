"""The page: the template with its style, script and model put in place.

Everything the page needs is inside it; the model goes in a JSON script
element (`<` escaped, so no text from a capture or ruleset can close it)
that the script parses once.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

SLOTS = ("/*STYLE*/", "/*SCRIPT*/", "@DATA@", "@TITLE@")


def _asset(name: str) -> str:
    return (resources.files("statewall.report") / "assets" / name).read_text(encoding="utf-8")


def render_page(model: dict[str, Any]) -> str:
    """The HTML text of the page for `model` (model.build_model)."""
    data = json.dumps(model, separators=(",", ":"), ensure_ascii=False)
    data = data.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    title = (str(model["meta"]["title"]).replace("&", "&amp;").replace("<", "&lt;")
             .replace(">", "&gt;"))
    page = _asset("report.html")
    values = (_asset("report.css"), _asset("report.js"), data, title)
    # One pass, so a slot's text inside another's value is never replaced.
    out, rest = [], page
    while True:
        found = [(rest.find(slot), slot, value) for slot, value in zip(SLOTS, values, strict=True)
                 if slot in rest]
        if not found:
            out.append(rest)
            break
        at, slot, value = min(found)
        out.extend((rest[:at], value))
        rest = rest[at + len(slot):]
    return "".join(out)
