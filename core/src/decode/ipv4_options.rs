//! IPv4 options as the receive path judges them (ip_options.c:
//! `ip_options_compile`, called by `ip_rcv_options` in ip_input.c).
//!
//! After PREROUTING, the kernel parses the options of every IPv4 header
//! longer than 20 bytes. A list it cannot parse makes the datagram a header
//! error (dropped, and a parameter problem pointing at the faulty byte), and
//! a datagram carrying a loose or strict source route is then dropped unless
//! the interface accepts source routing. Only the received-packet checks
//! apply here: the extra ones for options a local socket sets, and the
//! rewriting of record-route and timestamp slots, do not change the outcome.
//!
//! CIPSO (type 134) is always rejected: validating it needs a configured
//! CIPSO DOI, and a stock system has none.

use crate::packet::Ipv4Options;

pub const IPOPT_END: u8 = 0;
pub const IPOPT_NOOP: u8 = 1;
pub const IPOPT_RR: u8 = 7;
pub const IPOPT_TIMESTAMP: u8 = 68;
pub const IPOPT_LSRR: u8 = 131;
pub const IPOPT_CIPSO: u8 = 134;
pub const IPOPT_SSRR: u8 = 137;
pub const IPOPT_RA: u8 = 148;

const IPOPT_TS_TSANDADDR: u8 = 1;
const IPOPT_TS_PRESPEC: u8 = 3;

/// Judge the option bytes of an IPv4 header (the bytes after the first 20).
///
/// Returns `Ipv4Options::None` for an empty list.
pub fn compile_ipv4_options(opts: &[u8]) -> Ipv4Options {
    if opts.is_empty() {
        return Ipv4Options::None;
    }
    // Offsets in a parameter problem count from the start of the IP header.
    let bad = |at: usize, reason: &'static str| Ipv4Options::Malformed {
        pointer: (20 + at).min(255) as u8,
        reason,
    };
    let mut source_route: Option<bool> = None;
    let (mut record_route, mut timestamp) = (false, false);
    let mut i = 0usize;
    while let Some(&kind) = opts.get(i) {
        match kind {
            // Whatever follows end-of-list is padding (the kernel blanks it).
            IPOPT_END => break,
            IPOPT_NOOP => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let left = opts.len() - i;
        if left < 2 {
            return bad(i, "option type without a length byte");
        }
        let optlen = usize::from(opts.get(i + 1).copied().unwrap_or(0));
        if optlen < 2 || optlen > left {
            return bad(i, "option length below 2 or past the header");
        }
        let pointer = usize::from(opts.get(i + 2).copied().unwrap_or(0));
        let flags = opts.get(i + 3).copied().unwrap_or(0);
        match kind {
            IPOPT_LSRR | IPOPT_SSRR => {
                if optlen < 3 {
                    return bad(i + 1, "source route option too short for a pointer");
                }
                if pointer < 4 {
                    return bad(i + 2, "source route pointer below 4");
                }
                if source_route.is_some() {
                    return bad(i, "more than one source route option");
                }
                source_route = Some(kind == IPOPT_SSRR);
            }
            IPOPT_RR => {
                if record_route {
                    return bad(i, "more than one record route option");
                }
                if optlen < 3 {
                    return bad(i + 1, "record route option too short for a pointer");
                }
                if pointer < 4 {
                    return bad(i + 2, "record route pointer below 4");
                }
                if pointer <= optlen && pointer + 3 > optlen {
                    return bad(i + 2, "record route pointer leaves no room for an address");
                }
                record_route = true;
            }
            IPOPT_TIMESTAMP => {
                if timestamp {
                    return bad(i, "more than one timestamp option");
                }
                if optlen < 4 {
                    return bad(i + 1, "timestamp option too short for its flags");
                }
                if pointer < 5 {
                    return bad(i + 2, "timestamp pointer below 5");
                }
                let kind_of_stamp = flags & 0xF;
                if pointer <= optlen {
                    if pointer + 3 > optlen {
                        return bad(i + 2, "timestamp pointer leaves no room for a timestamp");
                    }
                    let with_address =
                        kind_of_stamp == IPOPT_TS_TSANDADDR || kind_of_stamp == IPOPT_TS_PRESPEC;
                    if with_address && pointer + 7 > optlen {
                        return bad(
                            i + 2,
                            "timestamp pointer leaves no room for an address and a timestamp",
                        );
                    }
                } else if kind_of_stamp != IPOPT_TS_PRESPEC && flags >> 4 == 15 {
                    return bad(i + 3, "timestamp overflow count already at 15");
                }
                timestamp = true;
            }
            IPOPT_RA if optlen < 4 => {
                return bad(i + 1, "router alert option shorter than 4 bytes");
            }
            // The first CIPSO option already fails, so a second is never reached.
            IPOPT_CIPSO => {
                if optlen < 8 {
                    return bad(i + 1, "CIPSO option shorter than 8 bytes");
                }
                return bad(i + 2, "CIPSO option for a DOI that is not configured");
            }
            // Security, stream id and unknown options pass on receive.
            _ => {}
        }
        i += optlen;
    }
    match source_route {
        Some(strict) => Ipv4Options::SourceRouted { strict },
        None => Ipv4Options::Ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn malformed_at(opts: &[u8]) -> Option<u8> {
        match compile_ipv4_options(opts) {
            Ipv4Options::Malformed { pointer, .. } => Some(pointer),
            _ => None,
        }
    }

    #[test]
    fn padding_and_no_ops_are_fine() {
        assert_eq!(compile_ipv4_options(&[1, 1, 1, 0]), Ipv4Options::Ok);
        // Anything after end-of-list is ignored, even garbage.
        assert_eq!(compile_ipv4_options(&[0, 7, 1, 0]), Ipv4Options::Ok);
        assert_eq!(compile_ipv4_options(&[]), Ipv4Options::None);
    }

    #[test]
    fn record_route_with_room_is_ok() {
        let rr = [7, 7, 4, 0, 0, 0, 0, 0];
        assert_eq!(compile_ipv4_options(&rr), Ipv4Options::Ok);
        // A full record route (pointer past the end) is fine too.
        assert_eq!(
            compile_ipv4_options(&[7, 7, 8, 0, 0, 0, 0, 0]),
            Ipv4Options::Ok
        );
    }

    #[test]
    fn lengths_that_do_not_fit_are_header_errors() {
        assert_eq!(malformed_at(&[7, 12, 4, 0]), Some(20)); // runs past the header
        assert_eq!(malformed_at(&[7, 1, 4, 0]), Some(20)); // below 2
        assert_eq!(malformed_at(&[1, 1, 1, 7]), Some(23)); // no length byte
    }

    #[test]
    fn pointers_out_of_range() {
        assert_eq!(malformed_at(&[7, 7, 3, 0, 0, 0, 0, 0]), Some(22));
        assert_eq!(malformed_at(&[7, 7, 5, 0, 0, 0, 0, 0]), Some(22)); // 5 + 3 > 7
        assert_eq!(malformed_at(&[131, 7, 2, 0, 0, 0, 0, 0]), Some(22));
        assert_eq!(malformed_at(&[131, 2, 1, 0]), Some(21)); // no room for a pointer
        assert_eq!(malformed_at(&[68, 8, 4, 0, 0, 0, 0, 0]), Some(22)); // below 5
        assert_eq!(malformed_at(&[68, 3, 5, 0]), Some(21)); // too short
                                                            // Address + timestamp needs 8 bytes from the pointer.
        assert_eq!(malformed_at(&[68, 8, 5, 1, 0, 0, 0, 0]), Some(22));
        assert_eq!(
            compile_ipv4_options(&[68, 8, 5, 0, 0, 0, 0, 0]),
            Ipv4Options::Ok
        );
        assert_eq!(
            compile_ipv4_options(&[68, 12, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
            Ipv4Options::Ok
        );
    }

    #[test]
    fn full_timestamp_counts_overflows_up_to_15() {
        assert_eq!(
            compile_ipv4_options(&[68, 8, 9, 0xE0, 0, 0, 0, 0]),
            Ipv4Options::Ok
        );
        assert_eq!(malformed_at(&[68, 8, 9, 0xF0, 0, 0, 0, 0]), Some(23));
        // Prespecified addresses do not count overflows.
        assert_eq!(
            compile_ipv4_options(&[68, 8, 9, 0xF3, 0, 0, 0, 0]),
            Ipv4Options::Ok
        );
    }

    #[test]
    fn duplicates_are_rejected() {
        let two_rr = [7, 3, 4, 7, 3, 4, 0, 0];
        assert_eq!(malformed_at(&two_rr), Some(23));
        let two_lsrr = [131, 7, 4, 0, 0, 0, 0, 137, 3, 4, 0, 0];
        assert_eq!(malformed_at(&two_lsrr), Some(27));
        let two_ts = [68, 4, 5, 0, 68, 4, 5, 0];
        assert_eq!(malformed_at(&two_ts), Some(24));
    }

    #[test]
    fn source_routes() {
        let lsrr = [131, 7, 4, 192, 0, 2, 1, 0];
        let ssrr = [1, 137, 7, 4, 192, 0, 2, 1];
        assert_eq!(
            compile_ipv4_options(&lsrr),
            Ipv4Options::SourceRouted { strict: false }
        );
        assert_eq!(
            compile_ipv4_options(&ssrr),
            Ipv4Options::SourceRouted { strict: true }
        );
        // A malformed option after a source route still makes a header error.
        assert_eq!(
            malformed_at(&[131, 7, 4, 0, 0, 0, 0, 7, 2, 0, 0, 0]),
            Some(28)
        );
    }

    #[test]
    fn router_alert_cipso_and_unknown_options() {
        assert_eq!(compile_ipv4_options(&[148, 4, 0, 0]), Ipv4Options::Ok);
        assert_eq!(malformed_at(&[148, 3, 0, 0]), Some(21));
        assert_eq!(malformed_at(&[134, 6, 0, 0, 0, 1, 0, 0]), Some(21));
        assert_eq!(malformed_at(&[134, 8, 0, 0, 0, 1, 0, 0]), Some(22));
        assert_eq!(
            compile_ipv4_options(&[130, 4, 0, 0, 136, 4, 0, 0]),
            Ipv4Options::Ok
        );
        assert_eq!(compile_ipv4_options(&[25, 4, 0, 0]), Ipv4Options::Ok);
    }
}
