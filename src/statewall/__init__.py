"""statewall: Linux netfilter connection tracking and iptables' stateful filter,
replayed over packet captures, packet by packet, with the reason for every verdict.

    import statewall
    run = statewall.replay("capture.pcap", rules="rules.v4", local=["192.0.2.1"])
    for packet in run:            # statewall.PacketVerdict: the jsonl record's fields
        ...
    run.summary, run.table(), run.connections(), run.expectations()

`load_firewall` builds one simulated machine (rulesets, ipsets, own addresses,
interfaces, sysctls, given once) for `replay` or for feeding packets one by one
(`Firewall.process`). The packet path runs in the compiled core,
`statewall._core`. Names load on first use, so `import statewall` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    "load_firewall": "statewall.api",
    "replay": "statewall.api",
    "report": "statewall.report",
    "Replay": "statewall.api",
    "Summary": "statewall.api",
    "MachineOptions": "statewall.api",
    "Firewall": "statewall.engine",
    "Connection": "statewall.engine",
    "ExpectedConnection": "statewall.engine",
    "Batch": "statewall.engine",
    "PacketVerdict": "statewall.verdict",
    "RuleRef": "statewall.verdict",
    "NatStep": "statewall.verdict",
    "Leaves": "statewall.verdict",
    "ConntrackEvent": "statewall.events",
    "Sysctls": "statewall.config",
    "SysctlError": "statewall.config",
    "Topology": "statewall.topology",
    "CaptureError": "statewall.capture",
    "RulesetError": "statewall.rules.errors",
    "read_packets": "statewall.decode.stream",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:
    from statewall.api import (
        MachineOptions as MachineOptions,
    )
    from statewall.api import (
        Replay as Replay,
    )
    from statewall.api import (
        Summary as Summary,
    )
    from statewall.api import (
        load_firewall as load_firewall,
    )
    from statewall.api import (
        replay as replay,
    )
    from statewall.capture import (
        CaptureError as CaptureError,
    )
    from statewall.config import (
        SysctlError as SysctlError,
    )
    from statewall.config import (
        Sysctls as Sysctls,
    )
    from statewall.decode.stream import (
        read_packets as read_packets,
    )
    from statewall.engine import (
        Batch as Batch,
    )
    from statewall.engine import (
        Connection as Connection,
    )
    from statewall.engine import (
        ExpectedConnection as ExpectedConnection,
    )
    from statewall.engine import (
        Firewall as Firewall,
    )
    from statewall.events import (
        ConntrackEvent as ConntrackEvent,
    )
    from statewall.rules.errors import (
        RulesetError as RulesetError,
    )
    from statewall.topology import (
        Topology as Topology,
    )
    from statewall.verdict import (
        Leaves as Leaves,
    )
    from statewall.verdict import (
        NatStep as NatStep,
    )
    from statewall.verdict import (
        PacketVerdict as PacketVerdict,
    )
    from statewall.verdict import (
        RuleRef as RuleRef,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'statewall' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
