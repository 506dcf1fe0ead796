"""The match extensions statewall knows, by the name `-m` loads them with."""

from __future__ import annotations

from statewall.rules.ext import MatchExt
from statewall.rules.matches import (
    icmp,
    xt_addrtype,
    xt_comment,
    xt_connbytes,
    xt_connlimit,
    xt_connmark,
    xt_conntrack,
    xt_dscp,
    xt_ecn,
    xt_hashlimit,
    xt_helper,
    xt_hl,
    xt_iprange,
    xt_length,
    xt_limit,
    xt_mac,
    xt_mark,
    xt_multiport,
    xt_nfacct,
    xt_owner,
    xt_physdev,
    xt_pkttype,
    xt_policy,
    xt_recent,
    xt_rpfilter,
    xt_rt,
    xt_sctp,
    xt_set,
    xt_state,
    xt_statistic,
    xt_string,
    xt_tcpmss,
    xt_tcpudp,
)

MATCHES: dict[str, MatchExt] = {ext.name: ext for ext in (
    xt_tcpudp.TCP, xt_tcpudp.UDP, icmp.ICMP, icmp.ICMP6, xt_state.STATE,
    xt_conntrack.CONNTRACK, xt_multiport.MULTIPORT, xt_comment.COMMENT, xt_mark.MARK,
    xt_connmark.CONNMARK, xt_iprange.IPRANGE, xt_length.LENGTH, xt_hl.TTL, xt_hl.HL,
    xt_pkttype.PKTTYPE, xt_addrtype.ADDRTYPE, xt_limit.LIMIT, xt_recent.RECENT,
    xt_mac.MAC, xt_dscp.DSCP, xt_dscp.TOS, xt_ecn.ECN, xt_tcpmss.TCPMSS, xt_helper.HELPER,
    xt_statistic.STATISTIC, xt_string.STRING, xt_policy.POLICY, xt_nfacct.NFACCT,
    xt_connbytes.CONNBYTES, xt_sctp.SCTP, xt_hashlimit.HASHLIMIT, xt_connlimit.CONNLIMIT,
    xt_owner.OWNER, xt_set.SET, xt_rpfilter.RPFILTER, xt_physdev.PHYSDEV, xt_rt.RT,
)}
