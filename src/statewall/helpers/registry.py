"""Which helpers exist, how one gets attached, and running it (nf_conntrack_helper.c,
nf_confirm in nf_conntrack_proto.c, xt_helper.c).

Helpers are looked up by (name, family, L4 protocol); the port a helper
registered with only matters to the legacy automatic assignment that kernels
before 4.7 did by default (`helper_for_port`, statewall's `--auto-helpers`).
Linux 6.x attaches a helper only through the raw table's `CT --helper` (or an
nft `ct helper` object), and only to an entry that the packet creates and
that no expectation claimed.
"""

from __future__ import annotations

from dataclasses import dataclass

from statewall.config import Sysctls
from statewall.conntrack.conn import CT_RELATED_REPLY, IPS_HELPER, Conn
from statewall.conntrack.expect import ExpectationTable
from statewall.helpers.amanda import amanda_help
from statewall.helpers.common import NOTHING, HelperFn, HelperVerdict
from statewall.helpers.ftp import ftp_help
from statewall.helpers.irc import irc_help
from statewall.helpers.tftp import tftp_help
from statewall.packet import PROTO_TCP, PROTO_UDP, Packet


@dataclass(frozen=True, slots=True)
class HelperSpec:
    """One registered helper (struct nf_conntrack_helper)."""

    name: str
    proto: int
    families: tuple[int, ...]
    port: int  # the registration port: only used by legacy automatic assignment
    help: HelperFn


HELPERS: dict[str, HelperSpec] = {
    spec.name: spec
    for spec in (
        HelperSpec("ftp", PROTO_TCP, (4, 6), 21, ftp_help),
        HelperSpec("irc", PROTO_TCP, (4,), 6667, irc_help),
        HelperSpec("tftp", PROTO_UDP, (4, 6), 69, tftp_help),
        HelperSpec("amanda", PROTO_UDP, (4, 6), 10080, amanda_help),
    )
}


def find_helper(name: str, family: int, proto: int) -> HelperSpec | None:
    """nf_conntrack_helper_try_module_get: the helper `CT --helper NAME` would attach."""
    spec = HELPERS.get(name)
    if spec is None or spec.proto != proto or family not in spec.families:
        return None
    return spec


def helper_for_port(proto: int, port: int, family: int) -> str | None:
    """Legacy automatic assignment (kernels before 4.7): by the server's port."""
    for spec in HELPERS.values():
        if spec.proto == proto and spec.port == port and family in spec.families:
            return spec.name
    return None


def assign_helper(conn: Conn, template_helper: str | None,
                  auto_helpers: bool = False) -> str | None:
    """__nf_ct_try_assign_helper, for an entry the packet has just created.

    An expected connection gets no helper from a template (and FTP, IRC, TFTP
    and Amanda expectations assign none). Returns the helper attached.
    """
    if conn.master is not None or conn.helper is not None:
        return conn.helper
    if template_helper is not None:
        if find_helper(template_helper, conn.family, conn.proto) is None:
            return None
        conn.helper = template_helper
        conn.status |= IPS_HELPER
    elif auto_helpers:
        conn.helper = helper_for_port(conn.proto, conn.reply_sport, conn.family)
    return conn.helper


def run_helper(conn: Conn, ctinfo: int, pkt: Packet, now: float,
               expectations: ExpectationTable, cfg: Sysctls) -> HelperVerdict:
    """nf_confirm's helper call: the entry's helper sees the packet after the filter rules.

    Not for ICMP errors in the reply direction (RELATED_REPLY). An ICMP error
    in the original direction reaches the helper in the kernel too, but none
    of these helpers can find an announcement in it (they read the quoted
    header where they expect their payload), so it is skipped here.
    """
    name = conn.helper
    if name is None or ctinfo == CT_RELATED_REPLY or pkt.proto != conn.proto:
        return NOTHING
    spec = HELPERS.get(name)
    if spec is None:
        return NOTHING
    return spec.help(conn, ctinfo, pkt, now, expectations, cfg.nf_conntrack_expect_max)


def helper_name_of(conn: Conn | None) -> str | None:
    """What `-m helper` compares: the helper of the entry's MASTER (xt_helper.c).

    The control connection itself has no master, so it never matches.
    """
    if conn is None or conn.master is None:
        return None
    return conn.master.helper
