"""statewall: Linux netfilter connection tracking and iptables' stateful filter,
replayed over packet captures, packet by packet, with the reason for every verdict.

The library API: build a `Firewall` (optionally with a `Sysctls`
configuration, a compiled ruleset and a `Topology`), feed it decoded
`Packet`s (see `statewall.replay.read_packets`) and read the `PacketVerdict`
values it returns; `Firewall.connections()` lists the conntrack table.
"""

__version__ = "0.1.0"
