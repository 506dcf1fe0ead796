//! The core's helper parsers against statewall's Python parsers: the
//! answers in data/helper_oracle.txt were written by
//! data/gen_helper_oracle.py from the Python code (random and templated
//! inputs, mutated), and the core must give the same ones.

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
fn parsers_answer_as_the_python_ones() {
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
                    // Python raised; the core must merely not panic.
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
                .map(|(port, keyword, _)| format!("{port}:{keyword}"))
                .collect::<Vec<_>>()
                .join(" "),
            other => panic!("unknown oracle line {other}"),
        };
        assert_eq!(got, want, "{what} {line}");
        checked += 1;
    }
    assert!(checked > 3000, "{checked}");
}
