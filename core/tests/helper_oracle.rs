//! The helper parsers (FTP commands and replies, EPRT/EPSV IPv6 addresses,
//! IRC DCC offers, Amanda CONNECT ports) against recorded reference answers:
//! data/helper_oracle.txt holds random and templated inputs, mutated, each
//! with the answer the parser must give ("E" marks an input with no answer,
//! on which the parser must merely not panic).

use _core::helpers::amanda::connect_ports;
use _core::helpers::ftp::{parse_command, parse_ipv6, Parsed};
use _core::helpers::irc::find_dcc;

const ORACLE: &str = include_str!("data/helper_oracle.txt");

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn command(parsed: &Parsed) -> String {
    match parsed {
        Parsed::Nothing => "N".into(),
        Parsed::Partial(why) => format!("P:{why}"),
        Parsed::Command(c) => format!(
            "C:{}|{}|{}|{}",
            c.description,
            c.address.map_or("-".to_string(), |a| format!("{a:x}")),
            c.port,
            u8::from(c.full_address)
        ),
    }
}

#[test]
fn parsers_give_the_recorded_answers() {
    let mut checked = 0;
    for line in ORACLE.lines() {
        let mut parts = line.split('\t');
        let (what, args, want) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap_or(""),
        );
        let mut args = args.split(' ');
        let data = unhex(args.next().unwrap());
        let got = match what {
            "ftp" => {
                let direction: u8 = args.next().unwrap().parse().unwrap();
                let family: u8 = args.next().unwrap().parse().unwrap();
                command(&parse_command(&data, direction, family))
            }
            "ipv6" => match parse_ipv6(&data, 1, b'|') {
                None => "N".into(),
                Some((address, end)) => format!("{address:x} {end}"),
            },
            "irc" => {
                if want == "E" {
                    // No answer recorded: the parser must merely not panic.
                    let _ = find_dcc(&data);
                    continue;
                }
                match find_dcc(&data) {
                    None => "N".into(),
                    Some(o) => format!("{} {} {}", o.kind, o.address, o.port),
                }
            }
            "amanda" => connect_ports(&data)
                .iter()
                .map(|p| format!("{}:{}", p.port, p.keyword))
                .collect::<Vec<_>>()
                .join(" "),
            other => panic!("unknown oracle line {other}"),
        };
        assert_eq!(got, want, "{what} {line}");
        checked += 1;
    }
    assert!(checked > 3000, "{checked}");
}
