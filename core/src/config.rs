//! Every tunable the packet path reads, named after the sysctl that sets it.
//!
//! `statewall.config.Sysctls` is the face users meet (names, prefixes,
//! parsing, profiles, error messages); it hands the core the final values by
//! name. The defaults here are Linux 6.18's, as there, so the core is usable
//! on its own (Rust tests, benches).

use std::fmt;

macro_rules! sysctls {
    ($($(#[$doc:meta])* $name:ident = $default:expr;)*) => {
        /// The per-network-namespace knobs of conntrack and defragmentation.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Sysctls {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl Default for Sysctls {
            fn default() -> Self {
                Sysctls { $($name: $default,)* }
            }
        }

        impl Sysctls {
            /// Every field name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name),)*];

            /// Set one knob by its bare field name.
            pub fn set(&mut self, name: &str, value: u64) -> Result<(), UnknownSysctl> {
                match name {
                    $(stringify!($name) => self.$name = value,)*
                    _ => return Err(UnknownSysctl(name.to_string())),
                }
                Ok(())
            }

            /// One knob's value by its bare field name.
            pub fn get(&self, name: &str) -> Option<u64> {
                match name {
                    $(stringify!($name) => Some(self.$name),)*
                    _ => None,
                }
            }
        }
    };
}

sysctls! {
    // Timeouts (seconds).
    nf_conntrack_generic_timeout = 600;
    nf_conntrack_tcp_timeout_syn_sent = 120;
    nf_conntrack_tcp_timeout_syn_recv = 60;
    nf_conntrack_tcp_timeout_established = 432000;
    nf_conntrack_tcp_timeout_fin_wait = 120;
    nf_conntrack_tcp_timeout_close_wait = 60;
    nf_conntrack_tcp_timeout_last_ack = 30;
    nf_conntrack_tcp_timeout_time_wait = 120;
    nf_conntrack_tcp_timeout_close = 10;
    nf_conntrack_tcp_timeout_max_retrans = 300;
    nf_conntrack_tcp_timeout_unacknowledged = 300;
    nf_conntrack_udp_timeout = 30;
    nf_conntrack_udp_timeout_stream = 120;
    nf_conntrack_icmp_timeout = 30;
    nf_conntrack_icmpv6_timeout = 30;
    nf_conntrack_gre_timeout = 30;
    nf_conntrack_gre_timeout_stream = 180;
    nf_conntrack_sctp_timeout_closed = 10;
    nf_conntrack_sctp_timeout_cookie_wait = 3;
    nf_conntrack_sctp_timeout_cookie_echoed = 3;
    nf_conntrack_sctp_timeout_established = 210;
    nf_conntrack_sctp_timeout_shutdown_sent = 3;
    nf_conntrack_sctp_timeout_shutdown_recd = 3;
    nf_conntrack_sctp_timeout_shutdown_ack_sent = 3;
    nf_conntrack_sctp_timeout_heartbeat_sent = 30;
    // TCP behaviour.
    nf_conntrack_tcp_loose = 1;
    nf_conntrack_tcp_be_liberal = 0;
    nf_conntrack_tcp_ignore_invalid_rst = 0;
    nf_conntrack_tcp_max_retrans = 3;
    // Core.
    nf_conntrack_checksum = 1;
    nf_conntrack_log_invalid = 0;
    nf_conntrack_acct = 0;
    nf_conntrack_timestamp = 0;
    nf_conntrack_events = 2;
    nf_conntrack_max = 262144;
    nf_conntrack_buckets = 262144;
    nf_conntrack_expect_max = 4096;
    // IPv6 defragmentation (nf_defrag_ipv6 keeps its own limits).
    nf_conntrack_frag6_timeout = 60;
    nf_conntrack_frag6_high_thresh = 4194304;
    nf_conntrack_frag6_low_thresh = 3145728;
    // IPv4 defragmentation (nf_defrag_ipv4 uses the stack's ip_defrag settings).
    ipfrag_time = 30;
    ipfrag_high_thresh = 4194304;
    ipfrag_low_thresh = 3145728;
    ipfrag_max_dist = 64;
    // IPv4 receive path: net.ipv4.conf.all.accept_source_route (the kernel
    // honours a source route only when both `all` and the interface allow
    // it; an interface allows it by default).
    accept_source_route = 0;
}

/// A name that is not one of the knobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownSysctl(pub String);

impl fmt::Display for UnknownSysctl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown sysctl {:?}", self.0)
    }
}

impl std::error::Error for UnknownSysctl {}

/// The helpers' module parameters (/sys/module/nf_conntrack_*/parameters).
///
/// Unlike sysctls they are global to the machine, which is why they are not
/// in `Sysctls`. Kernel defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelperParams {
    pub ftp_loose: bool,
    pub irc_max_dcc_channels: u32,
    pub irc_dcc_timeout: u32,
    pub amanda_master_timeout: u32,
}

impl Default for HelperParams {
    fn default() -> Self {
        HelperParams {
            ftp_loose: false,
            irc_max_dcc_channels: 8,
            irc_dcc_timeout: 300,
            amanda_master_timeout: 300,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_get_by_name() {
        let mut cfg = Sysctls::default();
        assert_eq!(cfg.get("nf_conntrack_tcp_loose"), Some(1));
        cfg.set("nf_conntrack_tcp_loose", 0).unwrap();
        assert_eq!(cfg.nf_conntrack_tcp_loose, 0);
        assert!(cfg.set("nf_conntrack_nonsense", 1).is_err());
        assert_eq!(Sysctls::NAMES.len(), 45);
        assert_eq!(cfg.get("accept_source_route"), Some(0));
    }
}
