"""statewall against the live kernel, packet by packet and table for table.

How this works. The datagrams of a capture are normalised once (hop limits
and checksums, see normalise.py) and each is injected into a `KernelFirewall`
on the side `assign_sides` picks. Right after the kernel has finished with a
datagram, the very same bytes are decoded and fed to a statewall `Firewall`
with the injection time as the packet's timestamp, so both machines see the
same packets on the same clock. Per packet three things must agree:

* the ctstate (NEW/ESTABLISHED/RELATED/INVALID/UNTRACKED, or none at all),
* the direction (ORIGINAL/REPLY),
* the fate: the kernel's forwarded/local is statewall's ACCEPT, held (a
  fragment kept for reassembly) is STOLEN, dropped is DROP or REJECT.

At the end `conntrack -L` and statewall's `conntrack_line` are taken at the
same instant and compared as sets, ignoring the use/mark/zone columns and
allowing the timeouts to differ by one second (the two clocks are read a
few microseconds apart and both truncate).

The expectation tables are compared the same way at the end, and after any
datagram the caller names (the interesting moment is often mid-capture:
after a PORT command, before its data connection): `conntrack -L expect`
against `conntrack_expect_line`, and /proc/net/nf_conntrack_expect against
`proc_expect_line` byte for byte except the leading timeout.

Frames that are not IP are never injected; neither are datagrams with
loopback addresses (a router drops 127/8 and ::1 arriving on a real
interface as martians, so the kernel would only show routing, not conntrack).
Both are reported as not compared.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from statewall.capture import open_capture
from statewall.checksum import internet_checksum, pseudo_header_sum
from statewall.config import Sysctls
from statewall.decode import decode_datagram, decode_frame
from statewall.engine import Firewall
from statewall.oracle import netns
from statewall.oracle.egress import EgressWatch
from statewall.oracle.host import LOCAL_TO_LOCAL, NOT_SENT, SENT, Wiring, wire
from statewall.oracle.host import side_topology as side_topology
from statewall.oracle.kernel import KernelFirewall, KernelObservation
from statewall.oracle.netns import OracleError
from statewall.oracle.normalise import assign_sides, is_fragment, normalise, parse
from statewall.rules.hooks import IptablesEngine, compile_text, rule_state_for
from statewall.rules.ipset import IpSet, parse_ipset_save
from statewall.topology import Interface, Network, Topology
from statewall.verdict import (
    ACCEPT,
    DROP,
    QUEUE,
    REJECT,
    STOLEN,
    Addressing,
    PacketVerdict,
    addressing_text,
)

NOT_IP = "not an IP packet (the kernel's IP hooks never see it)"
LOOPBACK = "loopback addresses are martian on a routed interface"
FIREWALL_IFS = ("swl", "swr")

# What happened to a packet, in words both sides share.
PASSED, HELD, DROPPED, UNDECIDED = "passed", "held", "dropped", "undecided"
_KERNEL_FATE = {"forwarded": PASSED, "local": PASSED, "sent": PASSED, "held": HELD,
                "dropped": DROPPED}
# QUEUE: the oracle runs no queue listener, so the kernel drops queued packets.
_STATEWALL_FATE = {ACCEPT: PASSED, STOLEN: HELD, DROP: DROPPED, REJECT: DROPPED, QUEUE: DROPPED}
_IGNORED_COLUMNS = ("use=", "mark=", "zone=")
_LOOPBACK_V4 = 127
_LOOPBACK_V6 = 1
PROC_EXPECT = "/proc/thread-self/net/nf_conntrack_expect"
_PORT_PROTOS = (6, 17, 33, 132, 136)  # TCP, UDP, DCCP, SCTP, UDP-Lite


@dataclass(frozen=True, slots=True)
class Skipped:
    """A packet of the capture that was not compared, and why."""

    number: int  # 1-based, as in the capture
    reason: str


@dataclass(frozen=True, slots=True)
class PacketComparison:
    """Both answers for one packet; `differences` names what disagrees."""

    number: int
    kernel: KernelObservation
    statewall: PacketVerdict
    # subset of ("ctstate", "ctdir", "fate", "translation", "bytes")
    differences: tuple[str, ...]
    note: str = ""  # what the kernel's routing did when that explains a difference

    @property
    def agree(self) -> bool:
        return not self.differences

    def kernel_answer(self) -> str:
        text = f"{_state_text(self.kernel.ctstate, self.kernel.ctdir)} {self.kernel.outcome}"
        if "translation" in self.differences and self.kernel.left_as is not None:
            text += " as " + addressing_text(addressing(self.kernel.left_as))
        return text

    def statewall_answer(self) -> str:
        verdict = self.statewall
        text = f"{_state_text(verdict.ctstate, verdict.ctdir)} {verdict.verdict}"
        if "translation" in self.differences:
            text += " as " + addressing_text(verdict.leaving())
        return text


@dataclass(frozen=True, slots=True)
class TableComparison:
    """The two tables as normalised `conntrack -L` lines, and what only one side has."""

    kernel: tuple[str, ...]
    statewall: tuple[str, ...]
    only_kernel: tuple[str, ...]
    only_statewall: tuple[str, ...]

    @property
    def same(self) -> bool:
        return not self.only_kernel and not self.only_statewall


@dataclass(frozen=True, slots=True)
class ExpectComparison:
    """Both expectation tables at one instant, in both of the kernel's listings."""

    after: int | None  # number of the datagram just injected; None: end of the capture
    listing: TableComparison  # `conntrack -L expect`
    proc: TableComparison  # /proc/net/nf_conntrack_expect

    @property
    def same(self) -> bool:
        return self.listing.same and self.proc.same

    @property
    def empty(self) -> bool:
        """Neither side had any expectation."""
        return not (self.listing.kernel or self.listing.statewall)

    def where(self) -> str:
        return "at the end" if self.after is None else f"after #{self.after}"


@dataclass
class VerifyResult:
    """Everything `statewall verify` found for one capture."""

    packets: list[PacketComparison] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    table: TableComparison = field(
        default_factory=lambda: TableComparison((), (), (), ()))
    kept_namespaces: tuple[str, ...] = ()  # left behind on request, for inspection
    expectations: list[ExpectComparison] = field(default_factory=list)

    @property
    def agreed(self) -> int:
        return sum(1 for p in self.packets if p.agree)

    @property
    def disagreements(self) -> list[PacketComparison]:
        return [p for p in self.packets if not p.agree]

    @property
    def expectations_same(self) -> bool:
        return all(e.same for e in self.expectations)

    @property
    def ok(self) -> bool:
        return (self.agreed == len(self.packets) and self.table.same
                and self.expectations_same)

    def expectations_shown(self) -> bool:
        """Worth a word in the summary: asked for mid-capture, or some side had one."""
        return any(e.after is not None or not e.empty for e in self.expectations)

    def summary_line(self) -> str:
        tables = "same" if self.table.same else "differ"
        line = f"{self.agreed}/{len(self.packets)} packets agree, tables {tables}"
        if self.expectations_shown():
            line += ", expectations " + ("same" if self.expectations_same else "differ")
        return line


@dataclass(frozen=True, slots=True)
class Datagram:
    """One datagram to inject: its 1-based number in the capture and its bytes."""

    number: int
    data: bytes


# --- choosing what to compare ---------------------------------------------------------


def is_loopback(data: bytes) -> bool:
    """True when either address is 127/8 or ::1."""
    view = parse(data)
    if view is None:
        return False
    if view.family == 4:
        return view.src >> 24 == _LOOPBACK_V4 or view.dst >> 24 == _LOOPBACK_V4
    return _LOOPBACK_V6 in (view.src, view.dst)


def select(numbered: Iterable[tuple[int, int, bytes]],
           keep_loopback: bool = False) -> tuple[list[Datagram], list[Skipped]]:
    """Split (number, IP family or 0, datagram) into what to inject and what to skip.

    `keep_loopback` injects 127/8 too: the oracle's firewall sets
    route_localnet=1, so it does forward those (not ::1, which the IPv6 input
    path drops before netfilter).
    """
    chosen: list[Datagram] = []
    skipped: list[Skipped] = []
    for number, family, data in numbered:
        if family == 0 or not data:
            skipped.append(Skipped(number, NOT_IP))
        elif is_loopback(data) and not (keep_loopback and data[0] >> 4 == 4):
            skipped.append(Skipped(number, LOOPBACK))
        else:
            chosen.append(Datagram(number, data))
    return chosen, skipped


def read_capture(path: str | os.PathLike[str], limit: int | None = None,
                 keep_loopback: bool = False) -> tuple[list[Datagram], list[Skipped]]:
    """The IP datagrams of a capture (as the decoder cut them out of their frames)."""
    def frames() -> Iterable[tuple[int, int, bytes]]:
        with open_capture(path) as reader:
            for frame in reader:
                if limit is not None and frame.index >= limit:
                    return
                pkt = decode_frame(frame.index, frame.ts, frame.data, frame.linktype)
                yield frame.index + 1, pkt.family, pkt.data

    return select(frames(), keep_loopback)


# --- the rules, for statewall ---------------------------------------------------------


def load_rule_engine(v4_text: str | None, v6_text: str | None, *,
                     v4_source: str = "<rules>", v6_source: str = "<rules6>",
                     topology: Topology | None = None,
                     sets: Mapping[str, IpSet] | None = None,
                     nft_text: str | None = None,
                     nft_source: str = "<nft>") -> IptablesEngine | None:
    """Parse and compile iptables-save / ip6tables-save text and an nftables
    ruleset (text or JSON); None without any ruleset.

    Raises the rules package's RulesetError naming the source and line.
    """
    if v4_text is None and v6_text is None and nft_text is None:
        return None
    v4 = None if v4_text is None else compile_text(v4_text, v4_source, 4, topology, sets=sets)
    v6 = None if v6_text is None else compile_text(v6_text, v6_source, 6, topology, sets=sets)
    engine = IptablesEngine(v4, v6)
    if nft_text is not None:
        from statewall.nft.load import objects_from_text
        from statewall.nft.lower import lower_objects

        engine.nft = lower_objects(objects_from_text(nft_text, nft_source), nft_source)
        engine.nft_state = rule_state_for(topology or Topology(), 0, sets)
    return engine


# --- comparing ------------------------------------------------------------------------


def _state_text(ctstate: str | None, ctdir: str | None) -> str:
    text = ctstate or "-"
    return f"{text}/{ctdir}" if ctdir else text


def _leaving_addresses(verdict: PacketVerdict) -> bytes | None:
    """The address bytes statewall says the packet leaves with (None: its own)."""
    if verdict.leaves is None or verdict.leaves.src is None or verdict.leaves.dst is None:
        return None
    return (ipaddress.ip_address(verdict.leaves.src).packed
            + ipaddress.ip_address(verdict.leaves.dst).packed)


def addressing(datagram: bytes) -> Addressing:
    """A datagram's addresses and ports as the jsonl gives them (ports only for the
    protocols that have them)."""
    pkt = decode_datagram(datagram, index=0, ts=0.0)
    if pkt.family not in (4, 6):
        return None, None, None, None
    make = ipaddress.IPv4Address if pkt.family == 4 else ipaddress.IPv6Address
    ported = pkt.proto in _PORT_PROTOS and not pkt.fragment
    return (str(make(pkt.src)), str(make(pkt.dst)), pkt.sport if ported else None,
            pkt.dport if ported else None)


def _same_addressing(kernel: Addressing, ours: Addressing) -> bool:
    """Addresses equal, and ports wherever both sides read them (a fragment has none)."""
    return kernel[:2] == ours[:2] and all(
        k is None or o is None or k == o for k, o in zip(kernel[2:], ours[2:], strict=True))


def device_checksum(datagram: bytes) -> bytes:
    """`datagram` with a TCP or UDP checksum left for the device to complete filled in.

    A NAT helper that rewrites a payload makes the kernel hand the segment on
    with only the pseudo-header's sum in the checksum field (CHECKSUM_PARTIAL),
    for the network card to finish; a veth pair delivers it unfinished. A real
    card sends the whole checksum, which is what statewall writes."""
    version = datagram[0] >> 4 if datagram else 0
    if version == 4 and len(datagram) >= 20:
        l4, proto = (datagram[0] & 0x0F) * 4, datagram[9]
        src, dst = datagram[12:16], datagram[16:20]
    elif version == 6 and len(datagram) >= 40:
        l4, proto, src, dst = 40, datagram[6], datagram[8:24], datagram[24:40]
    else:
        return datagram
    at = {6: 16, 17: 6}.get(proto)
    if at is None or len(datagram) < l4 + at + 2:
        return datagram
    length = len(datagram) - l4
    pseudo = pseudo_header_sum(version, int.from_bytes(src, "big"),
                               int.from_bytes(dst, "big"), proto, length)
    partial = (~internet_checksum(b"", pseudo)) & 0xFFFF
    if int.from_bytes(datagram[l4 + at:l4 + at + 2], "big") != partial:
        return datagram
    out = bytearray(datagram)
    out[l4 + at:l4 + at + 2] = b"\0\0"
    full = internet_checksum(bytes(out[l4:]), pseudo) or (0xFFFF if proto == 17 else 0)
    out[l4 + at:l4 + at + 2] = full.to_bytes(2, "big")
    return bytes(out)


def comparable(datagram: bytes, sent: bool = False) -> bytes:
    """A datagram with what forwarding changes zeroed: the TTL or hop limit and, with
    the TTL, the IPv4 header checksum; `sent` (by the firewall's raw socket, which
    fills in an IPv4 identification of 0): the identification too."""
    out = bytearray(datagram)
    if out and out[0] >> 4 == 4 and len(out) >= 20:
        out[8] = 0
        out[10:12] = b"\0\0"
        if sent:
            out[4:6] = b"\0\0"
    elif out and out[0] >> 4 == 6 and len(out) >= 40:
        out[7] = 0
    return bytes(out)


def compare_packet(number: int, kernel: KernelObservation, verdict: PacketVerdict,
                   leaving: bytes | None = None, sent: bool = False) -> PacketComparison:
    """Judge one packet: ctstate, ctdir and fate must all match, and a packet that
    left must leave with the addresses and ports statewall gives it (NAT); one NAT
    rewrote (`leaving`: its bytes) must leave with those bytes, checksums included,
    once what forwarding changes is set aside."""
    differences: list[str] = []
    if kernel.ctstate != verdict.ctstate:
        differences.append("ctstate")
    if kernel.ctdir != verdict.ctdir:
        differences.append("ctdir")
    fate = _STATEWALL_FATE.get(verdict.verdict, UNDECIDED)
    if _KERNEL_FATE[kernel.outcome] != fate:
        differences.append("fate")
    elif kernel.left_as is not None and not _same_addressing(addressing(kernel.left_as),
                                                             verdict.leaving()):
        differences.append("translation")
    elif kernel.left_as is not None and leaving is not None and \
            not is_fragment(kernel.left_as) and \
            comparable(device_checksum(kernel.left_as), sent) != comparable(leaving, sent):
        differences.append("bytes")
    return PacketComparison(number, kernel, verdict, tuple(differences), routing_note(kernel))


def routing_note(kernel: KernelObservation) -> str:
    """Say so when the kernel's routing, not the rules, decided where the packet went."""
    if kernel.ctstate is not None and kernel.routed_to is None and kernel.outcome == "dropped":
        return ("the kernel dropped it between conntrack and FORWARD/INPUT: routing (e.g. a "
                "multicast group the firewall has not joined) or a mangle/nat PREROUTING rule")
    if kernel.ctstate is None and kernel.outcome == "dropped":
        return "the kernel dropped it before conntrack (IP input checks or the raw table)"
    if kernel.routed_to == "INPUT":
        return "the kernel delivered it locally (broadcast or a joined multicast group)"
    return ""


def table_entry(line: str) -> tuple[str, int | None]:
    """A `conntrack -L` line without use/mark/zone, split into (key, timeout)."""
    words = [w for w in line.split() if not w.startswith(_IGNORED_COLUMNS)]
    if len(words) > 2 and words[2].isdigit():
        return " ".join(words[:2] + words[3:]), int(words[2])
    return " ".join(words), None


def _show(key: str, timeout: int | None) -> str:
    if timeout is None:
        return key
    head, _, rest = key.partition(" ")
    proto, _, rest = rest.partition(" ")
    return f"{head} {proto} {timeout} {rest}"


def compare_tables(kernel_lines: Sequence[str], statewall_lines: Sequence[str],
                   slack: int = 1) -> TableComparison:
    """Set comparison of two listings; timeouts may differ by `slack` seconds."""
    return _compare_listings(kernel_lines, statewall_lines, table_entry, _show, slack)


def expect_entry(line: str) -> tuple[str, int | None]:
    """An expectation line split into (everything after the timeout, timeout).

    Both listings start with the remaining seconds, which the live kernel
    can show negative for a moment after expiry (expectations.md §7). The
    rest is kept byte for byte, trailing newline aside.
    """
    text = line.rstrip("\n")
    head, _, rest = text.partition(" ")
    if head.lstrip("-").isdigit():
        return rest, int(head)
    return text, None


def _show_expect(key: str, timeout: int | None) -> str:
    return key if timeout is None else f"{timeout} {key}"


def compare_expectations(kernel_lines: Sequence[str], statewall_lines: Sequence[str],
                         slack: int = 1) -> TableComparison:
    """Set comparison of expectation listings; timeouts may differ by `slack` seconds."""
    return _compare_listings(kernel_lines, statewall_lines, expect_entry, _show_expect, slack)


def _compare_listings(kernel_lines: Sequence[str], statewall_lines: Sequence[str],
                      split: Callable[[str], tuple[str, int | None]],
                      show: Callable[[str, int | None], str], slack: int) -> TableComparison:
    def grouped(lines: Sequence[str]) -> dict[str, list[int | None]]:
        out: dict[str, list[int | None]] = {}
        for line in lines:
            if line.strip():
                key, timeout = split(line)
                out.setdefault(key, []).append(timeout)
        return out

    kernel, ours = grouped(kernel_lines), grouped(statewall_lines)
    only_kernel: list[str] = []
    only_ours: list[str] = []
    for key in sorted(set(kernel) | set(ours)):
        left, right = _pair_timeouts(kernel.get(key, []), ours.get(key, []), slack)
        only_kernel += [show(key, t) for t in left]
        only_ours += [show(key, t) for t in right]

    def shown(groups: dict[str, list[int | None]]) -> tuple[str, ...]:
        return tuple(sorted(show(k, t) for k, ts in groups.items() for t in ts))

    return TableComparison(shown(kernel), shown(ours), tuple(only_kernel), tuple(only_ours))


def expectation_lines(result: VerifyResult) -> list[str]:
    """What differs in the expectation tables, one line per entry, for reports."""
    lines: list[str] = []
    for snap in result.expectations:
        for name, table in (("conntrack -L expect", snap.listing),
                            ("/proc/net/nf_conntrack_expect", snap.proc)):
            lines += [f"expectations {snap.where()}: only in the kernel ({name}): {e}"
                      for e in table.only_kernel]
            lines += [f"expectations {snap.where()}: only in statewall ({name}): {e}"
                      for e in table.only_statewall]
    return lines


def _pair_timeouts(left: list[int | None], right: list[int | None],
                   slack: int) -> tuple[list[int | None], list[int | None]]:
    """The timeouts of each side that found no partner within `slack`."""
    unmatched = sorted(right, key=lambda t: -1 if t is None else t)
    alone: list[int | None] = []
    for timeout in sorted(left, key=lambda t: -1 if t is None else t):
        partner = next((i for i, other in enumerate(unmatched)
                        if _close(timeout, other, slack)), None)
        if partner is None:
            alone.append(timeout)
        else:
            del unmatched[partner]
    return alone, unmatched


def _close(a: int | None, b: int | None, slack: int) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= slack


# --- running both ---------------------------------------------------------------------


def verify_datagrams(
    datagrams: Sequence[Datagram],
    rules_v4: str | None,
    rules_v6: str | None = None,
    sysctls: Mapping[str, int] | None = None,
    *,
    skipped: Sequence[Skipped] = (),
    keep_namespaces: bool = False,
    clock: Callable[[], float] = time.time,
    rule_engine: IptablesEngine | None = None,
    waits: Mapping[int, float] | None = None,
    expect_after: Iterable[int] = (),
    auto_helpers: bool = False,
    routes: Sequence[str] = (),
    topology: Topology | None = None,
    local: Sequence[Network] = (),
    ifaces: Sequence[tuple[str, Sequence[Network]]] = (),
    addresses: Sequence[tuple[str, Interface]] = (),
    ipsets: str | None = None,
    nft: str | None = None,
) -> VerifyResult:
    """Inject `datagrams` into the kernel and statewall alike; compare every answer.

    `rule_engine` defaults to `load_rule_engine(rules_v4, rules_v6)`. `waits`
    maps a datagram's number to seconds to pause before injecting it (for
    behaviour that depends on elapsed time). `expect_after` names datagrams
    after which both expectation tables are compared (they always are at
    the end). `auto_helpers` gives statewall the legacy by-port helper
    assignment; the kernel has none, so its rules must attach the same
    helpers in raw. `routes` (`ip` command lines, see KernelFirewall) give
    the kernel's firewall routes of its own, which rpfilter looks up, and
    `topology` is statewall's view of them instead of the addresses seen on
    each side. `local` and `ifaces` (`--local`, `--iface`) make the firewall
    the host statewall models instead (oracle.host); they replace `routes`
    and `topology`. `ipsets` (`ipset save` text) are the sets `-m set` and SET
    use, restored in the kernel and loaded into statewall alike; `nft` (an
    nftables ruleset, text or `nft -j` JSON) is loaded with `nft -f` before the
    iptables rules. The kernel is only started when there is something to inject.
    """
    values = dict(sysctls or {})
    pauses = dict(waits or {})
    snapshots = set(expect_after)
    cfg = Sysctls().with_values(values)
    result = VerifyResult(skipped=list(skipped))
    if not datagrams:
        return result
    fixed = normalise([d.data for d in datagrams])
    wiring = wiring_for(fixed, local, ifaces, routes, topology, addresses)
    result.skipped += [Skipped(d.number, LOCAL_TO_LOCAL)
                       for d, place in zip(datagrams, wiring.places, strict=True)
                       if place == NOT_SENT]
    result.skipped.sort(key=lambda s: s.number)
    engine = rule_engine
    if engine is None:
        sets = None if ipsets is None else parse_ipset_save(ipsets)
        engine = load_rule_engine(rules_v4, rules_v6, topology=wiring.topology, sets=sets,
                                  nft_text=nft)
    firewall = Firewall(cfg=cfg, rules=engine, topology=wiring.topology,
                        auto_helpers=auto_helpers)
    names = wiring.firewall_ifs
    with KernelFirewall(rules_v4, rules_v6, values, keep_namespaces=keep_namespaces,
                        clock=clock, firewall_ifs=names, routes=wiring.routes,
                        host=bool(local), ipsets=ipsets, nft=nft) as kernel, \
            EgressWatch(_topology(kernel)) as egress:
        for item, data, place in zip(datagrams, fixed, wiring.places, strict=True):
            if place == NOT_SENT:
                continue
            if item.number in pauses:
                time.sleep(pauses[item.number])
            egress.forget()
            observed = kernel.send_local(data) if place == SENT else kernel.send(data, place)
            pkt = decode_datagram(data, index=item.number - 1, ts=observed.sent_at)
            if place != SENT:
                pkt.iface_in = names[place]
            verdict = firewall.process(pkt)
            # Routed by destination (--iface), it may leave by either interface.
            observed = egress.confirm(observed, data,
                                      None if place == SENT or ifaces else place,
                                      _leaving_addresses(verdict))
            result.packets.append(compare_packet(item.number, observed, verdict,
                                                 firewall.leaving(data), place == SENT))
            if item.number in snapshots:
                result.expectations.append(
                    _snapshot_expectations(kernel, firewall, clock, item.number))
        result.table = _snapshot_tables(kernel, firewall, clock)
        result.expectations.append(_snapshot_expectations(kernel, firewall, clock, None))
        if keep_namespaces and kernel.topology is not None:
            result.kept_namespaces = kernel.topology.namespaces
    return result


def wiring_for(fixed: Sequence[bytes], local: Sequence[Network],
               ifaces: Sequence[tuple[str, Sequence[Network]]], routes: Sequence[str],
               topology: Topology | None,
               addresses: Sequence[tuple[str, Interface]] = ()) -> Wiring:
    """The host's wiring (`local`, `ifaces`, the interfaces' `addresses`), or the
    router's with the given extras."""
    if local or ifaces:
        if routes or topology is not None:
            raise ValueError("give local/ifaces or routes/topology, not both")
        return wire(fixed, local, ifaces, addresses)
    return Wiring(FIREWALL_IFS, topology or side_topology(fixed), tuple(routes),
                  tuple(assign_sides(fixed)))


def _snapshot_tables(kernel: KernelFirewall, firewall: Firewall,
                     clock: Callable[[], float]) -> TableComparison:
    before = clock()
    kernel_lines = kernel.conntrack_list()
    at = (before + clock()) / 2
    ours = [line.rstrip("\n") for line in
            firewall.table_lines(at, "conntrack", live_at=max(at, firewall.now))]
    return compare_tables(kernel_lines, ours)


def _snapshot_expectations(kernel: KernelFirewall, firewall: Firewall,
                           clock: Callable[[], float], after: int | None) -> ExpectComparison:
    """Both listings of both sides, each pair read at the same instant."""
    before = clock()
    listed = kernel.expect_list()
    at = (before + clock()) / 2
    listing = compare_expectations(listed, _expectation_lines(firewall, at, "conntrack"))
    before = clock()
    proc = netns.read_netns_file(_topology(kernel).firewall, PROC_EXPECT).splitlines()
    at = (before + clock()) / 2
    in_proc = compare_expectations(proc, _expectation_lines(firewall, at, "proc"))
    return ExpectComparison(after, listing, in_proc)


def _topology(kernel: KernelFirewall) -> netns.Topology:
    if kernel.topology is None:
        raise OracleError("the kernel's namespaces exist only inside its `with` block")
    return kernel.topology


def _expectation_lines(firewall: Firewall, at: float, fmt: str) -> list[str]:
    """Our expectation listing at `at`, of what is live at that time or later."""
    lines = firewall.expectation_lines(at, fmt, live_at=max(at, firewall.now))
    return [line.rstrip("\n") for line in lines]


def verify_capture(
    path: str | os.PathLike[str],
    rules_v4: str | None,
    rules_v6: str | None = None,
    sysctls: Mapping[str, int] | None = None,
    *,
    limit: int | None = None,
    keep_namespaces: bool = False,
    keep_loopback: bool = False,
    local: Sequence[Network] = (),
    ifaces: Sequence[tuple[str, Sequence[Network]]] = (),
    nft: str | None = None,
) -> VerifyResult:
    """`statewall verify` as a function: read, select, run both, compare."""
    datagrams, skipped = read_capture(path, limit, keep_loopback)
    return verify_datagrams(datagrams, rules_v4, rules_v6, sysctls, skipped=skipped,
                            keep_namespaces=keep_namespaces, local=local, ifaces=ifaces,
                            nft=nft)
