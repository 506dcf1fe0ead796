//! The netfilter pipeline: the hook list, routing between hooks, and the
//! walk of one packet through them.

pub mod hooks;
pub mod route;
