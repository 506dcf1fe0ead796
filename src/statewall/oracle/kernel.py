"""The live Linux kernel as an oracle: run datagrams through a real firewall.

`KernelFirewall` builds the namespaces of `netns.py`, loads a ruleset into the
firewall namespace and adds observation rules that never change a verdict:

* mangle PREROUTING, inserted first: one NFLOG rule per ctstate/ctdir pair.
  Conntrack (priority -200) has classified the packet by then, and nothing
  later in the pipeline changes the classification.
* mangle FORWARD and mangle INPUT, inserted first: where routing sent the
  packet. A packet that reaches neither was dropped by routing (a multicast
  group the firewall has not joined, a martian address), not by the rules.
* security FORWARD and security INPUT, appended last: "forwarded" / "local".
  The security table runs at priority 50, after the filter table's decision.
* raw PREROUTING, inserted first: a marker datagram (IPv4 protocol 253 between
  two TEST-NET addresses) is logged and dropped before conntrack sees it.

Pacing: each datagram is written to an AF_PACKET socket in its side's
namespace, immediately followed by a marker on the same socket. The sending
thread is pinned to one CPU, so both frames land in that CPU's backlog in
order and the marker's log proves the kernel finished with the datagram
(including any forwarding). Everything logged before the marker describes the
datagram. No sleeps, no timeouts on the normal path.

A firewall with addresses of its own (`host=True`, see host.py) also sends
datagrams itself, from a raw socket with the header included
(`send_local`), so they take the path of what a host sends: OUTPUT, then
POSTROUTING. For those, mangle OUTPUT logs the ctstate and security OUTPUT
(appended last) logs "sent". The kernel's own answers to what it receives
(a TCP reset for a closed port, an ICMP port unreachable) would change the
table behind statewall's back: raw OUTPUT drops every packet not sent by
this process's user (the kernel's own sockets have none) before conntrack
sees it. The marker still follows on side 0:
everything the raw send logs is logged before send_local's call returns.

The observation rules use `-m conntrack`, so tracking is always on in the
firewall even when the loaded ruleset would not need it (see conntrack-core.md
1.2); that is the premise statewall models anyway.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import IO

from statewall.checksum import internet_checksum
from statewall.config import Sysctls
from statewall.oracle import cleanup, netns
from statewall.oracle.netns import OracleError, Topology
from statewall.oracle.nflog import NflogListener
from statewall.oracle.normalise import is_fragment

NFLOG_GROUP = 47011
MARKER_SRC, MARKER_DST, MARKER_PROTO = "192.0.2.254", "192.0.2.253", 253
REQUIRED_TOOLS = ("ip", "iptables-restore", "ip6tables-restore", "conntrack", "tcpdump")
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD
MARKER_TIMEOUT = 2.0

_STATE_PREFIX = "sw:s:"
_EXIT_PREFIX = "sw:x:"
_ROUTE_PREFIX = "sw:r:"
_MARK = "sw:mark"
_STATES = (("INVALID", None), ("UNTRACKED", None), ("NEW", "ORIGINAL"), ("NEW", "REPLY"),
           ("ESTABLISHED", "ORIGINAL"), ("ESTABLISHED", "REPLY"),
           ("RELATED", "ORIGINAL"), ("RELATED", "REPLY"))


@dataclass(frozen=True)
class KernelObservation:
    """What the kernel did with one injected datagram."""

    sent_at: float  # clock reading when the datagram was injected
    ctstate: str | None  # NEW/ESTABLISHED/RELATED/INVALID/UNTRACKED; None: never reached conntrack
    ctdir: str | None  # ORIGINAL/REPLY; None for INVALID/UNTRACKED or no conntrack
    outcome: str  # "forwarded", "local", "sent" (by the firewall itself), "dropped" or "held"
    # (a fragment kept for reassembly)
    routed_to: str | None = None  # "FORWARD"/"INPUT": the hook routing chose; None: not routed
    left_as: bytes | None = None  # the datagram as it reached the far side (forwarded, sent)


def check_prerequisites() -> None:
    """Raise OracleError saying what is missing to run the kernel oracle."""
    if os.geteuid() != 0:
        raise OracleError("the kernel oracle needs root (network namespaces, iptables)")
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise OracleError(f"missing {', '.join(missing)}: "
                          "apt-get install iptables conntrack tcpdump iproute2")


def observation_rules(family: int, host: bool = False, exits: bool = True) -> str:
    """iptables-restore --noflush input adding the observation rules for one family
    (`host`: also for what the firewall sends itself; `exits`: the security
    table's exit rules, left to `nft_exit_rules` when an nft ruleset is loaded)."""
    log = f"-j NFLOG --nflog-group {NFLOG_GROUP} --nflog-threshold 1 --nflog-prefix"
    raw: list[str] = []
    if family == 4:
        marker = f"-s {MARKER_SRC}/32 -d {MARKER_DST}/32 -p {MARKER_PROTO}"
        raw += [f"-I PREROUTING 1 {marker} {log} {_MARK}", f"-I PREROUTING 2 {marker} -j DROP"]
    if host:
        # The kernel answers from sockets without a file (or none): no uid matches.
        raw.append(f"-I OUTPUT 1 -m owner ! --uid-owner {os.geteuid()} -j DROP")
    lines = ["*raw", *raw, "COMMIT"] if raw else []
    lines.append("*mangle")
    for hook in ("PREROUTING", "OUTPUT") if host else ("PREROUTING",):
        for position, (state, direction) in enumerate(_STATES, 1):
            match = (f"-m conntrack --ctstate {state}"
                     + (f" --ctdir {direction}" if direction else ""))
            label = f"{_STATE_PREFIX}{state}" + (f":{direction}" if direction else "")
            lines.append(f"-I {hook} {position} {match} {log} {label}")
    lines += [f"-I {hook} 1 {log} {_ROUTE_PREFIX}{hook}" for hook in ("FORWARD", "INPUT")]
    lines.append("COMMIT")
    if exits:
        lines += ["*security", f"-A FORWARD {log} {_EXIT_PREFIX}forwarded",
                  f"-A INPUT {log} {_EXIT_PREFIX}local"]
        if host:
            lines.append(f"-A OUTPUT {log} {_EXIT_PREFIX}sent")
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


# nft base chains may sit at any priority, also after the security table's:
# with an nft ruleset, a packet has passed every filter only at the last priority.
_NFT_EXIT_PRIORITY = 2**31 - 2


def nft_exit_rules(host: bool = False) -> str:
    """`nft -f` input logging what leaves the hooks, after any chain of the ruleset."""
    hooks = [("forward", "forwarded"), ("input", "local")] + ([("output", "sent")] if host else [])
    chains = "".join(
        f"  chain {hook} {{ type filter hook {hook} priority {_NFT_EXIT_PRIORITY}; "
        f'log prefix "{_EXIT_PREFIX}{exit_}" group {NFLOG_GROUP} queue-threshold 1; }}\n'
        for hook, exit_ in hooks)
    return f"table inet statewall_observe {{\n{chains}}}\n"


def sysctl_name(name: str) -> str:
    """Full dotted name: `net.` names as given, bare names under their usual prefix."""
    name = name.strip().replace("/", ".")
    return name if name.startswith("net.") else Sysctls.full_name(name)


def _marker_datagram() -> bytes:
    src = socket.inet_aton(MARKER_SRC)
    dst = socket.inet_aton(MARKER_DST)
    header = bytearray(b"\x45\x00\x00\x14\x00\x00\x40\x00\x40") + bytes([MARKER_PROTO])
    header += b"\x00\x00" + src + dst
    header[10:12] = internet_checksum(bytes(header)).to_bytes(2, "big")
    return bytes(header)


def classify(prefixes: list[str], datagram: bytes, sent_at: float) -> KernelObservation:
    """Turn the log prefixes of one datagram into an observation."""
    state = direction = exit_ = routed = None
    for prefix in prefixes:
        if prefix.startswith(_STATE_PREFIX) and state is None:
            state, _, rest = prefix[len(_STATE_PREFIX):].partition(":")
            direction = rest or None
        elif prefix.startswith(_ROUTE_PREFIX):
            routed = prefix[len(_ROUTE_PREFIX):]
        elif prefix.startswith(_EXIT_PREFIX):
            exit_ = prefix[len(_EXIT_PREFIX):]
    if exit_ is not None:
        outcome = exit_
    elif state is None and is_fragment(datagram):
        outcome = "held"
    else:
        outcome = "dropped"
    return KernelObservation(sent_at, state, direction, outcome, routed)


class KernelFirewall:
    """A forwarding firewall in network namespaces, fed one datagram at a time.

    Use as a context manager; `send` must be called from the thread that
    entered it (that thread is pinned to one CPU while inside, see the module
    docstring). Namespaces and background processes are removed on exit,
    also on exceptions and KeyboardInterrupt, unless `keep_namespaces`.

    `routes` are `ip` command lines (`route add 10.1.0.0/16 dev swl`, `addr
    add ...`; `-6 rule ...` for an IPv6 rule) run in the firewall once it is built: what a route lookup made
    by the firewall itself finds, as rpfilter's is. Forwarding goes by input
    interface (netns.py) and never consults them; without any, such a lookup
    finds no route at all. `ipsets` (`ipset save` text) are restored in the
    firewall before the rules, which refer to them by name. `nft` (nftables
    text or `nft -j` JSON) is loaded with `nft -f` before the iptables rules.
    """

    def __init__(self, rules_v4: str | None, rules_v6: str | None = None,
                 sysctls: Mapping[str, int] | None = None, *, keep_namespaces: bool = False,
                 watch_events: bool = False, watch_expect_events: bool = False,
                 clock: Callable[[], float] = time.time,
                 firewall_ifs: tuple[str, str] = ("swl", "swr"),
                 routes: Sequence[str] = (), host: bool = False,
                 ipsets: str | None = None, nft: str | None = None) -> None:
        self.rules_v4 = rules_v4
        self.nft = nft
        self.rules_v6 = rules_v6
        self.sysctls = dict(sysctls or {})
        self.keep_namespaces = keep_namespaces
        self.watch_events = watch_events
        self.watch_expect_events = watch_expect_events
        self.clock = clock
        self.firewall_ifs = firewall_ifs
        self.routes = tuple(routes)
        self.host = host
        self.ipsets = ipsets
        self.topology: Topology | None = None
        self._log: NflogListener | None = None
        self._sockets: list[socket.socket] = []
        self._raw: dict[int, socket.socket] = {}  # by IP version: the firewall's own senders
        self._headers: list[tuple[bytes, bytes]] = []
        self._markers: list[bytes] = []
        self._events: EventListener | None = None
        self._expect_events: EventListener | None = None
        self._affinity: set[int] | None = None
        self._owner = 0

    def __enter__(self) -> KernelFirewall:
        check_prerequisites()
        try:
            self.topology = netns.create_topology(self.firewall_ifs)
            # `ip rule` does not infer IPv6 from an address: such lines say `-6 `.
            v6 = [line.removeprefix("-6 ") for line in self.routes if line.startswith("-6 ")]
            for family, lines in ((None, [r for r in self.routes if not r.startswith("-6 ")]),
                                  (6, v6)):
                if lines:
                    netns.ip_batch(self.topology.firewall, lines, family)
            self._load_rules(self.topology.firewall)
            for name, value in self.sysctls.items():
                netns.write_sysctl(self.topology.firewall, sysctl_name(name), value)
            if self.host:
                netns.write_sysctl(self.topology.firewall, "net.ipv6.ip_nonlocal_bind", 1)
            self._open_sockets(self.topology)
            firewall = self.topology.firewall
            if self.watch_events:
                self._events = EventListener(firewall, ("-b", str(1 << 24)))
            if self.watch_expect_events:
                # conntrack-tools refuses --buffer-size for the expectation table.
                self._expect_events = EventListener(firewall, ("expect",))
            self._pin()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _load_rules(self, firewall: str) -> None:
        if self.ipsets:
            netns.run(["ipset", "restore"], firewall, self.ipsets)
        if self.nft is not None:
            json_input = self.nft.lstrip().startswith("{")
            netns.run(["nft", *(["-j"] if json_input else []), "-f", "-"], firewall, self.nft)
        for tool, rules, family in (("iptables-restore", self.rules_v4, 4),
                                    ("ip6tables-restore", self.rules_v6, 6)):
            if rules is not None:
                netns.run([tool], firewall, rules)
            netns.run([tool, "--noflush"], firewall,
                      observation_rules(family, self.host, exits=self.nft is None))
        if self.nft is not None:
            netns.run(["nft", "-f", "-"], firewall, nft_exit_rules(self.host))

    def _open_sockets(self, topo: Topology) -> None:
        with netns.entered(topo.firewall):
            self._log = NflogListener(NFLOG_GROUP)
            if self.host:
                # IPPROTO_RAW: the datagram carries its own header (IP_HDRINCL).
                for version, family in ((4, socket.AF_INET), (6, socket.AF_INET6)):
                    self._raw[version] = socket.socket(family, socket.SOCK_RAW,
                                                       socket.IPPROTO_RAW)
        marker = _marker_datagram()
        for side in (0, 1):
            with netns.entered(topo.endpoint(side)):
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            self._sockets.append(sock)
            sock.bind((netns.ENDPOINT_IF, 0))
            base = netns.FIREWALL_MACS[side] + netns.ENDPOINT_MACS[side]
            self._headers.append((base + ETH_P_IP.to_bytes(2, "big"),
                                  base + ETH_P_IPV6.to_bytes(2, "big")))
            self._markers.append(self._headers[side][0] + marker)

    def _pin(self) -> None:
        """Keep the sending thread on one CPU so datagram and marker stay in order."""
        self._affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(self._affinity)})
        self._owner = threading.get_ident()

    def send(self, datagram: bytes, side: int) -> KernelObservation:
        """Inject one IP datagram on `side` (0 left, 1 right); return once the kernel is done."""
        if threading.get_ident() != self._owner or self._log is None:
            raise OracleError("send() must be called inside the context, from its thread")
        if side not in (0, 1):
            raise ValueError(f"side must be 0 (left) or 1 (right), not {side!r}")
        headers = self._headers[side]
        frame = headers[1 if datagram[:1] >= b"\x60" else 0] + datagram
        sock = self._sockets[side]
        sent_at = self.clock()
        sock.send(frame)
        sock.send(self._markers[side])
        return classify(self._collect(), datagram, sent_at)

    def send_local(self, datagram: bytes) -> KernelObservation:
        """Send one IP datagram from the firewall itself (OUTPUT, then POSTROUTING);
        return once the kernel is done. Needs `host=True`."""
        if threading.get_ident() != self._owner or self._log is None or not self._raw:
            raise OracleError("send_local() needs host=True, inside the context, "
                              "from its thread")
        version = datagram[0] >> 4
        sent_at = self.clock()
        # EPERM when a rule drops it, ENETUNREACH without a route: the log tells.
        with contextlib.suppress(OSError):
            _send_raw(self._raw[version], version, datagram)
        self._sockets[0].send(self._markers[0])
        return classify(self._collect(), datagram, sent_at)

    def _collect(self) -> list[str]:
        assert self._log is not None
        prefixes: list[str] = []
        deadline = time.monotonic() + MARKER_TIMEOUT
        while True:
            got = self._log.receive(max(deadline - time.monotonic(), 0.001))
            if not got and time.monotonic() >= deadline:
                raise OracleError("the kernel did not process the marker datagram in time")
            for prefix in got:
                if prefix == _MARK:
                    return prefixes
                prefixes.append(prefix)

    def _firewall(self) -> str:
        if self.topology is None:
            raise OracleError("the firewall exists only inside the `with` block")
        return self.topology.firewall

    def conntrack_list(self) -> list[str]:
        """`conntrack -L` lines of the firewall namespace (order is the kernel's hash order)."""
        return netns.run(["conntrack", "-L"], self._firewall()).splitlines()

    def expect_list(self) -> list[str]:
        """`conntrack -L expect` lines of the firewall namespace, IPv4 then IPv6.

        conntrack-tools lists one family per call (IPv4 unless told otherwise).
        """
        lines = []
        for family in ("ipv4", "ipv6"):
            lines += netns.run(["conntrack", "-L", "expect", "-f", family],
                               self._firewall()).splitlines()
        return lines

    def stats(self) -> list[str]:
        """`conntrack -S` lines of the firewall namespace (one per possible CPU)."""
        return netns.run(["conntrack", "-S"], self._firewall()).splitlines()

    def proc_conntrack(self) -> list[str]:
        """/proc/net/nf_conntrack lines of the firewall namespace."""
        text = netns.read_netns_file(self._firewall(), "/proc/thread-self/net/nf_conntrack")
        return text.splitlines()

    def events(self, settle: float = 0.05) -> list[str]:
        """`conntrack -E -o timestamp` lines so far (waits until output is quiet for `settle` s)."""
        if self._events is None:
            raise OracleError("events() needs KernelFirewall(..., watch_events=True)")
        return self._events.lines(settle)

    def expect_events(self, settle: float = 0.05) -> list[str]:
        """`conntrack -E expect -o timestamp` lines so far, IPv4 and IPv6 alike."""
        if self._expect_events is None:
            raise OracleError("expect_events() needs KernelFirewall(..., "
                              "watch_expect_events=True)")
        return self._expect_events.lines(settle)

    def close(self) -> None:
        """Stop everything started and remove the namespaces (unless kept).

        SIGINT and SIGTERM arriving meanwhile are delivered once it is done:
        an interrupted run still leaves nothing behind. Kept namespaces lose
        their claim, so no later cleanup takes them from whoever inspects them.
        """
        with cleanup.signals_deferred():
            if self._affinity is not None:
                os.sched_setaffinity(0, self._affinity)
                self._affinity = None
            for listener in (self._events, self._expect_events):
                if listener is not None:
                    listener.close()
            self._events = self._expect_events = None
            for sock in (*self._sockets, *self._raw.values()):
                sock.close()
            self._sockets.clear()
            self._raw.clear()
            if self._log is not None:
                self._log.close()
                self._log = None
            if self.topology is None:
                return
            if not self.keep_namespaces:
                netns.destroy_topology(self.topology)
            elif self.topology.claim is not None:
                cleanup.release(self.topology.claim)


def _send_raw(sock: socket.socket, version: int, datagram: bytes) -> None:
    """Send a whole datagram on a raw IPPROTO_RAW socket of its family.

    IPv6 picks a source address for the route lookup unless told one; the
    firewall's own address may be only a local route, so the datagram's own
    source goes along as IPV6_PKTINFO (ip_nonlocal_bind allows any).
    """
    if version == 4:
        sock.sendto(datagram, (socket.inet_ntop(socket.AF_INET, datagram[16:20]), 0))
        return
    info = datagram[8:24] + bytes(4)  # struct in6_pktinfo: the address, ifindex 0
    destination = socket.inet_ntop(socket.AF_INET6, datagram[24:40])
    sock.sendmsg([datagram], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, info)], 0,
                 (destination, 0, 0, 0))


class EventListener:
    """One `conntrack -E [OPTIONS] -o timestamp` in a namespace, writing to a temporary file.

    The constructor returns only once the process is subscribed, so nothing
    that happens afterwards can be missed (nf_conntrack_events=2 reports
    events only while someone listens).
    """

    def __init__(self, namespace: str, options: tuple[str, ...]) -> None:
        # Kept open for the life of the listener; close() releases it.
        self._file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            ["ip", "netns", "exec", namespace, "conntrack", "-E", *options, "-o", "timestamp"],
            stdout=self._file, stderr=subprocess.DEVNULL)
        try:
            _wait_for_listener(self._proc, namespace)
        except BaseException:
            self.close()
            raise

    def lines(self, settle: float) -> list[str]:
        """The lines so far, once the output has been quiet for `settle` s (2 s at most)."""
        fd = self._file.fileno()
        size, deadline = -1, time.monotonic() + 2.0
        while size != os.fstat(fd).st_size and time.monotonic() < deadline:
            size = os.fstat(fd).st_size
            time.sleep(settle)
        return os.pread(fd, size, 0).decode("utf-8", "replace").splitlines()

    def close(self) -> None:
        if self._proc is not None:
            _stop(self._proc)
            self._proc = None
        self._file.close()


def _wait_for_listener(proc: subprocess.Popen[bytes], namespace: str,
                       timeout: float = 5.0) -> None:
    """Return once `proc` holds a netfilter netlink socket subscribed to event groups.

    Entries created before that moment would never report events
    (nf_conntrack_events=2). `ip netns exec` execs conntrack in the same
    process, so once it runs in the namespace its /proc entry lists that
    namespace's netlink sockets; ours (NFLOG) joins no groups.
    """
    deadline = time.monotonic() + timeout
    target = os.stat(f"{netns.NETNS_RUN_DIR}/{namespace}").st_ino
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise OracleError(f"conntrack -E exited with status {proc.returncode}")
        if _listening(proc.pid, target):
            return
        time.sleep(0.005)
    raise OracleError("conntrack -E did not subscribe to events in time")


def _listening(pid: int, netns_inode: int) -> bool:
    try:
        if os.stat(f"/proc/{pid}/ns/net").st_ino != netns_inode:
            return False
        with open(f"/proc/{pid}/comm") as f:
            if f.read().strip() != "conntrack":
                return False
        with open(f"/proc/{pid}/net/netlink") as f:
            rows = [line.split() for line in f.readlines()[1:]]
    except OSError:
        return False
    return any(len(r) > 3 and r[1] == "12" and int(r[3], 16) != 0 for r in rows)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
