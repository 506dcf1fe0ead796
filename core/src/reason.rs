//! Why something happened to a packet, in words a person understands.
//!
//! On the hot path a reason is a `&'static str` (a fixed sentence, or one
//! taken from a table built once); only rare outcomes (INVALID packets,
//! helper announcements, evictions) format text and pay for an allocation.

use std::borrow::Cow;

/// One reason; several are joined with "; " where a packet collects more.
pub type Reason = Cow<'static, str>;
