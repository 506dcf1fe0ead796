//! The TCP state machine against the behaviour observed on Linux 6.18
//! (spec/tcp.md): the transition table, then connections packet by packet,
//! checking ctstate, the entry's state, timeout and ASSURED bit, and the
//! reason strings.

mod tcp_support;

use _core::config::Sysctls;
use _core::conntrack::conn::{
    Conn, Tuple, CT_ESTABLISHED, IPS_DYING, IPS_SEEN_REPLY, ORIGINAL, REPLY,
};
use _core::conntrack::l4proto::{invert_ports, Action};
use _core::conntrack::proto_tcp::{self as tcp, CLASS_NAMES, IG, IV, STATE_NAMES, TRANSITIONS};
use _core::packet::{ACK, FIN, PROTO_TCP, PSH, RST, SYN};
use tcp_support::*;

// -- the table ----------------------------------------------------------------

/// spec §4.1 / §4.2, columns NO SS SR ES FW CW LA TW CL S2
const SPEC_TABLE: [(u8, &str, &str); 12] = [
    (ORIGINAL, "SYN", "SS SS IG IG IG IG IG SS SS S2"),
    (ORIGINAL, "SYN/ACK", "IV IV SR IV IV IV IV IV IV SR"),
    (ORIGINAL, "FIN", "IV IV FW FW LA LA LA TW CL IV"),
    (ORIGINAL, "ACK", "ES IV ES ES CW CW TW TW CL IV"),
    (ORIGINAL, "RST", "IV CL CL CL CL CL CL CL CL CL"),
    (ORIGINAL, "NONE", "IV IV IV IV IV IV IV IV IV IV"),
    (REPLY, "SYN", "IV S2 IV IV IV IV IV SS IV S2"),
    (REPLY, "SYN/ACK", "IV SR IG IG IG IG IG IG IG SR"),
    (REPLY, "FIN", "IV IV FW FW LA LA LA TW CL IV"),
    (REPLY, "ACK", "IV IG SR ES CW CW TW TW CL IG"),
    (REPLY, "RST", "IV CL CL CL CL CL CL CL CL CL"),
    (REPLY, "NONE", "IV IV IV IV IV IV IV IV IV IV"),
];

fn abbrev(cell: &str) -> u8 {
    match cell {
        "NO" => 0,
        "SS" => 1,
        "SR" => 2,
        "ES" => 3,
        "FW" => 4,
        "CW" => 5,
        "LA" => 6,
        "TW" => 7,
        "CL" => 8,
        "S2" => 9,
        "IV" => IV,
        "IG" => IG,
        other => panic!("no cell {other}"),
    }
}

#[test]
fn transition_table_is_complete() {
    assert_eq!(TRANSITIONS.len(), 2);
    for direction in TRANSITIONS {
        assert_eq!(direction.len(), CLASS_NAMES.len());
        assert_eq!(direction.len(), 6);
        for row in direction {
            assert_eq!(row.len(), STATE_NAMES.len());
            assert_eq!(row.len(), 10);
            assert!(row
                .iter()
                .all(|&cell| cell <= 9 || cell == IV || cell == IG));
        }
    }
}

#[test]
fn transition_table_matches_spec() {
    for (direction, class, cells) in SPEC_TABLE {
        let expected: Vec<u8> = cells.split_whitespace().map(abbrev).collect();
        let index = CLASS_NAMES.iter().position(|&c| c == class).unwrap();
        assert_eq!(
            TRANSITIONS[usize::from(direction)][index].to_vec(),
            expected,
            "{direction} {class}"
        );
    }
}

#[test]
fn state_names_as_proc_prints_them() {
    assert_eq!(
        STATE_NAMES,
        [
            "NONE",
            "SYN_SENT",
            "SYN_RECV",
            "ESTABLISHED",
            "FIN_WAIT",
            "CLOSE_WAIT",
            "LAST_ACK",
            "TIME_WAIT",
            "CLOSE",
            "SYN_SENT2"
        ]
    );
}

// -- flags and first packets (facts 1, 14) -----------------------------------------

const FIRST_PACKET: [(&str, Option<&str>); 28] = [
    ("S", Some("SYN_SENT")),
    ("SU", Some("SYN_SENT")),
    ("SP", Some("SYN_SENT")),
    ("SE", Some("SYN_SENT")),
    ("SEC", Some("SYN_SENT")),
    ("A", Some("ESTABLISHED")),
    ("AU", Some("ESTABLISHED")),
    ("SA", None),
    ("FA", None),
    ("R", None),
    ("RA", None),
    ("SF", None),
    ("SR", None),
    ("F", None),
    ("", None),
    ("U", None),
    ("P", None),
    ("FPU", None),
    ("FSRPAU", None),
    ("SRA", None),
    ("FR", None),
    ("FRA", None),
    ("SAU", None),
    ("SAF", None),
    ("SAR", None),
    ("RU", None),
    ("SPA", None),
    ("FAU", None),
];

#[test]
fn flag_combination_as_first_packet() {
    for (letters, expected) in FIRST_PACKET {
        let ack = u32::from(letters.contains('A'));
        let seen = Flow::default().o(flags_of(letters), 1000, ack);
        match expected {
            None => assert_eq!(seen.ctstate, "INVALID", "{letters}"),
            Some(state) => {
                assert_eq!(
                    (seen.ctstate, seen.state),
                    ("NEW", Some(state)),
                    "{letters}"
                )
            }
        }
    }
}

#[test]
fn invalid_combinations_are_rejected_by_tcp_error() {
    for letters in [
        "SF", "SR", "F", "", "U", "P", "FPU", "FSRPAU", "SRA", "FR", "FRA", "SAU", "SAF", "SAR",
        "RU",
    ] {
        let seg = orig(flags_of(letters), 1, 1).build();
        let reason = tcp::error(&seg.packet(), &Sysctls::default(), true);
        assert!(
            reason
                .as_deref()
                .is_some_and(|r| r.starts_with("invalid TCP flag combination")),
            "{letters}"
        );
    }
    let seg = orig(SYN | FIN, 1, 1).build();
    assert_eq!(
        tcp::error(&seg.packet(), &Sysctls::default(), true).as_deref(),
        Some("invalid TCP flag combination SYN+FIN")
    );
}

#[test]
fn valid_flags_that_cannot_start_a_connection_get_their_own_reason() {
    for letters in ["SA", "FA", "R", "RA", "SPA", "FAU"] {
        let seg = orig(flags_of(letters), 1, 1).build();
        assert_eq!(tcp::error(&seg.packet(), &Sysctls::default(), true), None);
        let seen = Flow::default().feed(&seg.packet(), true);
        assert_eq!(seen.ctstate, "INVALID");
        assert!(
            seen.reason.contains("cannot start a connection"),
            "{letters}"
        );
    }
}

#[test]
fn invalid_combinations_inside_established() {
    let mut flow = Flow::default();
    handshake(&mut flow, b"", b"");
    for letters in ["F", "", "SF", "SR", "FR", "SAR", "U"] {
        let seen = flow.o(flags_of(letters), ISN_C + 1, ISN_S + 1);
        assert_eq!(seen.ctstate, "INVALID", "{letters}");
        assert_eq!(
            (seen.state, seen.timeout),
            (Some("ESTABLISHED"), Some(432000.0))
        );
    }
}

#[test]
fn bad_checksum_only_checked_in_prerouting_and_when_enabled() {
    let seg = orig(SYN, 1, 0).bad_checksum().build();
    let pkt = seg.packet();
    assert_eq!(Flow::default().feed(&pkt, true).ctstate, "INVALID");
    assert_eq!(Flow::default().feed(&pkt, true).reason, "bad TCP checksum");
    assert_eq!(Flow::default().feed(&pkt, false).ctstate, "NEW");
    assert_eq!(
        Flow::with("nf_conntrack_checksum", 0)
            .feed(&pkt, true)
            .ctstate,
        "NEW"
    );
    let good = orig(SYN, 1, 0).options(&wscale(7)).payload(b"abc").build();
    assert_eq!(Flow::default().feed(&good.packet(), true).ctstate, "NEW");
}

#[test]
fn checksum_ipv6() {
    let src = (0x2001_0DB8u128 << 96) | 1;
    let dst = (0x2001_0DB8u128 << 96) | 2;
    let good = Spec::new(src, dst, CPORT, SPORT, 7, 0, SYN)
        .family(6)
        .build();
    let bad = Spec::new(src, dst, CPORT, SPORT, 7, 0, SYN)
        .family(6)
        .bad_checksum()
        .build();
    assert_eq!(tcp::error(&good.packet(), &Sysctls::default(), true), None);
    assert_eq!(
        tcp::error(&bad.packet(), &Sysctls::default(), true).as_deref(),
        Some("bad TCP checksum")
    );
}

#[test]
fn checksum_odd_length_and_every_byte_counts() {
    let cfg = Sysctls::default();
    for len in [0, 1, 2, 3, 101] {
        let seg = orig(ACK | PSH, 5, 9).data(0xA5, len).build();
        assert_eq!(tcp::error(&seg.packet(), &cfg, true), None, "{len}");
        for at in seg.l4_off..seg.data.len() {
            let mut broken = seg.clone();
            broken.data[at] ^= 0x01;
            let mut pkt = broken.packet();
            // Keep the decoded fields of the intact packet: only the bytes differ.
            pkt.tcp_flags = seg.flags;
            let reason = tcp::error(&pkt, &cfg, true);
            if at == seg.l4_off + 12 {
                continue; // the data offset: a header-length complaint may come first
            }
            assert_eq!(reason.as_deref(), Some("bad TCP checksum"), "{len} {at}");
        }
    }
}

#[test]
fn truncated_headers() {
    let cfg = Sysctls {
        nf_conntrack_checksum: 0,
        ..Sysctls::default()
    };
    let doff15 = orig(SYN, 1, 0).doff(15).build();
    let doff4 = orig(SYN, 1, 0).doff(4).build();
    assert_eq!(
        tcp::error(&doff15.packet(), &cfg, true).as_deref(),
        Some("truncated TCP header (data offset says 60 bytes, 20 present)")
    );
    assert_eq!(
        tcp::error(&doff4.packet(), &cfg, true).as_deref(),
        Some("bad TCP data offset (4 words, minimum 5)")
    );
    let short = orig(SYN, 1, 0).build();
    let mut pkt = short.packet();
    pkt.data = &short.data[..30];
    assert_eq!(
        tcp::error(&pkt, &cfg, true).as_deref(),
        Some("truncated TCP header (10 of 20 bytes present)")
    );
}

// -- handshake and teardown (facts 2, 3, 4) -------------------------------------------

#[test]
fn three_way_handshake() {
    let mut flow = Flow::default();
    let syn = flow.o(SYN, ISN_C, 0);
    assert_eq!(
        (syn.ctstate, syn.state, syn.timeout, syn.assured),
        ("NEW", Some("SYN_SENT"), Some(120.0), false)
    );
    let synack = flow.r(SYN | ACK, ISN_S, ISN_C + 1);
    assert_eq!(
        (synack.ctstate, synack.state, synack.timeout),
        ("ESTABLISHED", Some("SYN_RECV"), Some(60.0))
    );
    assert_eq!(synack.reason, "SYN/ACK in SYN_SENT: SYN_SENT → SYN_RECV");
    let ack = flow.o(ACK, ISN_C + 1, ISN_S + 1);
    assert_eq!(
        (ack.ctstate, ack.state, ack.timeout, ack.assured),
        ("ESTABLISHED", Some("ESTABLISHED"), Some(432000.0), true)
    );
    assert_eq!(
        ack.reason,
        "ACK in SYN_RECV: SYN_RECV → ESTABLISHED; connection assured"
    );
    let again = flow.o(ACK, ISN_C + 1, ISN_S + 1);
    assert_eq!(again.reason, "ACK in ESTABLISHED: stays ESTABLISHED");
    assert!(matches!(
        again.reason.as_str(),
        "ACK in ESTABLISHED: stays ESTABLISHED"
    ));
}

#[test]
fn accepted_established_ack_reason_is_borrowed() {
    let mut flow = Flow::default();
    handshake(&mut flow, b"", b"");
    let seg = orig(ACK, ISN_C + 1, ISN_S + 1).build();
    let pkt = seg.packet();
    let conn = flow.conn.as_mut().unwrap();
    let (action, reason) = tcp::packet(conn, &pkt, ORIGINAL, CT_ESTABLISHED, 1000.0, &flow.cfg);
    assert_eq!(action, Action::Accept);
    assert!(matches!(reason, std::borrow::Cow::Borrowed(_)));
    assert_eq!(reason, "ACK in ESTABLISHED: stays ESTABLISHED");
}

#[test]
fn synack_with_wrong_ack_is_invalid_and_entry_stays_unreplied() {
    let mut flow = Flow::default();
    flow.o(SYN, ISN_C, 0);
    let bad = flow.r(SYN | ACK, ISN_S, ISN_C + 2);
    assert_eq!(bad.ctstate, "INVALID");
    assert!(bad.reason.contains("ACK of data never sent"));
    assert_eq!(bad.state, Some("SYN_SENT"));
    assert_eq!(flow.conn.as_ref().unwrap().status & IPS_SEEN_REPLY, 0);
}

#[test]
fn fin_close_sequence_states_and_timeouts() {
    let mut flow = Flow::default();
    handshake(&mut flow, b"", b"");
    let fin_o = flow.o(FIN | ACK, ISN_C + 1, ISN_S + 1);
    assert_eq!(
        (fin_o.state, fin_o.timeout),
        (Some("FIN_WAIT"), Some(120.0))
    );
    let ack_r = flow.r(ACK, ISN_S + 1, ISN_C + 2);
    assert_eq!(
        (ack_r.state, ack_r.timeout),
        (Some("CLOSE_WAIT"), Some(60.0))
    );
    let fin_r = flow.r(FIN | ACK, ISN_S + 1, ISN_C + 2);
    assert_eq!((fin_r.state, fin_r.timeout), (Some("LAST_ACK"), Some(30.0)));
    let ack_o = flow.o(ACK, ISN_C + 2, ISN_S + 2);
    assert_eq!(
        (ack_o.state, ack_o.timeout),
        (Some("TIME_WAIT"), Some(120.0))
    );
    for seen in [fin_o, ack_r, fin_r, ack_o] {
        assert_eq!(seen.ctstate, "ESTABLISHED");
    }
}

#[test]
fn fin_from_both_sides_goes_straight_to_last_ack() {
    let mut flow = Flow::default();
    handshake(&mut flow, b"", b"");
    flow.o(FIN | ACK, ISN_C + 1, ISN_S + 1);
    assert_eq!(
        flow.r(FIN | ACK, ISN_S + 1, ISN_C + 1).state,
        Some("LAST_ACK")
    );
}

// -- reopen and resync (facts 5, 6, 10) -------------------------------------------------

fn closed_to_time_wait(flow: &mut Flow) {
    handshake(flow, b"", b"");
    flow.o(FIN | ACK, ISN_C + 1, ISN_S + 1);
    flow.r(FIN | ACK, ISN_S + 1, ISN_C + 2);
    assert_eq!(flow.o(ACK, ISN_C + 2, ISN_S + 2).state, Some("TIME_WAIT"));
}

#[test]
fn syn_from_originator_in_time_wait_reopens() {
    let mut flow = Flow::default();
    closed_to_time_wait(&mut flow);
    let old = flow.created;
    let seen = flow.o(SYN, 90000, 0);
    assert_eq!(
        (seen.ctstate, seen.state, seen.timeout),
        ("NEW", Some("SYN_SENT"), Some(120.0))
    );
    assert_eq!(flow.created, old + 1);
}

#[test]
fn syn_from_responder_in_time_wait_reopens_with_roles_swapped() {
    let mut flow = Flow::default();
    closed_to_time_wait(&mut flow);
    let seen = flow.r(SYN, 90000, 0);
    assert_eq!((seen.ctstate, seen.state), ("NEW", Some("SYN_SENT")));
    assert_eq!({ flow.conn.as_ref().unwrap().orig.src }, SERVER);
}

#[test]
fn repeat_is_what_the_core_sees_on_reopen() {
    let mut flow = Flow::default();
    closed_to_time_wait(&mut flow);
    let seg = orig(SYN, 90000, 0).build();
    let pkt = seg.packet();
    let now = flow.now;
    let cfg = flow.cfg.clone();
    let conn = flow.conn.as_mut().unwrap();
    let (action, reason) = tcp::packet(conn, &pkt, ORIGINAL, CT_ESTABLISHED, now, &cfg);
    assert_eq!(action, Action::Repeat);
    assert!(reason.contains("reopens"));
    assert_eq!(
        reason,
        "SYN in TIME_WAIT reopens the connection: old entry deleted"
    );
}

#[test]
fn syn_in_fin_wait_is_ignored() {
    let mut flow = Flow::default();
    handshake(&mut flow, b"", b"");
    let fw = flow.o(FIN | ACK, ISN_C + 1, ISN_S + 1);
    let seen = flow.o(SYN, 90000, 0);
    assert_eq!(
        (seen.ctstate, seen.state, seen.timeout),
        ("ESTABLISHED", Some("FIN_WAIT"), fw.timeout)
    );
    assert!(seen.reason.contains("ignored"));
    assert_eq!(
        seen.reason,
        "SYN in FIN_WAIT ignored (the endpoints may have restarted; remembered to \
         resynchronise on the SYN/ACK)"
    );
}

#[test]
fn resync_on_synack_answering_an_ignored_syn() {
    let mut flow = Flow::default();
    handshake(&mut flow, b"", b"");
    flow.wait(5.0);
    let syn = flow.send(orig(SYN, 70000, 0).options(&wscale(2)));
    assert_eq!(
        (syn.ctstate, syn.state, syn.timeout),
        ("ESTABLISHED", Some("ESTABLISHED"), Some(431995.0))
    );
    let synack = flow.r(SYN | ACK, 9000, 70001);
    assert_eq!(
        (synack.state, synack.timeout),
        (Some("SYN_RECV"), Some(60.0))
    );
    let ack = flow.o(ACK, 70001, 9001);
    assert_eq!(
        (ack.state, ack.timeout, ack.assured),
        (Some("ESTABLISHED"), Some(432000.0), true)
    );
}

#[test]
fn synack_not_answering_the_ignored_syn_is_ignored() {
    let mut flow = Flow::default();
    handshake(&mut flow, b"", b"");
    flow.o(SYN, 70000, 0);
    let seen = flow.r(SYN | ACK, 9000, 12345);
    assert_eq!(
        (seen.ctstate, seen.state),
        ("ESTABLISHED", Some("ESTABLISHED"))
    );
    assert_eq!(
        seen.reason,
        "SYN/ACK in ESTABLISHED ignored (a retransmission, or the answer to an ignored SYN)"
    );
}

#[test]
fn syn_after_responder_rst_is_ignored_then_resyncs() {
    let mut flow = Flow::default();
    established_with_data(&mut flow);
    assert_eq!(flow.r(RST, ISN_S + 1, 0).state, Some("CLOSE"));
    let syn = flow.o(SYN, 70000, 0);
    assert_eq!((syn.ctstate, syn.state), ("ESTABLISHED", Some("CLOSE")));
    assert_eq!(flow.r(SYN | ACK, 9000, 70001).state, Some("SYN_RECV"));
    assert_eq!(flow.o(ACK, 70001, 9001).state, Some("ESTABLISHED"));
}

#[test]
fn syn_after_originator_rst_reopens() {
    let mut flow = Flow::default();
    established_with_data(&mut flow);
    assert_eq!(flow.o(RST, ISN_C + 101, 0).state, Some("CLOSE"));
    let seen = flow.o(SYN, 70000, 0);
    assert_eq!((seen.ctstate, seen.state), ("NEW", Some("SYN_SENT")));
}

#[test]
fn syn_after_originator_rst_then_ack_is_ignored() {
    let mut flow = Flow::default();
    established_with_data(&mut flow);
    flow.o(RST, ISN_C + 101, 0);
    flow.o(ACK, ISN_C + 101, ISN_S + 1);
    let seen = flow.o(SYN, 70000, 0);
    assert_eq!((seen.ctstate, seen.state), ("ESTABLISHED", Some("CLOSE")));
}

// -- simultaneous open (fact 7) ------------------------------------------------------

#[test]
fn simultaneous_open() {
    let mut flow = Flow::default();
    assert_eq!(flow.o(SYN, ISN_C, 0).state, Some("SYN_SENT"));
    let syn_r = flow.r(SYN, ISN_S, 0);
    assert_eq!(
        (syn_r.ctstate, syn_r.state),
        ("ESTABLISHED", Some("SYN_SENT2"))
    );
    let synack_o = flow.o(SYN | ACK, ISN_C, ISN_S + 1);
    assert_eq!(
        (synack_o.ctstate, synack_o.state, synack_o.assured),
        ("ESTABLISHED", Some("SYN_RECV"), false)
    );
    let synack_r = flow.r(SYN | ACK, ISN_S, ISN_C + 1);
    assert_eq!(
        (synack_r.state, synack_r.reason.contains("ignored")),
        (Some("SYN_RECV"), true)
    );
    let ack_r = flow.r(ACK, ISN_S + 1, ISN_C + 1);
    assert_eq!(
        (ack_r.state, ack_r.assured, ack_r.timeout),
        (Some("ESTABLISHED"), true, Some(432000.0))
    );
}

#[test]
fn responder_syn_in_syn_sent_does_not_refresh() {
    let mut flow = Flow::default();
    flow.o(SYN, ISN_C, 0);
    flow.wait(2.0);
    let seen = flow.r(SYN, ISN_S, 0);
    assert_eq!(seen.timeout, Some(118.0));
    assert_eq!(
        seen.reason,
        "SYN in SYN_SENT: SYN_SENT → SYN_SENT2; SYN retransmission does not refresh the timeout"
    );
}

// -- SYN_SENT oddities (fact 8) and RSTs (facts 9, 15) ---------------------------------

#[test]
fn invalid_in_syn_sent() {
    for (flags, direction) in [
        (ACK, ORIGINAL),
        (FIN | ACK, ORIGINAL),
        (SYN | ACK, ORIGINAL),
        (FIN | ACK, REPLY),
    ] {
        let mut flow = Flow::default();
        flow.o(SYN, ISN_C, 0);
        let seen = if direction == ORIGINAL {
            flow.o(flags, ISN_C + 1, ISN_C + 1)
        } else {
            flow.r(flags, ISN_S, ISN_C + 1)
        };
        assert_eq!(seen.ctstate, "INVALID");
        assert!(seen.reason.contains("is invalid"), "{}", seen.reason);
        assert_eq!(seen.state, Some("SYN_SENT"));
    }
    let mut flow = Flow::default();
    flow.o(SYN, ISN_C, 0);
    assert_eq!(
        flow.o(ACK, ISN_C + 1, ISN_C + 1).reason,
        "ACK from the originator in SYN_SENT is invalid: no SYN/ACK seen yet"
    );
}

#[test]
fn challenge_ack_in_syn_sent_then_rst_at_its_ack() {
    let mut flow = Flow::default();
    flow.o(SYN, ISN_C, 0);
    let ack = flow.r(ACK, 777, 4242);
    assert_eq!((ack.ctstate, ack.state), ("ESTABLISHED", Some("SYN_SENT")));
    assert_ne!(flow.conn.as_ref().unwrap().status & IPS_SEEN_REPLY, 0);
    let rst = flow.o(RST, 4242, 0);
    assert_eq!(
        (rst.ctstate, rst.state, rst.timeout),
        ("ESTABLISHED", Some("CLOSE"), Some(10.0))
    );
}

#[test]
fn retransmitted_syn_does_not_refresh_the_timeout() {
    let mut flow = Flow::default();
    flow.o(SYN, ISN_C, 0);
    flow.wait(3.0);
    let again = flow.o(SYN, ISN_C, 0);
    assert_eq!(
        (again.ctstate, again.state, again.timeout),
        ("NEW", Some("SYN_SENT"), Some(117.0))
    );
    assert!(again.reason.contains("does not refresh"));
}

#[test]
fn rst_from_responder_answering_syn_deletes_entry() {
    for flags in [RST, RST | ACK] {
        let mut flow = Flow::default();
        flow.o(SYN, ISN_C, 0);
        let seen = flow.r(flags, 31337, ISN_C + 1);
        assert_eq!((seen.ctstate, seen.state), ("ESTABLISHED", None));
        assert_ne!(flow.last.as_ref().unwrap().status & IPS_DYING, 0);
        assert_eq!(
            seen.reason,
            "RST in SYN_SENT: SYN_SENT → CLOSE; RST before any reply: connection deleted"
        );
    }
}

#[test]
fn rst_ack_from_responder_with_wrong_ack_is_invalid() {
    let mut flow = Flow::default();
    flow.o(SYN, ISN_C, 0);
    let seen = flow.r(RST | ACK, 0, ISN_C + 50);
    assert_eq!((seen.ctstate, seen.state), ("INVALID", Some("SYN_SENT")));
}

#[test]
fn originator_rst_in_syn_sent() {
    let mut flow = Flow::default();
    flow.o(SYN, ISN_C, 0);
    let zero = flow.o(RST, 0, 0);
    assert_eq!((zero.ctstate, zero.state), ("NEW", None));
    let mut flow = Flow::default();
    flow.o(SYN, ISN_C, 0);
    assert_eq!(flow.o(RST, ISN_C + 5000, 0).ctstate, "INVALID");
}

#[test]
fn rst_exact_sequence_closes() {
    let mut flow = Flow::default();
    established_with_data(&mut flow);
    let seen = flow.r(RST, ISN_S + 1, 0);
    assert_eq!(
        (seen.ctstate, seen.state, seen.timeout),
        ("ESTABLISHED", Some("CLOSE"), Some(10.0))
    );
    assert_eq!(seen.reason, "RST in ESTABLISHED: ESTABLISHED → CLOSE");
}

#[test]
fn rst_in_window_not_exact_keeps_state_with_close_timeout() {
    let mut flow = Flow::default();
    established_with_data(&mut flow);
    let seen = flow.r(RST, 700, 0);
    assert_eq!(
        (seen.ctstate, seen.state, seen.timeout),
        ("ESTABLISHED", Some("ESTABLISHED"), Some(10.0))
    );
    assert_eq!(seen.reason, "RST in ESTABLISHED: stays ESTABLISHED");
}

#[test]
fn rst_below_peer_max_ack_is_invalid() {
    let mut flow = Flow::default();
    established_with_data(&mut flow);
    let seen = flow.o(RST, 150, 0);
    assert_eq!(seen.ctstate, "INVALID");
    assert!(seen
        .reason
        .contains("below what the peer already acknowledged"));
    assert_eq!(
        seen.reason,
        "RST with a sequence number below what the peer already acknowledged (seq 150 < 201)"
    );
    assert_eq!(
        (seen.state, seen.timeout),
        (Some("ESTABLISHED"), Some(432000.0))
    );
}

#[test]
fn ignore_invalid_rst() {
    let mut flow = Flow::with("nf_conntrack_tcp_ignore_invalid_rst", 1);
    established_with_data(&mut flow);
    let seen = flow.o(RST, 150, 0);
    assert_eq!(
        (seen.ctstate, seen.state, seen.timeout),
        ("ESTABLISHED", Some("ESTABLISHED"), Some(10.0))
    );
}

#[test]
fn rst_beyond_window_is_invalid() {
    let mut flow = Flow::default();
    established_with_data(&mut flow);
    let seen = flow.o(RST, 90000, 0);
    assert_eq!(seen.ctstate, "INVALID");
    assert!(seen.reason.contains("SEQ beyond the receiver's window"));
}

#[test]
fn rst_answering_an_ignored_syn_skips_the_window_check() {
    let mut flow = Flow::default();
    established_with_data(&mut flow);
    flow.o(SYN, 70000, 0);
    let seen = flow.r(RST | ACK, 0x4000_0000, 70001);
    assert_eq!(
        (seen.ctstate, seen.state, seen.timeout),
        ("ESTABLISHED", Some("CLOSE"), Some(10.0))
    );
}

/// RST with ack == remembered SYN end, but from the SYN's own side: no shortcut.
#[test]
fn rst_after_own_syn_is_window_checked() {
    let mut flow = Flow::default();
    flow.o(SYN, ISN_C, 0);
    assert_eq!(flow.r(SYN, ISN_S, 0).state, Some("SYN_SENT2"));
    let seen = flow.r(RST | ACK, ISN_S + 100_000, 0);
    assert_eq!((seen.ctstate, seen.state), ("INVALID", Some("SYN_SENT2")));
}

#[test]
fn rst_ack_with_zero_ack_and_exact_seq_closes() {
    let mut flow = Flow::default();
    established_with_data(&mut flow);
    assert_eq!(flow.o(RST | ACK, ISN_C + 101, 0).state, Some("CLOSE"));
}

#[test]
fn rst_in_closing_states_skips_window_check() {
    let mut flow = Flow::default();
    handshake(&mut flow, b"", b"");
    flow.o(FIN | ACK, ISN_C + 1, ISN_S + 1);
    let seen = flow.r(RST, 0x7000_0000, 0);
    assert_eq!(
        (seen.ctstate, seen.state, seen.timeout),
        ("ESTABLISHED", Some("CLOSE"), Some(10.0))
    );
}

#[test]
fn rst_old_sequence_still_invalid_when_liberal() {
    let mut flow = Flow::with("nf_conntrack_tcp_be_liberal", 1);
    established_with_data(&mut flow);
    assert_eq!(flow.o(RST, 150, 0).ctstate, "INVALID");
}

// -- pickup (fact 11) ------------------------------------------------------------------

#[test]
fn mid_stream_pickup() {
    let mut flow = Flow::default();
    let first = flow.o(ACK, 5000, 9000);
    assert_eq!(
        (first.ctstate, first.state, first.timeout, first.assured),
        ("NEW", Some("ESTABLISHED"), Some(300.0), false)
    );
    assert_eq!(
        first.reason,
        "ACK in NONE: NONE → ESTABLISHED; ACK of data never sent (ack 9000 > highest \
         sequence seen 0); accepted: liberal window tracking"
    );
    let answer = flow.r(ACK, 9000, 5000);
    assert_eq!(
        (answer.ctstate, answer.state, answer.timeout, answer.assured),
        ("ESTABLISHED", Some("ESTABLISHED"), Some(300.0), false)
    );
    let third = flow.o(ACK, 5000, 9000);
    assert_eq!(
        (third.state, third.timeout, third.assured),
        (Some("ESTABLISHED"), Some(432000.0), true)
    );
    let wild = flow.send(orig(ACK | PSH, 5000 + 90_000_000, 1_234_567).data(b'z', 10));
    assert_eq!(
        (wild.ctstate, wild.state),
        ("ESTABLISHED", Some("ESTABLISHED"))
    );
    assert!(wild.reason.ends_with("; accepted: liberal window tracking"));
}

#[test]
fn pickup_refused_without_loose() {
    let seen = Flow::with("nf_conntrack_tcp_loose", 0).o(ACK, 5000, 9000);
    assert_eq!(seen.ctstate, "INVALID");
    assert!(seen.reason.contains("nf_conntrack_tcp_loose=0"));
    assert_eq!(
        seen.reason,
        "ACK without a SYN cannot start a connection (nf_conntrack_tcp_loose=0)"
    );
}

// -- window (fact 12) ------------------------------------------------------------------

#[test]
fn data_inside_and_beyond_the_window() {
    let mut flow = Flow::default();
    handshake(&mut flow, b"", b"");
    let inside = flow.send(orig(ACK | PSH, ISN_C + 1, ISN_S + 1).data(b'a', 500));
    assert_eq!(
        (inside.ctstate, inside.timeout),
        ("ESTABLISHED", Some(300.0))
    );
    let beyond = flow.send(orig(ACK | PSH, ISN_C + 1 + 5000, ISN_S + 1).data(b'b', 10));
    assert_eq!(beyond.ctstate, "INVALID");
    assert!(beyond.reason.contains("SEQ beyond the receiver's window"));
}

#[test]
fn ack_of_unseen_data_is_invalid() {
    let mut flow = Flow::default();
    handshake(&mut flow, b"", b"");
    let seen = flow.r(ACK, ISN_S + 1, ISN_C + 1 + 50000);
    assert_eq!(seen.ctstate, "INVALID");
    assert!(seen.reason.contains("ACK of data never sent"));
}

#[test]
fn old_retransmission_and_stale_ack_are_ignored() {
    let mut flow = Flow::default();
    handshake(&mut flow, b"", b"");
    flow.wait(1.0);
    let old = flow.send(orig(ACK | PSH, ISN_C.wrapping_sub(100_000), ISN_S + 1).data(b'o', 10));
    assert_eq!(
        (old.ctstate, old.state, old.timeout),
        ("ESTABLISHED", Some("ESTABLISHED"), Some(431999.0))
    );
    assert!(old.reason.contains("old retransmission ignored"));
    let stale = flow.r(ACK, ISN_S + 1, ISN_C.wrapping_sub(100_000));
    assert_eq!(
        (stale.ctstate, stale.timeout),
        ("ESTABLISHED", Some(431999.0))
    );
    assert!(stale.reason.contains("overly delayed ACK ignored"));
}

#[test]
fn window_scale_needs_both_sides() {
    for (syn_scale, synack_scale, verdict) in [
        (Some(7), Some(7), "ESTABLISHED"),
        (Some(7), None, "INVALID"),
        (None, Some(7), "INVALID"),
    ] {
        let mut flow = Flow::default();
        let opts = |scale: Option<u8>| scale.map_or_else(Vec::new, wscale);
        handshake(&mut flow, &opts(syn_scale), &opts(synack_scale));
        flow.r(ACK, ISN_S + 1, ISN_C + 1); // the server's first scaled window: 1000 << 7
        let seen = flow.send(orig(ACK | PSH, ISN_C + 1 + 50000, ISN_S + 1).data(b'w', 10));
        assert_eq!(seen.ctstate, verdict, "{syn_scale:?} {synack_scale:?}");
    }
}

#[test]
fn be_liberal_accepts_out_of_window() {
    let mut flow = Flow::with("nf_conntrack_tcp_be_liberal", 1);
    handshake(&mut flow, b"", b"");
    let beyond = flow.send(orig(ACK | PSH, ISN_C + 1 + 5000, ISN_S + 1).data(b'b', 10));
    assert_eq!(
        (beyond.ctstate, beyond.state),
        ("ESTABLISHED", Some("ESTABLISHED"))
    );
    assert!(beyond.reason.contains("liberal"));
    assert_eq!(
        beyond.reason,
        "ACK in ESTABLISHED: stays ESTABLISHED; SEQ beyond the receiver's window \
         (seq 5101 > max 1101); accepted: liberal window tracking"
    );
    assert_eq!(
        flow.r(ACK, ISN_S + 1, ISN_C + 1 + 50000).ctstate,
        "ESTABLISHED"
    );
}

#[test]
fn sack_block_beyond_sent_data_is_invalid_only_when_sack_permitted() {
    let sack = sack_option(&[(ISN_C + 1, ISN_C + 900)]);
    for (opts, verdict) in [(SACK_PERM_OPT, "INVALID"), (&b""[..], "ESTABLISHED")] {
        let mut flow = Flow::default();
        handshake(&mut flow, opts, opts);
        flow.send(orig(ACK | PSH, ISN_C + 1, ISN_S + 1).data(b'd', 100));
        let seen = flow.send(reply(ACK, ISN_S + 1, ISN_C + 1).options(&sack));
        assert_eq!(seen.ctstate, verdict);
    }
}

// -- timeouts (fact 13), challenge ACK, handle_invalid, early drop ----------------------

#[test]
fn unacknowledged_data_timeout() {
    let mut flow = Flow::default();
    handshake(&mut flow, b"", b"");
    let data = flow.send(orig(ACK | PSH, ISN_C + 1, ISN_S + 1).data(b'x', 100));
    assert_eq!(data.timeout, Some(300.0));
    assert_eq!(flow.r(ACK, ISN_S + 1, ISN_C + 101).timeout, Some(432000.0));
}

#[test]
fn identical_acks_trigger_retrans_timeout() {
    let mut flow = Flow::default();
    handshake(&mut flow, b"", b"");
    let timeouts: Vec<_> = (0..4)
        .map(|_| flow.r(ACK, ISN_S + 1, ISN_C + 1).timeout)
        .collect();
    assert_eq!(
        timeouts,
        [Some(432000.0), Some(432000.0), Some(432000.0), Some(300.0)]
    );
    let other = flow.send(reply(ACK, ISN_S + 1, ISN_C + 1).window(2000));
    assert_eq!(other.timeout, Some(432000.0));
}

#[test]
fn max_retrans_is_a_knob() {
    let mut flow = Flow::with("nf_conntrack_tcp_max_retrans", 1);
    handshake(&mut flow, b"", b"");
    let timeouts: Vec<_> = (0..2)
        .map(|_| flow.r(ACK, ISN_S + 1, ISN_C + 1).timeout)
        .collect();
    assert_eq!(timeouts, [Some(432000.0), Some(300.0)]);
}

#[test]
fn zero_window_timeout() {
    let mut flow = Flow::default();
    handshake(&mut flow, b"", b"");
    let zero = flow.send(reply(ACK, ISN_S + 1, ISN_C + 1).window(0));
    assert_eq!(zero.timeout, Some(300.0));
    let open = flow.send(reply(ACK, ISN_S + 1, ISN_C + 1).window(500));
    assert_eq!(open.timeout, Some(432000.0));
}

#[test]
fn challenge_ack_in_last_ack_does_not_close() {
    let mut flow = Flow::default();
    handshake(&mut flow, b"", b"");
    flow.o(FIN | ACK, ISN_C + 1, ISN_S + 1);
    let la = flow.r(FIN | ACK, ISN_S + 1, ISN_C + 2);
    assert_eq!(la.state, Some("LAST_ACK"));
    assert!(flow.o(SYN, 60000, 0).reason.contains("ignored"));
    let challenge = flow.r(ACK, ISN_S + 2, ISN_C + 2);
    assert_eq!(
        (challenge.state, challenge.timeout),
        (Some("LAST_ACK"), Some(30.0))
    );
    assert!(challenge.reason.contains("challenge ACK"));
    assert_eq!(flow.r(ACK, ISN_S + 2, ISN_C + 2).state, Some("TIME_WAIT"));
}

#[test]
fn out_of_window_fin_from_both_sides_cuts_lifetime() {
    let mut flow = Flow::default();
    handshake(&mut flow, b"", b"");
    let first = flow.o(FIN | ACK, ISN_C + 1 + 90000, ISN_S + 1);
    assert_eq!((first.ctstate, first.timeout), ("INVALID", Some(432000.0)));
    let second = flow.r(FIN | ACK, ISN_S + 1 + 90000, ISN_C + 1);
    assert_eq!((second.ctstate, second.timeout), ("INVALID", Some(300.0)));
    assert!(second.reason.contains("cut to 300 s"));
    assert_eq!(
        second.reason,
        "SEQ beyond the receiver's window (seq 90501 > max 1501); remaining lifetime cut to 300 s"
    );
}

#[test]
fn early_drop_only_for_closing_states() {
    let mut conn = Conn::new(
        4,
        PROTO_TCP,
        0,
        Tuple::new(1, 2, 3, 4),
        Tuple::new(2, 1, 4, 3),
        0.0,
    );
    let mut allowed = Vec::new();
    for (state, name) in STATE_NAMES.iter().enumerate() {
        conn.proto_state = state as u8;
        if tcp::can_early_drop(&conn) {
            allowed.push(*name);
        }
    }
    assert_eq!(
        allowed,
        ["FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE"]
    );
}

#[test]
fn tracker_contract() {
    let mut flow = Flow::default();
    flow.o(SYN, ISN_C, 0);
    assert_eq!(tcp::state_name(flow.conn.as_ref().unwrap()), "SYN_SENT");
    assert_eq!(invert_ports(3, 4), (4, 3));
}

#[test]
fn packet_on_a_connection_without_tcp_data_is_invalid_not_a_panic() {
    let mut conn = Conn::new(
        4,
        PROTO_TCP,
        0,
        Tuple::new(1, 2, 3, 4),
        Tuple::new(2, 1, 4, 3),
        0.0,
    );
    let seg = orig(ACK, 1, 1).build();
    let (action, _) = tcp::packet(
        &mut conn,
        &seg.packet(),
        ORIGINAL,
        0,
        0.0,
        &Sysctls::default(),
    );
    assert_eq!(action, Action::Invalid);
    conn.proto_state = 200;
    assert_eq!(tcp::state_name(&conn), "UNKNOWN");
}
