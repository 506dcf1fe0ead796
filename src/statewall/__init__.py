"""statewall: Linux netfilter connection tracking and iptables' stateful filter,
replayed over packet captures, packet by packet, with the reason for every verdict.

The library API: build a `statewall.engine.Firewall` (optionally with a
`Sysctls` configuration, rulesets loaded by `statewall.rules.hooks.load_engine`
and a `statewall.topology.Topology`), feed it decoded `Packet`s (see
`statewall.replay.read_packets`) and read the `PacketVerdict` values it
returns; `Firewall.connections()` lists the conntrack table,
`Firewall.expectations()` the expectations, and an `event_sink` receives
`statewall.events.ConntrackEvent`s. The packet path runs in the compiled
core, `statewall._core`.
"""

__version__ = "0.1.0"
