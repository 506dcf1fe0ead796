//! iptables rule evaluation: rules as plain data (`model`), walked by
//! `walker` (ip_tables.c: ipt_do_table) with counters and match state kept
//! beside them (`state`). Parsing and load-time checks of options are done in
//! Python (statewall.rules); `statewall.rules.lower` hands the result over
//! as JSON.

pub mod context;
pub mod hooks;
pub mod ipset;
pub mod matches;
pub mod model;
pub mod nft;
pub mod state;
pub mod targets;
pub mod walker;

#[cfg(test)]
pub(crate) mod testpkt;
