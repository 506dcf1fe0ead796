//! The IRC helper: DCC offers from the client, anti-spoofing, limits.

mod helpers_kit;

use _core::conntrack::expect::proc_expect_line;
use _core::helpers::irc::{find_dcc, DccOffer};
use helpers_kit::*;

const CLIENT: u32 = 172818433; // 10.77.0.1 as one decimal number

fn irc(b: &mut Machine) -> Tcp {
    let mut ctl = Tcp::new(C4, S4, 40123, 6667);
    ctl.open(b, 1.0);
    ctl
}

#[test]
fn dcc_offers_that_give_an_expectation() {
    let cases: [(&[u8], u16); 9] = [
        (
            b"PRIVMSG bob :\x01DCC SEND file.txt 172818433 5000 1234\x01\r\n",
            5000,
        ),
        (
            b"PRIVMSG bob :\x01DCC CHAT chat 172818433 5001\x01\r\n",
            5001,
        ),
        (
            b"privmsg #c,bob :\x01DCC SCHAT chat 172818433 5004\x01\n",
            5004,
        ),
        (
            b"  \r\nPRIVMSG bob :\x01DCC SEND f 172818433   5013 1\x01\r\n",
            5013,
        ),
        (
            b"PRIVMSG bob :\x01DCC MOVE f 172818433 5014 1\x01\r\n",
            5014,
        ),
        (
            b"PRIVMSG bob :\x01DCC TSEND f 172818433 5015 1\x01\r\n",
            5015,
        ),
        (b"PRIVMSG bob :\x01DCC SEND f 172818433 80 1\x01\r\n", 80),
        (
            b"PRIVMSG bob :\x01DCC SEND f 172818433 70546 1\x01\r\n",
            5010,
        ),
        (
            b"PRIVMSG bob :\x01DCC FOO x 1 2 :\x01DCC SEND f 172818433 5016 1\x01\r\n",
            5016,
        ),
    ];
    for (line, port) in cases {
        let mut b = Machine::default();
        let seen = irc(&mut b).client(&mut b, line, 2.0);
        assert!(seen.accepted);
        assert_eq!(b.dports(2.0), vec![port], "{line:?}");
        let live = b.exp.live(2.0);
        assert_eq!(
            proc_expect_line(live[0], 2.5),
            format!("299 l3proto = 2 proto=6 src=0.0.0.0 dst=10.77.0.1 sport=0 dport={port} irc\n")
        );
    }
    let mut b = Machine::default();
    let seen = irc(&mut b).client(&mut b, cases[1].0, 2.0);
    assert_eq!(
        seen.reason,
        "irc: DCC CHAT offer, expecting TCP any:any → 10.77.0.1:5001"
    );
}

#[test]
fn dcc_texts_that_give_nothing_and_pass() {
    let cases: [&[u8]; 11] = [
        b"PRIVMSG bob :\x01DCC SEND f 172818441 5010 1\x01\r\n",
        b"PRIVMSG bob :\x01DCC SEND f 172818433 0 1\x01\r\n",
        b"PRIVMSG bob :\x01DCC SEND f 172818433 5011\x01",
        b"PRIVMSG bob :\x01DCC RESUME file.txt 5000 1000\x01\r\n",
        b"PRIVMSG bob :\x01DCC ACCEPT file.txt 5000 1000\x01\r\n",
        b"NOTICE bob :\x01DCC SEND f 172818433 5012 1\x01\r\n",
        b"PRIVMSG bob :hello :\x01DCC SEND f 172818433 5017 1\x01\r\n",
        b"PRIVMSG bob :\x01dcc SEND f 172818433 5018 1\x01\r\n",
        b"PRIVMSG bob :\x01DCC send f 172818433 5019 1\x01\r\n",
        b"PRIVMSG bob :\x01DCC SEND \"my file\" 172818433 5020 1\x01\r\n",
        b"PRIVMSG bob :\x01DCC SEND f 1 5000\x01 :\x01DCC SEND f 172818433 5001\x01\n",
    ];
    for line in cases {
        let mut b = Machine::default();
        let seen = irc(&mut b).client(&mut b, line, 2.0);
        assert!(seen.accepted && b.dports(2.0).is_empty(), "{line:?}");
    }
}

#[test]
fn spoofed_address_is_reported() {
    let mut b = Machine::default();
    let seen = irc(&mut b).client(
        &mut b,
        b"PRIVMSG bob :\x01DCC SEND f 172818441 5010 1\x01\r\n",
        2.0,
    );
    assert_eq!(
        seen.reason,
        "irc: forged DCC SEND offer for 10.77.0.9:5010 (client is 10.77.0.1): no expectation"
    );
}

#[test]
fn only_the_first_offer_of_a_segment_counts() {
    let mut b = Machine::default();
    irc(&mut b).client(
        &mut b,
        b"PRIVMSG bob :\x01DCC SEND a 172818433 5021 1\x01\r\nPRIVMSG bob :\x01DCC SEND b 172818433 5022 1\x01\r\n",
        2.0,
    );
    assert_eq!(b.dports(2.0), vec![5021]);
}

#[test]
fn offers_from_the_server_side_are_ignored() {
    let mut b = Machine::default();
    let mut ctl = irc(&mut b);
    ctl.server(&mut b, b":x NOTICE y :hi\r\n", 1.5);
    ctl.server(
        &mut b,
        b"PRIVMSG bob :\x01DCC SEND f 172818434 5023 1\x01\r\n",
        2.0,
    );
    assert!(b.dports(2.0).is_empty());
}

#[test]
fn ninth_offer_evicts_the_oldest() {
    let mut b = Machine::default();
    let mut ctl = irc(&mut b);
    for n in 0..9 {
        let line = format!(
            "PRIVMSG bob :\x01DCC SEND f 172818433 {} 1\x01\r\n",
            6000 + n
        );
        ctl.client(&mut b, line.as_bytes(), 2.0);
    }
    assert_eq!(b.dports(2.0), (6001..6009).collect::<Vec<u16>>());
}

#[test]
fn anyone_may_connect_to_the_offered_port_once() {
    let mut b = Machine::default();
    irc(&mut b).client(
        &mut b,
        b"PRIVMSG bob :\x01DCC CHAT chat 172818433 5001\x01\r\n",
        2.0,
    );
    assert_eq!(
        b.send(&syn("192.0.2.7", C4, 33000, 5001), 3.0).state,
        "RELATED"
    );
    assert_eq!(b.send(&syn("192.0.2.8", C4, 33000, 5001), 3.0).state, "NEW");
}

#[test]
fn short_messages_are_not_scanned() {
    assert_eq!(find_dcc(b"PRIVMSG b :\x01DCC SEND f 1 2\n"), None);
    assert_eq!(
        find_dcc(b"PRIVMSG bob :\x01DCC SEND f 172818433 5000\x01\n"),
        Some(DccOffer {
            kind: "SEND",
            description: "DCC SEND offer",
            address: CLIENT,
            port: 5000,
            span: (25, 39)
        })
    );
}

#[test]
fn ipv6_irc_is_not_helped() {
    assert!(_core::helpers::find_helper("irc", 6, _core::packet::PROTO_TCP).is_none());
}
