//! The conntrack statistics as Linux prints them.
//!
//! * `conntrack_s_line`: `conntrack -S` (conntrack-tools 1.4.7), one line per
//!   CPU; a replay is one CPU, so one line `cpu=0`.
//! * `proc_stat_lines`: /proc/net/stat/nf_conntrack (nf_conntrack_standalone.c,
//!   ct_cpu_seq_show): a header, then 17 eight-digit hex columns per CPU. The
//!   `new`, `ignore` and `delete` columns are always 0 in 6.x, `entries` is
//!   the namespace's entry count, `chainlength` is chaintoolong and
//!   `icmp_error` is the error counter; the expectation columns come from
//!   the expectation table.

/// The counters `conntrack -S` prints (per netns, summed over CPUs).
///
/// found, insert: only NAT and ctnetlink count them in 6.x (0 on replay).
/// invalid: no conntrack attached (bad tuple, tracker refused), but not
/// ICMP error-handler failures, which count as `error` only.
/// drop: table full with nothing evictable, or a tracker's DROP (which also
/// counts as invalid). early_drop: entries evicted for new ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConntrackStats {
    pub found: u64,
    pub invalid: u64,
    pub insert: u64,
    pub insert_failed: u64,
    pub drop: u64,
    pub early_drop: u64,
    pub error: u64,
    pub search_restart: u64,
    pub clash_resolve: u64,
    pub chaintoolong: u64,
}

/// The expectation table's three columns of /proc/net/stat/nf_conntrack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpectCounters {
    /// Children created from an expectation.
    pub expect_new: u64,
    /// Insertions.
    pub expect_create: u64,
    /// Removals of any cause.
    pub expect_delete: u64,
}

pub const PROC_STAT_HEADER: &str = "entries  clashres found new invalid ignore delete chainlength \
insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete \
search_restart";

/// One line of `conntrack -S`, trailing space included as the tool prints it.
pub fn conntrack_s_line(stats: &ConntrackStats, cpu: u32) -> String {
    let s = stats;
    format!(
        "cpu={cpu:<4}\tfound={} invalid={} insert={} insert_failed={} drop={} early_drop={} \
         error={} search_restart={} clash_resolve={} chaintoolong={} ",
        s.found,
        s.invalid,
        s.insert,
        s.insert_failed,
        s.drop,
        s.early_drop,
        s.error,
        s.search_restart,
        s.clash_resolve,
        s.chaintoolong
    )
}

/// /proc/net/stat/nf_conntrack for one CPU: the header and one row.
pub fn proc_stat_lines(
    stats: &ConntrackStats,
    expect: &ExpectCounters,
    entries: u64,
) -> [String; 2] {
    let s = stats;
    let row = format!(
        "{entries:08x}  {:08x} {:08x} {:08x} {:08x} {:08x} {:08x} {:08x} {:08x} {:08x} \
         {:08x} {:08x} {:08x}  {:08x} {:08x} {:08x} {:08x}",
        s.clash_resolve,
        s.found,
        0,
        s.invalid,
        0,
        0,
        s.chaintoolong,
        s.insert,
        s.insert_failed,
        s.drop,
        s.early_drop,
        s.error,
        expect.expect_new,
        expect.expect_create,
        expect.expect_delete,
        s.search_restart
    );
    [PROC_STAT_HEADER.to_string(), row]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conntrack_minus_s_line_format() {
        let stats = ConntrackStats {
            invalid: 34,
            error: 14,
            ..Default::default()
        };
        assert_eq!(
            conntrack_s_line(&stats, 0),
            "cpu=0   \tfound=0 invalid=34 insert=0 insert_failed=0 drop=0 early_drop=0 error=14 \
             search_restart=0 clash_resolve=0 chaintoolong=0 "
        );
    }

    #[test]
    fn proc_stat_format() {
        let stats = ConntrackStats {
            invalid: 34,
            drop: 2,
            ..Default::default()
        };
        let expect = ExpectCounters {
            expect_new: 3,
            expect_create: 4,
            expect_delete: 1,
        };
        let [header, row] = proc_stat_lines(&stats, &expect, 17);
        assert!(header.starts_with("entries  clashres found new invalid ignore delete chainlength"));
        assert_eq!(
            header,
            "entries  clashres found new invalid ignore delete chainlength insert insert_failed \
             drop early_drop icmp_error  expect_new expect_create expect_delete search_restart"
        );
        assert_eq!(
            row,
            "00000011  00000000 00000000 00000000 00000022 00000000 00000000 00000000 \
             00000000 00000000 00000002 00000000 00000000  00000003 00000004 00000001 \
             00000000"
        );
    }
}
