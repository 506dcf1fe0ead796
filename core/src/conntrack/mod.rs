//! Connection tracking (net/netfilter/nf_conntrack_*.c).
//!
//! `conn` is the tracked connection (`struct nf_conn`) and its constants;
//! `l4proto` the contract between the core and each protocol tracker;
//! `core` the table and the per-packet classification (nf_conntrack_core.c)
//! with its helpers `early_drop`, `events`, `stats` and `display`; `acct`
//! the packet and byte counters (nf_conntrack_acct) and `history` the
//! per-connection log beside the table.

pub mod acct;
pub mod conn;
pub mod core;
pub mod display;
pub mod early_drop;
pub mod events;
pub mod expect;
pub mod history;
pub mod l4proto;
pub mod proto_generic;
pub mod proto_gre;
pub mod proto_icmp;
pub mod proto_sctp;
pub mod proto_tcp;
pub mod proto_udp;
pub mod seqadj;
pub mod stats;
pub mod tcp_window;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests_acct;
#[cfg(test)]
mod tests_display;
#[cfg(test)]
mod tests_proto;
#[cfg(test)]
mod tests_table;
