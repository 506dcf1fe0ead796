//! Property tests: every helper parser takes hostile payloads without
//! panicking (no out-of-range indexing, no overflow, bounded work), and
//! whole helper runs keep the expectation table within its limits.

mod helpers_kit;

use proptest::prelude::*;

use _core::config::HelperParams;
use _core::conntrack::conn::*;
use _core::conntrack::expect::ExpectationTable;
use _core::helpers::amanda::{amanda_help, connect_ports};
use _core::helpers::common::HelperEnv;
use _core::helpers::ftp::{
    delimited_port, ftp_help, numbers, parse_command, parse_ipv4_tail, parse_ipv6,
};
use _core::helpers::irc::{find_dcc, irc_help};
use _core::helpers::tftp::tftp_help;
use _core::nat::NatRng;
use _core::packet::{PROTO_TCP, PROTO_UDP};

/// The helpers' environment at time 1.0 with room for 8 expectations.
fn env<'a>(table: &'a mut ExpectationTable, rng: &'a mut NatRng) -> HelperEnv<'a> {
    HelperEnv {
        table,
        now: 1.0,
        expect_max: 8,
        rng,
    }
}
use helpers_kit::*;

const CASES: u32 = 2500;

/// Bytes that steer the grammars: digits, separators, hex, keywords' letters.
fn grammar_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => prop::sample::select(b"0123456789".to_vec()),
        3 => prop::sample::select(b",.|:()!x= \r\n\x00\x01afAF".to_vec()),
        1 => any::<u8>(),
    ]
}

fn with_prefix(prefixes: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(prefixes),
        prop::collection::vec(grammar_byte(), 0..120),
    )
        .prop_map(|(p, rest)| {
            let mut v = p.to_vec();
            v.extend(rest);
            v
        })
}

const FTP_PREFIXES: &[&[u8]] = &[
    b"",
    b"P",
    b"PORT",
    b"PORT ",
    b"port ",
    b"EPRT",
    b"EPRT |1|",
    b"EPRT |2|",
    b"EPRT x1x",
    b"2",
    b"227",
    b"227 ",
    b"227 (",
    b"229 ",
    b"229 (|||",
    b"229 (!!!",
];
const IRC_PREFIXES: &[&[u8]] = &[
    b"",
    b"PRIVMSG ",
    b"PRIVMSG bob :\x01DCC ",
    b"PRIVMSG bob :\x01DCC SEND ",
    b"PRIVMSG bob :\x01DCC CHAT x ",
    b"  \r\nprivmsg a :\x01DCC TSEND f ",
    b"PRIVMSG bob :\x01DCC FOO x :\x01DCC SCHAT ",
];
const AMANDA_PREFIXES: &[&[u8]] = &[
    b"",
    b"CONNECT ",
    b"CONNECT DATA ",
    b"xCONNECT MESG 1 INDEX ",
    b"CONNECT STATE ",
];

fn master(family: u8, proto: u8, sport: u16, dport: u16) -> Conn {
    let (c, s) = if family == 4 {
        (ip(C4), ip(S4))
    } else {
        (ip(C6), ip(S6))
    };
    let mut conn = Conn::new(
        family,
        proto,
        0,
        Tuple::new(c, s, sport, dport),
        Tuple::new(s, c, dport, sport),
        0.0,
    );
    conn.status |= IPS_CONFIRMED | IPS_SEEN_REPLY;
    conn.id = 1;
    conn
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn ftp_grammars_never_panic(data in with_prefix(FTP_PREFIXES), raw in prop::collection::vec(any::<u8>(), 0..64)) {
        for input in [&data, &raw] {
            for direction in [ORIGINAL, REPLY] {
                for family in [4u8, 6] {
                    let _ = parse_command(input, direction, family);
                }
            }
        }
    }

    #[test]
    fn ftp_pieces_never_panic(data in prop::collection::vec(grammar_byte(), 0..80), start in 0usize..100, delim in any::<u8>()) {
        let _ = parse_ipv6(&data, start, delim);
        let _ = parse_ipv4_tail(&data, start, delim);
        let _ = delimited_port(&data, start, delim);
        let _ = numbers::<6>(&data, start, b',', Some(b'\r'));
        let _ = numbers::<4>(&data, start, b'.', None);
        if let Some((_, end)) = parse_ipv6(&data, start, delim) {
            prop_assert!(end <= data.len().max(start));
        }
    }

    #[test]
    fn ipv6_text_of_real_addresses_parses_back(words in prop::array::uniform8(prop_oneof![Just(0u16), any::<u16>()])) {
        let address = std::net::Ipv6Addr::from(words);
        let text = format!("|{address}|");
        let parsed = parse_ipv6(text.as_bytes(), 1, b'|');
        prop_assert_eq!(parsed, Some((u128::from(address), text.len() - 1)));
    }

    #[test]
    fn irc_scan_never_panics(data in with_prefix(IRC_PREFIXES), raw in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = find_dcc(&data);
        let _ = find_dcc(&raw);
    }

    #[test]
    fn amanda_scan_never_panics(data in with_prefix(AMANDA_PREFIXES)) {
        let ports = connect_ports(&data);
        prop_assert!(ports.len() <= 4);
        prop_assert!(ports.iter().all(|p| p.port != 0));
    }

    #[test]
    fn whole_helpers_take_any_payload(
        ftp in with_prefix(FTP_PREFIXES),
        irc in with_prefix(IRC_PREFIXES),
        amanda in with_prefix(AMANDA_PREFIXES),
        tftp in prop::collection::vec(any::<u8>(), 0..16),
        seq in any::<u32>(),
        ctinfo in prop::sample::select(vec![CT_NEW, CT_ESTABLISHED, CT_RELATED, CT_ESTABLISHED_REPLY, CT_RELATED_REPLY]),
        family in prop::sample::select(vec![4u8, 6]),
    ) {
        let mut table = ExpectationTable::new(HelperParams::default());
        let mut rng = NatRng::new(1);
        let (c, s) = if family == 4 { (C4, S4) } else { (C6, S6) };
        let id = ConnId(3);
        let ftp_master = master(family, PROTO_TCP, 46182, 21);
        for (n, payload) in [&ftp, &ftp].into_iter().enumerate() {
            // The second time the segment sits at a remembered position.
            let start = seq.wrapping_add(if n == 0 { 0 } else { 1 });
            let lead = tcp(c, s, 46182, 21, "PA", seq, 1, b"\n");
            let _ = ftp_help(&ftp_master, id, ctinfo, &lead.packet(0, 1.0), &mut env(&mut table, &mut rng));
            let raw = tcp(c, s, 46182, 21, "PA", start, 1, payload);
            let verdict = ftp_help(&ftp_master, id, ctinfo, &raw.packet(1, 1.0), &mut env(&mut table, &mut rng));
            prop_assert!(verdict.accept || verdict.reason.starts_with("dropped by the ftp helper"));
        }
        let irc_master = master(family, PROTO_TCP, 40123, 6667);
        let raw = tcp(c, s, 40123, 6667, "PA", seq, 1, &irc);
        let _ = irc_help(&irc_master, ConnId(4), ctinfo, &raw.packet(2, 1.0), &mut env(&mut table, &mut rng));
        let udp_master = master(family, PROTO_UDP, 850, 10080);
        let raw = udp(s, c, 10080, 850, &amanda);
        let verdict = amanda_help(&udp_master, ConnId(5), ctinfo, &raw.packet(3, 1.0), &mut env(&mut table, &mut rng));
        prop_assert_eq!(verdict.master_timeout.is_some(), ctinfo >= CT_ESTABLISHED_REPLY);
        let raw = udp(c, s, 12345, 69, &tftp);
        let _ = tftp_help(&udp_master, ConnId(6), ctinfo, &raw.packet(4, 1.0), &mut env(&mut table, &mut rng));
        prop_assert!(table.count() <= 8);
        for id in 3..7 {
            table.master_destroyed(ConnId(id), 2.0);
        }
        prop_assert_eq!(table.count(), 0);
    }
}
