"""Type stubs of the compiled core (core/src/python/)."""

from typing import Any

def sysctl_names() -> list[str]: ...

WalkResult = tuple[
    str,  # verdict: ACCEPT, DROP, REJECT, QUEUE or UNKNOWN
    tuple[str, str, int, int],  # table, chain, rule number (0: policy), line
    str,  # reason
    int,  # mark on exit
    str | None,  # reject_with
    int,  # queue_num
    list[str],  # LOG lines
    list[tuple[str, str]],  # effects: (kind, value as JSON text)
    list[str],  # notes
    list[str],  # TRACE lines
    bool,  # nf_trace on exit
    tuple[int, bool] | None,  # CONNMARK: (new entry mark, changed on the way) or None
]

class RuleEngine:
    """A ruleset lowered by statewall.rules.lower, loaded into the core (core/src/python/rules.rs).

    Raises ValueError for bad data; the message names the ruleset file and line.
    """

    def __init__(self, json: str) -> None: ...
    @property
    def family(self) -> int: ...
    def walk(
        self,
        table: str,
        hook: str,
        pkt: Any,
        ctinfo: int,
        conn: Any | None,
        now: float,
        iface_in: str | None = None,
        iface_out: str | None = None,
        mark: int = 0,
        trace: bool = False,
    ) -> WalkResult | None:
        """Walk `table` at `hook` for a decoded statewall.packet.Packet (and its
        statewall.conntrack.conn.Conn); None when the table has no chain for the hook."""
    def counters(self) -> list[tuple[str, str, int, int, int]]:
        """(table, chain, rule number or 0 for a built-in chain's policy, packets, bytes)."""
