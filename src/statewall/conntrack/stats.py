"""The conntrack statistics as Linux prints them.

* `conntrack_s_line`: `conntrack -S` (conntrack-tools 1.4.7), one line per
  CPU; a replay is one CPU, so one line `cpu=0`.
* `proc_stat_lines`: /proc/net/stat/nf_conntrack (nf_conntrack_standalone.c,
  ct_cpu_seq_show): a header, then 17 eight-digit hex columns per CPU. The
  `new`, `ignore` and `delete` columns are always 0 in 6.x, `entries` is the
  namespace's entry count, `chainlength` is chaintoolong and `icmp_error`
  is the error counter; the expectation columns come from the expectation
  table.
"""

from __future__ import annotations

from statewall.conntrack.core import ConntrackStats
from statewall.conntrack.expect import ExpectStats

PROC_STAT_HEADER = (
    "entries  clashres found new invalid ignore delete chainlength insert insert_failed "
    "drop early_drop icmp_error  expect_new expect_create expect_delete search_restart"
)


def conntrack_s_line(stats: ConntrackStats, cpu: int = 0) -> str:
    """One line of `conntrack -S`, trailing space included as the tool prints it."""
    return (
        f"cpu={cpu:<4}\tfound={stats.found} invalid={stats.invalid} insert={stats.insert} "
        f"insert_failed={stats.insert_failed} drop={stats.drop} early_drop={stats.early_drop} "
        f"error={stats.error} search_restart={stats.search_restart} "
        f"clash_resolve={stats.clash_resolve} chaintoolong={stats.chaintoolong} "
    )


def proc_stat_lines(stats: ConntrackStats, expect: ExpectStats, entries: int) -> list[str]:
    """/proc/net/stat/nf_conntrack for one CPU: the header and one row."""
    s = stats
    row = (
        f"{entries:08x}  {s.clash_resolve:08x} {s.found:08x} {0:08x} {s.invalid:08x} "
        f"{0:08x} {0:08x} {s.chaintoolong:08x} {s.insert:08x} {s.insert_failed:08x} "
        f"{s.drop:08x} {s.early_drop:08x} {s.error:08x}  {expect.expect_new:08x} "
        f"{expect.expect_create:08x} {expect.expect_delete:08x} {s.search_restart:08x}"
    )
    return [PROC_STAT_HEADER, row]


__all__ = ["PROC_STAT_HEADER", "conntrack_s_line", "proc_stat_lines"]
