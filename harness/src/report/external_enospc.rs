//! The external report's part for `--crash enospc` (schema 1.7): per trial,
//! the [`Delivery::Capacity`](crate::report::external::Delivery::Capacity)
//! a trial's writer ran with; per section, [`EnospcSection`]: the capacity,
//! the filesystem, how full it was when the writers ended, and what the
//! writers did (died of SIGBUS, stopped with an error, ran on).
//!
//! Architecture Invariant: pure.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use crate::vocab::capacity::CapacityFs;
use crate::vocab::{CrashKind, ProcessEnd};

/// A filesystem with less free than this (the smallest page size Linux
/// has) when an `enospc` writer ended was full: tmpfs allocates in pages.
const FULL_BELOW: u64 = 4096;

/// Was a filesystem with `free` bytes left full?
pub fn is_full(free: u64) -> bool {
    free < FULL_BELOW
}

/// The text of an `enospc` trial's delivery.
pub fn capacity_text(capacity: u64, filesystem: &str, used: u64, free: u64) -> String {
    let full = if is_full(free) { " (full)" } else { "" };
    format!("the writer ran on a {capacity}-byte {filesystem}: {used} bytes used, {free} free when it ended{full}")
}

/// The flags an `enospc` trial's replay line adds: its capacity, and its
/// filesystem when not the default tmpfs (other kinds add none).
pub fn capacity_flags(crash: CrashKind, capacity: Option<u64>, fs: Option<CapacityFs>) -> String {
    let mut s = String::new();
    if crash == CrashKind::Enospc {
        if let Some(c) = capacity {
            let _ = write!(s, " --capacity {c}");
        }
        if let Some(fs) = fs {
            let _ = write!(s, " --capacity-fs {fs}");
        }
    }
    s
}

/// What the `enospc` trials of a run met and did. Writers are not traced:
/// which call saw `ENOSPC` first, or which store faulted, is not known
/// (`traced` is false); how each writer ended is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EnospcSection {
    /// The bytes the filesystem held (`--capacity`, or derived from the
    /// clean run: half of what its directory allocated, whole pages).
    pub capacity: u64,
    /// The filesystem the writers ran on (`tmpfs`, in a user + mount
    /// namespace).
    pub filesystem: String,
    /// Whether the writers were traced (then the report would name the
    /// call that failed first and the store that faulted).
    pub traced: bool,
    /// Trials whose filesystem had less than a page free when the writer
    /// ended (a writer whose `fallocate` failed may leave free space
    /// behind: it is not counted here, though it met `ENOSPC`).
    pub full_at_end: u64,
    /// Trials whose writer died of SIGBUS: a store through a mapping into
    /// a page the filesystem could not back.
    pub died_of_sigbus: u64,
    /// Trials whose writer exited with a non-zero status (it treated an
    /// error, `ENOSPC` most likely, as fatal).
    pub exited_with_error: u64,
    /// Trials whose writer exited 0: it ran to its end, handling or
    /// ignoring any error it met.
    pub exited_zero: u64,
    /// Trials whose writer died of another signal.
    pub died_otherwise: u64,
}

impl EnospcSection {
    /// A section of no trial, with the run's capacity and filesystem.
    pub fn empty(capacity: u64, filesystem: &str) -> EnospcSection {
        EnospcSection {
            capacity,
            filesystem: filesystem.to_owned(),
            traced: false,
            full_at_end: 0,
            died_of_sigbus: 0,
            exited_with_error: 0,
            exited_zero: 0,
            died_otherwise: 0,
        }
    }

    /// Count one trial: its filesystem's free bytes at the end and how its
    /// writer ended.
    pub fn count(&mut self, free: u64, end: ProcessEnd) {
        self.full_at_end += is_full(free) as u64;
        match end {
            ProcessEnd::Signaled(libc::SIGBUS) => self.died_of_sigbus += 1,
            ProcessEnd::Signaled(_) => self.died_otherwise += 1,
            ProcessEnd::Exited(0) => self.exited_zero += 1,
            ProcessEnd::Exited(_) => self.exited_with_error += 1,
        }
    }

    /// Add the counts of `other` (a shard of the same run).
    pub fn add(&mut self, other: &EnospcSection) {
        self.full_at_end += other.full_at_end;
        self.died_of_sigbus += other.died_of_sigbus;
        self.exited_with_error += other.exited_with_error;
        self.exited_zero += other.exited_zero;
        self.died_otherwise += other.died_otherwise;
    }

    /// One line for the human summary, the page and JUnit.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} bytes of {}: full when the writer ended in {} trial(s); the writer died of SIGBUS (a store into a page the filesystem could not back) in {}, exited with an error in {}, exited 0 in {}",
            self.capacity,
            self.filesystem,
            self.full_at_end,
            self.died_of_sigbus,
            self.exited_with_error,
            self.exited_zero,
        );
        if self.died_otherwise > 0 {
            let _ = write!(s, ", died of another signal in {}", self.died_otherwise);
        }
        if !self.traced {
            s.push_str(" (not traced: which call failed first or which store faulted is not known)");
        }
        s
    }
}

impl fmt::Display for EnospcSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_end_of_a_writer_is_counted_once_and_shards_add_up() {
        let page = FULL_BELOW;
        let mut a = EnospcSection::empty(8 * page, "tmpfs");
        a.count(0, ProcessEnd::Signaled(libc::SIGBUS));
        a.count(2 * page, ProcessEnd::Exited(1));
        a.count(100, ProcessEnd::Exited(0));
        assert_eq!((a.full_at_end, a.died_of_sigbus, a.exited_with_error, a.exited_zero), (2, 1, 1, 1));
        let mut b = EnospcSection::empty(8 * page, "tmpfs");
        b.count(0, ProcessEnd::Signaled(libc::SIGKILL));
        a.add(&b);
        assert_eq!((a.full_at_end, a.died_otherwise), (3, 1));
        let line = a.line();
        assert!(line.starts_with("32768 bytes of tmpfs: full when the writer ended in 3 trial(s)"), "{line}");
        assert!(line.contains("died of another signal in 1") && line.contains("not traced"), "{line}");
        assert_eq!(
            capacity_text(8 * page, "tmpfs", 8 * page, 0),
            "the writer ran on a 32768-byte tmpfs: 32768 bytes used, 0 free when it ended (full)"
        );
        assert!(!capacity_text(8 * page, "tmpfs", 0, 8 * page).contains("full"));
        assert_eq!(capacity_flags(CrashKind::Enospc, Some(page), None), " --capacity 4096");
        assert_eq!(
            capacity_flags(CrashKind::Enospc, Some(262144), Some(CapacityFs::Ext4)),
            " --capacity 262144 --capacity-fs ext4"
        );
        assert_eq!(capacity_flags(CrashKind::Sigkill, Some(page), Some(CapacityFs::Ext4)), "");
    }

    #[test]
    fn an_enospc_section_is_counted_from_its_trials_and_shown_in_the_summary_page_and_junit() {
        use crate::program_plan::TrialPlan;
        use crate::report::checker_verdict::CheckerVerdict;
        use crate::report::external::test_support::report_with;
        use crate::report::external::{aggregate_section, Delivery, TrialOutcome};
        use crate::vocab::CrashKind;
        let page = FULL_BELOW;
        let outcome = |t: u32, free: u64, end: ProcessEnd| TrialOutcome {
            plan: TrialPlan::new(5, CrashKind::Enospc, t),
            crash_at_ns: 0,
            delivery: Delivery::Capacity {
                capacity: 4 * page,
                filesystem: "tmpfs".into(),
                used: 4 * page - free,
                free,
            },
            writer_end: end,
            acks: vec!["rec 0".into()],
            partial_line: None,
            checker: CheckerVerdict::Consistent,
        };
        let outcomes = [
            outcome(0, 0, ProcessEnd::Signaled(libc::SIGBUS)),
            outcome(1, 2 * page, ProcessEnd::Exited(1)),
            outcome(2, 0, ProcessEnd::Exited(0)),
        ];
        let section = aggregate_section(CrashKind::Enospc, &outcomes, &|t| format!("replay {t}"));
        let e = section.enospc.clone().expect("enospc trials make an enospc part");
        assert_eq!(
            (e.capacity, e.full_at_end, e.died_of_sigbus, e.exited_with_error, e.exited_zero),
            (4 * page, 2, 1, 1, 1)
        );
        // Full filesystems are what struck the writer; the one left with room did not.
        assert_eq!(section.crashed, 2);
        let mut report = report_with(&[], None);
        report.crashes = vec![section];
        let line = e.line();
        assert!(report.human_summary().contains(&format!("enospc: {line}")), "{}", report.human_summary());
        let html = crate::report::external_html::render_external_html(&report);
        assert!(html.contains("enospc: 16384 bytes of tmpfs"), "{html}");
        let junit = crate::report::external_junit::external_junit_xml(&report).unwrap();
        assert!(junit.contains("enospc: 16384 bytes of tmpfs"), "{junit}");
    }
}
