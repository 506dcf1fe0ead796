//! Everything the core writes for people: addresses, packet summaries, and
//! the per-packet text and jsonl lines, byte-identical to what statewall's
//! Python face has always printed (so output never falls back to Python).

pub mod addr;
pub mod json;
pub mod record;
pub mod summary;
