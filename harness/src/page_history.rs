//! Write history as data: the versions a page of a user's file held between
//! its durable floor (the last completed sync that covered it) and the end
//! of a traced run, as the durability oracle saw them at its stops.
//!
//! Why it matters: a real kernel may write a dirty page back at any moment
//! (background writeback, memory pressure, another process's `sync(2)` or
//! `syncfs(2)`), so after a power loss a page may hold **any** content it
//! had since it was last synced, not only the synced one or the newest one.
//! Real ext4 and xfs cuts with a concurrent `syncfs` loop left intermediate
//! versions in 13 of 40 and 10 of 20 cuts (`../shared/README.md`).
//!
//! What the oracle can see is a sample: the content at each of its stops
//! (every trapped call's entry, and with `--history-every` a timer). A
//! version that lived only between two stops is not seen; every version
//! recorded is one the page really held.
//!
//! Architecture Invariant: pure.

use serde::{Deserialize, Serialize};

/// At most this many intermediate versions are kept per page between two
/// syncs: the first `MAX_PAGE_VERSIONS - 1` and the latest (each new one
/// replaces the latest). Fewer versions only means fewer states checked,
/// never a state that cannot happen.
pub const MAX_PAGE_VERSIONS: usize = 32;

/// At most this many bytes of intermediate versions are held per run (all
/// files); past it, no new version is recorded (and the report says so).
pub const MAX_HISTORY_BYTES: u64 = 256 << 20;

/// The shortest and longest `--history-every` period, in microseconds.
pub const MIN_HISTORY_EVERY_US: u64 = 100;
pub const MAX_HISTORY_EVERY_US: u64 = 10_000_000;

/// One content a page held between its floor and the end of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageVersion {
    /// Page index in the file.
    pub page: u64,
    /// The page's bytes (shorter than a page at the file's end then).
    pub bytes: Vec<u8>,
    /// The last traced call the writer had entered when the page was last
    /// seen without this content (`None`: none yet, the run's start).
    pub after_call: Option<u64>,
    /// The traced call the writer was entering (or the next one it
    /// entered) when this content was seen (`None`: none followed).
    pub before_call: Option<u64>,
}

impl PageVersion {
    /// `written between call 41 and call 42`, for explanations. Call
    /// numbers are those of the namespace operations (`@CALL` items).
    pub fn when(&self) -> String {
        match (self.after_call, self.before_call) {
            (Some(a), Some(b)) => format!("written between call {a} and call {b}"),
            (None, Some(b)) => format!("written before call {b}"),
            (Some(a), None) => format!("written after call {a}"),
            (None, None) => "written during the run".to_owned(),
        }
    }
}

/// How the oracle learned which pages changed between its stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HistoryMethod {
    /// Not recorded: every page holds its floor or its newest content.
    Off,
    /// Every watched file that can have changed read at every stop and
    /// compared page by page with what the previous stop read.
    PageCompare,
    /// As `page-compare`, but in the address spaces where it could be set
    /// up, a userfaultfd in asynchronous write-protect mode and the
    /// `PAGEMAP_SCAN` ioctl told which pages of the mapped files were
    /// written, and only those were read.
    UffdWriteProtect,
}

impl HistoryMethod {
    /// The method a run (or a report's trials together) used: `Off` when
    /// the history was not recorded, else `UffdWriteProtect` when write
    /// tracking was set up anywhere, else `PageCompare`.
    pub fn of(recorded: bool, stats: &HistoryStats) -> HistoryMethod {
        match (recorded, stats.write_tracked_spaces) {
            (false, _) => HistoryMethod::Off,
            (true, 0) => HistoryMethod::PageCompare,
            (true, _) => HistoryMethod::UffdWriteProtect,
        }
    }
}

/// What recording the history cost and found, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HistoryStats {
    /// Stops at which the files were read (trapped calls and timer ticks).
    pub samples: u64,
    /// Of them, `--history-every` timer ticks.
    pub timer_samples: u64,
    /// Intermediate versions recorded (before syncs made some obsolete).
    pub versions: u64,
    /// Versions not kept: a page's [`MAX_PAGE_VERSIONS`] or the run's
    /// [`MAX_HISTORY_BYTES`] was reached.
    pub dropped: u64,
    /// Bytes read from the files to compare them.
    pub bytes_read: u64,
    /// Address spaces whose writes were tracked (`uffd-write-protect`).
    #[serde(default)]
    pub write_tracked_spaces: u64,
    /// Pages write tracking reported written (each read then).
    #[serde(default)]
    pub pages_reported: u64,
}

impl HistoryStats {
    /// Add another run's counts (a report's totals over its trials).
    pub fn add(&mut self, other: &HistoryStats) {
        self.samples += other.samples;
        self.timer_samples += other.timer_samples;
        self.versions += other.versions;
        self.dropped += other.dropped;
        self.bytes_read += other.bytes_read;
        self.write_tracked_spaces += other.write_tracked_spaces;
        self.pages_reported += other.pages_reported;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_names_the_calls_around_it() {
        let v = |a, b| PageVersion { page: 0, bytes: vec![], after_call: a, before_call: b };
        assert_eq!(v(Some(41), Some(42)).when(), "written between call 41 and call 42");
        assert_eq!(v(None, Some(3)).when(), "written before call 3");
        assert_eq!(v(Some(7), None).when(), "written after call 7");
    }

    #[test]
    fn the_method_says_whether_write_tracking_ran_anywhere() {
        let tracked = HistoryStats { write_tracked_spaces: 2, ..HistoryStats::default() };
        assert_eq!(HistoryMethod::of(false, &tracked), HistoryMethod::Off);
        assert_eq!(HistoryMethod::of(true, &HistoryStats::default()), HistoryMethod::PageCompare);
        assert_eq!(HistoryMethod::of(true, &tracked), HistoryMethod::UffdWriteProtect);
    }
}
