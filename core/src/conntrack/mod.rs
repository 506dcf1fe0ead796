//! Connection tracking (net/netfilter/nf_conntrack_*.c).
//!
//! `conn` is the tracked connection (`struct nf_conn`) and its constants;
//! `l4proto` the contract between the core and each protocol tracker.

pub mod conn;
pub mod expect;
pub mod l4proto;
pub mod proto_icmp;
pub mod proto_sctp;
pub mod proto_tcp;
pub mod tcp_window;
