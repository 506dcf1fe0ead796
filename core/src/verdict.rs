//! Verdicts: what a hook entry says about a packet (the kernel's NF_*
//! values) and what statewall reports to people.
//!
//! The two are kept apart on purpose. `NfVerdict` is the hook machinery's
//! own answer: a table's DROP and REJECT are both NF_DROP to the hook walk
//! (REJECT only answers the sender first). `Verdict` is the name a user
//! reads in the results, which keeps REJECT, the held fragment (STOLEN) and
//! the verdict of a rule statewall could not evaluate (UNKNOWN) apart.

/// A hook entry's answer (NF_DROP, NF_ACCEPT, NF_STOLEN, NF_QUEUE, NF_REPEAT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NfVerdict {
    Drop,
    Accept,
    Stolen,
    Queue,
    Repeat,
}

/// The verdict users see, one per packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    #[default]
    Accept,
    Drop,
    Reject,
    /// A non-final fragment, held for reassembly.
    Stolen,
    /// Handed to a userspace program (NFQUEUE).
    Queue,
    /// A rule statewall cannot evaluate decided (`--allow-unknown`).
    Unknown,
}

impl Verdict {
    pub const ALL: [Verdict; 6] = [
        Verdict::Accept,
        Verdict::Drop,
        Verdict::Reject,
        Verdict::Stolen,
        Verdict::Queue,
        Verdict::Unknown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Accept => "ACCEPT",
            Verdict::Drop => "DROP",
            Verdict::Reject => "REJECT",
            Verdict::Stolen => "STOLEN",
            Verdict::Queue => "QUEUE",
            Verdict::Unknown => "UNKNOWN",
        }
    }

    /// What the hook walk does with it. An undetermined fate ends the walk
    /// as a drop does: nothing after it can be trusted, and an entry the
    /// packet created is not confirmed.
    pub fn nf(self) -> NfVerdict {
        match self {
            Verdict::Accept => NfVerdict::Accept,
            Verdict::Drop | Verdict::Reject | Verdict::Unknown => NfVerdict::Drop,
            Verdict::Stolen => NfVerdict::Stolen,
            Verdict::Queue => NfVerdict::Queue,
        }
    }
}
