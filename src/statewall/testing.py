"""Firewall CI: assertions over what a ruleset does to captures, and a pytest plugin.

    from statewall.testing import assert_accepted, assert_dropped, assert_verdicts

    def test_web_is_open():
        assert_accepted("captures/web.pcap", rules="rules.v4", local=["192.0.2.1"])

Each assertion replays the capture (through `firewall`, or a machine built from
the keyword arguments of `statewall.load_firewall`) and fails with the first
offending packets: their number, summary, verdict, deciding rule and reason.
`select` narrows the packets checked (a predicate on `PacketVerdict`). The
pytest plugin (registered as `statewall`) adds the `firewall_ci` fixture: the
same assertions with defaults from the ini options `statewall_rules`,
`statewall_rules6` and `statewall_local`, so a suite names its ruleset once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from statewall.api import replay
from statewall.engine import Firewall
from statewall.verdict import PacketVerdict
from statewall.wording import count

Select = Callable[[PacketVerdict], bool]
SHOWN = 5  # offending packets a failure lists


class VerdictError(AssertionError):
    """A capture's packets did not meet the firewall's expected verdicts."""


def describe(packet: PacketVerdict) -> str:
    """One offending packet, as a failure lists it."""
    rule = str(packet.rule) if packet.rule is not None else "no rule"
    state = packet.ctstate or "-"
    return f"#{packet.frame} {packet.summary}: {state} {packet.verdict} by {rule} | {packet.reason}"


def _packets(capture: str | os.PathLike[str], firewall: Firewall | None,
             options: Mapping[str, Any]) -> Iterable[PacketVerdict]:
    return replay(capture, firewall, **options)


def _fail(what: str, capture: str | os.PathLike[str], bad: list[PacketVerdict],
          checked: int) -> VerdictError:
    lines = [f"{os.fspath(capture)}: {len(bad)} of {count(checked, 'packet')} {what}:"]
    lines += [f"  {describe(p)}" for p in bad[:SHOWN]]
    if len(bad) > SHOWN:
        lines.append(f"  ... and {len(bad) - SHOWN} more")
    return VerdictError("\n".join(lines))


def _assert_all(verdict: str, what: str, capture: str | os.PathLike[str],
                firewall: Firewall | None, select: Select | None,
                options: Mapping[str, Any]) -> list[PacketVerdict]:
    checked = [p for p in _packets(capture, firewall, options) if select is None or select(p)]
    if not checked:
        raise VerdictError(f"{os.fspath(capture)}: no packet to check"
                           + (" (select chose none)" if select is not None else ""))
    bad = [p for p in checked if p.verdict != verdict]
    if bad:
        raise _fail(what, capture, bad, len(checked))
    return checked


def assert_accepted(capture: str | os.PathLike[str], firewall: Firewall | None = None, *,
                    select: Select | None = None, **options: Any) -> list[PacketVerdict]:
    """Every packet (that `select` chooses) is ACCEPTed; returns the packets checked."""
    return _assert_all("ACCEPT", "not accepted", capture, firewall, select, options)


def assert_dropped(capture: str | os.PathLike[str], firewall: Firewall | None = None, *,
                   select: Select | None = None, **options: Any) -> list[PacketVerdict]:
    """Every packet (that `select` chooses) is DROPped; returns the packets checked."""
    return _assert_all("DROP", "not dropped", capture, firewall, select, options)


def assert_verdicts(capture: str | os.PathLike[str], expected: Mapping[int | str, str],
                    firewall: Firewall | None = None, **options: Any) -> list[PacketVerdict]:
    """Packets' verdicts as `expected` says: keys are packet numbers (1-based, as
    Wireshark counts) or flows as `statewall diff` names them (`tcp 192.0.2.1:4000
    <-> 198.51.100.7:80`, both directions, every packet of it); values are verdicts
    (ACCEPT, DROP, REJECT, ...). Returns every packet of the capture."""
    from statewall.diff import flow_label

    packets = list(_packets(capture, firewall, options))
    bad: list[PacketVerdict] = []
    unseen = set(expected)
    for packet in packets:
        for key in (packet.frame, flow_label(packet)):
            if key in expected:
                unseen.discard(key)
                if packet.verdict != expected[key].upper():
                    bad.append(packet)
    if unseen:
        raise VerdictError(f"{os.fspath(capture)}: no packet is "
                           + ", ".join(repr(k) for k in sorted(unseen, key=str))
                           + f" (the capture has {count(len(packets), 'packet')})")
    if bad:
        wanted = [f"#{p.frame} {expected.get(p.frame) or expected[flow_label(p)]}" for p in bad]
        raise _fail("not as expected (" + ", ".join(wanted[:SHOWN]) + ")", capture, bad,
                    len(packets))
    return packets


class FirewallCI:
    """The assertions with default machine options (the `firewall_ci` fixture)."""

    def __init__(self, **defaults: Any) -> None:
        self.defaults = defaults

    def _options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return {**self.defaults, **options}

    def assert_accepted(self, capture: str | os.PathLike[str], *, select: Select | None = None,
                        **options: Any) -> list[PacketVerdict]:
        return assert_accepted(capture, select=select, **self._options(options))

    def assert_dropped(self, capture: str | os.PathLike[str], *, select: Select | None = None,
                       **options: Any) -> list[PacketVerdict]:
        return assert_dropped(capture, select=select, **self._options(options))

    def assert_verdicts(self, capture: str | os.PathLike[str],
                        expected: Mapping[int | str, str], **options: Any) -> list[PacketVerdict]:
        return assert_verdicts(capture, expected, **self._options(options))


# --- the pytest plugin (entry point `statewall` in pytest11) ----------------------------


def pytest_addoption(parser: Any) -> None:
    parser.addini("statewall_rules", "iptables-save file the firewall_ci fixture loads")
    parser.addini("statewall_rules6", "ip6tables-save file the firewall_ci fixture loads")
    parser.addini("statewall_local", "the firewall's own addresses (firewall_ci)",
                  type="linelist")


def _firewall_ci(request: Any) -> FirewallCI:
    config = request.config
    root = config.rootpath
    defaults: dict[str, Any] = {}
    for name, key in (("statewall_rules", "rules"), ("statewall_rules6", "rules6")):
        value = config.getini(name)
        if value:
            defaults[key] = str(root / str(value))
    local = config.getini("statewall_local")
    if local:
        defaults["local"] = list(local)
    return FirewallCI(**defaults)


try:
    import pytest
except ImportError:  # the assertions work without pytest; only the fixture needs it
    pass
else:
    firewall_ci = pytest.fixture(name="firewall_ci")(_firewall_ci)

__all__ = ["FirewallCI", "VerdictError", "assert_accepted", "assert_dropped", "assert_verdicts",
           "describe", "firewall_ci"]
