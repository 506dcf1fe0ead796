//! JSON text exactly as Python's `json.dumps(..., separators=(",", ":"))`
//! writes it: ASCII only (`ensure_ascii`), floats as Python's `repr`.

use crate::output::Sink;

/// A JSON string literal with Python's escaping: `\"`, `\\`, the short
/// escapes for \n \r \t \b \f, `\u00XX` for other control characters and
/// `\uXXXX` (lowercase hex, surrogate pairs above the BMP) for non-ASCII.
pub fn push_str<S: Sink + ?Sized>(out: &mut S, text: &str) {
    out.ch('"');
    push_str_body(out, text);
    out.ch('"');
}

/// What `push_str` writes between the quotes.
pub fn push_str_body<S: Sink + ?Sized>(out: &mut S, text: &str) {
    let bytes = text.as_bytes();
    let mut plain_from = 0;
    let mut at = 0;
    while at < bytes.len() {
        // Eight bytes at a time while none needs escaping (most text).
        if let Some(chunk) = bytes.get(at..at + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !needs_escape(u64::from_le_bytes(word)) {
                at += 8;
                continue;
            }
        }
        let byte = bytes[at];
        // Printable ASCII other than the quote and the backslash goes as it is.
        if (b' '..=b'~').contains(&byte) && byte != b'"' && byte != b'\\' {
            at += 1;
            continue;
        }
        out.text(&text[plain_from..at]);
        let ch = text[at..].chars().next().unwrap_or('\u{fffd}');
        match ch {
            '"' => out.text("\\\""),
            '\\' => out.text("\\\\"),
            '\n' => out.text("\\n"),
            '\r' => out.text("\\r"),
            '\t' => out.text("\\t"),
            '\u{8}' => out.text("\\b"),
            '\u{c}' => out.text("\\f"),
            _ => {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    crate::sink_write!(out, "\\u{unit:04x}");
                }
            }
        }
        at += ch.len_utf8();
        plain_from = at;
    }
    out.text(&text[plain_from..]);
}

/// Whether any of the eight bytes of `word` is outside printable ASCII or
/// is a quote or a backslash (bit tricks on the whole word at once).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let control = word.wrapping_sub(0x20 * ONES) & !word & HIGH;
    let non_ascii = word & HIGH;
    let special = has_zero(word ^ (u64::from(b'"') * ONES))
        | has_zero(word ^ (u64::from(b'\\') * ONES))
        | has_zero(word ^ (0x7f * ONES));
    control | non_ascii | special != 0
}

/// A float as Python's `repr` (and so `json.dumps`) writes it: the shortest
/// text that reads back to the same value, in positional notation for
/// decimal exponents -4 to 15 (always with a fractional part) and in
/// scientific notation (`1e+16`, `1.5e-05`) outside that range.
pub fn push_f64<S: Sink + ?Sized>(out: &mut S, value: f64) {
    if value.is_nan() {
        out.text("NaN");
        return;
    }
    if value.is_infinite() {
        out.text(if value > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    // Ryu gives the shortest digits that read back to the same value, as
    // repr does; only the layout differs, so the digits and the decimal
    // exponent are taken from its text and laid out as repr lays them out.
    let mut ryu = ryu::Buffer::new();
    let text = ryu.format_finite(value);
    let (sign, text) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let (mantissa, e) = text.split_once('e').unwrap_or((text, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    let int_len = mantissa.find('.').unwrap_or(mantissa.len()) as i32;
    let mut all = [0u8; 32];
    let mut len = 0;
    for &b in mantissa
        .as_bytes()
        .iter()
        .filter(|b| b.is_ascii_digit())
        .take(all.len())
    {
        all[len] = b;
        len += 1;
    }
    let leading = all[..len].iter().take_while(|&&b| b == b'0').count();
    if leading == len {
        out.text(sign);
        out.text("0.0");
        return;
    }
    let trailing = all[..len].iter().rev().take_while(|&&b| b == b'0').count();
    let digits = std::str::from_utf8(&all[leading..len - trailing]).unwrap_or("0");
    // The exponent of the first significant digit, as `{:e}` would give it.
    let exponent = int_len - 1 - leading as i32 + e;

    out.text(sign);
    if (-4..16).contains(&exponent) {
        let point = exponent + 1; // digits before the decimal point
        if point <= 0 {
            out.text("0.");
            for _ in 0..-point {
                out.ch('0');
            }
            out.text(digits);
        } else {
            let point = point as usize;
            if digits.len() <= point {
                out.text(digits);
                for _ in digits.len()..point {
                    out.ch('0');
                }
                out.text(".0");
            } else {
                out.text(&digits[..point]);
                out.ch('.');
                out.text(&digits[point..]);
            }
        }
    } else {
        out.text(&digits[..1]);
        if digits.len() > 1 {
            out.ch('.');
            out.text(&digits[1..]);
        }
        crate::sink_write!(
            out,
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.abs()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(value: f64) -> String {
        let mut out = String::new();
        push_f64(&mut out, value);
        out
    }

    /// Bit patterns and the text Python's `repr` gives them: edge cases and
    /// random doubles of every magnitude.
    #[test]
    fn floats_as_python_repr_writes_them() {
        let cases: &[(u64, &str)] = &[
            (0x0000000000000000, "0.0"),
            (0x8000000000000000, "-0.0"),
            (0x3ff0000000000000, "1.0"),
            (0x3fb999999999999a, "0.1"),
            (0x4341c37937e08000, "1e+16"),
            (0x430c6bf526340000, "1000000000000000.0"),
            (0x42dc12218377de66, "123456789012345.6"),
            (0x3f1a36e2eb1c432d, "0.0001"),
            (0x3ee4f8b588e368f1, "1e-05"),
            (0x3eef75104d551d69, "1.5e-05"),
            (0xc004000000000000, "-2.5"),
            (0x41d954fc4007e6b4, "1700000000.123456"),
            (0x41d954fc4007e6b7, "1700000000.1234567"),
            (0x0000000000000001, "5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0x4341c37937e07fff, "9999999999999998.0"),
            (0x3fd3333333333334, "0.30000000000000004"),
            (0x4059000000000000, "100.0"),
            (0x4480f0cf064dd592, "1e+22"),
            (0x3e4a8310bc7a31bf, "1.23456e-08"),
            (0x4340000000000000, "9007199254740992.0"),
            (0x3fd5555555555555, "0.3333333333333333"),
            (0xf2a74de452e6b438, "-1.989032661366619e+244"),
            (0x41d12624257b2b0a, "1150849173.924502"),
            (0x3ea5d77c0b473258, "6.509344730398537e-07"),
            (0x892f902bd23f0824, "-1.9577373031172786e-264"),
            (0x41d04dc65e7c23c2, "1094130041.9396825"),
            (0x418bca1c84b901d3, "58278800.59033551"),
            (0x099950d836f675cc, "2.0099045415523394e-262"),
            (0x41d02e8f586c1b64, "1085947233.6891718"),
            (0x3fa56910e6d8d9e4, "0.04181721513707595"),
            (0x8d116ece1738f7d9, "-9.973130378568733e-246"),
            (0x41d53a1c05491ef3, "1424519189.142514"),
            (0x3ee15720e82b4517, "8.268521246720382e-06"),
            (0x39263059f28c105d, "2.1367106979533398e-33"),
            (0x41d84c581eeed4c8, "1630625915.7317371"),
            (0x3e6f4ca60056534d, "5.829969044604073e-08"),
            (0x95e60af593bd04cf, "-3.51527970626667e-203"),
            (0x41d4cfe9c6a9a662, "1396680474.6507802"),
            (0x3e7a34c624fa07d3, "9.7625510559292e-08"),
            (0xdbc496cb8e81973e, "-1.1691339166025232e+134"),
            (0x41d0e2b8081c4342, "1133174816.441605"),
            (0x41b8fb8de3924b8c, "419139043.57146525"),
            (0x922766581e27a1c0, "-3.2367190832119987e-221"),
            (0x41d37f7648068618, "1308481824.1019344"),
            (0x3f4abe2a02cb21b4, "0.0008161263591200314"),
            (0x94e3bf911a61dbe2, "-4.805547711536507e-208"),
            (0x41d769ab49da5ace, "1571204391.4117923"),
            (0x3ebf84ffc8e52aaf, "1.8787102678714353e-06"),
            (0xb64ce4228c38fb29, "-3.953625698224792e-47"),
            (0x41cfac6fb77c95da, "1062788974.9733231"),
            (0x3f4387b56108ddae, "0.0005960116996623266"),
            (0xae2eb1547f150524, "-3.0857894137963574e-86"),
            (0x41d6d30c8da521c3, "1531720246.5801857"),
            (0x4127b8198cca48ca, "777228.774980807"),
            (0xec66a78795e761d1, "-1.525315701232403e+214"),
            (0x41d5a7755e17bac8, "1453184376.3707752"),
            (0x435a9fe992160cfb, "2.9976699686368236e+16"),
            (0xb2f14c942e05319a, "-2.628241891952923e-63"),
            (0x41da8582dfa56440, "1779829630.5842438"),
            (0x3fea318ffefa1944, "0.8185501079576984"),
            (0x7ebff20686734721, "3.422978398947072e+302"),
            (0x41dbf114f5e4b30f, "1875137495.5734289"),
            (0x401d2d850f3e81fc, "7.294452894392176"),
            (0xfaecbd389be4bcfc, "-1.3354873312811948e+284"),
            (0x41cffbdf71bad667, "1073200867.459668"),
            (0x3f40c66761f7f834, "0.0005119328306475491"),
            (0x5790f82ec1d3fcff, "6.529598674765832e+113"),
            (0x41d12a78e5aa45b6, "1151984534.6605048"),
            (0x3e6a4041f76b8f16, "4.8896310047580557e-08"),
            (0xab1031d0f646e1f4, "-2.892221502281467e-101"),
            (0x41d00ecbc08b9227, "1077620482.1807954"),
            (0x4368c896356eec10, "5.580757526533747e+16"),
            (0xd17f9acae01f5057, "-3.8373366379117136e+84"),
            (0x41d3938c8e364738, "1313747512.8480968"),
            (0x4230304888735dae, "69529536627.36594"),
            (0x9474031b7f26144b, "-3.804490737600491e-210"),
            (0x41dac69951f49500, "1796891975.8215942"),
            (0x3e72755a99535cb7, "6.876294940686056e-08"),
            (0x451abd81f1d69ed6, "8.08174890787967e+24"),
            (0x41d5f73d285adb74, "1474098337.4196444"),
            (0x3e71d404ea8261ba, "6.641522054746744e-08"),
            (0xb394fb36bb2d420f, "-3.2641743650562687e-60"),
            (0x41d383c174209998, "1309607376.5093746"),
            (0x4295068b30f5a4b9, "5779462307177.181"),
            (0x72158370d269a9a5, "3.5862982565236525e+241"),
            (0x41d32457d306068a, "1284595532.094149"),
            (0x428c11ecf36498de, "3857914424467.1084"),
            (0x05c6af0758d5563d, "7.81030621256862e-281"),
            (0x41dceafc9da9599a, "1940648566.6460938"),
            (0x42208d765f9411b7, "35546410954.0346"),
            (0x7e62aa0a1df9fd78, "6.249646571111859e+300"),
            (0x41cf8f2e59aa6861, "1058954419.3313104"),
            (0x3f142386397776d4, "7.682329884725207e-05"),
            (0x3f63af83bd0561e6, "0.0024030278220090627"),
            (0x41d4d48e73a2f57a, "1397897678.5462327"),
            (0x41617ca44860abaf, "9168162.261800615"),
            (0x2a96fb1a14a0f9e7, "1.6032007377980954e-103"),
            (0x41d59836123cc1d7, "1449187400.949331"),
            (0x4407d402250c1a99, "5.494399091440374e+19"),
            (0xd1bc52d9230d977e, "-5.502342665287363e+85"),
            (0x41d55101ccc5b36a, "1430521651.0890756"),
            (0x42c905660cb6dfd3, "55021955280319.65"),
            (0xfc891b4a6a50df4d, "-7.829495745681799e+291"),
            (0x41d43f4cf7553957, "1358771165.3316247"),
            (0x3fb6a2a5679e0eb9, "0.0884192827198217"),
            (0x153e7c2a26a2c0bd, "2.373829056313949e-206"),
            (0x41d186ea201f623a, "1176217728.4903703"),
            (0x3f97c09c2ed43a3a, "0.023195686681953577"),
            (0x7c26847f0316909e, "1.0972036134823183e+290"),
            (0x41db49114e645ece, "1831093561.5682864"),
            (0x3ffd2cc39d41433f, "1.823428739811973"),
            (0x254b0c4e010c4759, "4.877621251706118e-129"),
            (0x41d524d9f1480560, "1418946501.125328"),
            (0x41eb82f3f61e4fe7, "3692535728.9472537"),
            (0xf3fe39c0519088f5, "-5.4101736923461194e+250"),
            (0x41d0c568ce1fbe16, "1125491512.495977"),
            (0x4234013e216884c1, "85920194920.51857"),
            (0xad1b72dba7abe1c2, "-2.1054384047219783e-91"),
            (0x41d9ecc08af0ec2e, "1739784747.7644153"),
            (0x43cfaf9f3ace1291, "4.5664372220287473e+18"),
            (0xf3aed0b6c7ac1491, "-1.7236642596087033e+249"),
            (0x41dbeeb348089b44, "1874513184.1344767"),
            (0x40bf2abb30b516f5, "7978.731211965661"),
            (0x66237a0465e7e423, "1.0344777957474994e+184"),
            (0x41d4c62553fe6c5e, "1394120015.9753642"),
            (0x40b2cf3a6a1cdca9, "4815.228181651947"),
            (0x30cbc97d0fef7928, "1.2286657182299287e-73"),
            (0x41cfcf374febe83d, "1067347615.8430248"),
            (0x3f2b5cee1bb300c5, "0.00020876318544616447"),
            (0x570dc1951c2442f9, "2.2362770983306387e+111"),
            (0x41d7da4a3720496c, "1600727260.5044813"),
            (0x41ce82f184a048c7, "1023795977.252221"),
            (0x895fd7b326b94c7f, "-1.5800543282391385e-263"),
            (0x41d069c0cc017239, "1101464368.0225966"),
            (0x3e2f3bdde300aa0f, "3.63609922034571e-09"),
            (0xdfd43f371200339d, "-4.2416719218355095e+153"),
            (0x41d1fff94ab1d718, "1207952682.7787533"),
            (0x4255e6411e239c39, "376229361806.441"),
            (0xf4998d7c4093f6de, "-4.683524268002167e+253"),
            (0x41d413e21a836fd8, "1347389546.0537014"),
            (0x3ece8c59ae4cec28, "3.6416343952828247e-06"),
        ];
        for &(bits, expected) in cases {
            assert_eq!(float(f64::from_bits(bits)), expected, "{bits:#x}");
        }
    }

    fn string(text: &str) -> String {
        let mut out = String::new();
        push_str(&mut out, text);
        out
    }

    #[test]
    fn floats_as_python_repr() {
        // Expected strings are Python 3.11's repr of the same values.
        assert_eq!(float(1.5), "1.5");
        assert_eq!(float(0.0), "0.0");
        assert_eq!(float(-0.0), "-0.0");
        assert_eq!(float(1700000000.0), "1700000000.0");
        assert_eq!(float(1700000000.000123), "1700000000.000123");
        assert_eq!(float(1e16), "1e+16");
        assert_eq!(float(1.5e16), "1.5e+16");
        assert_eq!(float(123456789012345.6), "123456789012345.6");
        assert_eq!(float(0.0001), "0.0001");
        assert_eq!(float(0.00001), "1e-05");
        assert_eq!(float(1.25e-7), "1.25e-07");
        assert_eq!(float(0.1), "0.1");
        assert_eq!(float(-2.5), "-2.5");
        assert_eq!(float(1e300), "1e+300");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(f64::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn strings_as_python_json_dumps() {
        assert_eq!(string("plain"), "\"plain\"");
        assert_eq!(string("NONE → SYN_SENT"), "\"NONE \\u2192 SYN_SENT\"");
        assert_eq!(
            string("a\"b\\c\nd\te\u{1}"),
            "\"a\\\"b\\\\c\\nd\\te\\u0001\""
        );
        assert_eq!(string("\u{1F600}"), "\"\\ud83d\\ude00\"");
        assert_eq!(string("\u{7f}"), "\"\\u007f\"");
    }
}
