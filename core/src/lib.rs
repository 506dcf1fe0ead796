//! statewall's packet path: everything that runs once per packet.
//!
//! The crate mirrors netfilter's own split. `packet` is the decoded datagram
//! every stage reads; `config` holds the sysctls. With the `python` feature
//! the crate is the extension module `statewall._core`.

pub mod config;
pub mod conntrack;
pub mod packet;
pub mod reason;
pub mod rules;

#[cfg(feature = "python")]
mod python;
