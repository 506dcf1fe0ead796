//! statewall's packet path: everything that runs once per packet.
//!
//! The crate mirrors netfilter's own split. `packet` is the decoded datagram
//! every stage reads; `config` holds the sysctls. With the `python` feature
//! the crate is the extension module `statewall._core`.

pub mod capture;
pub mod checksum;
pub mod config;
pub mod conntrack;
pub mod decode;
pub mod defrag;
pub mod engine;
pub mod helpers;
pub mod nat;
pub mod netfilter;
pub mod output;
pub mod packet;
pub mod partition;
pub mod reason;
pub mod rules;
pub mod verdict;

#[cfg(feature = "python")]
mod python;
