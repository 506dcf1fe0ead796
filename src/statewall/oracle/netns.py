"""Network-namespace plumbing for the kernel oracle.

Three namespaces, joined by two veth pairs, make a forwarding firewall that
any captured datagram can cross unchanged:

    left (ep) <-veth-> (left_if) firewall (right_if) <-veth-> (ep) right

The firewall routes by input interface only (`ip rule iif ... lookup TABLE`,
one default route per table), so capture addresses need no configuration.
The main `local` rule is moved behind those rules so even 127.0.0.0/8 or
addresses the firewall happens to own are forwarded; IPv6 multicast keeps
the local table (delivered locally when joined, as on a real router). Links
are NOARP: the kernel never resolves a neighbour and sends to the link's own
MAC, which the peer treats as PACKET_OTHERHOST and drops before IP.

The endpoints must stay silent: IPv6 is disabled there, they own no IPv4
address, and the raw tables drop every packet anyway.

Python 3.11 has no `os.setns`, so `entered` calls libc's setns(2) through
ctypes; it switches only the calling thread, which is all socket creation and
/proc/sys writes need.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from statewall.oracle.cleanup import Claim

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/run/netns"
MTU = 65535  # veth's maximum: every IPv4/IPv6 datagram fits in one frame

# Locally administered, fixed MACs: each topology lives in its own namespaces.
FIREWALL_MACS = (bytes.fromhex("025357000001"), bytes.fromhex("025357000002"))
ENDPOINT_MACS = (bytes.fromhex("025357000101"), bytes.fromhex("025357000102"))
ENDPOINT_IF = "ep"
ROUTE_TABLES = (101, 102)  # table used for packets arriving on the left, right


class OracleError(RuntimeError):
    """The kernel oracle could not be set up or did not answer."""


@dataclass(frozen=True)
class Topology:
    """Names of the three namespaces and of the firewall's two interfaces, and
    the claim (oracle.cleanup) naming the process that made them."""

    left: str
    firewall: str
    right: str
    firewall_ifs: tuple[str, str]
    claim: Claim | None = None

    @property
    def namespaces(self) -> tuple[str, str, str]:
        return (self.left, self.firewall, self.right)

    def endpoint(self, side: int) -> str:
        return self.left if side == 0 else self.right


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


_LIBC = _libc()


def _setns(fd: int) -> None:
    if _LIBC.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OracleError(f"setns failed: {os.strerror(err)}")


@contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the body with the calling thread inside network namespace `name`.

    Sockets created in the body stay bound to that namespace after it ends.
    """
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"{NETNS_RUN_DIR}/{name}", os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def run(argv: Sequence[str], netns: str | None = None, stdin: str | None = None) -> str:
    """Run a command (inside `netns` when given) and return its stdout; raise on failure."""
    full = ["ip", "netns", "exec", netns, *argv] if netns else list(argv)
    done = subprocess.run(full, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        where = f" in namespace {netns}" if netns else ""
        raise OracleError(
            f"`{' '.join(argv)}`{where} failed ({done.returncode}): {done.stderr.strip()}"
        )
    return done.stdout


def ip_batch(netns: str, commands: Sequence[str], family: int | None = None) -> None:
    """Run many `ip` commands in one process (each line is an `ip` command line)."""
    option = [f"-{family}"] if family else []
    argv = ["ip", *option, "-n", netns, "-batch", "-"]
    run(argv, stdin="".join(c + "\n" for c in commands))


def write_sysctl(netns: str, name: str, value: int | str) -> None:
    """Set one per-namespace sysctl, given by its dotted `sysctl` name."""
    path = "/proc/sys/" + name.replace(".", "/")
    with entered(netns):
        try:
            with open(path, "w") as f:
                f.write(f"{value}\n")
        except OSError as e:
            raise OracleError(f"sysctl {name}={value} in {netns}: {e.strerror}") from None


def read_netns_file(netns: str, path: str) -> str:
    """Read a per-namespace /proc file such as /proc/thread-self/net/nf_conntrack."""
    with entered(netns), open(path) as f:
        return f.read()


def new_names(prefix: str = "sw-") -> tuple[str, str, str]:
    """Unique namespace names, so parallel runs never collide."""
    tag = prefix + secrets.token_hex(4)
    return (f"{tag}-l", f"{tag}-fw", f"{tag}-r")


_FIREWALL_SYSCTLS = (
    ("net.ipv4.ip_forward", 1),
    ("net.ipv4.conf.all.rp_filter", 0),
    ("net.ipv4.conf.default.rp_filter", 0),
    ("net.ipv4.conf.all.accept_local", 1),
    ("net.ipv4.conf.all.route_localnet", 1),
    ("net.ipv4.conf.all.send_redirects", 0),
    ("net.ipv4.conf.default.send_redirects", 0),
    ("net.ipv6.conf.all.forwarding", 1),
    ("net.ipv6.conf.default.addr_gen_mode", 1),
    ("net.ipv6.conf.default.accept_dad", 0),
    ("net.ipv6.conf.default.accept_ra", 0),
    ("net.ipv6.conf.default.router_solicitations", 0),
)

_ENDPOINT_SYSCTLS = (
    ("net.ipv6.conf.all.disable_ipv6", 1),
    ("net.ipv6.conf.default.disable_ipv6", 1),
)

_ENDPOINT_DROP = "*raw\n-A PREROUTING -j DROP\nCOMMIT\n"


def _link_commands(topo: Topology) -> list[str]:
    peers = (topo.left, topo.right)
    cmds: list[str] = []
    for side, ifname in enumerate(topo.firewall_ifs):
        cmds.append(
            f"link add name {ifname} address {FIREWALL_MACS[side].hex(':')} mtu {MTU} type veth "
            f"peer name {ENDPOINT_IF} address {ENDPOINT_MACS[side].hex(':')} mtu {MTU} "
            f"netns {peers[side]}"
        )
        cmds.append(f"link set dev {ifname} arp off addrgenmode none up")
    cmds.append("link set lo up")
    return cmds


def _routing_commands(topo: Topology, family: int) -> list[str]:
    """Policy routing by input interface, for the family the batch runs under (-4/-6)."""
    cmds = ["rule add to ff00::/8 lookup local pref 50"] if family == 6 else []
    for side, ifname in enumerate(topo.firewall_ifs):
        other = topo.firewall_ifs[1 - side]
        table = ROUTE_TABLES[side]
        cmds.append(f"rule add iif {ifname} lookup {table} pref {100 + side}")
        cmds.append(f"route add default dev {other} table {table}")
    cmds.append("rule add lookup local pref 1000")
    cmds.append("rule del pref 0")
    return cmds


def create_topology(firewall_ifs: tuple[str, str] = ("swl", "swr"),
                    prefix: str = "sw-") -> Topology:
    """Build the three namespaces; on any failure remove what was built and raise.

    They are claimed first, so a run killed at any point leaves namespaces
    that `cleanup.remove_leftovers` can tell are its own.
    """
    from statewall.oracle import cleanup  # it builds on this module

    left, firewall, right = new_names(prefix)
    topo = Topology(left, firewall, right, firewall_ifs, cleanup.claim((left, firewall, right)))
    try:
        for name in topo.namespaces:
            run(["ip", "netns", "add", name])
        for name in (left, right):
            for key, value in _ENDPOINT_SYSCTLS:
                write_sysctl(name, key, value)
        for key, value in _FIREWALL_SYSCTLS:
            write_sysctl(firewall, key, value)
        ip_batch(firewall, _link_commands(topo))
        ip_batch(firewall, _routing_commands(topo, 4), 4)
        ip_batch(firewall, _routing_commands(topo, 6), 6)
        for name in (left, right):
            ip_batch(name, [f"link set {ENDPOINT_IF} arp off up", "link set lo up"])
            run(["iptables-restore"], name, _ENDPOINT_DROP)
            run(["ip6tables-restore"], name, _ENDPOINT_DROP)
    except BaseException:
        destroy_topology(topo)
        raise
    return topo


def destroy_topology(topo: Topology) -> None:
    """Delete the namespaces (their veths go with them), then their claim; missing
    ones are ignored. SIGINT and SIGTERM wait until it is done."""
    from statewall.oracle import cleanup  # it builds on this module

    with cleanup.signals_deferred():
        for name in topo.namespaces:
            if os.path.exists(f"{NETNS_RUN_DIR}/{name}"):
                subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        if topo.claim is not None:
            cleanup.release(topo.claim)


def list_namespaces() -> list[str]:
    """Names `ip netns list` shows (first word of each line)."""
    return [line.split()[0] for line in run(["ip", "netns", "list"]).splitlines() if line.strip()]
