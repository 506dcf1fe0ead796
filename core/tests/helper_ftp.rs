//! The FTP helper: PORT, EPRT, PASV and EPSV expectations, the command
//! grammars, resynchronisation on newlines and the drop reasons.

mod helpers_kit;

use _core::config::{HelperParams, Sysctls};
use _core::conntrack::conn::ORIGINAL;
use _core::conntrack::expect::{ExpectationTable, NewlineSeqs};
use _core::helpers::ftp::{parse_command, parse_ipv6, Parsed};
use helpers_kit::*;
use std::net::Ipv6Addr;

/// A helped control connection after its first line in both directions.
fn control(b: &mut Machine, family: u8) -> Tcp {
    let (c, s) = if family == 4 { (C4, S4) } else { (C6, S6) };
    let mut ctl = Tcp::new(c, s, 46182, 21);
    ctl.open(b, 1.0);
    ctl.server(b, b"220 hi\r\n", 1.0);
    ctl.client(b, b"USER a\r\n", 1.0);
    ctl
}

fn text(family: u8, address: u128) -> String {
    if address == 0 {
        return "*".into();
    }
    if family == 4 {
        std::net::Ipv4Addr::from(address as u32).to_string()
    } else {
        Ipv6Addr::from(address).to_string()
    }
}

fn ports(b: &Machine) -> Vec<(String, String, u16)> {
    b.exp
        .live(2.0)
        .iter()
        .map(|e| (text(e.family, e.src), text(e.family, e.dst), e.dport))
        .collect()
}

fn one(src: &str, dst: &str, port: u16) -> Vec<(String, String, u16)> {
    vec![(src.to_string(), dst.to_string(), port)]
}

// -- the four commands -----------------------------------------------------------

#[test]
fn active_port_expects_server_to_client_port() {
    let mut b = Machine::default();
    let seen = control(&mut b, 4).client(&mut b, b"PORT 10,77,0,1,156,64\r\n", 2.0);
    assert!(seen.accepted);
    assert_eq!(
        seen.reason,
        "ftp: PORT command, expecting TCP 10.77.0.2:any → 10.77.0.1:40000"
    );
    assert_eq!(ports(&b), one(S4, C4, 40000));
    let live = b.exp.live(2.0);
    assert_eq!(live[0].sport_mask, 0);
    assert_eq!(live[0].expires, 302.0);
}

#[test]
fn eprt_ipv4() {
    let mut b = Machine::default();
    control(&mut b, 4).client(&mut b, b"EPRT |1|10.77.0.1|40010|\r\n", 2.0);
    assert_eq!(ports(&b), one(S4, C4, 40010));
}

#[test]
fn passive_227_expects_client_to_server_port_and_data_is_related() {
    let mut b = Machine::default();
    let mut ctl = control(&mut b, 4);
    ctl.server(&mut b, b"331 ok\r\n", 1.5);
    let seen = ctl.server(
        &mut b,
        b"227 Entering Passive Mode (10,77,0,2,156,65).\r\n",
        2.0,
    );
    assert_eq!(
        seen.reason,
        "ftp: 227 PASV reply, expecting TCP 10.77.0.1:any → 10.77.0.2:40001"
    );
    assert_eq!(ports(&b), one(C4, S4, 40001));
    assert_eq!(b.send(&syn(C4, S4, 51000, 40001), 3.0).state, "RELATED");
}

#[test]
fn epsv_229() {
    let mut b = Machine::default();
    control(&mut b, 4).server(
        &mut b,
        b"229 Entering Extended Passive Mode (|||40002|)\r\n",
        2.0,
    );
    assert_eq!(ports(&b), one(C4, S4, 40002));
}

#[test]
fn ipv6_eprt_and_epsv() {
    let mut b = Machine::default();
    let mut ctl = control(&mut b, 6);
    let seen = ctl.client(&mut b, b"EPRT |2|fd77::1|40201|\r\n", 2.0);
    assert_eq!(
        seen.reason,
        "ftp: EPRT command, expecting TCP [fd77::2]:any → [fd77::1]:40201"
    );
    assert_eq!(ports(&b), one(S6, C6, 40201));
    assert_eq!(
        b.listing(2.5),
        vec![
            "299 l3proto = 10 proto=6 src=fd77:0000:0000:0000:0000:0000:0000:0002 \
              dst=fd77:0000:0000:0000:0000:0000:0000:0001 sport=0 dport=40201 ftp\n"
        ]
    );
    ctl.server(&mut b, b"229 (|||40210|)\r\n", 2.0);
    assert_eq!(ports(&b), one(C6, S6, 40210));
}

#[test]
fn ipv6_address_forms_that_pass_the_check() {
    for (command, port) in [
        (&b"EPRT |2|FD77::1|40202|\r\n"[..], 40202),
        (b"EPRT |2|fd77:0:0:0:0:0:0:1|40203|\r\n", 40203),
        (b"PORT 253,119,0,0,157,0\r\n", 40192),
    ] {
        let mut b = Machine::default();
        control(&mut b, 6).client(&mut b, command, 2.0);
        assert_eq!(ports(&b), one(S6, C6, port));
    }
}

#[test]
fn ipv6_addresses_that_fail_the_check_are_accepted_without_expectation() {
    for command in [
        &b"PORT 10,77,0,1,156,64\r\n"[..],
        b"EPRT |2|::ffff:10.77.0.1|40204|\r\n",
    ] {
        let mut b = Machine::default();
        let seen = control(&mut b, 6).client(&mut b, command, 2.0);
        assert!(seen.accepted && b.exp.live(2.0).is_empty());
    }
    let mut b = Machine::default();
    let seen = control(&mut b, 6).client(&mut b, b"EPRT |2|::ffff:10.77.0.1|40204|\r\n", 2.0);
    assert_eq!(
        seen.reason,
        "ftp: EPRT command names ::ffff:10.77.0.1, not the sender fd77::1: no expectation (loose=0)"
    );
}

// -- where a command may start ---------------------------------------------------

#[test]
fn first_segment_of_a_direction_is_never_parsed() {
    let mut b = Machine::default();
    let mut ctl = Tcp::new(C4, S4, 46182, 21);
    ctl.open(&mut b, 1.0);
    assert!(
        ctl.client(&mut b, b"PORT 10,77,0,1,156,64\r\n", 2.0)
            .accepted
    );
    assert!(b.exp.live(2.0).is_empty());
    ctl.client(&mut b, b"PORT 10,77,0,1,156,64\r\n", 3.0);
    assert_eq!(ports(&b), one(S4, C4, 40000));
}

#[test]
fn command_must_start_the_segment() {
    let mut b = Machine::default();
    let mut ctl = control(&mut b, 4);
    ctl.client(&mut b, b"NOOP\r\nPORT 10,77,0,1,156,64\r\n", 2.0);
    ctl.client(&mut b, b" PORT 10,77,0,1,156,64\r\n", 2.0);
    assert!(b.exp.live(2.0).is_empty());
    ctl.client(&mut b, b"PORT 10,77,0,1,156,65\r\nNOOP\r\n", 2.0);
    assert_eq!(ports(&b), one(S4, C4, 40001));
}

#[test]
fn segment_without_final_newline_pauses_parsing_until_resync() {
    let mut b = Machine::default();
    let mut ctl = control(&mut b, 4);
    ctl.client(&mut b, b"USER a", 2.0);
    ctl.client(&mut b, b"PORT 10,77,0,1,156,64\r\n", 2.0);
    assert!(b.exp.live(2.0).is_empty());
    ctl.client(&mut b, b"PORT 10,77,0,1,156,65\r\n", 2.0);
    assert_eq!(ports(&b), one(S4, C4, 40001));
}

#[test]
fn command_split_across_segments_is_dropped_then_parsed_whole() {
    let mut b = Machine::default();
    let mut ctl = control(&mut b, 4);
    let first = ctl.client_at(&mut b, b"PORT 10,77,0,1,15", 2.0, false);
    assert!(!first.accepted);
    assert_eq!(
        first.reason,
        "dropped by the ftp helper: malformed PORT command: b'PORT 10,77,0,1,15'"
    );
    assert!(b.exp.live(2.0).is_empty());
    assert!(
        ctl.client(&mut b, b"PORT 10,77,0,1,156,64\r\n", 2.5)
            .accepted
    );
    assert_eq!(ports(&b), one(S4, C4, 40000));
}

#[test]
fn short_prefix_of_a_keyword_is_dropped() {
    let mut b = Machine::default();
    let mut ctl = control(&mut b, 4);
    let po = ctl.client_at(&mut b, b"PO", 2.0, false);
    assert!(!po.accepted);
    assert_eq!(
        po.reason,
        "dropped by the ftp helper: incomplete PORT command (b'PO' is a prefix of 'PORT')"
    );
    let two = ctl.server_at(&mut b, b"2", 2.0, false);
    assert!(!two.accepted);
    assert_eq!(
        two.reason,
        "dropped by the ftp helper: incomplete 227 PASV reply (b'2' is a prefix of '227 ')"
    );
    assert!(ctl.client(&mut b, b"NOOP\r\n", 2.0).accepted);
}

#[test]
fn drop_keeps_the_position_so_the_retransmission_is_parsed() {
    let mut b = Machine::default();
    let mut ctl = control(&mut b, 4);
    assert!(!ctl.client(&mut b, b"PORT garbage\r\n", 2.0).accepted);
    ctl.cseq -= b"PORT garbage\r\n".len() as u32;
    assert!(
        ctl.client(&mut b, b"PORT 10,77,0,1,156,64\r\n", 2.5)
            .accepted
    );
    assert_eq!(ports(&b), one(S4, C4, 40000));
}

// -- grammar details -------------------------------------------------------------

#[test]
fn malformed_client_commands_are_dropped() {
    for command in [
        &b"PORT garbage\r\n"[..],
        b"PORT 10,77,0,1,156,64\n",
        b"PORT  10,77,0,1,156,64\r\n",
        b"PORT 10,77,0,1,156,68 \r\n",
        b"PORT 10,77,0,1,156\r\n",
        b"PORTAL x\r\n",
        b"PORT\r\n",
        b"EPRT |2|fd77::1|40000|\r\n",
        b"EPRT |1|10.77.0.1|0|\r\n",
        b"EPRT  |1|10.77.0.1|4|\r\n",
    ] {
        let mut b = Machine::default();
        let seen = control(&mut b, 4).client(&mut b, command, 2.0);
        assert!(!seen.accepted, "{command:?}");
        assert!(seen.reason.starts_with("dropped by the ftp helper"));
        assert!(b.exp.live(2.0).is_empty());
    }
}

#[test]
fn drop_reasons_quote_the_segment_as_a_python_bytes_literal() {
    let cases: [(&[u8], &str); 4] = [
        (
            b"PORT garbage\r\n",
            "malformed PORT command: b'PORT garbage\\r\\n'",
        ),
        (b"PORT\r\n", "malformed PORT command (no ' ' after 'PORT')"),
        (
            b"229 no paren\r\n",
            "malformed 229 EPSV reply (no '(' after '229 ')",
        ),
        (
            b"PORT it's \"\xff\r\n",
            "malformed PORT command: b'PORT it\\'s \"\\xff\\r\\n'",
        ),
    ];
    for (data, want) in cases {
        let direction = if data.starts_with(b"2") { 1 } else { ORIGINAL };
        assert_eq!(
            parse_command(data, direction, 4),
            Parsed::Partial(want.to_string())
        );
    }
    let long = [b"PORT x".as_slice(), &[b'y'; 100]].concat();
    let Parsed::Partial(why) = parse_command(&long, ORIGINAL, 4) else {
        panic!("partial expected")
    };
    assert_eq!(
        why,
        format!("malformed PORT command: b'PORT x{}'", "y".repeat(54))
    );
    assert_eq!(
        parse_command(b"PORT it's\r\n", ORIGINAL, 4),
        Parsed::Partial("malformed PORT command: b\"PORT it's\\r\\n\"".into())
    );
}

#[test]
fn malformed_server_replies_are_dropped() {
    for reply in [
        &b"227 no numbers\r\n"[..],
        b"227 v2 (10,77,0,2,156,68)\r\n",
        b"227 10,77,0,2,156,67",
        b"229 no paren\r\n",
        b"229 (|||0|)\r\n",
        b"229 (||40004|)\r\n",
    ] {
        let mut b = Machine::default();
        assert!(
            !control(&mut b, 4).server(&mut b, reply, 2.0).accepted,
            "{reply:?}"
        );
    }
}

#[test]
fn client_grammar_corner_cases() {
    for (command, port) in [
        (&b"port 10,77,0,1,156,70\r\n"[..], 40006),
        (b"Port 10,77,0,1,156,71\r\n", 40007),
        (b"PORT 10,77,0,1,300,1\r\n", 11265),
        (b"PORT 10,77,0,1,0,0\r\n", 0),
        (b"PORT 010,077,000,001,156,69\r\n", 40005),
        (b"PORT 10,77,0,1,156,73\r", 40009),
        (b"EPRT |1|10.77.0.1|105537|\r\n", 40001),
        (b"EPRT x1x10.77.0.1x40012x\r\n", 40012),
        (b"eprt |1|10.77.0.1|40013|\r\n", 40013),
        (b"EPRTX |1|10.77.0.1|40014|\r\n", 40014),
    ] {
        let mut b = Machine::default();
        assert!(
            control(&mut b, 4).client(&mut b, command, 2.0).accepted,
            "{command:?}"
        );
        assert_eq!(ports(&b), one(S4, C4, port), "{command:?}");
    }
}

#[test]
fn server_grammar_corner_cases() {
    for (reply, port) in [
        (&b"227 =10,77,0,2,156,66\r\n"[..], 40002),
        (b"227 (10,77,0,2,156,71)\n", 40007),
        (b"229 Extended (!!!40003!)\r\n", 40003),
    ] {
        let mut b = Machine::default();
        assert!(control(&mut b, 4).server(&mut b, reply, 2.0).accepted);
        assert_eq!(ports(&b), one(C4, S4, port));
    }
}

#[test]
fn reply_227_with_a_hyphen_is_not_a_match() {
    let mut b = Machine::default();
    assert!(
        control(&mut b, 4)
            .server(&mut b, b"227-multi (10,77,0,2,156,65)\r\n", 2.0)
            .accepted
    );
    assert!(b.exp.live(2.0).is_empty());
}

// -- address check ---------------------------------------------------------------

#[test]
fn third_party_address_is_accepted_without_expectation() {
    for (command, what) in [
        (&b"PORT 10,77,0,9,156,64\r\n"[..], "PORT command"),
        (b"EPRT |1|10.77.0.9|40000|\r\n", "EPRT command"),
    ] {
        let mut b = Machine::default();
        let seen = control(&mut b, 4).client(&mut b, command, 2.0);
        assert!(seen.accepted && b.exp.live(2.0).is_empty());
        assert_eq!(
            seen.reason,
            format!(
                "ftp: {what} names 10.77.0.9, not the sender 10.77.0.1: no expectation (loose=0)"
            )
        );
    }
}

#[test]
fn third_party_227_is_accepted_without_expectation() {
    let mut b = Machine::default();
    assert!(
        control(&mut b, 4)
            .server(&mut b, b"227 (10,77,0,9,156,65)\r\n", 2.0)
            .accepted
    );
    assert!(b.exp.live(2.0).is_empty());
}

#[test]
fn loose_expects_the_announced_address() {
    let params = HelperParams {
        ftp_loose: true,
        ..HelperParams::default()
    };
    let mut b = Machine::new(Sysctls::default(), params);
    control(&mut b, 4).client(&mut b, b"PORT 10,77,0,9,156,64\r\n", 2.0);
    assert_eq!(ports(&b), one(S4, "10.77.0.9", 40000));
}

// -- pieces ----------------------------------------------------------------------

fn sorted(seqs: &NewlineSeqs) -> Vec<u32> {
    let mut v = seqs.as_slice().to_vec();
    v.sort();
    v
}

#[test]
fn newline_positions_keep_the_two_newest() {
    let mut seqs = NewlineSeqs::default();
    for seq in [100, 200, 200, 300, 150] {
        seqs.remember(seq);
    }
    assert_eq!(sorted(&seqs), vec![200, 300]);
    let mut wrapped = NewlineSeqs::default();
    wrapped.remember(0xFFFF_FFF0);
    wrapped.remember(0xFFFF_FFF8);
    wrapped.remember(0x10);
    assert_eq!(sorted(&wrapped), vec![0x10, 0xFFFF_FFF8]);
}

#[test]
fn helper_state_lives_in_the_table_by_connection() {
    let mut b = Machine::default();
    let mut ctl = control(&mut b, 4);
    let id = ctl.client(&mut b, b"", 1.0).id.unwrap();
    let state = b.exp.ftp_state_of(id).copied().unwrap();
    assert!(state.after_nl[0].contains(ctl.cseq));
    assert!(state.after_nl[1].contains(ctl.sseq));
    let table = ExpectationTable::default();
    assert!(table.ftp_state_of(id).is_none());
}

#[test]
fn ipv6_text_parses_as_the_standard_says() {
    for text in [
        "fd77::1",
        "::1",
        "::",
        "1:2:3:4:5:6:7:8",
        "1::8",
        "::ffff:10.77.0.1",
        "64:ff9b::192.0.2.1",
        "2001:db8:0:0:1:0:0:1",
        "fe80::",
        "1:2:3:4:5:6:1.2.3.4",
    ] {
        let data = format!("|{text}|");
        let want: Ipv6Addr = text.parse().unwrap();
        assert_eq!(
            parse_ipv6(data.as_bytes(), 1, b'|'),
            Some((u128::from(want), data.len() - 1)),
            "{text}"
        );
    }
}

#[test]
fn ipv6_text_rejected() {
    for text in [
        "1:2:3:4:5:6:7",
        "1::2::3",
        "12345::",
        "1.2.3.4",
        ":1::",
        "::1.2.3",
        "::1.2.3.256",
        "g::1",
        "1:2:3:4:5:6:7:8:9",
    ] {
        assert_eq!(
            parse_ipv6(format!("|{text}|").as_bytes(), 1, b'|'),
            None,
            "{text}"
        );
    }
}

#[test]
fn ordinary_segments_get_a_borrowed_reason() {
    use _core::conntrack::conn::{ConnId, CT_ESTABLISHED};
    use _core::helpers::ftp::ftp_help;
    use std::borrow::Cow;
    let mut b = Machine::default();
    let mut ctl = control(&mut b, 4);
    let id = ctl.client(&mut b, b"", 1.0).id.unwrap();
    let conn = b.conn(id).clone();
    for line in [&b"NOOP\r\n"[..], b"RETR file\r\n", b"partial", b"LIST\r\n"] {
        let raw = tcp(C4, S4, 46182, 21, "PA", ctl.cseq, ctl.sseq, line);
        let verdict = ftp_help(
            &conn,
            ConnId(id.0),
            CT_ESTABLISHED,
            &raw.packet(50, 2.0),
            &mut _core::helpers::common::HelperEnv {
                table: &mut b.exp,
                now: 2.0,
                expect_max: 4096,
                rng: &mut b.rng,
            },
        );
        assert!(verdict.accept && matches!(verdict.reason, Cow::Borrowed("")));
        ctl.cseq = ctl.cseq.wrapping_add(line.len() as u32);
    }
}
