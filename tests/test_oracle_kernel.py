"""The kernel oracle: what the live kernel decides for hand-built datagrams.

Kernel tests build a forwarding firewall in namespaces and assert facts of
conntrack-core.md / udp-icmp-generic.md as the kernel shows them. The
normalisation and NFLOG parsing tests need no kernel.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from pathlib import Path
from typing import Any

import pytest

from statewall.checksum import internet_checksum, l4_checksum_ok, pseudo_header_sum
from statewall.oracle import kernel as kernel_mod
from statewall.oracle import netns
from statewall.oracle.kernel import KernelFirewall, KernelObservation, OracleError
from statewall.oracle.nflog import NFULNL_MSG_PACKET, NflogListener
from statewall.oracle.normalise import assign_sides, is_fragment, normalise, parse

DROP_INVALID = (
    "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
    "-A FORWARD -m conntrack --ctstate INVALID -j DROP\n"
    "-A FORWARD -p tcp --dport 81 -j DROP\nCOMMIT\n"
)
DROP_INVALID_V6 = DROP_INVALID.replace("--dport 81", "--dport 82")
C4, S4 = "10.99.1.1", "10.99.2.1"
C6, S6 = "fd99:1::1", "fd99:2::1"
SYN, SYNACK, ACK = 0x02, 0x12, 0x10

# --- a tiny datagram builder with correct checksums --------------------------------


def _addr(text: str) -> tuple[int, bytes]:
    packed = ipaddress.ip_address(text).packed
    return (4 if len(packed) == 4 else 6), packed


def _with_l4_checksum(src: str, dst: str, proto: int, segment: bytes, at: int) -> bytes:
    family, s = _addr(src)
    _, d = _addr(dst)
    seed = 0 if proto == 1 else pseudo_header_sum(
        family, int.from_bytes(s, "big"), int.from_bytes(d, "big"), proto, len(segment))
    value = internet_checksum(segment, seed) or (0xFFFF if proto == 17 else 0)
    return segment[:at] + struct.pack("!H", value) + segment[at + 2 :]


def ip(src: str, dst: str, proto: int, payload: bytes, *, ttl: int = 64, ident: int = 7,
       frag: int = 0) -> bytes:
    family, s = _addr(src)
    _, d = _addr(dst)
    if family == 6:
        return struct.pack("!IHBB", 6 << 28, len(payload), proto, ttl) + s + d + payload
    header = bytearray(struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(payload), ident, frag, ttl,
                                   proto, 0) + s + d)
    header[10:12] = struct.pack("!H", internet_checksum(bytes(header)))
    return bytes(header) + payload


def tcp(src: str, dst: str, sport: int, dport: int, flags: int, seq: int, ack: int = 0,
        data: bytes = b"") -> bytes:
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0) + data
    return ip(src, dst, 6, _with_l4_checksum(src, dst, 6, seg, 16))


def udp(src: str, dst: str, sport: int, dport: int, data: bytes = b"q") -> bytes:
    seg = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    return ip(src, dst, 17, _with_l4_checksum(src, dst, 17, seg, 6))


def icmp_error(src: str, dst: str, quoted: bytes) -> bytes:
    """Destination unreachable / port unreachable (ICMP 3/3 or ICMPv6 1/4)."""
    family, _ = _addr(src)
    proto, kind, code = (1, 3, 3) if family == 4 else (58, 1, 4)
    msg = struct.pack("!BBHI", kind, code, 0, 0) + quoted
    return ip(src, dst, proto, _with_l4_checksum(src, dst, proto, msg, 2))


def fragments(datagram: bytes, size: int) -> list[bytes]:
    """IPv4 fragments of `size` payload bytes (a multiple of 8) each."""
    payload, proto = datagram[20:], datagram[9]
    src, dst = socket.inet_ntoa(datagram[12:16]), socket.inet_ntoa(datagram[16:20])
    pieces = []
    for offset in range(0, len(payload), size):
        more = offset + size < len(payload)
        frag = (0x2000 if more else 0) | offset // 8
        pieces.append(ip(src, dst, proto, payload[offset : offset + size], ident=99, frag=frag))
    return pieces


# --- fixtures -----------------------------------------------------------------------


def _fw(made: list[str], rules_v4: str | None = DROP_INVALID, rules_v6: str | None = None,
        **kwargs: Any) -> KernelFirewall:
    return KernelFirewall(rules_v4, rules_v6, **kwargs)


def state(obs: KernelObservation) -> tuple[str | None, str | None, str]:
    return (obs.ctstate, obs.ctdir, obs.outcome)


# --- kernel facts -------------------------------------------------------------------

@pytest.mark.kernel
def test_tcp_handshake_is_new_then_established_and_assured(kernel: None, made: list[str]) -> None:
    with _fw(made) as fw:
        got = [fw.send(tcp(C4, S4, 1000, 80, SYN, 100), 0),
               fw.send(tcp(S4, C4, 80, 1000, SYNACK, 500, 101), 1),
               fw.send(tcp(C4, S4, 1000, 80, ACK, 101, 501), 0)]
        entries = fw.conntrack_list()
        proc = fw.proc_conntrack()
    assert [state(o) for o in got] == [("NEW", "ORIGINAL", "forwarded"),
                                       ("ESTABLISHED", "REPLY", "forwarded"),
                                       ("ESTABLISHED", "ORIGINAL", "forwarded")]
    assert got[0].sent_at <= got[1].sent_at <= got[2].sent_at
    assert len(entries) == 1
    assert entries[0].startswith("tcp      6 ") and " ESTABLISHED src=10.99.1.1 " in entries[0]
    assert "[ASSURED]" in entries[0] and "[UNREPLIED]" not in entries[0]
    assert proc[0].startswith("ipv4     2 tcp      6 ") and proc[0].endswith("zone=0 use=2")


@pytest.mark.kernel
def test_stray_synack_is_invalid_and_dropped(kernel: None, made: list[str]) -> None:
    with _fw(made) as fw:
        obs = fw.send(tcp(S4, C4, 80, 2000, SYNACK, 500, 101), 1)
        assert fw.conntrack_list() == []
    assert state(obs) == ("INVALID", None, "dropped")


@pytest.mark.kernel
def test_rule_drop_leaves_no_entry_and_next_syn_is_new_again(kernel: None,
                                                             made: list[str]) -> None:
    with _fw(made) as fw:
        first = fw.send(tcp(C4, S4, 1001, 81, SYN, 1), 0)
        assert fw.conntrack_list() == []
        again = fw.send(tcp(C4, S4, 1001, 81, SYN, 1), 0)
    assert state(first) == state(again) == ("NEW", "ORIGINAL", "dropped")
    assert first.routed_to == "FORWARD"


@pytest.mark.kernel
def test_udp_query_answer_and_icmp_error_is_related(kernel: None, made: list[str]) -> None:
    query = udp(C4, S4, 5353, 53)
    with _fw(made) as fw:
        got = [fw.send(query, 0), fw.send(query, 0),
               fw.send(icmp_error(S4, C4, query[:28]), 1),
               fw.send(udp(S4, C4, 53, 5353, b"a"), 1),
               fw.send(query, 0)]
    assert [state(o) for o in got] == [("NEW", "ORIGINAL", "forwarded"),
                                       ("NEW", "ORIGINAL", "forwarded"),
                                       ("RELATED", "REPLY", "forwarded"),
                                       ("ESTABLISHED", "REPLY", "forwarded"),
                                       ("ESTABLISHED", "ORIGINAL", "forwarded")]


@pytest.mark.kernel
def test_icmp_error_for_unknown_flow_is_invalid(kernel: None, made: list[str]) -> None:
    with _fw(made) as fw:
        obs = fw.send(icmp_error(S4, C4, udp(C4, S4, 6000, 53)[:28]), 1)
    assert state(obs) == ("INVALID", None, "dropped")


@pytest.mark.kernel
def test_ipv6_tcp_udp_and_icmpv6_error(kernel: None, made: list[str]) -> None:
    query = udp(C6, S6, 5353, 53)
    with _fw(made, None, DROP_INVALID_V6) as fw:
        got = [fw.send(tcp(C6, S6, 1000, 80, SYN, 100), 0),
               fw.send(tcp(S6, C6, 80, 1000, SYNACK, 500, 101), 1),
               fw.send(tcp(C6, S6, 1000, 80, ACK, 101, 501), 0),
               fw.send(tcp(S6, C6, 80, 3000, SYNACK, 9, 9), 1),
               fw.send(tcp(C6, S6, 1002, 82, SYN, 1), 0),
               fw.send(query, 0),
               fw.send(icmp_error(S6, C6, query[:48]), 1),
               fw.send(udp(S6, C6, 53, 5353), 1)]
        entries = fw.conntrack_list()
    assert [state(o) for o in got] == [("NEW", "ORIGINAL", "forwarded"),
                                       ("ESTABLISHED", "REPLY", "forwarded"),
                                       ("ESTABLISHED", "ORIGINAL", "forwarded"),
                                       ("INVALID", None, "dropped"),
                                       ("NEW", "ORIGINAL", "dropped"),
                                       ("NEW", "ORIGINAL", "forwarded"),
                                       ("RELATED", "REPLY", "forwarded"),
                                       ("ESTABLISHED", "REPLY", "forwarded")]
    tcp_lines = [e for e in entries if e.startswith("tcp")]
    assert len(tcp_lines) == 1 and "src=fd99:1::1 dst=fd99:2::1" in tcp_lines[0]
    assert "[ASSURED]" in tcp_lines[0]


@pytest.mark.kernel
def test_ipv4_fragments_are_held_until_the_last(kernel: None, made: list[str]) -> None:
    whole = udp(C4, S4, 4000, 53, bytes(range(200)) * 2)
    pieces = fragments(whole, 136)
    assert len(pieces) == 3
    with _fw(made) as fw:
        got = [fw.send(p, 0) for p in pieces]
        entries = fw.conntrack_list()
    assert [state(o) for o in got] == [(None, None, "held"), (None, None, "held"),
                                       ("NEW", "ORIGINAL", "forwarded")]
    assert len(entries) == 1 and "sport=4000 dport=53" in entries[0]


@pytest.mark.kernel
def test_notrack_is_untracked_and_raw_drop_never_reaches_conntrack(kernel: None,
                                                                   made: list[str]) -> None:
    rules = ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
             "-A PREROUTING -p udp --dport 7 -j CT --notrack\n"
             "-A PREROUTING -p udp --dport 9 -j DROP\nCOMMIT\n" + DROP_INVALID)
    with _fw(made, rules) as fw:
        untracked = fw.send(udp(C4, S4, 1, 7), 0)
        dropped = fw.send(udp(C4, S4, 1, 9), 0)
        assert fw.conntrack_list() == []
    assert state(untracked) == ("UNTRACKED", None, "forwarded")
    assert state(dropped) == (None, None, "dropped")


@pytest.mark.kernel
def test_broadcast_is_local_and_unjoined_multicast_is_not_routed(kernel: None,
                                                                 made: list[str]) -> None:
    rules = DROP_INVALID.replace(":INPUT ACCEPT", ":INPUT DROP")
    with _fw(made, DROP_INVALID) as fw:
        broadcast = fw.send(udp(C4, "255.255.255.255", 68, 67), 0)
        all_hosts = fw.send(udp(C4, "224.0.0.1", 5, 6), 0)
        ssdp = fw.send(udp(C4, "239.255.255.250", 1900, 1900), 0)
        forwarded = fw.send(udp(C4, S4, 1, 2), 0)
        all_nodes6 = fw.send(udp(C6, "ff02::1", 5, 6), 0)
        ssdp6 = fw.send(udp("fe80::1", "ff02::c", 1900, 1900), 0)
    with _fw(made, rules) as fw:
        refused = fw.send(udp(C4, "255.255.255.255", 68, 67), 0)
    assert (state(broadcast), broadcast.routed_to) == (("NEW", "ORIGINAL", "local"), "INPUT")
    assert (state(all_hosts), all_hosts.routed_to) == (("NEW", "ORIGINAL", "local"), "INPUT")
    assert (state(ssdp), ssdp.routed_to) == (("NEW", "ORIGINAL", "dropped"), None)
    assert forwarded.routed_to == "FORWARD"
    assert (state(all_nodes6), all_nodes6.routed_to) == (("NEW", "ORIGINAL", "local"), "INPUT")
    assert (state(ssdp6), ssdp6.routed_to) == (("NEW", "ORIGINAL", "dropped"), None)
    assert (state(refused), refused.routed_to) == (("NEW", "ORIGINAL", "dropped"), "INPUT")


@pytest.mark.kernel
def test_sysctls_apply_with_or_without_prefix(kernel: None, made: list[str]) -> None:
    sysctls = {"nf_conntrack_udp_timeout": 7, "net.netfilter.nf_conntrack_icmp_timeout": 9}
    echo = struct.pack("!BBHHH", 8, 0, 0, 77, 1)
    ping = ip(C4, S4, 1, _with_l4_checksum(C4, S4, 1, echo, 2))
    with _fw(made, sysctls=sysctls) as fw:
        fw.send(udp(C4, S4, 5000, 53), 0)
        fw.send(ping, 0)
        lines = fw.conntrack_list()
    timeouts = {line.split()[0]: int(line.split()[2]) for line in lines}
    assert 5 <= timeouts["udp"] <= 7 and 7 <= timeouts["icmp"] <= 9


@pytest.mark.kernel
def test_events_coalesce_one_message_per_packet(kernel: None, made: list[str]) -> None:
    with _fw(made, watch_events=True) as fw:
        fw.send(tcp(C4, S4, 1000, 80, SYN, 100), 0)
        fw.send(tcp(S4, C4, 80, 1000, SYNACK, 500, 101), 1)
        fw.send(tcp(C4, S4, 1000, 80, ACK, 101, 501), 0)
        lines = fw.events()
    tags = [line.split("\t", 1)[1].split("]")[0].strip() + "]" for line in lines]
    assert tags == ["[NEW]", "[UPDATE]", "[UPDATE]"]
    assert all(line.startswith("[") for line in lines)
    assert "SYN_SENT" in lines[0] and "SYN_RECV" in lines[1]
    assert "ESTABLISHED" in lines[2] and lines[2].endswith("[ASSURED]")


@pytest.mark.kernel
def test_bad_ruleset_raises_and_cleans_up(kernel: None, made: list[str]) -> None:
    with pytest.raises(OracleError, match="iptables-restore"), \
            _fw(made, "*filter\n-A FORWARD --no-such-option\nCOMMIT\n"):
        pass


@pytest.mark.kernel
def test_exception_inside_block_removes_namespaces_unless_kept(kernel: None,
                                                               made: list[str]) -> None:
    with pytest.raises(KeyboardInterrupt), _fw(made):
        raise KeyboardInterrupt
    kept = _fw(made, keep_namespaces=True)
    with kept:
        pass
    assert kept.topology is not None
    assert set(kept.topology.namespaces) <= set(netns.list_namespaces())
    netns.destroy_topology(kept.topology)


@pytest.mark.kernel
@pytest.mark.shared
def test_shared_dns_capture(kernel: None, shared: Path, made: list[str]) -> None:
    raw = (shared / "traces" / "udp-dns-query-response.pcap").read_bytes()
    datagrams = normalise(_ethernet_payloads(raw))
    with _fw(made) as fw:
        got = [fw.send(d, side) for d, side in zip(datagrams, assign_sides(datagrams),
                                                    strict=True)]
    assert [state(o) for o in got] == [("NEW", "ORIGINAL", "forwarded"),
                                       ("ESTABLISHED", "REPLY", "forwarded")]


def _ethernet_payloads(pcap: bytes) -> list[bytes]:
    """IP datagrams of a little-endian classic pcap with Ethernet framing."""
    assert pcap[:4] == b"\xd4\xc3\xb2\xa1"
    out, pos = [], 24
    while pos + 16 <= len(pcap):
        caplen = struct.unpack_from("<I", pcap, pos + 8)[0]
        frame = pcap[pos + 16 : pos + 16 + caplen]
        out.append(frame[14:])
        pos += 16 + caplen
    return out


# --- prerequisites ------------------------------------------------------------------


def test_prerequisites_name_missing_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel_mod.os, "geteuid", lambda: 0)
    monkeypatch.setattr(kernel_mod.shutil, "which",
                        lambda tool: None if tool in ("conntrack", "tcpdump") else "/bin/x")
    with pytest.raises(OracleError, match="conntrack, tcpdump.*apt-get install"):
        kernel_mod.check_prerequisites()


def test_prerequisites_need_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel_mod.os, "geteuid", lambda: 1000)
    with pytest.raises(OracleError, match="root"):
        kernel_mod.check_prerequisites()


def test_sysctl_names() -> None:
    loose = "nf_conntrack_tcp_loose"
    assert kernel_mod.sysctl_name(loose) == "net.netfilter." + loose
    assert kernel_mod.sysctl_name("ipfrag_time") == "net.ipv4.ipfrag_time"
    assert kernel_mod.sysctl_name("net/ipv4/ip_forward") == "net.ipv4.ip_forward"


def test_classify_prefers_exit_and_marks_held_fragments() -> None:
    frag = fragments(udp(C4, S4, 1, 2, bytes(64)), 32)[0]
    assert kernel_mod.classify([], frag, 1.0).outcome == "held"
    assert kernel_mod.classify([], udp(C4, S4, 1, 2), 1.0).outcome == "dropped"
    prefixes = ["sw:s:RELATED:REPLY", "sw:r:INPUT", "sw:x:local"]
    obs = kernel_mod.classify(prefixes, udp(C4, S4, 1, 2), 2.5)
    assert obs == KernelObservation(2.5, "RELATED", "REPLY", "local", "INPUT")


# --- NFLOG parsing ------------------------------------------------------------------


def test_nflog_parse_reads_prefix_and_skips_other_messages() -> None:
    listener = NflogListener.__new__(NflogListener)

    def message(kind: int, attrs: bytes) -> bytes:
        body = struct.pack("!BBH", 2, 0, 5) + attrs
        return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body

    def attr(kind: int, payload: bytes) -> bytes:
        length = 4 + len(payload)
        return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)

    data = (message(NFULNL_MSG_PACKET, attr(1, b"\x08\x00\x02\x00") + attr(10, b"sw:s:NEW\0"))
            + message(3, b"") + message(NFULNL_MSG_PACKET, attr(10, b"sw:mark\0")))
    assert listener._parse(memoryview(data)) == ["sw:s:NEW", "sw:mark"]


# --- normalisation ------------------------------------------------------------------


def _spoil(datagram: bytes, at: int) -> bytes:
    return datagram[:at] + b"\xde\xad" + datagram[at + 2 :]


def _l4_ok(datagram: bytes) -> bool:
    view = parse(datagram)
    assert view is not None
    return l4_checksum_ok(view.family, view.src, view.dst, view.proto,
                          datagram[view.l4_off : view.end])


def test_normalise_resets_ttl_and_repairs_checksums() -> None:
    originals = [tcp(C4, S4, 1, 2, SYN, 5), udp(C6, S6, 3, 4), tcp(C6, S6, 5, 6, ACK, 1, 1)]
    spoiled = [ip(C4, S4, 6, _spoil(originals[0], 36)[20:], ttl=1),
               _spoil(originals[1], 46), _spoil(originals[2], 56)]
    spoiled[0] = spoiled[0][:10] + b"\x00\x00" + spoiled[0][12:]
    spoiled[1] = spoiled[1][:7] + b"\xff" + spoiled[1][8:]
    assert not any(_l4_ok(d) for d in spoiled)
    fixed = normalise(spoiled)
    assert fixed == originals  # all built with TTL / hop limit 64 and correct checksums
    assert internet_checksum(fixed[0][:20]) == 0 and all(_l4_ok(d) for d in fixed)


def test_normalise_keeps_icmp_quote_and_zero_udp_checksum() -> None:
    quoted = ip(C4, S4, 17, _spoil(udp(C4, S4, 1, 2)[20:], 6), ttl=1)[:28]
    error = _spoil(icmp_error(S4, C4, quoted), 22)
    fixed = normalise([error])[0]
    assert fixed[28:] == quoted and internet_checksum(fixed[20:]) == 0
    no_checksum = udp(C4, S4, 1, 2)[:26] + b"\0\0" + udp(C4, S4, 1, 2)[28:]
    assert normalise([no_checksum]) == [no_checksum]


def test_normalise_checksums_fragments_over_the_whole_datagram() -> None:
    whole = udp(C4, S4, 4000, 53, bytes(range(100)))
    pieces = fragments(_spoil(whole, 26), 48)
    fixed = normalise(pieces)
    assert fixed[0][26:28] == whole[26:28]
    assert fixed[1:] == pieces[1:]
    assert is_fragment(fixed[0]) and not is_fragment(whole)


def test_normalise_checksums_ipv6_fragments_after_the_fragment_header() -> None:
    whole = udp(C6, S6, 4000, 53, bytes(range(100)))
    destination_options = bytes([17, 0, 1, 4, 0, 0, 0, 0])
    payload = destination_options + _spoil(whole, 46)[40:]
    pieces = []
    for offset in (0, 64):
        chunk = payload[offset : offset + 64]
        frag = struct.pack("!BBHI", 60, 0, offset | (offset == 0), 0xABCD)
        pieces.append(struct.pack("!IHBB", 6 << 28, 8 + len(chunk), 44, 9) + whole[8:40]
                      + frag + chunk)
    fixed = normalise(pieces)
    assert fixed[0][62:64] == whole[46:48] and fixed[0][7] == 64
    assert fixed[1] == pieces[1][:7] + b"\x40" + pieces[1][8:]


def test_assign_sides_follows_known_addresses() -> None:
    datagrams = [udp(C4, S4, 1, 2), udp(S4, C4, 2, 1), icmp_error("10.99.3.3", C4, b""),
                 udp("10.99.9.9", S4, 1, 2), udp(C4, "10.99.9.9", 1, 2), b"\x00junk"]
    assert assign_sides(datagrams) == [0, 1, 1, 0, 0, 0]
