//! Conntrack helpers: protocol parsers that announce related connections.
//!
//! One module per kernel helper (nf_conntrack_ftp/irc/tftp/amanda.c) and a
//! registry (nf_conntrack_helper.c) with the call nf_confirm makes. The
//! expectations themselves live in `conntrack::expect`.
//!
//! Every helper reads hostile payloads: parsers index with `.get()`, bound
//! their scans by the payload length, and never panic.

pub mod amanda;
pub mod common;
pub mod ftp;
pub mod irc;
pub mod registry;
pub mod tftp;

pub use common::{HelperVerdict, NOTHING};
pub use registry::{
    assign_helper, find_helper, helper_for_port, helper_name_of, run_helper, spec_of, HelperSpec,
    HELPERS,
};
