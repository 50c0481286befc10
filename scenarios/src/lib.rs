//! The built-in scenario catalogue: for every row of the survival matrix
//! (mapping × sync policy), what the kernel's documented semantics say must
//! happen to the writer's acknowledged ops under each crash, written down
//! here independently of crashlab's models so the tests can catch a model
//! that drifted.
//!
//! Sources: mmap(2) (MAP_SHARED: "Updates to the mapping are visible to
//! other processes mapping the same region, and (in the case of file-backed
//! mappings) are carried through to the underlying file"; MAP_PRIVATE:
//! "Updates to the mapping are not visible to other processes mapping the
//! same file, and are not carried through to the underlying file"; SIGBUS:
//! "Attempted access to a page of the buffer that lies beyond the end of the
//! mapped file"), msync(2), and this project's measurements on Linux 6.18
//! (shared/README.md).

use crashlab::scenario::ScenarioId;
use crashlab::spec::{MappingKind, SyncPolicy};
use crashlab::vocab::CrashKind;

/// What must become of acked ops in one cell, stated in counts a report has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckFate {
    /// Every acked op survives, except bytes a truncation cut off.
    Survive,
    /// No acked op is in the file.
    NeverReachFile,
}

/// One catalogue entry.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub id: ScenarioId,
    /// Why, in one line, for the test failure message.
    pub rationale: &'static str,
}

impl Scenario {
    /// The fate of acked ops after a *process* crash of kind `crash`.
    pub fn process_crash_fate(&self, _crash: CrashKind) -> AckFate {
        match self.id.mapping {
            // The page cache outlives the process; sync policy is irrelevant.
            MappingKind::Shared => AckFate::Survive,
            // Private pages are the process's own; they die with it.
            MappingKind::Private => AckFate::NeverReachFile,
        }
    }
}

/// The catalogue: the 12 standard rows.
pub fn catalogue() -> Vec<Scenario> {
    let mut out = Vec::new();
    for mapping in MappingKind::ALL {
        for policy in SyncPolicy::STANDARD {
            let rationale = match (mapping, policy) {
                (MappingKind::Shared, SyncPolicy::None) => "unsynced MAP_SHARED stores live in the page cache",
                (MappingKind::Shared, SyncPolicy::MsAsyncEach) => {
                    "MS_ASYNC is a no-op, but the page cache keeps the stores"
                }
                (MappingKind::Shared, SyncPolicy::MsSyncEach) => "synced stores are in the page cache and on disk",
                (MappingKind::Shared, SyncPolicy::MsSyncEvery(_)) => "every completed store is in the page cache",
                (MappingKind::Shared, SyncPolicy::FsyncEvery(_)) => "every completed store is in the page cache",
                (MappingKind::Shared, SyncPolicy::AckBeforeSync) => {
                    "acking before msync loses nothing when only the process dies"
                }
                (MappingKind::Private, _) => "MAP_PRIVATE stores are never carried through to the file, msync or not",
            };
            out.push(Scenario { id: ScenarioId { mapping, policy }, rationale });
        }
    }
    out
}
